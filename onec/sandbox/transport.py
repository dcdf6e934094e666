"""The sandbox in-process, as an httpx transport: real client code, no sockets, many threads at once.

Why: most tests of the client and the pipelines need a misbehaving 1C but not a network. This transport runs
the engine in the calling thread, sleeps its latency while holding a connection slot (so the connection limit
counts slow requests as a real server would), and turns a dropped connection into what httpx raises for one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx

from onec.sandbox.engine import SandboxEngine, SandboxRequest, SandboxResponse


class SandboxTransport(httpx.BaseTransport):
    """`httpx.Client(transport=SandboxTransport(engine), base_url="http://sandbox/trade/hs/exchange")`."""

    def __init__(self, engine: SandboxEngine) -> None:
        self.engine = engine

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sandbox_request = SandboxRequest(
            method=request.method,
            path=request.url.path,
            query=parse_qs(request.url.query.decode("ascii"), keep_blank_values=True),
            headers=dict(request.headers.items()),
            body=request.read(),
        )
        with self.engine.connection() as rejection:
            response = rejection or self.engine.handle(sandbox_request)
            if response.delay_s > 0:
                time.sleep(response.delay_s)
        return _to_httpx(response, request)


def _to_httpx(response: SandboxResponse, request: httpx.Request) -> httpx.Response:
    headers = {**response.headers, "content-length": str(len(response.body))}
    if response.cut_at is None:
        return httpx.Response(response.status, headers=headers, content=response.body, request=request)
    stream = _DroppedStream(response.body[: response.cut_at], request)
    return httpx.Response(response.status, headers=headers, stream=stream, request=request)


class _DroppedStream(httpx.SyncByteStream):
    """Part of the body, then the connection is gone: httpx reports that as RemoteProtocolError."""

    def __init__(self, part: bytes, request: httpx.Request) -> None:
        self._part = part
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        yield self._part
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body (incomplete chunked read)",
            request=self._request,
        )
