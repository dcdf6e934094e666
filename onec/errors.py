"""The one root of every error a person can act on, and the translation of library and OS errors into it.

Why one root: the command line prints such an error as one line and exits 1 (2 for a usage mistake), Dagster fails
the run with the message; anything that is not a `UserFacingError` is a broken invariant, a bug, and keeps its
traceback. The module's own classes say what the person does about it (fix the configuration, fix the file, wait
for 1C or the other writer, free disk space); the existing classes of each area (`ConfigError`, `CsvFormatError`,
`OneCError`, `WarehouseBusy`, …) derive from them and keep their names.

Polars, DuckDB and pyarrow report a full disk in their own words (`ComputeError: … No space left on device (os error
28)`, `TransactionException: Failed to commit: Could not write file …`), so the boundary that writes (`writing_to`)
recognises it by errno or text and names the directory it was writing to.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_RUNTIME = 1
EXIT_USAGE = 2

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_WORDS = (
    "no space left on device",
    "os error 28",
    "disk quota exceeded",
    "os error 122",
    "database or disk is full",  # SQLite's SQLITE_FULL (the webhook queue)
)
_NOT_WRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class UserFacingError(Exception):
    """An error whose message is one line a person can act on; `exit_code` is what the command line exits with."""

    exit_code = EXIT_RUNTIME


class UsageError(UserFacingError):
    """The configuration or the command line is wrong: fix it and run again."""

    exit_code = EXIT_USAGE


class InputDataError(UserFacingError):
    """A file or an event that cannot be used as given; the message names it and says why."""


class UnavailableError(UserFacingError):
    """1C could not be reached or used right now: run again later."""


class BusyError(UserFacingError):
    """Another process holds what this one needs (the warehouse's one writer): wait for it."""


class StorageError(UserFacingError):
    """A directory this run writes to cannot take the write (read-only, no permission); nothing half-landed."""


class DiskFull(StorageError):
    """The disk under a directory this run writes to is full; nothing half-landed, free space and run again."""


def storage_error(error: BaseException, where: Path | None = None) -> StorageError | None:
    """The `StorageError` behind a failed write (an OSError, or a library error that wraps one), naming the file or
    `where`; None when `error` is not about storage (a bug, or an error of another kind)."""
    if isinstance(error, StorageError):
        return error
    code = error.errno if isinstance(error, OSError) else None
    text = str(error)
    place = _place(error, where)
    if code in _DISK_FULL_ERRNOS or any(words in text.lower() for words in _DISK_FULL_WORDS):
        return DiskFull(f"the disk is full: no space left to write {place}; free some space and run again")
    if isinstance(error, OSError) and code in _NOT_WRITABLE_ERRNOS:
        return StorageError(f"cannot write {place}: {error.strerror or text}")
    if error.__cause__ is not None:  # an error raised *because of* a failed write (another thread's, a library's)
        return storage_error(error.__cause__, where)
    return None


@contextmanager
def writing_to(where: Path) -> Iterator[None]:
    """Inside the block, a write that fails for lack of space or permission becomes a `StorageError` naming `where`
    (the original stays its `__cause__`); every other error passes unchanged."""
    try:
        yield
    except UserFacingError:
        raise
    except Exception as error:
        translated = storage_error(error, where)
        if translated is None:
            raise
        raise translated from error


def one_line(error: BaseException) -> str:
    """The first line of an error's message (library messages may carry a hint block or a query plan after it)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _place(error: BaseException, where: Path | None) -> str:
    filename = getattr(error, "filename", None) if isinstance(error, OSError) else None
    if filename:
        return str(filename)
    return str(where) if where is not None else "the data directory"
