"""``python -m nn_server [-d] [-s] [host:port | localaddr:port]``: run the server.

The main process binds the listening socket itself and prints the address it really got
(port 0 included) before any worker starts, then hands the socket to Sanic: the
development server (``-d``) serves it in this process, the production server shares it
among worker processes. It also seeds the state directory and makes the TLS
certificate, so workers only ever read them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nn_server.core.config import Config, ConfigError
from nn_server.web.arguments import LOCALADDR, Launch, parse, resolve_host
from nn_server.web.auth import UsersError, load_users, permission_warning
from nn_server.web.hosts import known_names

if TYPE_CHECKING:
    from nn_server.networks import Network

EXIT_CONFIG = 2
EXIT_START = 1


def fail(message: str, code: int) -> int:
    print(f"nn_server: error: {message}", file=sys.stderr)
    return code


def apply(launch: Launch, config: Config) -> Config:
    """Command-line options win over the environment."""
    changes: dict[str, object] = {}
    if launch.workers is not None:
        changes["workers"] = launch.workers
    if launch.state_dir is not None:
        changes["state_dir"] = launch.state_dir
    if launch.seed_compat:
        changes["seed_compat"] = True
    if launch.cert is not None:
        changes.update(tls_cert=launch.cert, tls_key=launch.key)
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def warn_default_credentials(host: str) -> None:
    line = "!" * 78
    print(
        f"{line}\n!! WARNING: the default credentials test_nn / lenet are active and the\n"
        f"!! server listens on {host}, reachable from other machines. Anyone who knows\n"
        "!! the defaults can use it. Set NN_USERS_FILE or NN_USERS (README.md).\n"
        f"{line}",
        file=sys.stderr, flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    launch = parse(sys.argv[1:] if argv is None else argv)
    try:
        config = apply(launch, Config.from_env())
        users = load_users(config.users_file, config.users)
    except (ConfigError, UsersError) as exc:
        return fail(str(exc), EXIT_CONFIG)
    if config.users_file is not None and (warning := permission_warning(config.users_file)):
        print(f"nn_server: warning: {warning}", file=sys.stderr, flush=True)
    launch = dataclasses.replace(launch, host=resolve_host(launch.host, config.localaddr))
    # Workers run inference from one thread, so MXNet's synchronous engine serves them
    # best: no engine threads, and a third less overhead per call than the threaded one
    # (0.44 vs 0.67 ms for one image). The trainer is started with the threaded engine.
    os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")
    try:
        metrics_dir = config.prepare_metrics()
    except OSError as exc:
        return fail(f"state directory {config.state_dir}: {exc}", EXIT_START)
    if not launch.dev:
        # Each worker is one of several processes on the CPUs: one math thread apiece keeps
        # them from fighting over cores (the trainer gets NN_TRAIN_THREADS instead).
        os.environ.setdefault("OMP_NUM_THREADS", "1")

    # Imported here so that `--help` and argument errors answer at once.
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from nn_server.store.local import stop_trainers
    from nn_server.web.connections import Connection

    # Preparing the state directory loads every network's module (NumPy, OpenCV, ...). The
    # production server's main process only manages workers, so that happens in a child
    # process that exits, and none of it stays resident here.
    code = in_child(prepare_state, config)
    if code:
        return code

    ssl: dict[str, str] | None = None
    if launch.tls:
        from nn_server.web.tls import self_signed, server_context

        try:
            if config.tls_cert is not None and config.tls_key is not None:
                cert, key = config.tls_cert, config.tls_key
            else:
                cert, key = self_signed(config.tls_dir, [launch.host])
            server_context(cert, key)  # fail here, clearly, rather than in every worker
        except (OSError, ValueError) as exc:
            return fail(f"TLS certificate: {exc}", EXIT_START)
        ssl = {"cert": str(cert), "key": str(key)}

    try:
        sock = bind(launch.host, launch.port)
    except OSError as exc:
        return fail(f"cannot listen on {launch.host}:{launch.port}: {exc.strerror}", EXIT_START)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if users is None and not is_loopback(host):
        warn_default_credentials(host)
    # The names clients may use for this server (the Host check, nn_server.web.hosts): the
    # one it was started with, the address that gave, and this machine's.
    lan = resolve_host(LOCALADDR, config.localaddr)
    config = dataclasses.replace(config, allowed_hosts=(
        *config.allowed_hosts, launch.host.lower(), *known_names(host, lan)))
    mode = "development server" if launch.dev else f"{config.workers} workers"
    if not launch.dev:
        from nn_server.web.workers import hold_shutdown_signals

        hold_shutdown_signals()  # from here a stop waits for the workers to start
    print(f"Serving on {'https' if ssl else 'http'}://{shown}:{port} ({mode}, "
          f"{config.location.describe()})", flush=True)

    settings: dict[str, Any] = {
        "sock": sock, "ssl": ssl, "debug": launch.dev, "motd": False,
        "access_log": config.access_log,
        "protocol": Connection,  # deadlines, a connection cap, strict parsing: see there
    }
    try:
        if launch.dev:  # one process: it is the worker
            from nn_server.web.app import create_app

            app = create_app(config)
            app.prepare(single_process=True, workers=1, **settings)
            Sanic.serve_single(app)
        else:  # the workers build the full app; this process keeps a skeleton
            from nn_server.web.primary import create_primary, create_worker_app

            primary = create_primary(config)
            primary.prepare(workers=config.workers, **settings)
            Sanic.serve(primary=primary,
                        app_loader=AppLoader(factory=partial(create_worker_app, config)))
    finally:
        stop_trainers(config.state_dir)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def prepare_state(config: Config) -> int:
    """Seed and check every network's state: its served weights intact (else the previous
    version, else the shipped weights), weights to serve at all (else a warning: it
    answers 503 until trained). An exit status: 0, or EXIT_START with the reason printed."""
    from nn_server.networks import load_registry
    from nn_server.store import open_store
    from nn_server.store.base import StateError, StoreUnavailable

    if config.runtime == "onnx":
        try:  # here, in the child, so the main process never loads it
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            # Else every worker would start, fail to load any weights and answer 503.
            return fail(f"NN_RUNTIME=onnx (the default) needs ONNX Runtime ({exc}): run "
                        "./install.sh again, or pip install onnxruntime; NN_RUNTIME=mxnet "
                        "serves with MXNet instead", EXIT_START)
    location = config.location
    scratch = tempfile.mkdtemp(prefix="nn-seed-")
    try:
        if location.clustered:  # one clear line now, not 503s from every worker later
            from nn_server.store.cluster import ClusterStore

            ClusterStore(location, "-").check()
        for name, cls in load_registry(config.extra_networks).items():
            weights = config.seed_for(name, cls.shipped_weights())
            state = open_store(location, name, keep=config.keep_versions)
            repaired = state.recover(cls.shipped_weights())
            if repaired:
                print(f"nn_server: warning: {cls.title}: {repaired}", file=sys.stderr,
                      flush=True)
            shipped = weights == cls.shipped_weights()
            if not shipped and state.pointer() is None and weights.is_file():
                weights = measured_seed(cls, weights, config.data_dir, Path(scratch))
            if not state.seed(weights, "shipped" if shipped else "seed"):
                # The others serve; this one answers 503 until a training gives it weights.
                print(f"nn_server: warning: {cls.title} has no weights ({weights} does not "
                      f"exist): /{name}/classify answers 503 until it is trained",
                      file=sys.stderr, flush=True)
    except (StateError, StoreUnavailable, OSError) as exc:
        return fail(f"{location.describe()}: {exc}" if not location.clustered else str(exc),
                    EXIT_START)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def measured_seed(cls: type[Network], weights: Path, data_dir: Path | None,
                  scratch: Path) -> Path:
    """Seed weights (NN_SEED_WEIGHTS) with their float and int8 accuracy measured, like a
    training's: a copy in ``scratch`` (the operator's files stay as they are), or the
    weights themselves (then served in float) when they cannot be measured here."""
    from nn_server.core.records import VersionRecord
    from nn_server.networks.datasets import DataError
    from nn_server.networks.precision import measure_saved

    if VersionRecord.read(weights).accuracies:
        return weights
    copy = scratch / cls.name / weights.name
    copy.parent.mkdir(parents=True)
    for suffix in (".params", ".json", ".onnx"):
        if weights.with_suffix(suffix).is_file():
            shutil.copyfile(weights.with_suffix(suffix), copy.with_suffix(suffix))
    print(f"nn_server: {cls.title}: measuring {weights} in float and int8 on the test set",
          file=sys.stderr, flush=True)
    try:
        record = measure_saved(cls, copy, data_dir)
    except (DataError, OSError, ValueError, RuntimeError) as exc:
        print(f"nn_server: warning: {cls.title}: {weights} served in float: it could not be "
              f"measured ({exc})", file=sys.stderr, flush=True)
        return weights
    print(f"nn_server: {cls.title}: {record.accuracies} → served in {record.precision}",
          file=sys.stderr, flush=True)
    return copy


def in_child(function: Callable[[Config], int], config: Config) -> int:
    """Run ``function(config)`` in a forked child and return its exit status (nothing runs
    in this process yet — no threads — so forking is safe)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = EXIT_START
        try:
            code = function(config)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
