"""The server's configuration: one frozen object, read from ``NN_*`` environment variables.

Command-line options override single fields (``dataclasses.replace``); everything else a
worker or the trainer needs travels inside this object, which pickles cleanly into
Sanic's spawned worker processes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nn_server.core.addresses import ANY, host_name, parse_networks
from nn_server.core.locations import LocationError, StoreLocation, parse_locations
from nn_server.core.records import PRECISIONS

MB = 1024 * 1024
KEEP_VERSIONS = 5
RUNTIMES = ("onnx", "mxnet")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multi-process folder; it must be set before the library is imported."""
PACKAGE_ROOT = Path(__file__).resolve().parent
# In a source checkout ``ssl/`` sits beside the package (the spec's layout); an installed
# package keeps its certificate in the state directory instead.
CHECKOUT_SSL_DIR = PACKAGE_ROOT.parent / "ssl"


class ConfigError(ValueError):
    """An ``NN_*`` variable has a value we cannot use; the message names it."""


def default_state_dir() -> Path:
    """Per-user state, following the XDG base-directory convention."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "nn-server"


@dataclass(frozen=True)
class Config:
    """Everything that shapes one server (all its workers) and its trainer."""

    state_dir: Path
    """Status files, trained weights, the training lock (``NN_STATE_DIR``)."""
    data_dir: Path | None = None
    """The data directory for training (``NN_DATA_DIR``), with a folder per data set
    (``mnist/``, ``fashion-mnist/``); None: ``~/.cache/nn-server``."""
    seed_weights: Path | None = None
    """What a fresh state directory starts from (``NN_SEED_WEIGHTS``): a directory of
    ``<network>.params`` files, or one such file; a network without one there starts from
    its shipped weights."""
    users_file: Path | None = None
    """``user:hash:role`` lines (``NN_USERS_FILE``); see ``nn_server.web.auth``."""
    users: str | None = None
    """Comma-separated ``user:hash:role`` entries (``NN_USERS``), added to the file's."""
    max_body: int = 16 * MB
    """Largest accepted request body in bytes (``NN_MAX_BODY``)."""
    workers: int = len(os.sched_getaffinity(0))  # the CPUs this process may use
    """Worker processes in production mode (``NN_WORKERS``)."""
    seed_compat: bool = False
    """Answer train/status/classify with "network is training" (503) while training, like
    the original server (``NN_SEED_COMPAT=1``)."""
    train_epochs: int | None = None
    """Epochs per server-started training (``NN_TRAIN_EPOCHS``; None: the full default)."""
    train_subset: int | None = None
    """Train on the first N digits only (``NN_TRAIN_SUBSET``), for quick tests."""
    test_subset: int | None = None
    """Evaluate on the first N test digits only (``NN_TEST_SUBSET``)."""
    keep_versions: int = KEEP_VERSIONS
    """Versions kept per network (``NN_KEEP_VERSIONS``); the served one and the one before
    it are never pruned."""
    train_threads: int = len(os.sched_getaffinity(0))
    """CPU threads the trainer may use (``NN_TRAIN_THREADS``)."""
    reload_interval_s: float = 0.5
    """How often each worker checks for new weights and training state (``NN_RELOAD_S``)."""
    max_batch: int = 64
    """Most images one forward pass takes from the classify queue (``NN_MAX_BATCH``)."""
    max_delay_ms: float = 0.0
    """How long a forward pass may wait for more images to arrive (``NN_MAX_DELAY_MS``); 0:
    run whatever has queued at once, which batches under load and adds nothing when idle."""
    batching: bool = True
    """Micro-batch concurrent requests (``NN_BATCHING=0`` runs each request on its own)."""
    runtime: str = "onnx"
    """What runs the workers' forward passes (``NN_RUNTIME``): ``onnx``, ONNX Runtime on the
    versions' ONNX exports (no MXNet in the workers), or ``mxnet`` (say for a GPU)."""
    precision: str = "int8"
    """How ONNX Runtime computes (``NN_PRECISION``): ``int8`` for each version whose int8
    form measured within 0.1 points of float (``nn_server.networks.precision``), float for
    the others; ``float`` everywhere."""
    access_log: bool = True
    """One line per request on stdout: client, request line, status, size (``NN_ACCESS_LOG``)."""
    localaddr: str | None = None
    """What ``localaddr`` means (``NN_LOCALADDR``), for machines on several networks;
    None: detect the address of the default route."""
    ssl_dir: Path | None = None
    """Where ``-s`` keeps its self-signed certificate (``NN_SSL_DIR``; None: see
    ``tls_dir``)."""
    tls_cert: Path | None = None
    """The user's own certificate chain (``NN_TLS_CERT``), used instead of a self-signed one."""
    tls_key: Path | None = None
    """The private key for ``tls_cert`` (``NN_TLS_KEY``)."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names (or addresses) the server answers to besides its own (``NN_ALLOWED_HOSTS``,
    comma-separated; ``.example.com`` for a domain and its subdomains, ``*`` for any);
    ``python -m nn_server`` adds its bound address and this machine's names and addresses.
    See ``nn_server.web.hosts``."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of reverse proxies whose ``X-Forwarded-For`` names the client
    (``NN_TRUSTED_PROXIES``), for limits kept per client. See ``nn_server.web.clients``."""
    head_timeout_s: float = 10.0
    """Time for a whole request head from its first byte, and the grace before the body
    rate counts (``NN_HEAD_TIMEOUT_S``)."""
    min_body_rate: int = 16384
    """Bytes per second a request body must average (``NN_MIN_BODY_RATE``; 0: no limit)."""
    keep_alive_s: float = 20.0
    """How long an idle connection stays open for its next request (``NN_KEEP_ALIVE_S``)."""
    max_connections: int = 512
    """Open connections per worker process (``NN_MAX_CONNECTIONS``)."""
    extra_networks: tuple[str, ...] = ()
    """Networks served beside the built-in ones, as ``module:Class`` (``NN_EXTRA_NETWORKS``,
    comma-separated); see ``nn_server.networks``."""
    state_url: str | None = None
    """A cluster's coordination state, ``redis://HOST:PORT/DB`` (``NN_STATE_URL``; unset or
    ``file://DIR``: this machine's state directory); see ``nn_server.core.locations``."""
    weights_url: str | None = None
    """A cluster's weights store, ``file://DIR`` or ``s3://BUCKET/PREFIX``
    (``NN_WEIGHTS_URL``)."""
    replica: str = ""
    """This replica's name in a cluster's training status (``NN_REPLICA``; default: the
    host name)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        config = cls(
            state_dir=reader.path("NN_STATE_DIR") or default_state_dir(),
            data_dir=reader.path("NN_DATA_DIR"),
            seed_weights=reader.path("NN_SEED_WEIGHTS"),
            users_file=reader.path("NN_USERS_FILE"),
            users=env.get("NN_USERS") or None,
            max_body=reader.integer("NN_MAX_BODY", cls.max_body),
            workers=reader.integer("NN_WORKERS", cls.workers),
            seed_compat=reader.flag("NN_SEED_COMPAT"),
            train_epochs=reader.optional_integer("NN_TRAIN_EPOCHS"),
            train_subset=reader.optional_integer("NN_TRAIN_SUBSET"),
            test_subset=reader.optional_integer("NN_TEST_SUBSET"),
            keep_versions=reader.integer("NN_KEEP_VERSIONS", cls.keep_versions),
            train_threads=reader.integer("NN_TRAIN_THREADS", cls.train_threads),
            reload_interval_s=reader.number("NN_RELOAD_S", cls.reload_interval_s),
            max_batch=reader.integer("NN_MAX_BATCH", cls.max_batch),
            max_delay_ms=reader.number("NN_MAX_DELAY_MS", cls.max_delay_ms, allow_zero=True),
            batching=reader.flag("NN_BATCHING", default=cls.batching),
            runtime=reader.choice("NN_RUNTIME", RUNTIMES, cls.runtime),
            precision=reader.choice("NN_PRECISION", PRECISIONS, cls.precision),
            access_log=reader.flag("NN_ACCESS_LOG", default=cls.access_log),
            localaddr=env.get("NN_LOCALADDR") or None,
            ssl_dir=reader.path("NN_SSL_DIR"),
            tls_cert=reader.path("NN_TLS_CERT"),
            tls_key=reader.path("NN_TLS_KEY"),
            allowed_hosts=reader.allowed_hosts("NN_ALLOWED_HOSTS"),
            trusted_proxies=reader.networks("NN_TRUSTED_PROXIES"),
            head_timeout_s=reader.number("NN_HEAD_TIMEOUT_S", cls.head_timeout_s),
            min_body_rate=int(reader.number("NN_MIN_BODY_RATE", cls.min_body_rate,
                                            allow_zero=True)),
            keep_alive_s=reader.number("NN_KEEP_ALIVE_S", cls.keep_alive_s),
            max_connections=reader.integer("NN_MAX_CONNECTIONS", cls.max_connections),
            extra_networks=tuple(e.strip() for e in env.get("NN_EXTRA_NETWORKS", "").split(",")
                                 if e.strip()),
        )
        if (config.tls_cert is None) != (config.tls_key is None):
            raise ConfigError("set both NN_TLS_CERT and NN_TLS_KEY, or neither")
        try:
            location = parse_locations(config.state_dir, env.get("NN_STATE_URL"),
                                       env.get("NN_WEIGHTS_URL"), env.get("NN_REPLICA"))
        except LocationError as exc:
            raise ConfigError(str(exc)) from None
        return dataclasses.replace(
            config, state_dir=location.state_dir, state_url=location.state_url,
            weights_url=location.weights_url, replica=location.replica)

    @property
    def location(self) -> StoreLocation:
        """Where the stores of this server's networks live."""
        return StoreLocation(self.state_dir, self.state_url, self.weights_url, self.replica)

    def seed_for(self, network: str, shipped: Path) -> Path:
        """The weights ``network`` starts from in a fresh state directory."""
        seeds = self.seed_weights
        if seeds is not None:
            candidate = seeds / f"{network}.params" if seeds.is_dir() else seeds
            if candidate.name == f"{network}.params" and candidate.is_file():
                return candidate
        return shipped

    def prepare_metrics(self) -> Path:
        """In the main process, before anything imports prometheus-client: an empty folder
        for the metrics files of this server's processes, named after its main pid."""
        path = self.state_dir / "metrics" / str(os.getpid())
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = str(path)
        return path

    @property
    def tls_dir(self) -> Path:
        """Where the self-signed certificate lives: ``NN_SSL_DIR``, else the checkout's
        ``ssl/``, else ``<state_dir>/ssl``."""
        if self.ssl_dir is not None:
            return self.ssl_dir
        if (CHECKOUT_SSL_DIR / "README.md").exists():
            return CHECKOUT_SSL_DIR
        return self.state_dir / "ssl"


