"""Fixtures of the core tests that start a server: the local S3 server (SeaweedFS) the Delta lake is tested on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3_server import S3Server, S3Unavailable, running_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS for the session (tests use prefixes of their own); skipped if `weed` cannot run here."""
    try:
        with running_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server
    except S3Unavailable as reason:
        pytest.skip(f"no local S3 server: {reason}")
