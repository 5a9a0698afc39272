"""Every hostile-client kind of SPEC section 7, as data: one entry each.

An entry names the kind, says what it is and what it sends (docs/resilience.md's table
is these words), quotes the SPEC section 7 item it exercises, and points at the function
that attacks (in :mod:`~harness.hostile.handshake`, :mod:`~harness.hostile.request` or
:mod:`~harness.hostile.post_handshake`, by the stage where it does its harm). Adding a
kind is one function there and one entry here; the battery (``python -m
matrix.resilience``), its tables and the reports pick it up by name.
"""

from __future__ import annotations

from . import handshake, post_handshake, request
from .attacker import AT_ONCE, FIRST, FLOOD, SLOW_READ, STREAM, TRICKLE, Kind

SILENT_BEFORE = (
    "connects and sends nothing; sends one byte; sends a record header or part of a ClientHello"
)
HELLO = "sends a whole ClientHello, then nothing; trickles a ClientHello one byte at a time"
AFTER_HANDSHAKE = (
    "finishes the handshake, then sends nothing; trickles request headers or a body one byte at "
    "a time"
)
RESETS = "resets (RST) right after connecting or after its ClientHello"
HEADER_LIMIT = "request headers at most 64 KiB"
BODY_LIMIT = "a body never buffered beyond a bound"
NO_BODY = (
    "sends a request head with Expect: 100-continue (or Transfer-Encoding: chunked) and then "
    "no body"
)
NEVER_READS = "pipelines requests and never reads the answers (or reads them a few bytes at a time)"
POST_HANDSHAKE = (
    "streams post-handshake TLS messages (TLS 1.3 KeyUpdate, TLS 1.2 renegotiation attempts) "
    "on one connection"
)

