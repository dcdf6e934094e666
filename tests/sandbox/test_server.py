"""The sandbox over real sockets on 127.0.0.1: plain HTTP, mTLS, dropped connections, latency."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from onec.sandbox.certs import TestPki, make_test_pki
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import TlsFiles, running_server

pytestmark = pytest.mark.e2e
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def test_serves_over_http(small_data: SandboxData) -> None:
    engine = SandboxEngine(small_data, SandboxConfig(auth="basic"))
    with running_server(engine) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/trade/hs/exchange")
        with httpx.Client(base_url=base_url, timeout=TIMEOUT, auth=("обмен", "пароль")) as client:
            assert client.get("/api/version").json()["version"] == "1.4.2"
            page = client.get("/api/v1/documents/shipment", params={"limit": 7, "offset": 3}).json()
            assert len(page["data"]) == 7 and page["pagination"]["offset"] == 3
            assert client.get("/api/v1/goods", auth=("обмен", "нет")).status_code == 401
            assert client.delete("/api/v1/goods").status_code == 405


def test_mtls_requires_a_client_certificate(small_data: SandboxData, pki: TestPki) -> None:
    tls = TlsFiles(pki.server_cert, pki.server_key, pki.ca_cert, require_client_cert=True)
    with running_server(SandboxEngine(small_data), tls) as base_url:
        assert base_url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=TIMEOUT, verify=pki.client_context()) as client:
            assert client.get("/api/v1/goods", params={"limit": 1}).status_code == 200
        with (
            httpx.Client(base_url=base_url, timeout=TIMEOUT, verify=pki.client_context(with_client_cert=False)) as bare,
            pytest.raises((httpx.TransportError, ssl.SSLError)),
        ):
            bare.get("/api/v1/goods", params={"limit": 1})


def test_tls_without_client_certificates(small_data: SandboxData, pki: TestPki) -> None:
    with running_server(SandboxEngine(small_data), TlsFiles(pki.server_cert, pki.server_key)) as base_url:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        assert httpx.get(base_url + "/api/version", verify=context, timeout=TIMEOUT).status_code == 200


def test_dropped_connection_is_a_protocol_error(small_data: SandboxData) -> None:
    engine = SandboxEngine(small_data, SandboxConfig(faults=FaultConfig(drop=1.0)))
    with running_server(engine) as base_url, httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/api/v1/goods", params={"limit": 200})
        assert client.get("/api/version").status_code == 200, "the server lives on after dropping"


def test_truncated_body_is_invalid_json(small_data: SandboxData) -> None:
    engine = SandboxEngine(small_data, SandboxConfig(faults=FaultConfig(truncate=1.0)))
    with running_server(engine) as base_url:
        response = httpx.get(base_url + "/api/v1/goods", timeout=TIMEOUT)
        assert response.status_code == 200
        with pytest.raises(ValueError):  # JSONDecodeError, or UnicodeDecodeError when cut inside a character
            response.json()


def test_latency_and_connection_limit_over_sockets(small_data: SandboxData) -> None:
    engine = SandboxEngine(small_data, SandboxConfig(latency_s=0.3, max_connections=2))
    statuses: list[int] = []
    with running_server(engine) as base_url:
        started = time.perf_counter()
        assert httpx.get(base_url + "/api/v1/goods?limit=1", timeout=TIMEOUT).status_code == 200
        assert time.perf_counter() - started >= 0.3

        def get() -> None:
            statuses.append(httpx.get(base_url + "/api/v1/goods?limit=1", timeout=TIMEOUT).status_code)

        threads = [threading.Thread(target=get) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert statuses.count(200) >= 2 and 429 in statuses
    assert engine.stats.snapshot()["max_in_flight"] == 2


def test_pki_files_exist(pki: TestPki) -> None:
    for path in (pki.ca_cert, pki.server_cert, pki.server_key, pki.client_cert, pki.client_key):
        assert Path(path).read_bytes().startswith(b"-----BEGIN")


def test_write_timeout_over_sockets_still_applies() -> None:
    data = SandboxData.generate(documents=60, seed=2)
    faults = FaultConfig(apply_then_timeout=1.0, write_timeout_delay_s=1.0)
    engine = SandboxEngine(data, SandboxConfig(faults=faults))
    doc = {"number": "С-1", "warehouse": "wh-main", "items": [{"sku": "X", "quantity": 1, "unit_price": 2}]}
    with running_server(engine) as base_url, httpx.Client(base_url=base_url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/api/v1/documents/shipment", json=doc)
        assert data.find_by_number("shipment", "С-1") is not None


def test_write_drop_over_sockets_still_applies() -> None:
    data = SandboxData.generate(documents=60, seed=2)
    engine = SandboxEngine(data, SandboxConfig(faults=FaultConfig(apply_then_drop=1.0)))
    doc = {"number": "С-2", "warehouse": "wh-main", "items": [{"sku": "X", "quantity": 1, "unit_price": 2}]}
    with running_server(engine) as base_url, httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/api/v1/documents/shipment/batch", json={"documents": [doc]})
        assert data.find_by_number("shipment", "С-2") is not None


def test_exports_stream_over_sockets(small_data: SandboxData) -> None:
    with (
        running_server(SandboxEngine(small_data)) as base_url,
        httpx.Client(base_url=base_url, timeout=TIMEOUT) as client,
        client.stream("GET", "/api/v1/documents/shipment/export", params={"format": "csv"}) as response,
    ):
        assert response.headers.get("transfer-encoding") == "chunked" and "content-length" not in response.headers
        body = response.read()
    lines = sum(len(doc.items) for doc in small_data.documents_holdings("shipment"))
    assert body.startswith(b"Id,Number,Date") and body.count(b"\n") >= lines + 1


def test_dropped_export_stream_over_sockets(small_data: SandboxData) -> None:
    engine = SandboxEngine(small_data, SandboxConfig(faults=FaultConfig(drop=1.0)))
    with running_server(engine) as base_url, httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/api/v1/documents/shipment/export", params={"format": "xml"})
        assert client.get("/api/version").status_code == 200
