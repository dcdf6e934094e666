"""`onec-etl push FILE --type TYPE [--post] [--dry-run]`: the reverse pipeline from the command line.

The exit code says whether everything landed: 0 only when every document of the file is in 1C as sent (and, with
`--post`, posted); 1 when anything is invalid, oversize, a conflict, refused, failed, did not verify or, with
`--post`, is still a draft in 1C (the last line then says how many are held, posted and drafts).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from onec import delta_lake
from onec.config import Settings
from onec.connect import open_client
from onec.errors import InputDataError
from onec.progress import Progress
from onec.push.chunking import DEFAULT_MAX_BYTES, DEFAULT_MAX_ITEMS, Limits
from onec.push.readers import GOODS
from onec.push.report import ImportSummary, reasons_frame, summary_frame
from onec.push.run import PushOptions, preview_file, push_file
from onec.schema import DOCUMENT_SLUGS
from onec.warehouse import Warehouse

EXIT_NOT_LANDED = 1


def add_push_command(commands: Any) -> None:
    """Register the `push` subcommand on the CLI's subparsers."""
    push = commands.add_parser("push", help="import a file of documents (or goods) into 1C, exactly once")
    push.add_argument("file", type=Path, help="CSV (§1.4 header), Parquet (same columns) or JSON array")
    push.add_argument("--type", required=True, choices=(*DOCUMENT_SLUGS, GOODS), help="document type, or goods")
    push.add_argument("--post", action="store_true", help="post every document of the file that 1C holds as a draft")
    push.add_argument("--dry-run", action="store_true", help="validate and plan only: send and write nothing")
    push.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS, help="1C's items (lines) per request")
    push.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="1C's bytes per request")
    push.set_defaults(handler=run_push_command)


def run_push_command(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not args.file.is_file():
        raise InputDataError(f"{args.file}: no such file")
    limits = Limits(args.max_items, args.max_bytes)
    if args.dry_run:
        summary = preview_file(args.file, args.type, timezone=settings.timezone, limits=limits)
        print_summary(summary)
        return 0 if not summary.reasons else EXIT_NOT_LANDED
    if settings.base_url is None:
        print("ONEC_BASE_URL is not set: pushing into the embedded in-memory sandbox (gone after this run)",
              file=sys.stderr)  # fmt: skip
    warehouse = Warehouse(
        settings.data_dir,
        settings.timezone,
        base=settings.base_id,
        delta=delta_lake.configured_target(settings, settings.base_id),
    )
    warehouse.initialize()
    run_id = f"push-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    with open_client(settings) as client, Progress(sys.stderr) as progress:
        summary = push_file(
            args.file, args.type, client, warehouse, run_id=run_id,
            options=PushOptions(post=args.post, limits=limits), on_progress=progress.entity(args.type).advance,
        )  # fmt: skip
    print_summary(summary)
    return 0 if summary.complete else EXIT_NOT_LANDED


def print_summary(summary: ImportSummary) -> None:
    with pl.Config(tbl_rows=60, tbl_cols=20, fmt_str_lengths=160, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, tbl_width_chars=220):  # fmt: skip
        print(f"Import {summary.import_id} ({summary.doc_type}){' — dry run, nothing sent' if summary.dry_run else ''}")
        print(summary_frame(summary))
        if summary.dry_run:
            print(f"{summary.requests} batch requests would be sent")
        if summary.reasons:
            print(f"\nDid not land ({len(summary.reasons)}):")
            print(reasons_frame(summary.reasons))
    if summary.aborted:
        print(f"\nStopped early: {summary.aborted}\nRe-run the same command to resume; nothing is sent twice.")
    if summary.complete:
        posted = " and posted" if summary.post else ""
        print(f"\nEverything landed{posted}: {summary.landed} of {summary.documents}, verified by read-back.")
    elif not summary.dry_run:
        print(f"\n{summary.held()}")
    print(f"Per document: onec-etl query \"SELECT * FROM import_results WHERE import_id = '{summary.import_id}'\"")  # noqa: S608 (printed, not run)