_ENTRIES = (
    Kind("silent", "connects and sends nothing", "nothing", AT_ONCE, handshake.silent,
         spec=SILENT_BEFORE),
    Kind("one-byte", "sends one byte", "0x16 (a handshake record's type)", AT_ONCE,
         handshake.one_byte, spec=SILENT_BEFORE),
    Kind("record-header", "sends a TLS record header only",
         "the first 5 bytes of a real ClientHello record", AT_ONCE, handshake.record_header,
         spec=SILENT_BEFORE),
    Kind("partial-hello", "sends part of a ClientHello",
         "the first half of a real ClientHello record", AT_ONCE, handshake.partial_hello,
         spec=SILENT_BEFORE),
    Kind("hello-then-silent", "sends a whole ClientHello, then nothing",
         "one real ClientHello record", AT_ONCE, handshake.hello_then_silent, spec=HELLO),
    Kind("trickle-hello", "trickles a ClientHello",
         "a real ClientHello record, one byte at a time", TRICKLE, handshake.trickle_hello,
         spec=HELLO),
    Kind("handshake-then-silent", "finishes the handshake, then sends nothing",
         "a complete handshake (with a client certificate), then nothing", AT_ONCE,
         request.handshake_then_silent, presents_certificate=True, spec=AFTER_HANDSHAKE),
    Kind("trickle-headers", "trickles request headers",
         "a complete handshake, then a header block that never ends, one byte per record",
         TRICKLE, request.trickle_headers, presents_certificate=True, spec=AFTER_HANDSHAKE),
    Kind("trickle-body", "trickles a request body",
         "a complete handshake, a POST with Content-Length 1000000, then one body byte "
         "per record", TRICKLE, request.trickle_body, presents_certificate=True,
         spec=AFTER_HANDSHAKE),
    Kind("huge-headers", "sends a header block of 256 MiB",
         "a complete handshake, then a request line and 1 KiB header lines, as fast as it "
         "can, up to 256 MiB", FLOOD, request.huge_headers, presents_certificate=True,
         flood=True, counts=FIRST, spec=HEADER_LIMIT),
    Kind("endless-body", "sends a body that never ends",
         "a complete handshake, a POST with Content-Length 1000000000000, then body bytes as "
         "fast as it can, up to 256 MiB", FLOOD, request.endless_body,
         presents_certificate=True, flood=True, counts=FIRST, spec=BODY_LIMIT),
    Kind("reset-after-connect", "resets (RST) right after connecting", "nothing, then an RST",
         AT_ONCE, handshake.reset_after_connect, spec=RESETS),
    Kind("reset-after-hello", "resets (RST) after its ClientHello",
         "one real ClientHello record, then an RST", AT_ONCE, handshake.reset_after_hello,
         spec=RESETS),
    Kind("close-mid-handshake", "closes in the middle of the handshake",
         "a ClientHello; after the server's first flight, a FIN instead of the client's "
         "Finished", AT_ONCE, handshake.close_mid_handshake,
         spec="closes in the middle of the handshake"),
    Kind("refused-then-hold", "is refused (no certificate), then holds its socket open",
         "a complete handshake without a certificate, then nothing; never closes", AT_ONCE,
         handshake.refused_then_hold, spec="is refused, then holds its socket open"),
    Kind("forged-record", "sends a forged TLS record after the handshake",
         "a complete handshake, then an application-data record of 64 random bytes",
         AT_ONCE, post_handshake.forged_record, presents_certificate=True,
         spec="sends a garbage or forged TLS record after the handshake"),
    Kind("plain-http", "speaks plain HTTP to the TLS port", "a cleartext GET request",
         AT_ONCE, handshake.plain_http, spec="speaks plain HTTP"),
    Kind("old-version", "offers only an old protocol version",
         "a real ClientHello offering TLS 1.0 and 1.1 only", AT_ONCE, handshake.old_version,
         spec="offers only an old protocol version or no shared group"),
    Kind("no-shared-group", "offers no group the server supports",
         "a TLS 1.3 ClientHello whose groups are renamed to private-use code points",
         AT_ONCE, handshake.no_shared_group,
         spec="offers only an old protocol version or no shared group"),
    # SPEC section 7, round two (issue 20)
    Kind("expect-then-silence", "sends a POST head with Expect: 100-continue, then no body",
         "a complete handshake, a POST head with Content-Length 1024 and Expect: "
         "100-continue, then nothing (never reads the 100 Continue)", AT_ONCE,
         request.expect_then_silence, presents_certificate=True, spec=NO_BODY),
    Kind("chunked-then-silence", "sends a chunked POST head, then no chunk",
         "a complete handshake, a POST head with Transfer-Encoding: chunked, then nothing",
         AT_ONCE, request.chunked_then_silence, presents_certificate=True, spec=NO_BODY),
    Kind("pipeline-and-never-read", "pipelines thousands of requests and never reads",
         "a complete handshake, 2000 pipelined GET / requests at once (receive buffer "
         "4 KiB), then never reads an answer", AT_ONCE, request.pipeline_and_never_read,
         presents_certificate=True, spec=NEVER_READS),
    Kind("slow-reader", "pipelines thousands of requests, reads the answers slowly",
         "a complete handshake, 2000 pipelined GET / requests (receive buffer 4 KiB), then "
         "reads 4 KiB of the answers every 3 s", SLOW_READ, request.slow_reader,
         presents_certificate=True, spec=NEVER_READS),
    Kind("key-update-flood", "streams TLS 1.3 KeyUpdate messages on one connection",
         "a complete TLS 1.3 handshake, then KeyUpdate (update_not_requested) records, each "
         "under the next keys, as fast as the server takes them", STREAM,
         post_handshake.key_update_flood, presents_certificate=True, spec=POST_HANDSHAKE),
    Kind("renegotiation-flood", "streams TLS 1.2 renegotiation requests on one connection",
         "a complete TLS 1.2 handshake, then renegotiation ClientHellos (real "
         "renegotiations where the server accepts them), as fast as the server takes them",
         STREAM, post_handshake.renegotiation_flood, presents_certificate=True,
         spec=POST_HANDSHAKE),
)  # fmt: skip

KINDS: dict[str, Kind] = {k.name: k for k in _ENTRIES}
