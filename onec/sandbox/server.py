"""The sandbox as a real HTTP(S) server: uvicorn over a raw ASGI app that carries out the engine's decisions.

Why a real server besides the in-process transport: some failures only exist on a socket, such as a connection
that dies after the headers, TLS that wants a client certificate, timeouts while the server sleeps. The engine
runs in a thread pool (it takes locks and may be slow), delays are awaited, and a dropped connection is a
response that announces its full Content-Length, sends part of the body and then stops: uvicorn closes the
socket and the client sees an incomplete body.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from onec.sandbox.engine import SandboxEngine, SandboxRequest, SandboxResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STARTUP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate and key; `ca_certs` verifies client certificates (needed for
    `require_client_cert`)."""

    certfile: Path
    keyfile: Path
    ca_certs: Path | None = None
    require_client_cert: bool = False


class SandboxApp:
    """The ASGI application: one engine, any number of concurrent connections."""

    def __init__(self, engine: SandboxEngine) -> None:
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw_query = scope["query_string"].decode("latin-1")
        request = SandboxRequest(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(raw_query, keep_blank_values=True),
            headers={name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]},
            body=await _read_body(receive),
            raw_query=raw_query,
        )
        with self.engine.connection() as rejection:
            response = rejection if rejection is not None else await asyncio.to_thread(self.engine.handle, request)
            if response.delay_s > 0:
                await asyncio.sleep(response.delay_s)
            await _send(response, send)


async def _send(response: SandboxResponse, send: Send) -> None:
    """Send the response; a cut one stops after part of the body and returns without finishing it, which makes
    uvicorn close the connection (it logs one line, "ASGI callable returned without completing response")."""
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.items()]
    if response.chunks is not None:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await _send_chunks(response.chunks, response.cut_at, send)
        return
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if response.cut_at is None:
        await send({"type": "http.response.body", "body": response.body})
        return
    await send({"type": "http.response.body", "body": response.body[: response.cut_at], "more_body": True})


async def _send_chunks(chunks: Iterable[bytes], cut_at: int | None, send: Send) -> None:
    """Stream without a length (chunked transfer encoding). The chunks are produced in a worker thread, one at
    a time, so a 500 MB export never sits in memory and the event loop stays free."""
    iterator = iter(chunks)
    sent = 0
    while True:
        chunk = await asyncio.to_thread(next, iterator, None)
        if chunk is None:
            await send({"type": "http.response.body", "body": b""})
            return
        if cut_at is not None and sent + len(chunk) >= cut_at:
            await send({"type": "http.response.body", "body": chunk[: cut_at - sent], "more_body": True})
            return
        sent += len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def uvicorn_config(engine: SandboxEngine, host: str, port: int, tls: TlsFiles | None, log_level: str) -> uvicorn.Config:
    """The uvicorn settings, TLS and client-certificate checking included."""
    options: dict[str, Any] = {}
    if tls is not None:
        options = {
            "ssl_certfile": str(tls.certfile),
            "ssl_keyfile": str(tls.keyfile),
            "ssl_ca_certs": str(tls.ca_certs) if tls.ca_certs else None,
            "ssl_cert_reqs": ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_NONE,
        }
    return uvicorn.Config(
        SandboxApp(engine),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        date_header=False,  # the engine dates every answer with 1C's clock (`SandboxConfig.clock_offset_s`)
        **options,
    )


def serve(engine: SandboxEngine, host: str = "127.0.0.1", port: int = 8765, tls: TlsFiles | None = None) -> None:
    """Serve until interrupted (the CLI's `sandbox` command)."""
    uvicorn.Server(uvicorn_config(engine, host, port, tls, log_level="info")).run()


@contextmanager
def running_server(engine: SandboxEngine, tls: TlsFiles | None = None) -> Iterator[str]:
    """Serve on 127.0.0.1 on a free port in a daemon thread; yields the base URL (base path included).

    The socket is bound before the thread starts, so there is no window in which another process can take the
    port; startup is awaited for at most STARTUP_TIMEOUT_S, shutdown likewise.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(engine, "127.0.0.1", port, tls, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{port}", daemon=True)
    thread.start()
    try:
        _wait_started(server, thread)
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{port}{engine.config.base_path}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox server did not start within {STARTUP_TIMEOUT_S:.0f} s")
        time.sleep(0.01)
