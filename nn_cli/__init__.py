"""nn_cli: nn-server's terminal client, behind ``cli.py`` (``python cli.py --help``).

Layers, each a module that knows only those above it:

* ``parse``  — the command line → a ``Command`` (``UsageError`` when it makes no sense);
* ``act``    — performs a ``Command`` with ``nn_sdk`` and returns result objects;
  never prints;
* ``render`` — result objects → Rich renderables; never prints;
* ``screen`` — the two consoles (answers on stdout, errors on stderr), the image picker,
  the live training bar;
* ``menu``   — the interactive menu;
* ``main``   — ``main(argv) -> int``: parse, run the menu or one command, and turn the
  library's own errors (``NNError``, ``UsageError``) into one line on stderr.

Rich lives here, never in ``nn_sdk``.
"""

from nn_cli.main import main

__all__ = ["main"]
