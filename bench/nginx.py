"""deploy/nginx.conf, made runnable on loopback by a user who is not root, for the tests and
the cluster benchmark (``python -m bench cluster``).

``render`` reads the configuration into a tree (``parse``: directives, their arguments and
blocks, comments dropped), rewrites what a test run needs and writes it back out:

* ``listen 80`` becomes ``listen 127.0.0.1:<port>``;
* the ``server`` lines of ``upstream nn_server`` become the given ``127.0.0.1:port``
  servers, each keeping the parameters (``max_fails=...``) of the line it replaces;
* ``pid``, every ``error_log`` and ``access_log``, and the ``*_temp_path`` folders move into
  the work directory; ``user`` goes (only root may switch users);
* one worker process, enough for a test and kind to a small machine.

``daemon off;`` is the caller's (``nginx -g 'daemon off;'``), so the file may not say
``daemon`` itself. ``start_nginx`` runs the result and stops it again.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "deploy" / "nginx.conf"
UPSTREAM = "nn_server"
TEMP_PATHS = ("client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
              "uwsgi_temp_path", "scgi_temp_path")
START_S = 10.0
STOP_S = 5.0
SPECIAL = re.compile(r"[\s;{}#\"'\\]")
"""What an argument cannot hold unquoted."""


class ConfError(ValueError):
    """nginx.conf is not what ``render`` expects (the message says where)."""


@dataclass
class Directive:
    """One directive: ``name arg ...;`` or, with a block, ``name arg ... { ... }``."""

    name: str
    args: list[str] = field(default_factory=list)
    block: list[Directive] | None = None

    def find(self, name: str) -> list[Directive]:
        """The directives called ``name`` directly inside this one's block."""
        return [d for d in self.block or [] if d.name == name]


def tokens(text: str) -> Iterator[tuple[str, bool, int]]:
    """nginx's tokens: (text, quoted, line), ``;``, ``{`` and ``}`` as unquoted tokens of their
    own; comments and whitespace skipped. Escapes are read as nginx reads them."""
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in ";{}":
            yield c, False, line
            i += 1
        elif c in "\"'":
            start, i, word = line, i + 1, []
            while i < n and text[i] != c:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                    word.append({"t": "\t", "n": "\n", "r": "\r"}.get(text[i], text[i])
                                if text[i] in "tnr\"'\\" else "\\" + text[i])
                else:
                    word.append(text[i])
                line += text[i] == "\n"
                i += 1
            if i >= n:
                raise ConfError(f"line {start}: unterminated quoted string")
            yield "".join(word), True, start
            i += 1
        else:
            word = []
            while i < n and not text[i].isspace() and text[i] not in ";{}":
                if text[i] == "$" and text[i + 1:i + 2] == "{":  # ${variable}
                    end = text.find("}", i)
                    if end < 0:
                        raise ConfError(f"line {line}: unterminated ${{variable}}")
                    word.append(text[i:end + 1])
                    i = end + 1
                    continue
                if text[i] == "\\" and i + 1 < n and text[i + 1] in "\"'\\":
                    i += 1
                word.append(text[i])
                i += 1
            yield "".join(word), False, line


def parse(text: str) -> list[Directive]:
    """The directives of a whole nginx.conf, nested as its blocks are."""
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    line = 1
    for token, quoted, line in tokens(text):
        if quoted or token not in ";{}":
            words.append(token)
        elif token == "}":
            if words or len(stack) == 1:
                raise ConfError(f"line {line}: unexpected '}}'")
            stack.pop()
        elif not words:
            raise ConfError(f"line {line}: {token!r} without a directive")
        else:
            directive = Directive(words[0], words[1:])
            stack[-1].append(directive)
            if token == "{":
                directive.block = []
                stack.append(directive.block)
            words = []
    if words or len(stack) > 1:
        raise ConfError(f"line {line}: unexpected end of file")
    return stack[0]


