"""The reverse pipeline: bulk imports of documents and goods into 1C, chunked within its limits, exactly once.

`push_file` is the whole path (read → validate → ledger → batches → post → verify → report); the modules are its
steps: readers, plan, content, chunking, ledger, turns, sender, readback, verify, report, run.
"""

from onec.push.chunking import Limits
from onec.push.plan import ImportPlan, Rejection, plan_import
from onec.push.readers import GOODS, InputError, read_records
from onec.push.report import ImportSummary
from onec.push.run import PushOptions, import_id_for, preview_file, push_file, push_plan

__all__ = [
    "GOODS",
    "ImportPlan",
    "ImportSummary",
    "InputError",
    "Limits",
    "PushOptions",
    "Rejection",
    "import_id_for",
    "plan_import",
    "preview_file",
    "push_file",
    "push_plan",
    "read_records",
]
