"""The bundled 1C sandbox: a generated trade base served by an awkward, faulty exchange HTTP service (§1).

The server (`onec.sandbox.server`, uvicorn) and the test PKI (`onec.sandbox.certs`, needs `cryptography`) are
imported from their modules, so that importing the sandbox for in-process use stays light.
"""

from onec.sandbox.data import Document, Good, Line, SandboxData
from onec.sandbox.engine import FaultConfig, SandboxConfig, SandboxEngine, SandboxRequest, SandboxResponse
from onec.sandbox.transport import SandboxTransport

__all__ = [
    "Document",
    "FaultConfig",
    "Good",
    "Line",
    "SandboxConfig",
    "SandboxData",
    "SandboxEngine",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxTransport",
]
