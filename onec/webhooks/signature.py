"""`X-1C-Signature: sha256=<hex>`: the HMAC-SHA256 of the raw body under the shared secret (§1.8).

One module for both sides (the receiver verifies, the sandbox 1C signs) so they cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-1C-Signature"
PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value for `body`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(header: str | None, body: bytes, secret: str) -> bool:
    """Whether `header` signs `body`; compared in constant time so timing reveals nothing of the expected value."""
    if not header or not secret:
        return False
    return hmac.compare_digest(header.strip().lower().encode(), sign(body, secret).encode())
