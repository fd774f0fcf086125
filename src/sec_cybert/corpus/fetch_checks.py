"""Is a status-200 response to a filing's URL the filing? What ``corpus fetch`` refuses to cache.

Two kinds of answer are refused. An error page served with status 200 (SEC's "Request Rate
Threshold Exceeded", a CDN's "Access Denied", an empty page) or a body cut short is a passing
fault: :func:`error_page_reason` and :func:`html_cut_short` name it and the client asks again.

A server can answer a document URL with an image, a JSON error, or bytes that are no text at
all (a misconfigured mirror, a CDN's placeholder). Cached, such a body would become a "filing"
of mojibake at build time. The answer is definite -- asking again returns the same thing -- so it
is not retried: the filing is skipped with the reason, and a later run asks again.
"""

from __future__ import annotations

import re

from sec_cybert.corpus.text_decode import decode_document, not_text_reason, sniff_encoding

#: Content types a primary document may be served with. A missing type, or the catch-all
#: ``application/octet-stream``, is judged by the body alone.
DOCUMENT_CONTENT_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "text/xml", "application/xml", "text/plain"}
)
_UNKNOWN_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def media_type(content_type: str | None) -> str:
    """``"text/html; charset=utf-8"`` -> ``"text/html"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def not_a_document_reason(body: bytes, content_type: str | None) -> str | None:
    """Why ``body`` (served as ``content_type``) is not a filing's document, or ``None``."""
    kind = media_type(content_type)
    if kind not in DOCUMENT_CONTENT_TYPES and kind not in _UNKNOWN_CONTENT_TYPES:
        return f"not HTML (Content-Type {kind})"
    text, _ = decode_document(body)
    return not_text_reason(text)


#: Status-200 pages that are not the document asked for: (phrase in the page, what it is).
_ERROR_PAGE_PHRASES = (
    (b"request rate threshold exceeded", "SEC's 'Request Rate Threshold Exceeded' page (lower --rate)"),
    (b"undeclared automated tool", "SEC's 'Request Rate Threshold Exceeded' page (lower --rate)"),
    (b"access denied", "an 'Access Denied' page"),
    (b"you don't have permission to access", "an 'Access Denied' page"),
)
_ERROR_TITLE = re.compile(
    rb"<title[^>]*>\s*(?:sec\.gov\s*\|\s*)?(access denied|forbidden|page not found|not found|"
    rb"too many requests|service unavailable|request rate threshold exceeded|"
    rb"[45]\d\d\s*-?\s*(?:not found|forbidden|unauthorized|too many requests|internal server error|"
    rb"bad gateway|service unavailable|gateway time-?out))\s*</title",
    re.I,
)
#: Only pages this small are searched for the phrases: a filing may quote them; an error page is short.
_ERROR_PAGE_MAX_BYTES = 32 * 1024


def error_page_reason(body: bytes) -> str | None:
    """What ``body`` is, when it is an HTML error page rather than a document; else ``None``."""
    if not body.strip():
        return "an empty body"
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        return None  # JSON, plain text: not an HTML page
    small = body.lower() if len(body) <= _ERROR_PAGE_MAX_BYTES else b""
    for phrase, what in _ERROR_PAGE_PHRASES:
        if phrase in small:
            return what
    title = _ERROR_TITLE.search(head)
    if title:
        return f"an error page titled {title.group(1).decode('ascii', 'replace').strip()!r}"
    if not small:
        return None
    if re.search(rb"http-equiv\s*=\s*[\"']?refresh", small):
        return "a redirect page (meta refresh), not the document"
    text = re.sub(rb"<(script|style)\b.*?</\1\s*>", b"", small, flags=re.S)
    if b"<img" not in text and not re.sub(rb"<[^>]*>|&nbsp;|&#160;|\s", b"", text):
        return "an HTML page with no text (not the document)"
    return None


def html_cut_short(body: bytes) -> bool:
    """An HTML document that does not end with ``</html>`` (give or take trailing whitespace)."""
    codec, skip, _ = sniff_encoding(body[:64])
    if codec is not None and codec != "utf-8":  # UTF-16/32: the tag is not those bytes
        return re.search(r"</html\s*>", body[skip:].decode(codec, errors="replace")[-2048:], re.I) is None
    return re.search(rb"</html\s*>", body[-2048:], re.I) is None
