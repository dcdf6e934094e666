"""User-facing errors are one line at the command line; a failed COMMIT keeps its own error; a full disk names
the directory; credentials in the configured URL are never printed; a bug keeps its traceback."""

from __future__ import annotations

import errno
import logging
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

import onec.warehouse as warehouse_module
from onec.cli import main
from onec.config import Settings
from onec.errors import DiskFull, storage_error
from onec.warehouse import Warehouse

HEADER = "Number,Date,Status,Counterparty,Warehouse,Line,SKU,Quantity,UnitPrice,Total\n"


def _shipments(path: Path, count: int) -> Path:
    lines = (f"A-{n},2026-01-{1 + n % 28:02d}T10:00:00,posted,ООО,wh-main,1,P{n},2,10.00,20.00\n" for n in range(count))
    path.write_text(HEADER + "".join(lines), "utf-8")
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("onec-etl: error: "), err
    return err[0]


class _CommitFailsLikeAFullDisk:
    """A DuckDB connection whose COMMIT fails the way DuckDB's does when the WAL cannot be written: the transaction
    is over (DuckDB rolled it back) and the COMMIT raises."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self._con.execute("ROLLBACK")
            raise duckdb.TransactionException(
                'TransactionContext Error: Failed to commit: Could not write file "warehouse.duckdb.wal": '
                "No space left on device"
            )
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def test_a_failed_commit_keeps_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _shipments(tmp_path / "shipment-jan.csv", 20)
    real_connect = Warehouse._connect

    @contextmanager
    def connect(self: Warehouse, **options: Any) -> Iterator[Any]:
        with real_connect(self, **options) as con:
            yield _CommitFailsLikeAFullDisk(con) if options.get("memory_limit") else con

    monkeypatch.setattr(Warehouse, "_connect", connect)
    assert main(["load", str(csv)]) == 1
    line = _one_error_line(capsys)
    assert "the disk is full" in line and str(Settings.from_env().data_dir.absolute()) in line
    assert "no transaction is active" not in line


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        pl.exceptions.ComputeError("parquet: File out of specification: underlying IO error: No space left on device"
                                   " (os error 28)"),
    ],
)  # fmt: skip
def test_a_full_disk_while_staging_is_one_line_naming_the_data_dir(
    failure: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _shipments(tmp_path / "shipment-jan.csv", 20)

    def full(*args: Any, **kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    assert main(["load", str(csv)]) == 1
    line = _one_error_line(capsys)
    assert "the disk is full" in line and str(Settings.from_env().data_dir.absolute()) in line


@pytest.mark.e2e
def test_a_real_full_disk_is_one_line_and_a_rerun_with_space_lands_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 1.5 MB tmpfs as the data directory (needs root and mount; skipped elsewhere), then the same disk grown."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount)],
                             capture_output=True, check=False, timeout=30)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        csv = _shipments(tmp_path / "shipment-jan.csv", 30_000)
        monkeypatch.setenv("ONEC_DATA_DIR", str(mount))
        assert main(["load", str(csv)]) == 1
        line = _one_error_line(capsys)
        assert "the disk is full" in line and str(mount) in line
        subprocess.run(["mount", "-o", "remount,size=128m", str(mount)], check=True, timeout=30)
        assert main(["load", str(csv)]) == 0
        assert Warehouse(mount, "Europe/Moscow").table_counts()["documents"] == 30_000
    finally:
        subprocess.run(["umount", str(mount)], check=False, timeout=30)


def test_storage_errors_are_recognised_and_others_are_not() -> None:
    assert isinstance(storage_error(OSError(errno.EDQUOT, "Disk quota exceeded", "/d/x")), DiskFull)
    assert "cannot write /d/x" in str(storage_error(OSError(errno.EROFS, "Read-only file system", "/d/x")))
    assert storage_error(ValueError("batch has lines whose document is not in the batch")) is None
    assert storage_error(OSError(errno.ENOENT, "No such file or directory")) is None
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/d/ledger")
        except OSError as write:
            raise RuntimeError("marking documents as sending failed") from write
    except RuntimeError as caused:
        assert "/d/ledger" in str(storage_error(caused))


URL_SECRETS = ("s3cr3t-пароль", "K3Y-42")


@pytest.mark.parametrize("argv", [["sync", "--types", "shipment"], ["sync", "--incremental", "--types", "shipment"]])
def test_credentials_in_the_base_url_are_never_printed(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ONEC_BASE_URL", f"http://user:s3cr3t-пароль@127.0.0.1:{port}/x?api_key=K3Y-42&limit=5")
    monkeypatch.setenv("ONEC_MAX_RETRIES", "1")
    with caplog.at_level(logging.DEBUG):
        assert main(argv) == 1
    captured = capsys.readouterr()
    shown = captured.out + captured.err + caplog.text + repr(Settings.from_env())
    assert "***@127.0.0.1" in captured.err
    assert not [secret for secret in URL_SECRETS if secret in shown]


def test_a_bad_url_is_refused_without_echoing_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEC_BASE_URL", "ftp://user:s3cr3t-пароль@erp.example/x")
    assert main(["sync"]) == 2
    assert "s3cr3t" not in _one_error_line(capsys)


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    csv = _shipments(tmp_path / "shipment-jan.csv", 3)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("batch has lines whose document is not in the batch")

    monkeypatch.setattr(warehouse_module, "_line_owners", broken)
    with pytest.raises(ValueError, match="lines whose document"):
        main(["load", str(csv)])
