"""How a user-facing error ends a Dagster run: a `dg.Failure` with its one line, not a traceback from the core.

Why a decorator: every asset and op body calls into the core, which raises `onec.errors.UserFacingError` for what a
person can act on (bad configuration or file, 1C unreachable, the warehouse busy, a full disk); Dagster shows a
`Failure`'s description as the reason the step failed. Anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import dagster as dg

from onec.errors import UserFacingError, one_line, storage_error

P = ParamSpec("P")
R = TypeVar("R")


def failing_cleanly(compute: Callable[P, R]) -> Callable[P, R]:
    """Wrap an asset's or op's function (under `@dg.asset` / `@dg.op`; its signature is kept for Dagster)."""

    @functools.wraps(compute)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return compute(*args, **kwargs)
        except dg.Failure:
            raise
        except Exception as exc:
            error = exc if isinstance(exc, UserFacingError) else storage_error(exc)
            if error is None:
                raise
            raise dg.Failure(description=one_line(error), metadata={"error": type(error).__name__}) from None

    return wrapper
