"""What an import did, document by document (`import_results` in the warehouse) and in total (`ImportSummary`).

Why both: the summary answers "did everything land?" at a glance (and sets the exit code); the table answers
"what happened to document X, and why?" for every document of the file, long after the run.
"""

# ruff: noqa: S608 — SQL text is built only from this module's fixed identifiers; values are bound parameters.

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from onec.push.content import DocumentContent
from onec.push.ledger import LANDED, Entry, State

RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS import_results (
    import_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    doc_type VARCHAR NOT NULL,
    number VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    onec_id VARCHAR,
    posted BOOLEAN,
    verified BOOLEAN,
    lines INTEGER,
    total DECIMAL(18, 2),
    attempts INTEGER,
    reason VARCHAR,
    finished_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (import_id, doc_type, number)
)
"""
OUTCOMES = ("created", "already_there", "conflict", "invalid", "oversize", "refused", "failed")
"""Per document. Goods rows report `already_there` for a position 1C updated."""
_OUTCOME_OF_STATE = {
    State.CREATED: "created",
    State.EXISTS: "already_there",
    State.CONFLICT: "conflict",
    State.INVALID: "invalid",
    State.OVERSIZE: "oversize",
    State.REFUSED: "refused",
}


@dataclass(frozen=True)
class Verification:
    """The read-back of one landed document: did 1C's copy match what was sent, and is it posted there (None: no
    copy was read)?"""

    verified: bool
    problem: str | None = None
    posted: bool | None = None


@dataclass(frozen=True)
class ImportSummary:
    """The whole import in figures; `reasons` lists every document that did not land, with why."""

    import_id: str
    doc_type: str
    documents: int
    sent: int
    requests: int
    counts: Mapping[str, int]
    posted: int
    verified: int
    mismatched: int
    dry_run: bool = False
    aborted: str | None = None
    reasons: list[tuple[str, str, str]] = field(default_factory=list)
    """(number, outcome, reason) of every document that did not land, of every verification mismatch and, when
    posting was asked for, of every document 1C still holds as a draft."""
    http: Mapping[str, int] = field(default_factory=dict)
    post: bool = False
    """Posting was asked for: a landed document that 1C holds as a draft is then unfinished work."""
    drafts: int = 0
    """Landed documents 1C holds unposted although posting was asked for (0 when it was not)."""

    @property
    def landed(self) -> int:
        return self.counts.get("created", 0) + self.counts.get("already_there", 0)

    @property
    def complete(self) -> bool:
        """Everything in the file is in 1C as sent (and posted, when asked): the exit code is zero only then."""
        landed = self.landed == self.documents and self.mismatched == 0 and self.drafts == 0
        return not self.dry_run and self.aborted is None and landed

    def held(self) -> str:
        """One line saying what 1C holds of the file, posting included (for the CLI and the Dagster failure)."""
        line = f"Held in 1C: {self.landed} of {self.documents} documents"
        if not self.post:
            return line
        line += f"; posted: {self.posted}"
        if self.drafts:
            line += f"; still drafts: {self.drafts} (posting did not finish: re-run the same command to post them)"
        return line

    def as_metadata(self) -> dict[str, Any]:
        """Flat figures for Dagster metadata (no secrets: reasons are 1C's and validation's messages)."""
        return {
            "import_id": self.import_id,
            "doc_type": self.doc_type,
            "documents": self.documents,
            "sent": self.sent,
            "requests": self.requests,
            **{outcome: self.counts.get(outcome, 0) for outcome in OUTCOMES},
            "posted": self.posted,
            "verified": self.verified,
            "mismatched": self.mismatched,
            "drafts": self.drafts,
            "complete": self.complete,
            "aborted": self.aborted or "",
            **{f"http_{name}": value for name, value in self.http.items()},
        }


def outcome_of(entry: Entry) -> str:
    return _OUTCOME_OF_STATE.get(entry.state, "failed")


def summarize(
    *,
    import_id: str,
    doc_type: str,
    entries: Mapping[str, Entry],
    checks: Mapping[str, Verification],
    sent: int,
    requests: int,
    aborted: str | None,
    http: Mapping[str, int],
    post: bool = False,
) -> ImportSummary:
    counts = Counter(outcome_of(entry) for entry in entries.values())
    reasons = [
        (number, outcome_of(entry), entry.last_error or "no answer from 1C yet; re-run to resume")
        for number, entry in sorted(entries.items())
        if entry.state not in LANDED
    ]
    reasons += [
        (number, "mismatch", check.problem or "") for number, check in sorted(checks.items()) if not check.verified
    ]
    posted = {
        number: posted_in_1c(entry, checks.get(number)) for number, entry in entries.items() if entry.state in LANDED
    }
    drafts = sorted(number for number, is_posted in posted.items() if not is_posted) if post else []
    reasons += [(number, "draft", _draft_reason(entries[number])) for number in drafts]
    return ImportSummary(
        import_id=import_id,
        doc_type=doc_type,
        documents=len(entries),
        sent=sent,
        requests=requests,
        counts={outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
        posted=sum(posted.values()),
        verified=sum(1 for c in checks.values() if c.verified),
        mismatched=sum(1 for c in checks.values() if not c.verified),
        aborted=aborted,
        reasons=reasons,
        http=http,
        post=post,
        drafts=len(drafts),
    )


def posted_in_1c(entry: Entry, check: Verification | None) -> bool:
    """Whether 1C holds a landed document posted: as its copy said on read-back, else as the ledger recorded."""
    return check.posted if check is not None and check.posted is not None else entry.posted


def _draft_reason(entry: Entry) -> str:
    refused = entry.last_error if entry.last_error and entry.last_error.startswith("posting refused") else None
    return refused or "1C holds it as a draft: posting did not finish; re-run the same command to post it"


def results_frame(
    *, import_id: str, run_id: str, doc_type: str, entries: Mapping[str, Entry], contents: Mapping[str, DocumentContent]
) -> pl.DataFrame:
    """This import's rows of `import_results`, before the verification is known (`verified` empty); built while
    the last windows are still being read back. Built by column: Polars builds a frame of Python rows with
    decimals in it several times slower."""
    rows = list(entries.values())
    own = [contents.get(entry.number) for entry in rows]
    columns: dict[str, list[Any]] = {
        "number": [entry.number for entry in rows],
        "outcome": [outcome_of(entry) for entry in rows],
        "onec_id": [entry.onec_id for entry in rows],
        "posted": [entry.posted for entry in rows],
        "verified": [None] * len(rows),
        "lines": [content.lines if content is not None else None for content in own],
        "total": [content.total if content is not None else None for content in own],
        "attempts": [entry.attempts for entry in rows],
        "reason": [entry.last_error if entry.state not in LANDED else None for entry in rows],
    }
    fixed = {"import_id": import_id, "run_id": run_id, "doc_type": doc_type, "finished_at": dt.datetime.now(dt.UTC)}
    return pl.DataFrame(columns, schema={name: _RESULT_SCHEMA[name] for name in columns}).select(
        (pl.lit(fixed[name], _RESULT_SCHEMA[name]) if name in fixed else pl.col(name)).alias(name)
        for name in _RESULT_SCHEMA
    )


def with_checks(results: pl.DataFrame, checks: Mapping[str, Verification]) -> pl.DataFrame:
    """The rows with their verification: `verified`, `posted` as 1C's copy says (when read), and a mismatch's
    problem as the reason."""
    verified = pl.DataFrame(
        {
            "number": list(checks),
            "_verified": [check.verified for check in checks.values()],
            "_problem": [check.problem for check in checks.values()],
            "_posted": [check.posted for check in checks.values()],
        },
        schema={"number": pl.String, "_verified": pl.Boolean, "_problem": pl.String, "_posted": pl.Boolean},
    )
    return (
        results.join(verified, on="number", how="left", maintain_order="left")
        .with_columns(
            pl.col("_verified").alias("verified"),
            pl.coalesce("_posted", "posted").alias("posted"),
            pl.when(pl.col("_verified").not_()).then(pl.col("_problem")).otherwise(pl.col("reason")).alias("reason"),
        )
        .select(list(_RESULT_SCHEMA))
    )


def write_results(con: duckdb.DuckDBPyConnection, import_id: str, results: pl.DataFrame) -> None:
    """Replace this import's rows of `import_results` (a re-run rewrites them, never duplicates), in the caller's
    transaction on a writer connection."""
    con.execute(RESULTS_DDL)
    con.execute("DELETE FROM import_results WHERE import_id = ?", [import_id])
    con.register("results", results.to_arrow())
    con.execute(f"INSERT INTO import_results ({', '.join(_RESULT_SCHEMA)}) SELECT * FROM results")
    con.unregister("results")


_RESULT_SCHEMA: dict[str, pl.DataType] = {
    "import_id": pl.String(),
    "run_id": pl.String(),
    "doc_type": pl.String(),
    "number": pl.String(),
    "outcome": pl.String(),
    "onec_id": pl.String(),
    "posted": pl.Boolean(),
    "verified": pl.Boolean(),
    "lines": pl.Int32(),
    "total": pl.Decimal(18, 2),
    "attempts": pl.Int32(),
    "reason": pl.String(),
    "finished_at": pl.Datetime("us", "UTC"),
}


def summary_frame(summary: ImportSummary) -> pl.DataFrame:
    """The summary as a one-row table for the CLI."""
    return pl.DataFrame(
        [{"documents": summary.documents, "sent": summary.sent, **summary.counts, "posted": summary.posted,
          **({"drafts": summary.drafts} if summary.post else {}), "verified": summary.verified,
          "mismatched": summary.mismatched}]
    )  # fmt: skip


def reasons_frame(reasons: Sequence[tuple[str, str, str]], limit: int = 50) -> pl.DataFrame:
    return pl.DataFrame(
        list(reasons[:limit]), schema={"number": pl.String, "outcome": pl.String, "reason": pl.String}, orient="row"
    )
