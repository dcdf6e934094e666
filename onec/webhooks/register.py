"""Registering our receiver with 1C: `POST /api/v1/webhooks` `{"event","url","secret"}` (§1.8).

Goes through the ordinary session (auth, pacing, retries, redaction). The shared secret is sent in the body only:
it is never logged, and an error that echoes it back has it blanked before anyone sees the message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from onec.config import ConfigError, Secret
from onec.errors import UserFacingError
from onec.http import OneCError, OneCSession
from onec.webhooks.events import EVENTS

WEBHOOKS_PATH = "api/v1/webhooks"


class RegistrationError(UserFacingError, ValueError):
    """1C refused the registration (the message carries its reason, never the secret)."""


def register_webhook(session: OneCSession, *, url: str, event: str, secret: Secret) -> dict[str, Any]:
    """Register `url` for `event`; returns 1C's answer without any echo of the secret."""
    if event not in EVENTS:
        raise ConfigError(f"unknown event {event!r}; expected one of: {', '.join(EVENTS)}")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigError(f"the webhook URL must be http(s)://host/…, got {url!r}")
    if not secret:
        raise ConfigError("the webhook secret is empty (set ONEC_WEBHOOK_SECRET)")
    try:
        # Not retried: a registration that timed out may exist already, and a second one would double deliveries.
        answer = session.post_json(WEBHOOKS_PATH, {"event": event, "url": url, "secret": secret.reveal()})
    except OneCError as error:
        raise RegistrationError(str(error).replace(secret.reveal(), "***")) from None
    if not isinstance(answer, dict):
        raise RegistrationError("1C answered the registration with something other than a JSON object")
    return {key: value for key, value in answer.items() if key != "secret"}
