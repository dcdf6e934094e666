"""`onec-etl [--base ID] webhooks [--host … --port …]` serves a base's receiver; `onec-etl [--base ID] webhooks
register --url … --event …` registers it with that base's 1C. One receiver per base (its own port, its own queue in
the base's folder, `queue_path`): an event does not say which 1C sent it, the address it was delivered to does. The
secret comes from ONEC_WEBHOOK_SECRET only (never a command-line argument, which would show in the process list and
shell history)."""

from __future__ import annotations

import argparse
import sys

from onec.config import BASE_WEBHOOK_SIGNING, ConfigError, base_secret_variable, load_bases
from onec.http import OneCSession
from onec.redact import redact_url
from onec.webhooks.events import EVENTS
from onec.webhooks.queue import EventQueue, queue_path
from onec.webhooks.receiver import PATH, SECRET_ENV, ReceiverSettings, WebhookReceiver, serve
from onec.webhooks.register import register_webhook

DEFAULT_PORT = 8766


def add_webhook_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    webhooks = commands.add_parser("webhooks", help="receive a base's 1C webhooks into its queue, or register")
    webhooks.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    webhooks.add_argument("--port", type=int, default=DEFAULT_PORT)
    webhooks.set_defaults(handler=_serve)
    actions = webhooks.add_subparsers(dest="webhook_command")
    register = actions.add_parser("register", help="POST /api/v1/webhooks on the base's 1C (ONEC_*, --base)")
    register.add_argument("--url", required=True, help="where 1C should deliver, e.g. https://etl.example/webhooks/1c")
    register.add_argument("--event", action="append", choices=EVENTS, required=True, help="repeat for several")
    register.set_defaults(handler=_register)


def _serve(args: argparse.Namespace) -> int:
    settings = load_bases().chosen(args.base)
    queue = EventQueue(queue_path(settings.data_dir, settings.base_id))
    receiver = WebhookReceiver(ReceiverSettings.from_settings(settings), queue)
    print(f"receiving base {settings.base_id}'s 1C webhooks at http://{args.host}:{args.port}{PATH}", file=sys.stderr)
    serve(receiver, host=args.host, port=args.port)
    return 0


def _register(args: argparse.Namespace) -> int:
    settings = load_bases().chosen(args.base)
    secret = settings.webhooks.secret
    if not secret:
        unset = f"{SECRET_ENV} is not set"
        if settings.bases_file is not None:
            unset = f"neither {base_secret_variable(settings.base_id, BASE_WEBHOOK_SIGNING)} nor {SECRET_ENV} is set"
        raise ConfigError(f"{unset}: 1C signs deliveries with it")
    with OneCSession(settings) as session:
        for event in args.event:
            answer = register_webhook(session, url=args.url, event=event, secret=secret)
            print(f"registered {event} → {redact_url(args.url)} (id {answer.get('id', '?')})")
    return 0
