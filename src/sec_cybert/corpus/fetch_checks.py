"""Is a status-200 response to a filing's URL the filing? What ``corpus fetch`` refuses to cache.

A server can answer a document URL with an image, a JSON error, or bytes that are no text at
all (a misconfigured mirror, a CDN's placeholder). Cached, such a body would become a "filing"
of mojibake at build time. The answer is definite -- asking again returns the same thing -- so it
is not retried: the filing is skipped with the reason, and a later run asks again.
"""

from __future__ import annotations

from sec_cybert.corpus.text_decode import decode_document, not_text_reason

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
