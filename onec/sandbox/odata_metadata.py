"""`$metadata`: the EDMX document 1C publishes beside its OData entity sets, derived from the rows served.

Why derived and minimal: clients probe `$metadata` to learn which sets are published and how their properties are
typed (GUID keys, doubles, dates). Deriving it from the same rows the service answers with keeps the two from ever
disagreeing; it lists entity types, their properties and the container, which is what a client reads, not the
whole of 1C's EDMX (navigation properties and annotations are left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from onec.sandbox.odata_model import Row

NAMESPACE = "StandardODATA"


def metadata_document(samples: Mapping[str, Row | None]) -> bytes:
    """EDMX for the entity sets in `samples` (one row each, None when a set is empty: it is typed by name only)."""
    types = "".join(_entity_type(name, row) for name, row in samples.items())
    sets = "".join(
        f"<EntitySet Name={quoteattr(name)} EntityType={quoteattr(f'{NAMESPACE}.{name}')}/>" for name in samples
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<edmx:Edmx xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" Version="1.0">'
        '<edmx:DataServices xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
        ' m:DataServiceVersion="3.0">'
        f'<Schema xmlns="http://schemas.microsoft.com/ado/2009/11/edm" Namespace="{NAMESPACE}">{types}'
        f'<EntityContainer Name="EnterpriseV8" m:IsDefaultEntityContainer="true">{sets}</EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    ).encode()


def _entity_type(name: str, row: Row | None) -> str:
    properties = "".join(_property(field, value) for field, value in (row or {}).items())
    key = '<Key><PropertyRef Name="Ref_Key"/></Key>' if row and "Ref_Key" in row else ""
    return f"<EntityType Name={quoteattr(name)}>{key}{properties}</EntityType>"


def _property(name: str, value: Any) -> str:
    if isinstance(value, list):
        kind = f"Collection({NAMESPACE}.{name}_RowType)"
    elif isinstance(value, bool):
        kind = "Edm.Boolean"
    elif isinstance(value, float | int):
        kind = "Edm.Double"
    elif isinstance(value, datetime):
        kind = "Edm.DateTime"
    elif name.endswith("_Key"):
        kind = "Edm.Guid"
    else:
        kind = "Edm.String"
    nullable = "" if name == "Ref_Key" else ' Nullable="true"'
    return f"<Property Name={quoteattr(name)} Type={quoteattr(kind)}{nullable}/>"
