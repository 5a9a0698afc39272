"""Where a request's body ends, read exactly as Cheroot will read it, so that the gate
can wait for the whole body and a worker never waits for one (SPEC section 7).

The gate reads a request head and then its body before any worker sees the
connection. If the gate and Cheroot disagreed on the framing (which header is
the Content-Length, whether the body is chunked, where a chunk ends), a worker
would wait on the socket for bytes the gate did not read, or a request could be
smuggled past one of them. So the rules here are Cheroot's own (cheroot
11.1, ``cheroot.server.HeaderReader``, ``HTTPRequest.read_request_headers``,
``ChunkedRFile``), restated: header names split at the first colon, stripped
and title-cased; continuation lines replace the value; comma-separated headers
joined with ", "; ``Content-Length`` read with Python's ``int``; a chunked body
only for an HTTP/1.1 request whose every transfer coding is ``chunked``;
``Expect`` honoured only when it is exactly ``100-continue``; chunk sizes
read with ``int(text, 16)`` after the extension; the chunk-size lines count
towards the body bound, as in ``ChunkedRFile``.

Written by hand because Cheroot's parser reads from a blocking file and cannot
be asked where a body ends in bytes that have arrived so far.
"""

from __future__ import annotations

from dataclasses import dataclass

# cheroot.server.comma_separated_headers (cheroot 11.1): only these are joined.
_COMMA_SEPARATED = frozenset(
    b"Accept Accept-Charset Accept-Encoding Accept-Language Accept-Ranges Allow "
    b"Cache-Control Connection Content-Encoding Content-Language Expect If-Match "
    b"If-None-Match Pragma Proxy-Authenticate Te Trailer Transfer-Encoding Upgrade Vary "
    b"Via Warning Www-Authenticate".split()
)
MAX_CHUNK_LINE = 4096  # a chunk-size line longer than this (extensions included): 400
MAX_TRAILERS = 64 * 1024  # trailer lines after the last chunk, together


@dataclass(frozen=True)
class Framing:
    """How the body of one request is framed, as Cheroot will read it.

    ``kind``: "none" (nothing to read, or Cheroot answers without reading:
    400, 413, 501), "length" (``length`` bytes follow the head) or "chunked".
    ``expect_continue``: Cheroot would answer ``100 Continue`` first.
    """

    kind: str
    length: int = 0
    expect_continue: bool = False


def headers(head: bytes) -> dict[bytes, bytes] | None:
    """The head's headers as Cheroot's HeaderReader builds them; None where it would
    answer 400 (a line without a colon, a line not ended by CRLF)."""
    lines = head.split(b"\r\n")
    if len(lines) < 2 or lines[-1] != b"" or lines[-2] != b"":
        return None  # a bare LF somewhere: Cheroot answers 400 before any body
    found: dict[bytes, bytes] = {}
    name = None
    for line in lines[1:-2]:
        if b"\n" in line:
            return None
        if line[:1] in (b" ", b"\t"):
            if name is None:
                return None
            value = line.strip()
        else:
            key, colon, value = line.partition(b":")
            if not colon:
                return None
            value = value.strip()
            name = key.strip().title()
        if name in _COMMA_SEPARATED and found.get(name):
            value = found[name] + b", " + value
        found[name] = value
    return found


def framing(head: bytes, max_body: int) -> Framing:
    """The body framing of the request whose whole head (through its empty line) is
    ``head``, given Cheroot's body bound ``max_body`` (bytes)."""
    if head.startswith(b"\r\n"):  # Cheroot skips one empty line before the request line
        head = head[2:]
    found = headers(head)
    if found is None:
        return Framing("none")
    try:
        length = int(found.get(b"Content-Length", 0))
    except ValueError:
        return Framing("none")  # Cheroot: 400 Malformed Content-Length
    if max_body and length > max_body:
        return Framing("none")  # Cheroot: 413 before reading or sending 100 Continue
    request_line = head.split(b"\r\n", 1)[0]
    http11 = request_line.rsplit(b" ", 1)[-1][5:] not in (b"", b"1.0", b"0.9")
    expect = found.get(b"Expect", b"") == b"100-continue"
    codings = found.get(b"Transfer-Encoding") if http11 else None
    if codings:
        names = [c.strip().lower() for c in codings.split(b",") if c.strip()]
        if names and any(c != b"chunked" for c in names):
            return Framing("none")  # Cheroot: 501 Unimplemented, connection closed
        if names:
            return Framing("chunked", expect_continue=expect)
    if length > 0:
        return Framing("length", length, expect)
    return Framing("none")


