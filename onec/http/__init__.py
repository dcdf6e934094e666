"""The transport to 1C's exchange HTTP service; see `OneCSession`."""

from onec.http.errors import (
    OneCAuthError,
    OneCError,
    OneCHTTPError,
    OneCIncompleteError,
    OneCProtocolError,
    OneCUnavailable,
)
from onec.http.limits import RequestStats
from onec.http.session import OneCSession
from onec.redact import redact_url

__all__ = [
    "OneCAuthError",
    "OneCError",
    "OneCHTTPError",
    "OneCIncompleteError",
    "OneCProtocolError",
    "OneCSession",
    "OneCUnavailable",
    "RequestStats",
    "redact_url",
]