@dataclass(frozen=True)
class _Reader:
    env: Mapping[str, str]

    def path(self, name: str) -> Path | None:
        value = self.env.get(name)
        return Path(value).expanduser() if value else None

    def optional_integer(self, name: str) -> int | None:
        value = self.env.get(name)
        if not value:
            return None
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
        if number < 1:
            raise ConfigError(f"{name} must be at least 1, not {number}")
        return number

    def integer(self, name: str, default: int) -> int:
        number = self.optional_integer(name)
        return default if number is None else number

    def number(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        value = self.env.get(name)
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
        if number < 0 or (number == 0 and not allow_zero):
            raise ConfigError(f"{name} must be positive, not {number}")
        return number

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.env.get(name, "").strip().lower() or default
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, not {value!r}")
        return value

    def allowed_hosts(self, name: str) -> tuple[str, ...]:
        entries = [e.strip().lower() for e in self.env.get(name, "").split(",") if e.strip()]
        for entry in entries:
            if entry != ANY and host_name(entry.removeprefix(".")) is None:
                raise ConfigError(f"{name}: {entry!r} is not a host name or address "
                                  "(or .domain, or *)")
        return tuple(entries)

    def networks(self, name: str) -> tuple[str, ...]:
        try:
            return tuple(str(n) for n in parse_networks(self.env.get(name, "")))
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.env.get(name, "").strip().lower()
        if not value:
            return default
        if value in ("0", "false", "no", "off"):
            return False
        if value in ("1", "true", "yes", "on"):
            return True
        raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}")
