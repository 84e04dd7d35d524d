"""Raw RFC 5322 bytes to a ``ParsedEmail``: whatever could be read, plus what was wrong.

Mail from the public is often broken (missing boundaries, wrong or missing
charsets, bad base64, NUL bytes, no Message-ID) and sometimes hostile (HTML
with scripts, huge attachments). A mail must never be lost because it could
not be parsed, so nothing here raises: every problem becomes an entry in
``ParsedEmail.problems`` and the best reading is returned. Every string that
comes out is safe to store (no NUL, no lone surrogates). Attachments are
never kept, only described: their content is hashed once, in slices, read
back from the raw bytes (see ``_elide``), so a 25 MB attachment is never held
decoded in memory, nor split into lines by the stdlib parser.
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import posixpath
import quopri
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from bot.channels.email.html_text import html_to_text
from bot.core.inbound import language_tag

MAX_TEXT_CHARS = 2_000_000  # characters; longer bodies are cut ("body_truncated")
MAX_HEADERS = 500
MAX_HEADER_CHARS = 2000
MAX_REFERENCES = 100
MAX_MIME_PARTS = 250
MAX_MESSAGE_ID_CHARS = 255  # the store's external_id column
MAX_ADDRESS_CHARS = 254  # RFC 5321 path limit
MAX_NAME_CHARS = 200
MAX_DEPTH = 20

# Charsets tried, in order, after the declared one (if any) fails or is missing.
FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")
# Declared "charsets" that only mean "we don't know".
_UNKNOWN_CHARSETS = frozenset({"unknown-8bit", "x-unknown", "unknown", "x-user-defined", "default", "8bit"})

SYNTHETIC_ID_DOMAIN = "missing-message-id.invalid"

_MSG_ID = re.compile(r"<([^<>\s]+)>")
_BARE_MSG_ID = re.compile(r"[^<>\s@]+@[^<>\s@]+")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(sorted(set(range(256)) - set(_B64_ALPHABET)))  # deleted before decoding
_B64_TEXT = _B64_ALPHABET + b"= \t\r\n"  # anything else in base64 text is junk
_ELIDE_MIN = 256 * 1024
_B64_RUN = re.compile(rb"[A-Za-z0-9+/=\r\n]{%d,}" % _ELIDE_MIN)
_B64_CHUNK = 1 << 20  # characters of base64 text decoded at a time (a multiple of 4)
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# A line that opens a MIME part: "--" and a boundary (RFC 2046 bchars, no quotes).
_BOUNDARY_LINE = re.compile(r"^--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?$", re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_HEADER_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")
_KNOWN_HEADER = re.compile(
    rb"(from|to|cc|bcc|subject|date|message-id|mime-version|content-[a-z-]+|received|return-path|reply-to"
    rb"|references|in-reply-to|sender|x-[a-z0-9-]+|list-[a-z-]+|auto-submitted|precedence|dkim-signature"
    rb"|authentication-results|delivered-to|thread-[a-z]+|importance|user-agent)[ \t]*:",
    re.IGNORECASE,
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_ADDR_SPEC = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[\w\-.\[\]:]+")  # \w: internationalised domains too


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int
    sha256: str | None
    disposition: str | None
    part: str
    in_attached_message: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    message_id_synthetic: bool
    from_address: str | None
    from_name: str | None
    subject: str
    text: str
    text_source: str = "none"
    charset: str | None = None
    content_type: str = "text/plain"
    date: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    size: int = 0
    # The language the mail says it is in: its Content-Language header, else its text part's,
    # as ``bot.core.inbound.language_tag`` reads it (a hint for the core; None when neither says).
    content_language: str | None = None

    def header(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def first_header(self, name: str) -> str | None:
        values = self.header(name)
        return values[0] if values else None


# Text hygiene ------------------------------------------------------------------------------


def _decode_bytes(data: bytes, declared: str | None) -> tuple[str, str, bool]:
    """(text, charset used, fell back?): declared charset, then utf-8, cp1252, latin-1."""
    tried: list[str] = []
    if declared and declared.lower() not in _UNKNOWN_CHARSETS:
        try:
            tried.append(codecs.lookup(declared).name)
        except LookupError:
            pass
    declared_usable = bool(tried)
    for name in FALLBACK_CHARSETS:
        if codecs.lookup(name).name not in tried:
            tried.append(codecs.lookup(name).name)
    for index, name in enumerate(tried):
        try:
            return data.decode(name), name, not (declared_usable and index == 0)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1"), "latin-1", True  # unreachable: latin-1 decodes anything


def _clean(text: str, problems: list[str] | None = None) -> str:
    """No NUL and no lone surrogates: the store (PostgreSQL text, UTF-8) accepts neither."""
    if "\x00" in text:
        text = text.replace("\x00", "")
        if problems is not None and "nul_bytes_removed" not in problems:
            problems.append("nul_bytes_removed")
    if _SURROGATE.search(text):
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "replace")
        text = _decode_bytes(raw, None)[0]
    return text


def _header_text(value: str) -> str:
    unfolded = _clean(value).replace("\r\n", "").replace("\n", "").replace("\r", "")  # RFC 5322 2.2.3
    return _HEADER_CONTROL.sub(" ", unfolded).strip()[:MAX_HEADER_CHARS]


# Headers -----------------------------------------------------------------------------------


def _decoded_header(msg: Message, name: str, raw: str) -> str:
    if "=?" not in raw:
        return _header_text(raw)  # nothing to decode: skip the (slow) header parser
    try:
        return _header_text(str(msg.policy.header_fetch_parse(name, raw)))
    except Exception:  # noqa: BLE001 - the header parser has bugs on hostile input
        try:
            return _header_text(str(make_header(decode_header(raw))))
        except Exception:  # noqa: BLE001
            return _header_text(raw)


def _raw_items(msg: Message) -> list[tuple[str, str]]:
    """Header (name, raw value) pairs with raw 8-bit bytes decoded like an undeclared body.

    RFC 5322 headers are ASCII, but old clients put Latin-1 in them; the header
    parser would turn those bytes into U+FFFD, so decode them first.
    """
    items = []
    for name, raw in msg.raw_items():
        raw = str(raw)
        if _SURROGATE.search(raw):
            raw = _clean(raw)
        items.append((str(name), raw))
    return items


def _all_headers(msg: Message, items: list[tuple[str, str]], problems: list[str]) -> list[tuple[str, str]]:
    headers = []
    for index, (name, raw) in enumerate(items):
        if index >= MAX_HEADERS:
            problems.append("too_many_headers")
            break
        headers.append((_header_text(name).lower(), _decoded_header(msg, name, raw)))
    return headers


def _raw_header(msg: Message, name: str) -> list[str]:
    return [raw for key, raw in _raw_items(msg) if key.lower() == name]


def _addresses(msg: Message, items: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    """(display name, lowercase addr-spec) pairs; addr-spec "" when unreadable."""
    found: list[tuple[str, str]] = []
    for raw in (raw for key, raw in items if key.lower() == name):
        pairs: list[tuple[str, str]] = []
        try:
            header = msg.policy.header_fetch_parse(name, raw)
            pairs = [(_header_text(a.display_name), a.addr_spec) for a in header.addresses]
        except Exception:  # noqa: BLE001
            try:
                pairs = [(_header_text(n), a) for n, a in getaddresses([str(make_header(decode_header(raw)))])]
            except Exception:  # noqa: BLE001
                pairs = []
        for display, spec in pairs:
            spec = _clean(spec).strip().lower()
            usable = len(spec) <= MAX_ADDRESS_CHARS and _ADDR_SPEC.fullmatch(spec)
            found.append((display, spec if usable else ""))
    return found


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = [f"<{found}>" for found in _MSG_ID.findall(value)]
    if not ids:  # some clients omit the angle brackets
        ids = [f"<{found}>" for found in _BARE_MSG_ID.findall(value)]
    return ids


def _date(value: str | None, problems: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        problems.append("bad_date")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


# MIME parts --------------------------------------------------------------------------------


def _safe(call, default):  # noqa: ANN001, ANN202 - tiny guard around the header API
    try:
        return call()
    except Exception:  # noqa: BLE001
        return default


def _content_type(part: Message) -> str:
    return _safe(part.get_content_type, "application/octet-stream")


def _transfer_encoding(part: Message) -> str:
    values = _raw_header(part, "content-transfer-encoding")
    return values[0].strip().lower() if values else ""


def _base64_chunks(pieces: Iterable[str | bytes], problems: list[str]) -> Iterator[bytes]:
    """Decode base64 text a piece at a time, ignoring junk, tolerating missing padding."""
    carry = b""
    for piece in pieces:
        if isinstance(piece, str):
            piece = piece.encode("ascii", "replace")
        if "base64_invalid_characters" not in problems and piece.translate(None, _B64_TEXT):
            problems.append("base64_invalid_characters")
        clean = carry + piece.translate(None, _NOT_B64)
        usable = len(clean) - len(clean) % 4
        carry = clean[usable:]
        if usable:
            yield binascii.a2b_base64(clean[:usable])
    if len(carry) == 1:
        problems.append("base64_truncated")
    elif carry:
        yield binascii.a2b_base64(carry + b"=" * (4 - len(carry)))


def _slices(data: str | bytes | memoryview) -> Iterator[str | bytes]:
    for start in range(0, len(data), _B64_CHUNK):
        piece = data[start : start + _B64_CHUNK]
        yield bytes(piece) if isinstance(piece, memoryview) else piece


@dataclass
class _Elided:
    """Long base64-like runs cut out of the raw mail before parsing (see ``_elide``)."""

    raw: bytes
    spans: list[tuple[int, int]] = field(default_factory=list)
    # A fresh marker per mail, so text in the mail can never pose as a placeholder.
    marker: str = field(default_factory=lambda: f"CRMELIDED{secrets.token_hex(8)}")

    def placeholder(self, index: int) -> bytes:
        return f"{self.marker}-{index}-\n".encode("ascii")

    def indexes(self, serialised: bytes) -> list[int]:
        return [int(found) for found in re.findall(rb"%s-(\d+)-" % self.marker.encode("ascii"), serialised)]

    def pieces(self, payload: str) -> Iterator[str | bytes]:
        """The payload with every placeholder replaced by the original bytes, in slices."""
        position = 0
        for found in re.finditer(f"{self.marker}-(\\d+)-\r?\n?", payload):
            index = int(found.group(1))
            if index >= len(self.spans):
                continue
            yield from _slices(payload[position : found.start()])
            start, end = self.spans[index]
            yield from _slices(memoryview(self.raw)[start:end])
            position = found.end()
        yield from _slices(payload[position:])


def _elide(raw: bytes) -> tuple[bytes, _Elided]:
    """Replace each long run of base64 lines with a one-line placeholder.

    The stdlib parser keeps every line of a body as a separate string before
    joining them: a 25 MB attachment costs it some 250 MB. Whole lines made only
    of base64 characters cannot hold a header or a boundary ("--" and ":" are
    not base64), so they are safe to cut out; the part's content is later read
    back from the original bytes, in slices.
    """
    elided = _Elided(raw)
    if len(raw) < _ELIDE_MIN:
        return raw, elided
    pieces: list[bytes] = []
    position = 0
    for run in _B64_RUN.finditer(raw):
        start, end = run.start(), run.end()
        if start > 0 and raw[start - 1 : start] != b"\n":  # starts mid-line: skip that line
            start = raw.find(b"\n", start, end) + 1
            if start == 0:
                continue
        while start < end and raw[start : start + 1] in (b"\r", b"\n"):
            start += 1  # never the blank line that ends a header block
        end = raw.rfind(b"\n", start, end) + 1  # whole lines only
        if end - start < _ELIDE_MIN:
            continue
        pieces.append(raw[position:start])
        pieces.append(elided.placeholder(len(elided.spans)))
        elided.spans.append((start, end))
        position = end
    if not elided.spans:
        return raw, elided
    pieces.append(raw[position:])
    return b"".join(pieces), elided


def _payload_chunks(part: Message, reading: _Reading) -> Iterator[bytes]:
    """The decoded content of a leaf part, in chunks, each decoding done once."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return
    if isinstance(payload, bytes):
        yield payload
        return
    payload = payload or ""
    encoding = _transfer_encoding(part)
    if encoding == "base64":
        yield from _base64_chunks(reading.elided.pieces(payload), reading.problems)
        return
    if reading.elided.spans and reading.elided.marker in payload:
        data = b"".join(
            piece.encode("utf-8", "surrogateescape") if isinstance(piece, str) else piece
            for piece in reading.elided.pieces(payload)
        )
        yield quopri.decodestring(data) if encoding == "quoted-printable" else data
        return
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
        reading.problems.append("undecodable_part")
    if data is None:
        data = payload.encode("utf-8", "surrogateescape")
    yield data


