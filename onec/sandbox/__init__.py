"""The bundled 1C sandbox: a generated trade base served by an awkward, faulty exchange HTTP service (§1: reads,
writes, CSV/XML exports, webhooks) and by 1C's standard OData interface (§2), plus exchange files (§1.4, §1.5, §3).

The server (`onec.sandbox.server`, uvicorn), the test PKI (`onec.sandbox.certs`, needs `cryptography`) and the
CommerceML writer (`onec.sandbox.commerceml`, needs `lxml`) are imported from their modules, so that importing the
sandbox for in-process use stays light.
"""

from onec.sandbox.data import Document, Good, Item, Line, SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine, SandboxRequest, SandboxResponse
from onec.sandbox.exports import ExportVariant, write_export_files
from onec.sandbox.transport import SandboxTransport
from onec.sandbox.webhooks import WebhookHub

__all__ = [
    "Document",
    "ExportVariant",
    "FaultConfig",
    "Good",
    "Item",
    "Line",
    "SandboxConfig",
    "SandboxData",
    "SandboxEngine",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxTransport",
    "WebhookHub",
    "write_export_files",
]
