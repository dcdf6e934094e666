"""The client against the bundled 1C sandbox: faults, drift, pacing and every auth method, end to end."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from onec.client import OneCClient
from onec.config import AuthMethod, Secret, Settings
from onec.http import OneCAuthError, OneCSession
from onec.http.limits import query_stats
from onec.sandbox.certs import make_test_pki
from onec.sandbox.data import SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine
from onec.sandbox.server import TlsFiles, running_server
from onec.sandbox.transport import SandboxTransport
from onec.schema import DOCUMENT_SLUGS

BASE = "http://sandbox/trade/hs/exchange"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": BASE,
        "rate_limit": 10_000.0,
        "max_connections": 4,
        "max_retries": 8,
    }
    values.update(overrides)
    return Settings(**values)


def in_process(engine: SandboxEngine, fake_time: Any, **overrides: Any) -> OneCSession:
    return OneCSession(
        settings(**overrides),
        transport=SandboxTransport(engine),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def assert_no_repeats(records: list[dict[str, Any]]) -> None:
    blobs = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records]
    assert len(blobs) == len(set(blobs))


def test_faults_and_drift_lose_nothing_and_repeat_nothing(fake_time: Any) -> None:
    data = SandboxData.generate(seed=7, documents=1000)
    engine = SandboxEngine(data, SandboxConfig.faulty(0.12, max_page_size=25, seed=3))
    with in_process(engine, fake_time) as session:
        client = OneCClient(session, page_size=40, max_workers=4)
        with query_stats() as shipment_query:
            shipments = [r for batch in client.documents("shipment", None, None) for r in batch]
        goods = [r for batch in client.goods() for r in batch]
        stats = session.stats.snapshot()
    faults = engine.stats.snapshot()["faults"]
    assert sum(faults.values()) > 5, faults
    assert stats["retries"] > 0
    assert {r["number"].strip() for r in shipments} >= {d.number for d in data.documents_holdings("shipment")}
    assert {(r["sku"].strip(), r.get("warehouse") and r["warehouse"].strip()) for r in goods} >= {
        (g.sku, g.warehouse) for g in data.goods_holdings()
    }
    assert_no_repeats(shipments)
    assert_no_repeats(goods)
    assert shipment_query.pages > 0


def test_drift_during_a_run_triggers_another_pass(fake_time: Any) -> None:
    data = SandboxData.generate(seed=1, documents=300)
    faults = FaultConfig(drift_every=2, drift_limit=4)
    engine = SandboxEngine(data, SandboxConfig(faults=faults, max_page_size=20))
    passes = []
    with in_process(engine, fake_time) as session:
        client = OneCClient(session, page_size=20, max_workers=1)
        for doc_type in DOCUMENT_SLUGS:
            with query_stats() as query:
                records = [r for b in client.documents(doc_type, None, None) for r in b]
            passes.append(query.passes)
            assert {r["number"].strip() for r in records} >= {d.number for d in data.documents_holdings(doc_type)}
            assert_no_repeats(records)
    assert engine.stats.snapshot()["drift_inserts"] == 4
    assert max(passes) >= 2


def test_paced_client_gets_no_429_from_a_rate_limited_1c() -> None:
    data = SandboxData.generate(seed=2, documents=200)
    engine = SandboxEngine(data, SandboxConfig(rate_limit=20, max_connections=3, latency_s=0.01, max_page_size=10))
    session = OneCSession(
        settings(rate_limit=20.0, max_connections=3, auth=AuthMethod.NONE), transport=SandboxTransport(engine)
    )
    with session:
        started = time.monotonic()
        pages = list(OneCClient(session, page_size=10).goods())
        elapsed = time.monotonic() - started
        requests = session.stats.snapshot()["requests"]
    assert pages
    assert engine.stats.snapshot()["throttled"] == 0
    assert session.stats.snapshot()["throttled"] == 0
    assert engine.stats.snapshot()["max_in_flight"] <= 3
    assert elapsed >= (requests - 1) / 20 - 0.05


@pytest.mark.parametrize(
    ("config", "credentials"),
    [
        (
            SandboxConfig(auth="basic"),
            {"auth": AuthMethod.BASIC, "username": "обмен", "password": Secret("пароль")},
        ),
        (SandboxConfig(auth="api_key"), {"auth": AuthMethod.API_KEY, "api_key": Secret("sk-test-1c")}),
        (
            SandboxConfig(auth="bearer"),
            {"auth": AuthMethod.BEARER, "username": "обмен", "password": Secret("пароль")},
        ),
    ],
    ids=["basic-cyrillic", "api_key", "bearer"],
)
def test_each_auth_method(fake_time: Any, config: SandboxConfig, credentials: dict[str, Any]) -> None:
    engine = SandboxEngine(SandboxData.generate(seed=3, documents=50), config)
    with in_process(engine, fake_time, **credentials) as session:
        assert OneCClient(session).version()["version"]
        assert list(OneCClient(session).goods())


def test_bearer_refreshes_after_token_expired(fake_time: Any) -> None:
    server_time = {"now": 0.0}
    engine = SandboxEngine(
        SandboxData.generate(seed=3, documents=50),
        SandboxConfig(auth="bearer", token_ttl_s=60),
        clock=lambda: server_time["now"],
    )
    with in_process(engine, fake_time, auth=AuthMethod.BEARER, username="обмен", password=Secret("пароль")) as s:
        s.get_json("api/v1/goods", {"limit": 1})
        server_time["now"] += 120  # the server's clock runs ahead: the client still believes in its token
        assert s.get_json("api/v1/goods", {"limit": 1})["data"]
        assert s.stats.snapshot()["auth_refreshes"] == 1


@pytest.mark.parametrize("html", [False, True])
def test_wrong_password_is_a_clear_auth_error(fake_time: Any, html: bool) -> None:
    engine = SandboxEngine(
        SandboxData.generate(seed=3, documents=10), SandboxConfig(auth="basic", html_on_bad_auth=html)
    )
    with in_process(engine, fake_time, auth=AuthMethod.BASIC, username="обмен", password=Secret("неверный")) as s:
        with pytest.raises(OneCAuthError, match="HTML page" if html else "refused authentication"):
            s.get_json("api/v1/goods")
        assert s.stats.snapshot()["requests"] == 1


@pytest.mark.e2e
def test_over_real_https_with_client_certificate_and_drops(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    tls = TlsFiles(pki.server_cert, pki.server_key, ca_certs=pki.ca_cert, require_client_cert=True)
    data = SandboxData.generate(seed=4, documents=600)
    config = SandboxConfig(auth="api_key", faults=FaultConfig(drop=0.15, truncate=0.15), max_page_size=20, seed=5)
    engine = SandboxEngine(data, config)
    with running_server(engine, tls) as base_url:
        ours = settings(
            base_url=base_url.replace("127.0.0.1", "localhost"),
            auth=AuthMethod.API_KEY,
            api_key=Secret("sk-test-1c"),
            client_cert=pki.client_cert,
            client_key=pki.client_key,
            ca_bundle=pki.ca_cert,
        )
        with OneCSession(ours, sleep=lambda _: None) as session:
            records = [r for b in OneCClient(session, page_size=20).documents("shipment", None, None) for r in b]
            stats = session.stats.snapshot()
    assert {r["number"].strip() for r in records} >= {d.number for d in data.documents_holdings("shipment")}
    assert_no_repeats(records)
    assert stats["retries"] > 0


class ExpiresAfter(SandboxTransport):
    """The sandbox whose clock jumps past every token's life at the `nth` data request, while others are in flight;
    counts what reaches the token endpoint."""

    def __init__(self, engine: SandboxEngine, server_time: dict[str, float], nth: int) -> None:
        super().__init__(engine)
        self.server_time = server_time
        self.nth = nth
        self.data_requests = 0
        self.token_requests = 0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if request.url.path.endswith("/auth/token"):
                self.token_requests += 1
            else:
                self.data_requests += 1
                if self.data_requests == self.nth:
                    self.server_time["now"] += 3600
        return super().handle_request(request)


def test_token_expiring_mid_extract_is_refreshed_once_and_loses_no_page(fake_time: Any) -> None:
    data = SandboxData.generate(seed=5, documents=400)
    server_time = {"now": 0.0}
    config = SandboxConfig(auth="bearer", token_ttl_s=600, max_page_size=5, latency_s=0.002)
    engine = SandboxEngine(data, config, clock=lambda: server_time["now"])
    transport = ExpiresAfter(engine, server_time, nth=6)
    ours = settings(auth=AuthMethod.BEARER, username="обмен", password=Secret("пароль"))
    with OneCSession(ours, transport=transport, sleep=fake_time.sleep, clock=fake_time.clock) as session:
        records = [
            r for b in OneCClient(session, page_size=5, max_workers=4).documents("shipment", None, None) for r in b
        ]
        stats = session.stats.snapshot()
    assert transport.data_requests > 12, "the token must expire mid-extract, with pages still to come"
    assert {r["number"].strip() for r in records} == {d.number for d in data.documents_holdings("shipment")}
    assert_no_repeats(records)
    assert engine.stats.snapshot()["responses"][401] >= 2, "several requests in flight held the expired token"
    assert stats["auth_refreshes"] == 1
    assert transport.token_requests == 2  # the login and one refresh, however many requests held the old token
    assert stats["retries"] == 0  # a refresh is a repeat inside the attempt, not a retry that costs a backoff


def export_body(engine: SandboxEngine) -> bytes:
    with httpx.Client(transport=SandboxTransport(engine)) as plain:
        return plain.get(f"{BASE}/api/v1/documents/shipment/export", params={"format": "xml"}).content


class OneAfterAnother(httpx.BaseTransport):
    """Each request goes to the next transport in line; the last one answers the rest."""

    def __init__(self, *transports: httpx.BaseTransport) -> None:
        self.transports = list(transports)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.transports.pop(0) if len(self.transports) > 1 else self.transports[0]
        return transport.handle_request(request)


def test_download_dropped_mid_body_is_fetched_again_from_the_start(fake_time: Any, tmp_path: Path) -> None:
    data = SandboxData.generate(seed=6, documents=300)
    dropping = SandboxEngine(data, SandboxConfig(faults=FaultConfig(drop=1.0)))
    healthy = SandboxEngine(data, SandboxConfig())
    transport = OneAfterAnother(SandboxTransport(dropping), SandboxTransport(healthy))
    with (
        OneCSession(settings(), transport=transport, sleep=fake_time.sleep, clock=fake_time.clock) as session,
        (tmp_path / "export.xml").open("w+b") as sink,
    ):
        sink.write(b"left over from an earlier export, longer than nothing")
        content_type = session.download("api/v1/documents/shipment/export", {"format": "xml"}, sink)
        stats = session.stats.snapshot()
        sink.seek(0)
        received = sink.read()
    assert dropping.stats.snapshot()["faults"] == {"drop": 1}
    assert "xml" in content_type
    assert received == export_body(healthy)
    assert (stats["requests"], stats["retries"], stats["connection_errors"]) == (2, 1, 1)


def test_download_with_an_expired_token_refreshes_once_and_streams_the_whole_body(fake_time: Any) -> None:
    data = SandboxData.generate(seed=6, documents=300)
    server_time = {"now": 0.0}
    engine = SandboxEngine(data, SandboxConfig(auth="bearer", token_ttl_s=60), clock=lambda: server_time["now"])
    credentials = {"auth": AuthMethod.BEARER, "username": "обмен", "password": Secret("пароль")}
    with in_process(engine, fake_time, **credentials) as session, tempfile.TemporaryFile() as sink:
        session.get_json("api/version")
        server_time["now"] += 120
        session.download("api/v1/documents/shipment/export", {"format": "xml"}, sink)
        sink.seek(0)
        received = sink.read()
        stats = session.stats.snapshot()
    server_time["now"] = 0.0
    expected = OneCSession(settings(**credentials), transport=SandboxTransport(engine))
    with expected, tempfile.TemporaryFile() as clean:
        expected.download("api/v1/documents/shipment/export", {"format": "xml"}, clean)
        clean.seek(0)
        assert received == clean.read()
    assert (stats["auth_refreshes"], stats["retries"]) == (1, 0)