def without_expect(head: bytes) -> bytes:
    """``head`` without its ``Expect`` header lines (and their continuation lines).

    Once the gate has answered ``100 Continue`` and read the body, the expectation
    is met; left in, it would make Cheroot send a second interim answer.
    """
    lines = head.split(b"\r\n")
    kept = lines[:1]
    dropping = False
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and line:
            if not dropping:
                kept.append(line)
            continue
        dropping = line.partition(b":")[0].strip().title() == b"Expect" if line else False
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept)


class ChunkedError(ValueError):
    """A chunked body the gate must answer itself: ``status`` is "400" or "413"."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status


class ChunkedScanner:
    """Finds the end of a chunked body (RFC 9112 section 7.1) as bytes arrive.

    ``scan(buf)`` looks at ``buf[start:]`` (``start``: where the body begins)
    from where the last call stopped and returns the index just past the body
    (after the last chunk and the trailer section's empty line), or -1 while it
    is incomplete; ChunkedError when Cheroot would refuse it (400) or it grows
    past ``max_body`` counting chunk-size lines as ChunkedRFile does (413).
    Linear: every byte is looked at once. ``trailers_at`` then says where the
    trailer section begins: Cheroot never reads trailers (its ChunkedRFile stops
    at the last chunk), so the gate drops them and a kept-alive connection's next
    request is parsed from its own first line.
    """

    def __init__(self, start: int, max_body: int) -> None:
        self.pos = start
        self.max_body = max_body
        self.counted = 0  # ChunkedRFile.bytes_read: size lines and data
        self.data_left = -1  # bytes of chunk data (and its CRLF) still to come; -1: a size line
        self.in_trailers = False
        self.trailer_bytes = 0
        self.trailers_at = -1  # where the trailer section begins (after the last chunk)

    def scan(self, buf: bytes | bytearray) -> int:
        while True:
            if self.data_left >= 0:
                if len(buf) < self.pos + self.data_left + 2:
                    return -1
                end = self.pos + self.data_left
                if buf[end : end + 2] != b"\r\n":
                    raise ChunkedError("400", "chunk data not followed by CRLF")
                self.pos, self.data_left = end + 2, -1
                continue
            newline = buf.find(b"\n", self.pos)
            if newline < 0:
                if len(buf) - self.pos > (MAX_TRAILERS if self.in_trailers else MAX_CHUNK_LINE):
                    raise ChunkedError("400", "chunk-size or trailer line too long")
                return -1
            line = bytes(buf[self.pos : newline + 1])
            self.pos = newline + 1
            if self.in_trailers:
                self.trailer_bytes += len(line)
                if line in (b"\r\n", b"\n"):
                    return self.pos
                if self.trailer_bytes > MAX_TRAILERS:
                    raise ChunkedError("400", "trailer section too long")
                continue
            self.counted += len(line)
            if self.max_body and self.counted > self.max_body:
                raise ChunkedError("413", "chunked body over the bound")
            text = line.strip().split(b";", 1)[0]
            try:
                size = int(text, 16)
            except ValueError:
                raise ChunkedError("400", f"bad chunk size {text[:20]!r}") from None
            if size <= 0:
                self.in_trailers = True
                self.trailers_at = self.pos
                continue
            self.counted += size
            if self.max_body and self.counted > self.max_body:
                raise ChunkedError("413", "chunked body over the bound")
            self.data_left = size
