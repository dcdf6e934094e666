"""The sandbox in-process, as an httpx transport: real client code, no sockets, many threads at once.

Why: most tests of the client and the pipelines need a misbehaving 1C but not a network. This transport runs
the engine in the calling thread, sleeps its latency while holding a connection slot (so the connection limit
counts slow requests as a real server would), and turns a dropped connection into what httpx raises for one.

A delay longer than the request's read timeout (a write fault that answers after 35 s) is not slept through:
the transport raises `httpx.ReadTimeout` at once, which is what the client would see after its timeout, so
tests of "did my timed-out write land?" stay fast. Streamed bodies (exports) stay streamed: the client reads
them chunk by chunk, as from a socket.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs

import httpx

from onec.sandbox.engine import SandboxEngine, SandboxRequest, SandboxResponse


class SandboxTransport(httpx.BaseTransport):
    """`httpx.Client(transport=SandboxTransport(engine), base_url="http://sandbox/trade/hs/exchange")`."""

    def __init__(self, engine: SandboxEngine) -> None:
        self.engine = engine

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raw_query = request.url.query.decode("ascii")
        sandbox_request = SandboxRequest(
            method=request.method,
            path=request.url.path,
            query=parse_qs(raw_query, keep_blank_values=True),
            headers=dict(request.headers.items()),
            body=request.read(),
            raw_query=raw_query,
        )
        with self.engine.connection() as rejection:
            response = rejection or self.engine.handle(sandbox_request)
            if response.delay_s > 0:
                _wait(response.delay_s, request)
        return _to_httpx(response, request)


def _wait(delay_s: float, request: httpx.Request) -> None:
    """Sleep the delay, or raise the timeout the client would hit first."""
    read_timeout = request.extensions.get("timeout", {}).get("read")
    if read_timeout is not None and delay_s > read_timeout:
        raise httpx.ReadTimeout(f"the sandbox answers after {delay_s:g} s, past the read timeout", request=request)
    time.sleep(delay_s)


def _to_httpx(response: SandboxResponse, request: httpx.Request) -> httpx.Response:
    if response.chunks is not None:
        stream = _ChunkStream(response.chunks, response.cut_at, request)
        return httpx.Response(response.status, headers=response.headers, stream=stream, request=request)
    headers = {**response.headers, "content-length": str(len(response.body))}
    if response.cut_at is None:
        return httpx.Response(response.status, headers=headers, content=response.body, request=request)
    stream = _ChunkStream([response.body], response.cut_at, request)
    return httpx.Response(response.status, headers=headers, stream=stream, request=request)


class _ChunkStream(httpx.SyncByteStream):
    """The body as it comes; with `cut_at`, the connection is gone after that many bytes: httpx reports that as
    RemoteProtocolError (a stream that ends before `cut_at` ends normally)."""

    def __init__(self, chunks: Iterable[bytes], cut_at: int | None, request: httpx.Request) -> None:
        self._chunks = chunks
        self._cut_at = cut_at
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self._chunks:
            if self._cut_at is not None and sent + len(chunk) >= self._cut_at:
                yield chunk[: self._cut_at - sent]
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body (incomplete chunked read)",
                    request=self._request,
                )
            sent += len(chunk)
            yield chunk
