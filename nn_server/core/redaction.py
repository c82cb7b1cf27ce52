"""Failure reasons for clients without the server's file system in them.

A training that fails reports why in ``/<net>/train/status``, and the reason often quotes
an exception that names files ("No such file or directory: '/home/alice/.cache/...'").
Clients have no use for the server's absolute paths, and they tell an attacker user names,
the layout and the Python installation, so each is cut down to its last part
(``…/t10k-images-idx3-ubyte.gz``). The server log keeps the whole text (the trainer's
traceback goes there).

Only for failure reasons, which are exception texts: error messages written for clients
quote request paths (``/lenet/train/status``), which must stay as they are.
"""

from __future__ import annotations

import re

# Two or more components, starting at a word boundary: not a URL's path ("https://h/p"),
# not a relative path ("../shared/mnist"), not "~/..." (home-relative says nothing).
ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\-])(?:/[^\s'\"`/,;:()\[\]<>]+){2,}/?")


def hide_paths(text: str) -> str:
    """``text`` with every absolute path replaced by ``…/<its last part>``."""
    return ABSOLUTE_PATH.sub(_last_part, text)


def _last_part(match: re.Match[str]) -> str:
    return "…/" + match.group(0).rstrip("/").rsplit("/", 1)[-1]
