"""Hardened streaming XML for exchange files (UDE XML, CommerceML): no DTDs, no entities, no network.

Why a module of its own: both XML readers take files from outside (a 1C export, a folder anyone can drop into)
and must refuse the classic attacks the same way. The prolog is read before lxml sees the document, so a
DOCTYPE (which carries entity declarations: billion laughs, external entities) is refused before anything is
parsed; lxml itself runs with entity resolution, DTD loading and network access off, and without `huge_tree`,
so its own size limits stay on.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from lxml import etree

from onec.errors import InputDataError

PROLOG_LIMIT = 64 * 1024
_READ_SIZE = 1024 * 1024
_MISC = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.DOTALL)
_ROOT_START = re.compile(rb"""\s*<[A-Za-z_\x80-\xff][^\s/>]*(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/?>""")


class XmlFileError(InputDataError, ValueError):
    """The XML cannot be read safely or completely; the message names the position where it can."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Prefixed:
    """A binary stream whose first bytes were already read (to inspect the prolog)."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def checked_stream(stream: Readable) -> tuple[Readable, bytes]:
    """The stream, ready for `safe_iterparse`, and the raw start tag of the root element.

    Raises XmlFileError for a DOCTYPE or ENTITY declaration, a UTF-16/32 file (exchange files are UTF-8 or
    windows-1251 by contract), an empty file, or a prolog longer than PROLOG_LIMIT.
    """
    head = stream.read(PROLOG_LIMIT)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head[:4].count(0) >= 2:
        raise XmlFileError("the XML is UTF-16 or UTF-32; exchange files must be UTF-8 or windows-1251")
    if not head.strip():
        raise XmlFileError("the XML file is empty")
    position = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    while match := _MISC.match(head, position):
        position = match.end()
    rest = head[position:].lstrip()
    if rest.startswith((b"<!DOCTYPE", b"<!doctype", b"<!ENTITY")):
        raise XmlFileError(
            "the XML has a DOCTYPE/ENTITY declaration, which exchange files never need; refused"
            " (entity expansion and external entities are an attack vector)"
        )
    root = _ROOT_START.match(head, position)
    if root is None:
        raise XmlFileError(f"the XML has no root element within its first {PROLOG_LIMIT // 1024} KB")
    return _Prefixed(head, stream), root.group(0)


def safe_iterparse(stream: Readable, tags: tuple[str, ...]) -> Iterator[etree._Element]:
    """`end` events of the given tags, each element cleared (with its earlier siblings) after the caller is
    done with it, so memory stays flat in the file size. Syntax errors name the line and column."""
    events = etree.iterparse(
        stream,
        events=("end",),
        tag=tags,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    checked = False
    try:
        for _, element in events:
            if not checked and element.getroottree().docinfo.internalDTD is not None:
                raise XmlFileError("the XML has a DOCTYPE declaration; refused")
            checked = True
            yield element
            element.clear(keep_tail=False)
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        where = f" at line {line}, column {column}" if line > 0 else ""  # 0: libxml2 cannot tell
        raise XmlFileError(f"the XML is malformed or truncated{where}: {exc.msg}") from None


def open_binary(path: Path) -> BinaryIO:
    return path.open("rb", buffering=_READ_SIZE)


def local_name(tag: object) -> str:
    """`{urn:…}Товар` → `Товар`; comments and processing instructions have no name."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def root_name(start_tag: bytes) -> str:
    """The root element's local name from its raw start tag (`<ns:Name attr=…>` → `Name`)."""
    name = start_tag.strip()[1:].split(maxsplit=1)[0].rstrip(b">/")
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        text = name.decode("cp1251", errors="replace")  # the other encoding exchange files come in
    return text.rsplit(":", 1)[-1]
