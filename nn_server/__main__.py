"""``python -m nn_server``: the server's command line (``nn_server.web.main``)."""

import sys

from nn_server.web.main import main

if __name__ == "__main__":
    sys.exit(main())
