"""A minimal HTTP/1.1 server for ``python -m bench floor``: the classify route's work with
no HTTP framework — what the same model, batcher and JSON cost behind plain asyncio.

``python -m bench.raw_app PORT`` serves ``POST /lenet/classify`` (a JSON body with a base64
``image``) on 127.0.0.1 with the shipped LeNet, run the way the server runs it (ONNX Runtime,
one math thread, the same ``MicroBatcher`` and answer), on uvloop. Start one process per
core: the port is shared (``SO_REUSEPORT``). It is a measuring stick, not a server: no
auth, no limits, no chunked bodies, no errors beyond dropping the connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sys

import uvloop

from nn_server.core.config import Config
from nn_server.engine.batching import MicroBatcher
from nn_server.engine.serving import load
from nn_server.networks import Prediction
from nn_server.networks.images import ImageError
from nn_server.networks.lenet import LeNet
from nn_server.web.answers import prediction

HEAD_END = b"\r\n\r\n"


class Classify(asyncio.Protocol):
    """One connection: requests read from Content-Length, answered in order of arrival."""

    def __init__(self, batcher: MicroBatcher[bytes, Prediction | ImageError]) -> None:
        self.batcher = batcher
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.last: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(HEAD_END)) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            start = end + len(HEAD_END)
            if len(self.buffer) < start + length:
                return
            body, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
            self.last = asyncio.ensure_future(self.answer(body, self.last))

    async def answer(self, body: bytes, previous: asyncio.Future[None] | None) -> None:
        image = base64.b64decode(json.loads(body)["image"])
        [result] = await self.batcher.submit_many([image])
        answer = (prediction(LeNet, result) if isinstance(result, Prediction)
                  else {"error": str(result)})
        data = json.dumps(answer).encode()
        if previous is not None:  # a pipelined request: answers go out in order
            await previous
        if self.transport is not None:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%b" % (len(data), data))


async def serve(port: int) -> None:
    config = Config.from_env()
    network = load(LeNet, LeNet.shipped_weights(), config.runtime, config.precision)
    batcher: MicroBatcher[bytes, Prediction | ImageError] = MicroBatcher(
        network.classify_each, max_batch=config.max_batch)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    server = await asyncio.get_running_loop().create_server(lambda: Classify(batcher),
                                                            sock=listener)
    print("ready", flush=True)  # for bench.floor: every process listens before the load
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(serve(int(sys.argv[1])))
