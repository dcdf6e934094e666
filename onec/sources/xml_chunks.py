"""The record elements of a large XML file, each chunk parsed in a thread of its own while the last one is read.

Why: libxml2 parses with the GIL released, so the next chunk is parsed on the other core while Python turns the
current chunk's records into dicts; the file goes about as fast as the slower of the two instead of at their sum
(parsing is ~40 % of the single-threaded `safe_iterparse` reader's time).

A chunk is the bytes between two record end tags, parsed as a document of its own inside the start tags of the
elements open where it begins and closed with the end tags of those open where it ends: the same elements the
whole file gives for those bytes. Which elements are open is not scanned for but proved by the parse: a chunk is
first parsed as if it left open what it found open (true of all but the few chunks where a section starts or
ends), and libxml2 accepts that document only if it is so. A chunk it refuses is scanned for the tags between its
records and parsed again with what they leave open; the last chunk must close everything itself, so a truncated
file is never completed by the wrapper. A cut that is not a real record end tag (one inside a comment or CDATA
section) leaves that construct unterminated in its chunk, which no parse accepts.

Where that fails (a record inside a record, a chunk that is really malformed), the rest of the file, from the
start of that chunk, goes to `safe_iterparse` inside the same open elements: slower, and the reader that names
a real error's position. The first chunk is parsed with the file's own prolog, so the prolog is checked too.

One thread per chunk rather than a pool: lxml keeps a string dictionary per thread, and a chunk's tree is freed in
the reading thread, which must never happen while another parse adds to the dictionary that tree uses.
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from lxml import etree

from onec.sources.xml_safety import PROLOG_LIMIT, Prefixed, Readable, hardened_parser, root_start_span, safe_iterparse

CHUNK_BYTES = 4 * 1024 * 1024
_READ_BYTES = 1024 * 1024
_MAX_BUFFER_CHUNKS = 16
_ATTRIBUTES = rb"""(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*"""
_GLUE_TAG = re.compile(rb"<(?:/([^\s/>]+)\s*|([^\s/>!?]+)" + _ATTRIBUTES + rb"(/?))>")
_START_TAG_REST = re.compile(_ATTRIBUTES + rb"(/?)>")
_DECLARATION = re.compile(rb"<\?xml\s.*?\?>", re.DOTALL)

Located = tuple[etree._Element, int]
"""A record element and the offset from its `sourceline` to its line in the file."""


@dataclass(frozen=True)
class _Open:
    """An element open where a chunk begins: its name and its start tag as the file spelled it."""

    name: bytes
    start_tag: bytes


Stack = tuple[_Open, ...]


@dataclass(frozen=True)
class _Chunk:
    body: bytes
    first_line: int
    lead: bytes
    """What goes before the open start tags: the file's prolog for the first chunk, its XML declaration after."""
    opened: Stack
    closing: Stack
    """What the chunk is parsed as leaving open: nothing for the last chunk."""
    final: bool

    @property
    def prefix(self) -> bytes:
        return self.lead + b"".join(element.start_tag for element in self.opened)

    @property
    def line_offset(self) -> int:
        return self.first_line - 1 - self.prefix.count(b"\n")

    def parse(self) -> etree._Element | None:
        """The chunk's tree, or None when libxml2 refuses it as wrapped."""
        suffix = b"".join(b"</" + element.name + b">" for element in reversed(self.closing))
        try:
            return etree.fromstring(self.prefix + self.body + suffix, hardened_parser())
        except etree.LxmlError:  # the sequential reader meets it again, and reports it
            return None


class _Parse(threading.Thread):
    """One chunk parsed in a thread of its own (see the module docstring for why not a pool), and its records
    listed there too, so the reading thread only turns them into dicts."""

    def __init__(self, chunk: _Chunk, tags: tuple[str, ...]) -> None:
        super().__init__(name="xml-chunk", daemon=True)
        self.chunk = chunk
        self.records: list[etree._Element] | None = None
        self._tags = tags
        self.start()

    def run(self) -> None:
        self.records = _flat_records(self.chunk.parse(), self._tags)


def _flat_records(root: etree._Element | None, tags: tuple[str, ...]) -> list[etree._Element] | None:
    """The records of a parsed chunk in file order; None (read it sequentially) when a record is inside another:
    read sequentially, the inner one comes first and is cleared before the outer one is read, which a tree
    cannot reproduce. Records share a few parents (their sections), so only those are checked."""
    if root is None:
        return None
    records = list(root.iter(*tags))
    for parent in {record.getparent() for record in records}:
        if parent is None or parent.tag in tags or next(parent.iterancestors(*tags), None) is not None:
            return None
    return records


def chunked_records(stream: Readable, tags: tuple[str, ...], *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Located]:
    """Every element named in `tags`, in file order, from a stream `checked_stream` has vouched for.

    An element stays valid until an element of a later chunk is asked for. Raises XmlFileError like
    `safe_iterparse`, with the file's line.
    """
    head = stream.read(PROLOG_LIMIT)
    root_start, root_end = root_start_span(head)
    root = head[root_start:root_end]
    if root.endswith(b"/>"):  # an empty root: nothing to cut
        yield from ((element, 0) for element in safe_iterparse(Prefixed(head, stream), tags))
        return
    cuts = _Cuts(Prefixed(head[root_end:], stream), tags, chunk_bytes)
    bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    declaration = _DECLARATION.match(head, bom)
    lead, line = head[:root_start], head.count(b"\n", 0, root_end) + 1
    opened: Stack = (_Open(root[1:].split(maxsplit=1)[0].rstrip(b">"), root),)
    ahead: _Parse | None = None
    for body, final, whole_records in cuts:
        chunk = _Chunk(body, line, lead, opened, () if final else opened, final)
        lead, line = declaration.group(0) if declaration else b"", line + body.count(b"\n")
        parse = _Parse(chunk, tags) if whole_records else None
        if ahead is not None:
            settled, closing = _settled(ahead, cuts)
            if settled is None:
                yield from _sequential(ahead.chunk, body, cuts, tags)
                return
            if closing != chunk.opened:  # a section started or ended in `ahead`: this chunk is inside it
                chunk = replace(chunk, opened=closing, closing=() if final else closing)
                if parse is not None:
                    parse.join()
                    parse = _Parse(chunk, tags)
            yield from _records(settled, ahead.chunk.line_offset)
        if parse is None:
            yield from _sequential(chunk, b"", cuts, tags)
            return
        opened, ahead = chunk.closing, parse
    if ahead is not None:
        settled, _ = _settled(ahead, cuts)
        if settled is None:
            yield from _sequential(ahead.chunk, b"", cuts, tags)
            return
        yield from _records(settled, ahead.chunk.line_offset)


def _settled(parse: _Parse, cuts: _Cuts) -> tuple[list[etree._Element] | None, Stack]:
    """The chunk's records and what it leaves open; when the guess of what it leaves open was wrong, the scan's
    answer, proved by parsing the chunk again. (None, …) when the chunk needs the sequential reader."""
    parse.join()
    chunk = parse.chunk
    if parse.records is not None or chunk.final:
        return parse.records, chunk.closing
    closing = cuts.open_after(chunk.body, chunk.opened)
    if closing is None or closing == chunk.closing:
        return None, chunk.closing
    return _flat_records(replace(chunk, closing=closing).parse(), cuts.tags), closing


def _records(records: list[etree._Element], line_offset: int) -> Iterator[Located]:
    for element in records:
        yield element, line_offset


def _sequential(first: _Chunk, read_on: bytes, cuts: _Cuts, tags: tuple[str, ...]) -> Iterator[Located]:
    """The rest of the file from `first` on (`read_on`: the next chunk, already cut), read by `safe_iterparse`
    inside the elements open there."""
    rest = Prefixed(first.prefix + first.body + read_on + cuts.unread(), cuts.stream)
    offset = first.line_offset
    for element in safe_iterparse(rest, tags, line_offset=offset):
        yield element, offset


class _Cuts:
    """The body after the root start tag, cut just after record end tags into chunks of about `size` bytes."""

    def __init__(self, stream: Readable, tags: tuple[str, ...], size: int) -> None:
        self.stream = stream
        self._buffer = bytearray()
        self._size = size
        self._ends = [b"</" + tag.encode() for tag in tags]
        names = b"|".join(re.escape(tag.encode()) for tag in tags)
        self._record_start = re.compile(rb"<(" + names + rb")(?=[\s/>])")
        self._record_end = {tag.encode(): re.compile(rb"</" + re.escape(tag.encode()) + rb"\s*>") for tag in tags}
        self.tags = tags

    def __iter__(self) -> Iterator[tuple[bytes, bool, bool]]:
        """(chunk, whether it is the last one, whether it was cut after a record end tag or at EOF)."""
        eof = False
        while True:
            while not eof and len(self._buffer) < self._size:
                eof = not self._read()
            cut = None if eof else self._cut()
            while cut is None and not eof and len(self._buffer) < _MAX_BUFFER_CHUNKS * self._size:
                eof = not self._read()  # no record end yet: a record longer than a chunk
                cut = None if eof else self._cut()
            if cut is None and not eof:  # still none: the rest is for the sequential reader
                yield self.unread(), False, False
                return
            body = bytes(self._buffer[:cut]) if cut is not None else bytes(self._buffer)
            del self._buffer[: len(body)]
            yield body, cut is None, True
            if cut is None:
                return

    def unread(self) -> bytes:
        """What was read from the stream but not handed out as a chunk."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def _read(self) -> bool:
        piece = self.stream.read(min(_READ_BYTES, self._size))
        self._buffer += piece
        return bool(piece)

    def _cut(self) -> int | None:
        """Just after the last record end tag in the buffer, or None when it holds none (yet)."""
        cut: int | None = None
        for end_tag in self._ends:
            end = len(self._buffer)
            while (start := self._buffer.rfind(end_tag, 0, end)) >= 0:
                match = self._record_end[end_tag[2:]].match(self._buffer, start)
                if match is not None:
                    cut = max(cut or 0, match.end())
                    break
                end = start
        return cut

    def open_after(self, body: bytes, opened: Stack) -> Stack | None:
        """The elements open after `body`, given those open before it, from the tags between its records;
        None when a scan cannot tell (comments, CDATA or processing instructions in it, records inside records)."""
        if b"<!" in body or b"<?" in body:
            return None
        stack = list(opened)
        position = 0
        while (record := self._record_start.search(body, position)) is not None:
            if not _follow_glue(body[position : record.start()], stack) or not stack:
                return None
            tag = _START_TAG_REST.match(body, record.end())
            if tag is None:
                return None
            position = tag.end()
            if tag.group(1):
                continue
            end = self._record_end[record.group(1)].search(body, position)
            if end is None or self._record_start.search(body, position, end.start()) is not None:
                return None  # a record cut in two, or a record inside a record
            position = end.end()
        return tuple(stack) if _follow_glue(body[position:], stack) else None


def _follow_glue(glue: bytes, stack: list[_Open]) -> bool:
    """Apply the tags between records to `stack`; False for anything but well-nested tags, and text in the root."""
    if not glue.strip():
        return True
    position = 0
    while (less := glue.find(b"<", position)) >= 0:
        if glue[position:less].strip() and not stack:
            return False
        tag = _GLUE_TAG.match(glue, less)
        if tag is None:
            return False
        ended, started, self_closing = tag.groups()
        if ended is not None:
            if not stack or stack.pop().name != ended:
                return False
        elif not stack:
            return False  # a second root element
        elif not self_closing:
            stack.append(_Open(started, tag.group(0)))
        position = tag.end()
    return not (glue[position:].strip() and not stack)
