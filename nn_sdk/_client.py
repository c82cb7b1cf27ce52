"""``NNClient``: the async client of an nn-server."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from nn_sdk._config import (
    DEFAULT_NETWORK,
    DEFAULT_PASSWORD,
    DEFAULT_TIMEOUT,
    DEFAULT_USER,
    Timeout,
    VerifyTypes,
    parse_base_url,
    ssl_setting,
)
from nn_sdk._exceptions import (
    APIError,
    AuthenticationError,
    ConnectError,
    InvalidArgument,
    LocalFileError,
    PayloadTooLarge,
    ProtocolError,
    TimeoutException,
    TrainingInProgress,
    error_for_status,
)
from nn_sdk._images import ImageInput, image_bytes
from nn_sdk._models import (
    Classification,
    NetworkInfo,
    NetworkSummary,
    TrainingStarted,
    TrainingStatus,
    Versions,
    networks_from_json,
)

ProgressCallback = Callable[[TrainingStatus], "Awaitable[object] | object"]
"""Called with every status ``wait_for_training`` reads; may be a coroutine function."""

_JSON = Mapping[str, Any]


class NNClient:
    """An async client of one nn-server.

    Use it as ``async with NNClient(url) as client: ...`` to reuse one connection pool for
    many requests, closing it at the end (or call ``await client.aclose()``). Outside
    ``async with`` every method opens a session for itself and closes it before
    returning, so one-off calls such as ``await NNClient(url).classify(path)`` leak
    nothing.

    :param base_url: ``"http(s)://host:port"`` or ``"host:port"`` (http). ``None``: this
        machine's local-network address, port 5000, like the seed's client.
    :param user: HTTP Basic user name.
    :param password: HTTP Basic password.
    :param verify: for https: ``True`` trusts the system's CAs, a path trusts that
        certificate/CA file (e.g. the server's self-signed ``ssl/cert.pem``), ``False``
        turns verification off; an ``ssl.SSLContext`` is used as it is.
    :param timeout: a :class:`Timeout`, seconds for the whole request, or ``None``.
    """

    def __init__(
        self,
        base_url: str | URL | None = None,
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        verify: VerifyTypes = True,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = parse_base_url(base_url)
        self.user = user
        self.timeout = Timeout.coerce(timeout)
        if ":" in user:
            raise InvalidArgument("a user name cannot contain ':' (HTTP Basic auth)")
        self._authorization = "Basic " + _base64(f"{user}:{password}".encode())
        self._ssl = ssl_setting(verify)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"NNClient({str(self.base_url)!r}, user={self.user!r})"

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> NNClient:
        if self._closed:
            raise InvalidArgument("this NNClient is closed; create a new one")
        if self._session is None:
            self._session = self._new_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Closing twice is harmless; using it afterwards is not."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def is_closed(self) -> bool:
        return self._closed

    # -- operations -------------------------------------------------------------------------

    async def list_networks(self) -> tuple[NetworkSummary, ...]:
        """The networks the server offers (``GET /list_nn``)."""
        return networks_from_json(await self._request("GET", "/list_nn"))

    async def about(self, network: str = DEFAULT_NETWORK) -> NetworkInfo:
        """A network's description and labels (``GET /<network>/about``)."""
        data = await self._request("GET", f"/{_segment(network)}/about")
        return NetworkInfo.from_json(data, network)

    async def train(
        self,
        network: str = DEFAULT_NETWORK,
        *,
        epochs: int | None = None,
        promote: Literal["better", "always"] = "better",
    ) -> TrainingStarted:
        """Start training ``network`` in the background; returns at once.

        The result is served only if it is at least as accurate as the served weights
        (``promote="better"``), or anyway (``promote="always"``); the final status says
        which (``promoted``, ``reason``). ``epochs`` overrides the network's recipe.
        Raises ``TrainingInProgress`` if it is training already. Follow it with
        :meth:`status` or :meth:`wait_for_training`.
        """
        query: dict[str, str] = {"promote": promote} if promote != "better" else {}
        if epochs is not None:
            query["epochs"] = str(epochs)
        path = f"/{_segment(network)}/train"
        if query:
            path += "?" + urlencode(query)
        data = await self._request("GET", path)
        return TrainingStarted.from_json(data, network)

    async def versions(self, network: str = DEFAULT_NETWORK) -> Versions:
        """Every kept version of ``network``'s weights, newest first, the served one marked."""
        data = await self._request("GET", f"/{_segment(network)}/versions")
        return Versions.from_json(data, network)

    async def serve(self, version: str, network: str = DEFAULT_NETWORK) -> str:
        """Serve ``version`` from now on (a rollback, or promoting a result by hand); every
        worker of the server follows within its reload interval. Returns the version.
        Raises ``NotFound`` for a version the server does not keep."""
        data = await self._request(
            "POST", f"/{_segment(network)}/versions/{_segment(version)}/serve"
        )
        served = data.get("served")
        if not isinstance(served, str):
            raise ProtocolError(f"the serve answer names no version: {dict(data)!r:.200}")
        return served

    async def export_onnx(
        self, version: str, path: str | os.PathLike[str], network: str = DEFAULT_NETWORK,
        precision: Literal["int8", "float"] | None = None,
    ) -> Path:
        """Save ``version`` as an ONNX model at ``path`` (input ``image``: float32
        N×C×H×W in 0..1, the preprocessed image; output ``probabilities``): the graph the
        server computes with, or ``precision`` ``"float"`` (as trained) or ``"int8"``.
        Returns the path. A file that cannot be written raises ``LocalFileError``."""
        query = "" if precision is None else f"?precision={precision}"
        data = await self._download(
            f"/{_segment(network)}/versions/{_segment(version)}/onnx{query}"
        )
        target = Path(path)
        try:
            target.write_bytes(data)
        except OSError as exc:
            raise LocalFileError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return target

    async def status(self, network: str = DEFAULT_NETWORK) -> TrainingStatus:
        """The last training result, and live progress while training."""
        async with self._borrow() as session:
            return await self._status(session, network)

    async def classify(
        self, image: ImageInput, network: str = DEFAULT_NETWORK, *, top_k: int | None = None
    ) -> Classification:
        """Classify one image: a path, the file's bytes, a binary file object or a PIL image.

        The format (JPEG, PNG, BMP or TIFF) is checked before sending: ``UnsupportedMedia``.
        ``top_k`` adds the k most probable labels as ``Classification.top``.
        """
        payload: dict[str, Any] = {"image": _base64(image_bytes(image))}
        if top_k is not None:
            payload["top_k"] = top_k
        data = await self._request("POST", f"/{_segment(network)}/classify", payload)
        return Classification.from_json(data)

    async def classify_many(
        self,
        images: Iterable[ImageInput],
        network: str = DEFAULT_NETWORK,
        *,
        batch_size: int = 64,
        concurrency: int = 2,
    ) -> list[Classification | APIError]:
        """Classify many images with the server's batch form: ``batch_size`` images per
        request, at most ``concurrency`` requests in flight (one per server worker is
        plenty: each request is already one batched forward pass there).

        The answer lists, in input order, a ``Classification`` or the ``APIError`` for
        that image (unsupported, unreadable, too small), so one bad image does not cost
        the others. A batch the server finds too large is sent again image by image.
        Errors of the whole request (authentication, transport, timeouts) are raised.
        """
        if batch_size < 1 or concurrency < 1:
            raise InvalidArgument("batch_size and concurrency must be at least 1")
        gate = asyncio.Semaphore(concurrency)
        path = f"/{_segment(network)}/classify"
        items = list(images)
        chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]

        async def send(
            session: aiohttp.ClientSession, chunk: list[ImageInput]
        ) -> list[Classification | APIError]:
            async with gate:  # read inside the gate: only `concurrency` chunks in memory
                results: list[Classification | APIError | None] = []
                encoded: list[str] = []
                for image in chunk:
                    try:
                        encoded.append(_base64(image_bytes(image)))
                        results.append(None)  # answered by the server below
                    except APIError as exc:  # refused locally: not a supported image
                        results.append(exc)
                if not encoded:
                    return [r for r in results if r is not None]
                try:
                    data = await self._send(
                        session, "POST", path, {"images": encoded}, expect_continue=True
                    )
                except PayloadTooLarge:
                    if len(encoded) == 1:
                        raise
                    return await one_by_one(session, chunk)
                answers = iter(_slots(data, len(encoded)))
                return [next(answers) if r is None else r for r in results]

        async def one_by_one(
            session: aiohttp.ClientSession, chunk: list[ImageInput]
        ) -> list[Classification | APIError]:
            answers: list[Classification | APIError] = []
            for image in chunk:
                try:
                    payload = {"image": _base64(image_bytes(image))}
                    data = await self._send(session, "POST", path, payload)
                    answers.append(Classification.from_json(data))
                except APIError as exc:
                    if isinstance(exc, AuthenticationError):
                        raise
                    answers.append(exc)
            return answers

        async with self._borrow() as session:
            done = await asyncio.gather(*(send(session, chunk) for chunk in chunks))
        return [result for chunk_results in done for result in chunk_results]

    async def wait_for_training(
        self,
        network: str = DEFAULT_NETWORK,
        *,
        poll_interval: float = 1.0,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> TrainingStatus:
        """Poll :meth:`status` until the network is no longer training; return that status.

        ``on_progress`` is called with every status read (a coroutine function is
        awaited). A finished run has ``state == "idle"`` and the new accuracy; a failed
        one ``state == "failed"`` and ``error``. Raises ``TimeoutException`` after
        ``timeout`` seconds, if given. Training continues on the server either way.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        async with self._borrow() as session:
            while True:
                try:
                    status = await self._status(session, network)
                except TrainingInProgress:
                    status = TrainingStatus.training()  # seed-compatible: 503 while training
                if on_progress is not None:
                    outcome = on_progress(status)
                    if inspect.isawaitable(outcome):
                        await outcome
                if not status.is_training:
                    return status
                if deadline is not None and time.monotonic() + poll_interval > deadline:
                    raise TimeoutException(
                        f"{network} was still training after {timeout:g} s"
                    )
                await asyncio.sleep(poll_interval)

    # -- transport ------------------------------------------------------------------------

    async def _status(self, session: aiohttp.ClientSession, network: str) -> TrainingStatus:
        data = await self._send(session, "GET", f"/{_segment(network)}/train/status")
        return TrainingStatus.from_json(data)

    async def _request(self, method: str, path: str, payload: _JSON | None = None) -> _JSON:
        async with self._borrow() as session:
            return await self._send(session, method, path, payload)

    @asynccontextmanager
    async def _borrow(self) -> AsyncIterator[aiohttp.ClientSession]:
        """The open session, or a one-off session closed when the block ends."""
        if self._closed:
            raise InvalidArgument("this NNClient is closed; create a new one")
        if self._session is not None:
            yield self._session
            return
        session = self._new_session()
        try:
            yield session
        finally:
            await session.close()

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl),
            timeout=aiohttp.ClientTimeout(
                total=self.timeout.total, sock_connect=self.timeout.connect
            ),
            headers={"Accept": "application/json", "Authorization": self._authorization},
        )

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        payload: _JSON | None = None,
        *,
        expect_continue: bool = False,
    ) -> _JSON:
        """Send one request and return its JSON object; raises the ``APIError`` for an
        error status.

        ``expect_continue`` sends ``Expect: 100-continue`` and the body only once the
        server agrees: a body over its limit then gets a clean 413 instead of a reset
        connection (the server does not read what it refuses).
        """
        status, body = await self._exchange(session, method, path, payload, expect_continue)
        data = _decode(body)
        if status >= 400:
            raise error_for_status(status, data)
        if data is None:
            raise ProtocolError(
                f"{method} {self.base_url}{path} answered {status} without a JSON object"
            )
        return data

    async def _download(self, path: str) -> bytes:
        """``GET path`` for a file; raises the ``APIError`` for an error status."""
        async with self._borrow() as session:
            status, body = await self._exchange(session, "GET", path, None, False,
                                                accept="*/*")
        if status >= 400:
            raise error_for_status(status, _decode(body))
        return body

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        payload: _JSON | None,
        expect_continue: bool,
        accept: str | None = None,
    ) -> tuple[int, bytes]:
        """One round trip: the only place aiohttp errors become ``NNError`` ones."""
        url = f"{self.base_url}{path}"
        headers = {"Accept": accept} if accept else None
        try:
            async with session.request(
                method, url, json=payload, expect100=expect_continue, headers=headers
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's timeouts subclass TimeoutError
            raise TimeoutException(
                f"{method} {url} took longer than {_describe(self.timeout)}"
            ) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ConnectError(
                f"cannot connect to {self.base_url}: its TLS certificate is not trusted "
                f"({_reason(exc.certificate_error)}); "
                "pass the server's certificate as verify=<path>"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(
                f"cannot connect to {self.base_url}: {_os_reason(exc.os_error)}"
            ) from exc
        except aiohttp.ServerDisconnectedError as exc:
            hint = " (if it speaks HTTPS, use https://)" if self.base_url.scheme == "http" else ""
            raise ConnectError(
                f"{method} {url}: the server closed the connection without answering{hint}"
            ) from exc
        except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError) as exc:
            raise ProtocolError(f"{method} {url}: malformed answer ({exc})") from exc
        except aiohttp.ClientError as exc:
            reason = str(exc) or type(exc).__name__
            raise ConnectError(f"{method} {url} failed: {reason}") from exc


def _decode(body: bytes) -> _JSON | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _slots(data: Mapping[str, Any], count: int) -> list[Classification | APIError]:
    """The batch form's per-image answers: a classification, or that image's error."""
    results = data.get("results")
    if not isinstance(results, list) or len(results) != count:
        raise ProtocolError(f"expected {count} results in the batch answer, got {results!r:.80}")
    version = data.get("weights_version")
    return [
        error_for_status(int(r.get("status") or 400), r) if "error" in r
        else Classification.from_json(r, version if isinstance(version, str) else None)
        for r in results
    ]


def _segment(network: str) -> str:
    if not network:
        raise InvalidArgument("a network name is required")
    return quote(network, safe="")


def _os_reason(error: OSError) -> str:
    # asyncio's own strerror ("Connect call failed (...)") says less than errno's text.
    if error.errno and error.errno > 0:  # negative: a resolver (getaddrinfo) error code
        return os.strerror(error.errno).lower()
    return str(error.strerror or error)


def _reason(error: BaseException) -> str:
    return str(getattr(error, "verify_message", None) or getattr(error, "reason", None) or error)


def _describe(timeout: Timeout) -> str:
    parts = []
    if timeout.connect is not None:
        parts.append(f"{timeout.connect:g} s to connect")
    if timeout.total is not None:
        parts.append(f"{timeout.total:g} s in all")
    return " or ".join(parts) or "its timeout"

