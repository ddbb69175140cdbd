"""Just enough HTTP/1.1 for a server that answers GETs over keep-alive connections.

Sans-I/O on purpose: the server reads bytes into a buffer and asks :func:`take_request` whether a
whole request head has arrived, so the parsing can be tested without sockets. It understands the
request line, headers, ``Content-Length`` bodies (skipped) and the keep-alive rules of 1.0 and
1.1; chunked request bodies and other refinements are refused with a clear status rather than
half-supported.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Largest request head accepted; a client that sends more without a blank line gets 431.
MAX_HEAD = 16 * 1024
#: Largest request body accepted (and dropped); a GET has none, so this is generous.
MAX_BODY = 1024 * 1024

_REASONS = {
    200: "OK",
    400: "Bad Request",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class BadRequest(ValueError):
    """A request the server will not serve; answer with ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request head."""

    method: str
    target: str
    #: "HTTP/1.1" or "HTTP/1.0".
    version: str
    #: Header names lower-cased, values stripped, in the order sent.
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The last value sent for ``name`` (case-insensitive), or None."""
        name = name.lower()
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found

    @property
    def keep_alive(self) -> bool:
        """1.1 keeps the connection unless told to close; 1.0 closes unless told to keep it."""
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens

    @property
    def content_length(self) -> int:
        """Bytes of body that follow the head (to be read and dropped)."""
        raw = self.header("content-length")
        return 0 if raw is None else int(raw)


def take_request(buf: bytearray) -> Request | None:
    """Remove and return the first complete request head in ``buf``; None if it is not all here.

    Raises :class:`BadRequest` for a head that is malformed, too large or asks for something
    this server does not do.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise BadRequest(431, "request head too large")
        return None
    if end > MAX_HEAD:
        raise BadRequest(431, "request head too large")
    head = bytes(buf[:end])
    del buf[: end + 4]
    return parse_head(head)


def parse_head(head: bytes) -> Request:
    """Parse a request line and headers (without the blank line that ends them)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "undecodable head") from None
    lines = text.split("\r\n")
    # A client may send empty lines before the request line (RFC 9112, 2.2).
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        raise BadRequest(400, "empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest(400, f"malformed request line {lines[0]!r}")
    method, target, version = parts
    if not version.startswith("HTTP/"):
        raise BadRequest(400, f"malformed request line {lines[0]!r}")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505, f"unsupported version {version}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise BadRequest(400, f"malformed header line {line!r}")
        headers.append((name.lower(), value.strip()))
    request = Request(method, target, version, tuple(headers))
    if request.header("transfer-encoding") is not None:
        raise BadRequest(501, "chunked request bodies are not supported")
    raw_length = request.header("content-length")
    if raw_length is not None:
        if not (raw_length.isascii() and raw_length.isdigit()):
            raise BadRequest(400, f"bad Content-Length {raw_length!r}")
        if int(raw_length) > MAX_BODY:
            raise BadRequest(413, f"a body of {raw_length} bytes is more than {MAX_BODY}")
    return request


def response(status: int, body: bytes, *, keep_alive: bool, head_only: bool = False) -> bytes:
    """A complete response with a plain-text body; ``head_only`` leaves the body out (HEAD)."""
    reason = _REASONS.get(status, "Unknown")
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: " + ("keep-alive" if keep_alive else "close"),
    ]
    if status == 405:
        lines.append("Allow: GET, HEAD")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body