def _filename(part: Message) -> str | None:
    name = _safe(part.get_filename, None)
    if not name:
        return None
    name = _CONTROL.sub("", _clean(str(name))).replace("\\", "/")
    name = posixpath.basename(name).strip() or None
    return name[:255] if name else None


def _disposition(part: Message) -> str | None:
    value = _safe(part.get_content_disposition, None)
    return str(value).lower() if value else None


def _charset(part: Message) -> str | None:
    value = _safe(lambda: part.get_param("charset"), None)
    if isinstance(value, tuple):  # RFC 2231 form
        value = value[2]
    return str(value).strip().strip("\"'") or None if value else None


@dataclass(frozen=True)
class _PartInfo:
    content_type: str
    disposition: str | None
    filename: str | None


@dataclass
class _Reading:
    problems: list[str]
    elided: _Elided
    # id(part) -> (part, info); the part is kept so that its id cannot be reused meanwhile.
    infos: dict[int, tuple[Message, _PartInfo]] = field(default_factory=dict)

    def info(self, part: Message) -> _PartInfo:
        """Content type, disposition and file name, parsed once per part (the parser is slow)."""
        key = id(part)
        if key not in self.infos:
            self.infos[key] = (part, _PartInfo(_content_type(part), _disposition(part), _filename(part)))
        return self.infos[key][1]
    attachments: list[Attachment] = field(default_factory=list)
    # (source, text, charset, the part's Content-Language header)
    texts: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    parts: int = 0


