"""The simulator's answers: JSON replies and errors, and the faulty ones (a dropped connection,
a drip-fed body, garbage instead of JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import trio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import ApiError, SimulatedDisconnect
from .params import RawJSON

__all__ = ["DripResponse", "DropResponse", "dumps", "error", "garbage", "reply"]


def dumps(obj: Any) -> bytes:
    """A handler's result as compact JSON bytes."""
    if isinstance(obj, RawJSON):
        return obj.text.encode()
    return json.dumps(obj, separators=(",", ":")).encode()


def reply(status: int, payload: Any, headers: Mapping[str, str]) -> Response:
    return Response(
        dumps(payload), status_code=status, headers=dict(headers), media_type="application/json"
    )


def error(exc: ApiError, headers: dict[str, str]) -> Response:
    """Binance's error JSON, with the error's own headers (Retry-After...) added."""
    headers.update(exc.headers)
    return reply(exc.status, {"code": exc.code, "msg": exc.msg}, headers)


class DropResponse(Response):
    """Starts a response, then cuts the connection (a dropped-connection fault)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise SimulatedDisconnect("simulated dropped connection")


class DripResponse(Response):
    """Sends the body one byte every ``interval`` seconds (a drip-feeding server)."""

    def __init__(self, body: bytes, status: int, headers: Mapping[str, str], interval: float):
        super().__init__(
            body, status_code=status, headers=dict(headers), media_type="application/json"
        )
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        body = bytes(self.body)
        for i in range(len(body)):
            await trio.sleep(self.interval)
            more = i + 1 < len(body)
            await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": more})
        if not body:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


_HTML_200 = (
    b"<!DOCTYPE html><html><head><title>Binance</title></head>"
    b"<body><h1>System maintenance</h1><p>Please try again later.</p></body></html>"
)
_HTML_408 = (
    b"<html><head><title>408 Request Time-out</title></head><body><h1>408 Request Time-out</h1>"
    b"Your browser didn't send a complete request in time.</body></html>"
)


def garbage(kind: str, real: bytes, headers: Mapping[str, str]) -> Response:
    """The answer of a ``garbage_rate`` fault (see ``faults.GARBAGE_KINDS``)."""
    if kind == "html200":
        return Response(_HTML_200, status_code=200, media_type="text/html")
    if kind == "html408":
        return Response(_HTML_408, status_code=408, media_type="text/html")
    body = real[: max(1, len(real) // 2)] if kind == "truncated200" else b""
    return Response(body, status_code=200, headers=dict(headers), media_type="application/json")
