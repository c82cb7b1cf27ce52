"""A bare Sanic app for ``python -m bench floor``: the classify route's HTTP and JSON work
with no middleware and no model — what any Sanic route costs on this machine."""

from __future__ import annotations

import base64
import json

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import json as answer

app = Sanic("bare")


@app.post("/lenet/classify")
async def classify(request: Request) -> HTTPResponse:
    image = base64.b64decode(json.loads(request.body)["image"])
    return answer({"number": "3", "label": "3", "index": 3, "confidence": 0.99,
                   "probabilities": [0.001] * 10, "bytes": len(image)})