def _text_of(part: Message, reading: _Reading, subtype: str) -> None:
    data = b"".join(_payload_chunks(part, reading))
    declared = _charset(part)
    if declared is None and subtype == "html":
        meta = _META_CHARSET.search(data[:4096])
        declared = meta.group(1).decode("ascii") if meta else None
    text, used, fell_back = _decode_bytes(data, declared)
    if fell_back and not data.isascii():
        reading.problems.append(f"charset_fallback:{used}" if declared else f"charset_undeclared:{used}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if subtype == "html":
        text = html_to_text(text)
    language = _safe(lambda: part.get("content-language"), None)
    reading.texts.append(("html" if subtype == "html" else "plain", text, used, str(language) if language else None))


def _describe(part: Message, reading: _Reading, path: str, nested: bool) -> None:
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in _payload_chunks(part, reading):
            digest.update(chunk)
            size += len(chunk)
        sha = digest.hexdigest()
    except Exception:  # noqa: BLE001
        reading.problems.append(f"undecodable_attachment:{path}")
        sha = None
    reading.attachments.append(
        _attachment(reading.info(part), size, sha, path, nested)
    )


def _describe_message(part: Message, reading: _Reading, path: str, nested: bool) -> None:
    """An attached mail: size and sha256 of it as re-serialised (the parser keeps no original bytes)."""
    try:
        serialised = part.get_payload(0).as_bytes(policy=policy.compat32.clone(linesep="\r\n"))
        placeholders = reading.elided.indexes(serialised)
        if placeholders:  # large attachments inside were cut out before parsing: no hash
            spans = [reading.elided.spans[index] for index in placeholders if index < len(reading.elided.spans)]
            size = len(serialised) + sum(end - start for start, end in spans)
            sha = None
        else:
            size, sha = len(serialised), hashlib.sha256(serialised).hexdigest()
        del serialised
    except Exception:  # noqa: BLE001
        size, sha = 0, None
    reading.attachments.append(
        _attachment(reading.info(part), size, sha, path, nested)
    )


def _describe_blocks(part: Message, blocks: list, reading: _Reading, path: str, nested: bool) -> None:
    try:
        wire = policy.compat32.clone(linesep="\r\n")
        serialised = b"\r\n".join(block.as_bytes(policy=wire) for block in blocks if isinstance(block, Message))
        size, sha = len(serialised), hashlib.sha256(serialised).hexdigest()
    except Exception:  # noqa: BLE001
        size, sha = 0, None
    reading.attachments.append(
        _attachment(reading.info(part), size, sha, path, nested)
    )


def _attachment(info: _PartInfo, size: int, sha: str | None, path: str, nested: bool) -> Attachment:
    return Attachment(info.filename, info.content_type, size, sha, info.disposition, path, nested)


def _is_attachment(info: _PartInfo) -> bool:
    if info.disposition == "attachment" or info.filename:
        return True
    return info.content_type not in ("text/plain", "text/html")


def _walk(part: Message, reading: _Reading, path: str, depth: int, nested: bool) -> None:
    reading.parts += 1
    if reading.parts > MAX_MIME_PARTS or depth > MAX_DEPTH:
        if "too_many_parts" not in reading.problems:
            reading.problems.append("too_many_parts")
        return
    info = reading.info(part)
    ctype = info.content_type
    children = part.get_payload() if part.is_multipart() else None

    if ctype == "message/rfc822" and isinstance(children, list):
        _describe_message(part, reading, path or "1", nested)
        for child in children:
            _walk_attached(child, reading, (path or "1") + ".1", depth + 1)
        return
    if isinstance(children, list) and not ctype.startswith("multipart/"):
        # message/delivery-status and the like: the parser splits them into header blocks.
        _describe_blocks(part, children, reading, path or "1", nested)
        return
    if isinstance(children, list):
        if ctype == "multipart/alternative" and not nested:
            _walk_alternative(children, reading, path, depth)
            return
        for index, child in enumerate(children, 1):
            if isinstance(child, Message):
                _walk(child, reading, f"{path}.{index}" if path else str(index), depth + 1, nested)
        return

    leaf_path = path or "1"
    if ctype.startswith("multipart/"):
        # The boundary was missing or never found: the payload is all we have.
        recovered = _recover_multipart(part, ctype)
        if recovered is not None:
            reading.problems.append("mime_defect:boundary_recovered")
            _walk(recovered, reading, path, depth + 1, nested)
        elif not nested:
            reading.problems.append("mime_defect:unsplittable_multipart")
            _text_of(part, reading, "plain")
        return
    if nested or _is_attachment(info):
        _describe(part, reading, leaf_path, nested)
        return
    _text_of(part, reading, ctype.split("/")[1])


def _recover_multipart(part: Message, ctype: str) -> Message | None:
    """Re-read a multipart whose declared boundary never occurs, with the one that does."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    found = _BOUNDARY_LINE.search(payload[:65536])
    if found is None:
        return None
    boundary = found.group(1)
    head = f'Content-Type: {ctype}; boundary="{boundary}"\r\n\r\n'.encode("ascii", "replace")
    try:
        recovered = BytesParser(policy=policy.default).parsebytes(head + payload.encode("utf-8", "surrogateescape"))
    except Exception:  # noqa: BLE001
        return None
    return recovered if recovered.is_multipart() else None


def _walk_attached(message: Message, reading: _Reading, path: str, depth: int) -> None:
    """Parts of a forwarded message/rfc822 are recorded as attachments, never read as body."""
    _walk(message, reading, path, depth, nested=True)


def _walk_alternative(children: list, reading: _Reading, path: str, depth: int) -> None:
    """Pick the best representation: plain text with content, else HTML, else anything."""
    candidates = [(index, child) for index, child in enumerate(children, 1) if isinstance(child, Message)]

    def rank(item: tuple[int, Message]) -> int:
        info = reading.info(item[1])
        if info.content_type == "text/plain" and not _is_attachment(info):
            return 0
        if info.content_type == "text/html" and not _is_attachment(info):
            return 1
        ctype = info.content_type
        return 2 if ctype.startswith("multipart/") else 3

    before = len(reading.texts)
    for index, child in sorted(candidates, key=rank):
        _walk(child, reading, f"{path}.{index}" if path else str(index), depth + 1, False)
        chosen = reading.texts[before:]
        if any(text.strip() for _, text, *_ in chosen):
            return
        del reading.texts[before:]  # an empty alternative: try the next one


# The message -------------------------------------------------------------------------------


def _body(reading: _Reading) -> tuple[str, str, str | None]:
    texts = [(source, text, charset) for source, text, charset, _language in reading.texts if text.strip()]
    if not texts:
        return "", "none", None
    source = "plain" if all(s == "plain" for s, _, _ in texts) else "html"
    charsets = {charset for _, _, charset in texts}
    body = "\n\n".join(text.strip("\n") for _, text, _ in texts)
    return body, source, texts[0][2] if len(charsets) == 1 else ",".join(sorted(c or "?" for c in charsets))


def _text_language(reading: _Reading) -> str | None:
    """The Content-Language of the first text part read that declares one (``language_tag``)."""
    for _source, text, _charset, language in reading.texts:
        if text.strip() and language_tag(language) is not None:
            return language_tag(language)
    return None


def _repair_header_block(raw: bytes) -> bytes | None:
    """The mail without stray non-header lines in its header block, or None if there are none.

    A line such as "This line is not a header" among the headers makes the
    parser take everything after it (Message-ID, Content-Type...) as body.
    Such a line is dropped only when a well-known header follows it; otherwise
    it is taken to be where the body starts (a mail with no blank line).
    """
    end = _HEADER_END.search(raw, 0, 1 << 18)
    head = raw[: end.start()] if end else raw[: 1 << 18]
    lines = head.split(b"\n")
    kept: list[bytes] = []
    dropped = False
    for index, line in enumerate(lines):
        bare = line.rstrip(b"\r")
        continuation = kept and bare[:1] in (b" ", b"\t")
        if _HEADER_FIELD.match(bare) or continuation or (index == 0 and bare.startswith(b"From ")):
            kept.append(line)
            continue
        following = next((later for later in lines[index + 1 :] if later[:1] not in (b" ", b"\t")), b"")
        if not _KNOWN_HEADER.match(following):
            break
        dropped = True
    if not dropped:
        return None
    return b"\n".join(kept) + raw[len(head) :]


def parse_email(raw: bytes) -> ParsedEmail:
    """Read what can be read from ``raw``; never raises."""
    if not isinstance(raw, bytes):
        raw = bytes(raw) if isinstance(raw, bytearray | memoryview) else str(raw).encode("utf-8", "replace")
    problems: list[str] = []
    digest = hashlib.sha256(raw).hexdigest()
    synthetic_id = f"<sha256-{digest}@{SYNTHETIC_ID_DOMAIN}>"
    try:
        repaired = _repair_header_block(raw)
        if repaired is not None:
            problems.append("broken_header_line_dropped")
        to_parse, elided = _elide(raw if repaired is None else repaired)
        msg = BytesParser(policy=policy.default).parsebytes(to_parse)
        del repaired, to_parse
    except Exception:  # noqa: BLE001 - the parser itself failed: keep the bytes as text
        problems = ["unparseable_message", "missing_message_id", "missing_from", *problems]
        return _as_plain_text(raw, synthetic_id, problems)
    try:
        return _parse_message(msg, raw, elided, synthetic_id, problems)
    except Exception as error:  # noqa: BLE001 - last resort: nothing is lost, the raw mail is stored
        problems.append(f"parse_error:{type(error).__name__}")
        return _as_plain_text(raw, synthetic_id, problems)


def _as_plain_text(raw: bytes, synthetic_id: str, problems: list[str]) -> ParsedEmail:
    """The last resort when the parser fails: the bytes as text, so nothing the citizen sent is lost."""
    text, charset, _ = _decode_bytes(raw, None)
    return ParsedEmail(
        message_id=synthetic_id,
        message_id_synthetic=True,
        from_address=None,
        from_name=None,
        subject="",
        text=_clean(text, problems)[:MAX_TEXT_CHARS],
        text_source="plain",
        charset=charset,
        problems=problems,
        size=len(raw),
    )


def _parse_message(msg: Message, raw: bytes, elided: _Elided, synthetic_id: str, problems: list[str]) -> ParsedEmail:
    items = _raw_items(msg)
    headers = _all_headers(msg, items, problems)

    def first(name: str) -> str | None:
        return next((value for key, value in headers if key == name), None)

    ids = _message_ids(first("message-id"))
    if ids and len(ids[0]) <= MAX_MESSAGE_ID_CHARS:
        message_id, synthetic = ids[0], False
    else:
        message_id, synthetic = synthetic_id, True
        problems.append("long_message_id" if ids else "missing_message_id")

    from_address = from_name = None
    senders = _addresses(msg, items, "from")
    if not senders:
        problems.append("missing_from")
    else:
        usable = [(name[:MAX_NAME_CHARS], spec) for name, spec in senders if spec]
        if not usable:
            problems.append("unparseable_from")
        else:
            from_name, from_address = usable[0][0] or None, usable[0][1]
            if len(usable) > 1:
                problems.append("multiple_from")

    references: list[str] = []
    for value in _message_ids(" ".join(value for key, value in headers if key == "references")):
        if value not in references:
            references.append(value)
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    in_reply_to = next(iter(_message_ids(first("in-reply-to"))), None)

    reading = _Reading(problems, elided)
    _walk(msg, reading, "", 0, False)
    text, source, charset = _body(reading)
    language = language_tag(first("content-language")) or _text_language(reading)
    text = _clean(text, problems)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        problems.append("body_truncated")

    for defect in _safe(lambda: list(msg.defects), []):
        name = f"mime_defect:{type(defect).__name__}"
        if name not in problems:
            problems.append(name)
    for part in _safe(lambda: list(msg.walk()), []):
        if part is msg:
            continue
        for defect in _safe(lambda p=part: list(p.defects), []):
            name = f"mime_defect:{type(defect).__name__}"
            if name not in problems:
                problems.append(name)

    return ParsedEmail(
        message_id=message_id,
        message_id_synthetic=synthetic,
        from_address=from_address,
        from_name=from_name,
        subject=first("subject") or "",
        text=text,
        text_source=source,
        charset=charset,
        content_type=reading.info(msg).content_type,
        date=_date(first("date"), problems),
        in_reply_to=in_reply_to,
        references=references,
        reply_to=[spec for _, spec in _addresses(msg, items, "reply-to") if spec],
        to=[spec for _, spec in _addresses(msg, items, "to") if spec],
        cc=[spec for _, spec in _addresses(msg, items, "cc") if spec],
        headers=headers,
        attachments=reading.attachments,
        problems=problems,
        size=len(raw),
        content_language=language,
    )
