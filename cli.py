"""nn-server's terminal client: an interactive Rich menu, or the seed's argument mode.

    python cli.py [host:port] [network operation [file]]      (python cli.py --help)

The entry point the original project named; the client itself is the ``nn_cli`` package.
"""

import sys

from nn_cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