def quote(arg: str) -> str:
    if arg and not SPECIAL.search(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump(directives: Sequence[Directive], depth: int = 0) -> str:
    """Configuration text for ``directives`` (a ``parse`` round-trips through it)."""
    lines = []
    for d in directives:
        head = "    " * depth + " ".join([d.name, *map(quote, d.args)])
        if d.block is None:
            lines.append(head + ";\n")
        else:
            lines.append(head + " {\n" + dump(d.block, depth + 1) + "    " * depth + "}\n")
    return "".join(lines)


def walk(directives: Sequence[Directive]) -> Iterator[Directive]:
    """Every directive, blocks' contents after the directive that holds them."""
    for d in directives:
        yield d
        if d.block is not None:
            yield from walk(d.block)


def locations(conf: str) -> dict[str, Directive]:
    """The ``location`` blocks of a configuration, by their arguments as written
    (``"~ ^/(lenet|fashion)/classify$"``, ``"/"``)."""
    return {" ".join(d.args): d for d in walk(parse(conf)) if d.name == "location"}


def matching(conf: str, path: str) -> Directive:
    """The location nginx picks for ``path`` (prefix and regex locations of one server):
    an exact match, else the first regex that matches, else the longest prefix."""
    found = locations(conf)
    prefixes = {args: d for args, d in found.items() if not args.startswith(("~", "="))}
    if f"= {path}" in found:
        return found[f"= {path}"]
    best = max((p for p in prefixes if path.startswith(p.removeprefix("^~ "))),
               key=lambda p: len(p.removeprefix("^~ ")), default=None)
    if best is not None and best.startswith("^~ "):
        return prefixes[best]
    for args, d in found.items():
        modifier, _, pattern = args.partition(" ")
        if modifier in ("~", "~*") and re.search(
                pattern, path, re.IGNORECASE if modifier == "~*" else 0):
            return d
    if best is None:
        raise ConfError(f"no location matches {path}")
    return prefixes[best]


def _http(tree: list[Directive]) -> Directive:
    blocks = [d for d in tree if d.name == "http" and d.block is not None]
    if len(blocks) != 1:
        raise ConfError(f"expected one http block, found {len(blocks)}")
    return blocks[0]


def _upstream(tree: list[Directive], name: str) -> Directive:
    blocks = [d for d in _http(tree).find("upstream") if d.args == [name]]
    if len(blocks) != 1 or blocks[0].block is None:
        raise ConfError(f"expected one 'upstream {name}' block, found {len(blocks)}")
    return blocks[0]


def render(conf: str, *, listen: int, upstreams: list[str], workdir: Path,
           upstream: str = UPSTREAM, workers: int = 1) -> str:
    """``conf`` (deploy/nginx.conf's text) rewritten to listen on ``127.0.0.1:listen`` and
    proxy to ``upstreams`` (``"127.0.0.1:PORT"`` each), keeping its files in ``workdir``."""
    if not upstreams:
        raise ValueError("render needs at least one upstream server")
    tree = parse(conf)
    top = {d.name for d in tree}
    if "daemon" in top:
        raise ConfError("nginx.conf says 'daemon': leave that to the command line "
                        "(-g 'daemon off;')")
    block = _upstream(tree, upstream)
    servers = block.find("server")
    if not servers or block.block is None:
        raise ConfError(f"'upstream {upstream}' has no server lines")
    rest = [d for d in block.block if d.name != "server"]
    block.block[:] = [
        Directive("server", [address, *servers[min(i, len(servers) - 1)].args[1:]])
        for i, address in enumerate(upstreams)
    ] + rest

    listened = 0
    for d in walk(tree):
        if d.name == "listen" and d.args and re.fullmatch(r"(\*:|0\.0\.0\.0:)?80", d.args[0]):
            d.args[0] = f"127.0.0.1:{listen}"
            listened += 1
        elif d.name == "error_log" and d.args:
            d.args[0] = str(workdir / "error.log")
        elif d.name == "access_log" and d.args and d.args[0] != "off":
            d.args[0] = str(workdir / "access.log")
    if listened == 0:
        raise ConfError("no 'listen 80' to move to loopback")

    def prune(directives: list[Directive]) -> list[Directive]:
        kept = [d for d in directives if d.name not in (*TEMP_PATHS, "user", "pid",
                                                        "worker_processes")]
        for d in kept:
            if d.block is not None:
                d.block[:] = prune(d.block)
        return kept

    tree = prune(tree)
    http = _http(tree)
    assert http.block is not None  # _http checked
    http.block[:0] = [Directive(name, [str(workdir / name.removesuffix("_path"))])
                           for name in TEMP_PATHS]
    tree[:0] = [Directive("pid", [str(workdir / "nginx.pid")]),
                Directive("worker_processes", [str(workers)])]
    return dump(tree)


def nginx_binary() -> str | None:
    """Debian's nginx, or whichever is on PATH; None without one."""
    found = shutil.which("nginx")
    if found is not None:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def nginx_command(conf_file: Path, workdir: Path, *extra: str) -> list[str]:
    """The command line that runs ``conf_file`` in the foreground, prefix ``workdir``,
    its first log lines (before the file's ``error_log`` applies) in the work directory."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx)")
    return [binary, *extra, "-c", str(conf_file), "-p", str(workdir),
            "-e", str(workdir / "error.log"), "-g", "daemon off;"]


def write_conf(listen: int, upstreams: list[str], workdir: Path) -> Path:
    """Render deploy/nginx.conf into ``workdir/nginx.conf``; its path."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "nginx.conf"
    path.write_text(render(CONF.read_text(), listen=listen, upstreams=upstreams,
                           workdir=workdir))
    return path


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _log(workdir: Path) -> str:
    """The end of what nginx said, for an error message."""
    said = [path.read_text(errors="replace")[-2000:]
            for path in (workdir / "stderr.log", workdir / "error.log") if path.exists()]
    return "".join(said)


@contextlib.contextmanager
def start_nginx(listen: int, upstreams: list[str], workdir: Path) -> Iterator[Path]:
    """nginx running deploy/nginx.conf on ``127.0.0.1:listen`` in front of ``upstreams``
    until the block ends; yields the work directory (``access.log`` and ``error.log``)."""
    conf = write_conf(listen, upstreams, workdir)
    with open(workdir / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(nginx_command(conf, workdir), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + START_S
        while not _accepts(listen):
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited with {process.returncode}:\n"
                                   f"{_log(workdir)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {listen} within {START_S:.0f} s:"
                                   f"\n{_log(workdir)}")
            time.sleep(0.05)
        yield workdir
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
