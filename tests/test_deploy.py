"""The deployment files in deploy/: Kubernetes manifests against Kubernetes' own schemas,
the compose file's structure, nginx.conf as nginx reads it, and nginx's retries live.

Fast and offline: nginx runs on loopback in front of two tiny HTTP servers (one of them a
closed port), never in front of nn-server itself; ``docker compose config`` runs only where
the compose plugin is installed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bench import nginx as deploy_nginx
from bench.nginx import Directive, matching, parse, render, start_nginx, walk
from bench.services import free_port
from nn_server.core.config import MB, Config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
NOT_LISTED = {"kustomization.yaml", "secret.example.yaml"}
PORT = 5000
REPLICAS = ("replica1", "replica2", "replica3")
IDEMPOTENT = ("/lenet/classify", "/fashion/classify", "/v2/models/lenet/infer",
              "/v2/models/fashion/versions/3f2a9c1b7d0e/infer")
STATEFUL = ("/lenet/train", "/fashion/train", "/lenet/versions/3f2a9c1b7d0e/serve")
READS = ("/lenet/train/status", "/lenet/versions", "/health", "/ready", "/list_nn")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
            for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in documents(path)]


def kinds(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def config_variables() -> set[str]:
    """The NN_* variables nn_server.core.config reads."""
    source = (ROOT / "nn_server" / "core" / "config.py").read_text()
    return set(re.findall(r'"(NN_[A-Z0-9_]+)"', source))


# --- Kubernetes ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "doc"), manifests(), ids=[n for n, _ in manifests()])
def test_manifest_validates_against_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    # Strict: a misspelt or misplaced field fails too, not only a wrong type.
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    (kustomization,) = documents(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    files = {p.name for p in K8S.iterdir() if p.suffix in (".yaml", ".yml")}
    assert sorted(kustomization["resources"]) == sorted(files - NOT_LISTED)


def container() -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = kinds("Deployment")["nn-server"]
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, main


def port_number(main: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in main["ports"] if p.get("name") == port]
    return int(number)


def test_deployment_probes_and_resources() -> None:
    deployment, main = container()
    assert deployment["spec"]["replicas"] == 3
    assert port_number(main, "http") == PORT
    assert f"0.0.0.0:{PORT}" in main.get("args", []) + main.get("command", [])
    probes = {kind: main[f"{kind}Probe"]["httpGet"] for kind in ("readiness", "liveness",
                                                                 "startup")}
    assert probes["readiness"]["path"] == "/ready"
    assert probes["liveness"]["path"] == "/health"
    assert probes["startup"]["path"] in ("/health", "/ready")
    for probe in probes.values():
        assert port_number(main, probe["port"]) == PORT
    resources = main["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] >= 20  # preStop + Sanic's 15 s
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = kinds("Service")["nn-server"]
    assert service["spec"]["selector"].items() <= labels.items()
    (exposed,) = service["spec"]["ports"]
    assert exposed["port"] == 80 and port_number(main, exposed["targetPort"]) == PORT


def test_deployment_environment_names_what_exists() -> None:
    deployment, main = container()
    env = {e["name"]: e for e in main["env"]}
    assert {n for n in env if n.startswith("NN_")} <= config_variables()
    assert env["NN_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # NN_STATE_URL names the Redis Service, on its port.
    state = re.fullmatch(r"redis://([^:/]+):(\d+)/\d+", env["NN_STATE_URL"]["value"])
    assert state is not None
    redis_service = kinds("Service")[state[1]]
    assert int(state[2]) in [p["port"] for p in redis_service["spec"]["ports"]]
    # NN_WEIGHTS_URL lies on a mounted ReadWriteMany claim.
    weights = env["NN_WEIGHTS_URL"]["value"].removeprefix("file://")
    pod = deployment["spec"]["template"]["spec"]
    (mount,) = [m for m in main["volumeMounts"] if weights.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = kinds("PersistentVolumeClaim")[volume["persistentVolumeClaim"]["claimName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    # NN_STATE_DIR is this pod's own volume.
    assert env["NN_STATE_DIR"]["value"] in [m["mountPath"] for m in main["volumeMounts"]]
    # Credentials come from the Secret the example shows, never from a literal.
    users = env["NN_USERS"]["valueFrom"]["secretKeyRef"]
    secrets = kinds("Secret")
    assert users["key"] in secrets[users["name"]]["stringData"]
    assert "value" not in env["NN_USERS"]
    s3_names = [s["secretRef"]["name"] for s in main.get("envFrom", [])]
    assert all(name in secrets for name in s3_names)
    assert all(k.startswith("AWS_") for name in s3_names for k in secrets[name]["stringData"])
    # And the server takes the values as they are.
    values = {n: e.get("value", "x") for n, e in env.items()}
    config = Config.from_env(values)
    assert config.state_url == env["NN_STATE_URL"]["value"]
    assert config.weights_url == env["NN_WEIGHTS_URL"]["value"]


def test_example_secrets_hold_only_placeholders() -> None:
    for secret in kinds("Secret").values():
        for value in secret["stringData"].values():
            assert "change-me" in value or value.startswith(("https://s3.", "us-"))


# --- compose ------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    """compose's ${VAR:-default} with defaults, ${VAR:?message} with a stand-in."""
    return INTERPOLATION.sub(lambda m: m[3] if m[2] == "-" else f"stand-in-{m[1]}", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_replicas(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "nginx", *REPLICAS} <= services.keys()
    names = set()
    for replica in REPLICAS:
        service = services[replica]
        env = {k: interpolate(str(v)) for k, v in service["environment"].items()}
        assert {n for n in env if n.startswith("NN_")} <= config_variables()
        assert env["NN_STATE_URL"] == "redis://redis:6379/0"
        assert env["NN_WEIGHTS_URL"] == "file:///shared/weights"
        names.add(env["NN_REPLICA"])
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (COMPOSE.parent / service["build"]["context"] / "deploy" / "Dockerfile").is_file()
        assert "weights:/shared" in service["volumes"]
        assert "/ready" in " ".join(service["healthcheck"]["test"])
        # No password in the file: the users come from the environment, required.
        assert re.fullmatch(r"\$\{NN_USERS:\?[^}]+\}", service["environment"]["NN_USERS"])
        config = Config.from_env(env)
        assert config.replica == replica and config.location.clustered
    assert names == set(REPLICAS)
    assert "weights" in compose["volumes"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and redis["volumes"]


def test_compose_nginx_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert set(depends) <= services.keys(), name
    nginx = services["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert (COMPOSE.parent / "nginx.conf").is_file()
    assert nginx["ports"] == ["8080:80"]
    assert {r: {"condition": "service_healthy"} for r in REPLICAS} == nginx["depends_on"]
    # nginx.conf's upstream is these services, on the port they listen on.
    tree = parse((DEPLOY / "nginx.conf").read_text())
    (upstream,) = [d for d in walk(tree) if d.name == "upstream"]
    assert [s.args[0] for s in upstream.find("server")] == [f"{r}:{PORT}" for r in REPLICAS]


def docker_compose() -> str | None:
    """The docker CLI, where it has the compose plugin."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    found = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20)
    return docker if found.returncode == 0 else None


def test_docker_compose_config_accepts_the_file() -> None:
    docker = docker_compose()
    if docker is None:
        pytest.skip("no docker compose plugin here")
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "-q"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "NN_USERS": "stand-in:scrypt$1:admin"})
    assert result.returncode == 0, result.stderr


def test_dockerfile_and_dockerignore() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^RUN \./install\.sh", dockerfile, re.M)
    assert re.search(rf"^EXPOSE {PORT}$", dockerfile, re.M)
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    cmd = re.findall(r"^CMD (.+)$", dockerfile, re.M)
    assert json.loads(cmd[-1]) == [".venv/bin/python", "-m", "nn_server", f"0.0.0.0:{PORT}"]
    assert "/ready" in dockerfile.partition("HEALTHCHECK")[2]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".tox"} <= set(ignored)
    assert any("__pycache__" in line for line in ignored)


# --- nginx --------------------------------------------------------------------------------

needs_nginx = pytest.mark.skipif(deploy_nginx.nginx_binary() is None,
                                 reason="nginx is not installed (install.sh dev installs it)")


def rendered(tmp_path: Path, upstreams: list[str] | None = None) -> str:
    return render((DEPLOY / "nginx.conf").read_text(), listen=free_port(),
                  upstreams=upstreams or ["127.0.0.1:5001", "127.0.0.1:5002"],
                  workdir=tmp_path)


def test_nginx_conf_is_complete_and_renders(tmp_path: Path) -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    tree = parse(text)
    assert not [d for d in walk(tree) if d.name in ("daemon", "user", "include")]
    assert [d.args for d in walk(tree) if d.name == "listen"] == [["80"]]
    out = rendered(tmp_path, ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003",
                              "127.0.0.1:7004"])
    assert parse(out) and deploy_nginx.dump(parse(out)) == out  # it round-trips
    (upstream,) = [d for d in walk(parse(out)) if d.name == "upstream"]
    servers = upstream.find("server")
    assert [s.args[0] for s in servers] == [f"127.0.0.1:{p}" for p in range(7001, 7005)]
    assert all("max_fails=3" in s.args and "fail_timeout=10s" in s.args for s in servers)
    assert [d.args[0] for d in upstream.find("keepalive")] == ["32"]
    for d in walk(parse(out)):
        if d.name in ("pid", "error_log", "access_log", *deploy_nginx.TEMP_PATHS):
            assert d.args[0].startswith(str(tmp_path)), d
    with pytest.raises(deploy_nginx.ConfError, match="daemon"):
        render("daemon off;\n" + text, listen=1, upstreams=["127.0.0.1:1"], workdir=tmp_path)


def test_nginx_conf_matches_the_server_defaults() -> None:
    tree = parse((DEPLOY / "nginx.conf").read_text())
    value = {d.name: d.args for d in walk(tree) if d.name not in ("location", "server")}
    defaults = Config(state_dir=Path("/nonexistent"))
    size = value["client_max_body_size"][0]
    assert size.endswith("m") and int(size[:-1]) * MB == defaults.max_body
    assert value["client_header_timeout"] == [f"{defaults.head_timeout_s:.0f}s"]
    # nginx lets go of an idle upstream connection before the server does.
    assert int(value["keepalive_timeout"][0].removesuffix("s")) < defaults.keep_alive_s
    assert value["proxy_http_version"] == ["1.1"]
    assert value["proxy_connect_timeout"] == ["1s"]
    headers = {d.args[0]: d.args[1] for d in walk(tree) if d.name == "proxy_set_header"}
    assert headers == {"Connection": "", "Host": "$host",
                       "X-Forwarded-For": "$proxy_add_x_forwarded_for",
                       "X-Forwarded-Proto": "$scheme"}
    assert value["proxy_next_upstream_tries"] == ["3"]


@needs_nginx
def test_nginx_accepts_the_rendered_conf(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(rendered(tmp_path))
    result = subprocess.run(deploy_nginx.nginx_command(conf, tmp_path, "-t"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def next_upstream(conf: str, path: str) -> list[str]:
    """The proxy_next_upstream that applies to ``path``: its location's, else the server's."""
    own = matching(conf, path).find("proxy_next_upstream")
    if own:
        return own[-1].args
    (server,) = [d for d in walk(parse(conf)) if d.name == "server" and d.block is not None]
    return server.find("proxy_next_upstream")[-1].args


def test_only_idempotent_posts_are_retried(tmp_path: Path) -> None:
    conf = rendered(tmp_path)
    retried: list[Directive] = [
        d for d in walk(parse(conf)) if d.name == "location" and any(
            "non_idempotent" in n.args for n in d.find("proxy_next_upstream"))]
    assert sorted(" ".join(d.args) for d in retried) == [
        "~ ^/(lenet|fashion)/classify$", "~ ^/v2/models/[^/]+(/versions/[^/]+)?/infer$"]
    assert conf.count("non_idempotent") == 2  # nowhere else, the server's default included
    for path in IDEMPOTENT:
        assert "non_idempotent" in next_upstream(conf, path), path
        assert {"error", "timeout", "http_502", "http_503", "http_504"} <= set(
            next_upstream(conf, path))
    for path in STATEFUL:
        assert "non_idempotent" not in next_upstream(conf, path), path
        # Not even the legacy GET /<net>/train, which nginx would take for a read.
        assert next_upstream(conf, path) == ["off"], path
    for path in READS:
        assert next_upstream(conf, path) == ["error", "timeout", "http_502", "http_503",
                                             "http_504"], path


# --- nginx live, in front of a replica that drops requests and one that answers ---------

@dataclass
class Backend:
    """An upstream that remembers the requests it read; it answers each 200 with JSON, or
    (``drops``) closes the connection without an answer, as a replica that dies does."""

    drops: bool = False
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for _, p, _ in self.seen if p == path)


@contextlib.contextmanager
def serving(state: Backend) -> Iterator[int]:
    """``state`` listening on a loopback port (yielded) until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream keepalive uses

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.seen.append((self.command, self.path, dict(self.headers.items())))
            if state.drops:  # the request has reached it: nginx may not know what happened
                self.close_connection = True
                return
            body = json.dumps({"ok": True, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def post(port: int, path: str, host: str | None = None, method: str = "POST") -> int:
    """The status nginx on ``port`` answers a small JSON request with."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if host is not None:
            headers["Host"] = host
        body = b'{"image": "aGVsbG8="}' if method == "POST" else None
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@needs_nginx
def test_nginx_retries_classify_and_never_training(tmp_path: Path) -> None:
    dropper, alive = Backend(drops=True), Backend()
    listen = free_port()
    with serving(dropper) as dropping, serving(alive) as answering, start_nginx(
            listen, [f"127.0.0.1:{dropping}", f"127.0.0.1:{answering}"],
            tmp_path / "nginx") as workdir:
        # Round robin alternates between the two (one nginx worker), so one of each pair
        # reaches the dropping upstream, which reads it and dies: nginx answers 502 and
        # sends the request nowhere else, whether POST or the legacy GET /<net>/train
        # (which nginx would otherwise re-send as a read). Two failures: the third, from
        # the classify requests below, takes the dropping one out (max_fails=3).
        trains = {method: [post(listen, "/lenet/train", method=method) for _ in range(2)]
                  for method in ("GET", "POST")}
        for method, statuses in trains.items():
            assert sorted(statuses) == [200, 502], (method, statuses)
        assert dropper.count("/lenet/train") == alive.count("/lenet/train") == 2

        classified = [post(listen, "/lenet/classify", host="nn.example.com:8080")
                      for _ in range(20)]
        inferred = [post(listen, "/v2/models/lenet/infer") for _ in range(5)]
        log = (workdir / "access.log").read_text()
    # Every classify got its answer, the dropped ones from the other upstream.
    assert classified == [200] * 20 and inferred == [200] * 5
    assert dropper.count("/lenet/classify") >= 1
    assert alive.count("/lenet/classify") == 20
    assert alive.count("/v2/models/lenet/infer") == 5
    assert re.search(rf'"POST /lenet/classify HTTP/1.1" 200 .* upstream="127\.0\.0\.1:{dropping}, '
                     rf'127\.0\.0\.1:{answering}" upstream_status="502, 200"', log), log
    _, _, headers = next(s for s in alive.seen if s[1] == "/lenet/classify")
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["host"] == "nn.example.com"  # the client's, for NN_ALLOWED_HOSTS
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert "connection" not in headers  # kept alive (Connection ""), not "close"
