"""Bytes that claim to be text: decode them by their byte-order mark, and refuse what is not text.

* A byte-order mark decides the encoding (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) and is removed;
  without one, markup or JSON whose every other byte is NUL is UTF-16 all the same; anything
  else is UTF-8, or cp1252 (old EDGAR filings) when it is not valid UTF-8.
* Text is *not text* when control characters (other than tab, line and page breaks) and
  U+FFFD replacement characters are more than :data:`MAX_NOT_TEXT_SHARE` of it: what random
  bytes, an image or a compressed file become once decoded. Real filings have next to none.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from pathlib import Path

#: The share of control and replacement characters above which decoded bytes are not text. Random
#: bytes decoded as cp1252 give about 13 %; a real filing, even a badly converted one, well under 0.1 %.
MAX_NOT_TEXT_SHARE = 0.01
#: How much of a text the share is measured on (the start: a binary file is binary throughout).
SAMPLE_CHARS = 1 << 20

#: The skip reason of bytes that are not text.
NOT_TEXT = f"not text (binary content: over {MAX_NOT_TEXT_SHARE:.0%} control or undecodable characters)"

_BOMS = (  # UTF-32 first: its LE mark begins with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
    (codecs.BOM_UTF8, "utf-8", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
)
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
# "<h", "{\"": ASCII markup or JSON with a NUL after (LE) or before (BE) each character.
_UTF16_LE_START = re.compile(rb"^(?:[\t\n\r ]\x00)*[<{\[]\x00[!-~]\x00")
_UTF16_BE_START = re.compile(rb"^(?:\x00[\t\n\r ])*\x00[<{\[]\x00[!-~]")


def sniff_encoding(head: bytes) -> tuple[str | None, int, str]:
    """(codec, BOM length, name to report) from the first bytes; codec ``None``: UTF-8 or cp1252."""
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            return codec, len(bom), name
    if _UTF16_LE_START.match(head):
        return "utf-16-le", 0, "utf-16"
    if _UTF16_BE_START.match(head):
        return "utf-16-be", 0, "utf-16"
    return None, 0, "utf-8"


def decode_document(raw: bytes) -> tuple[str, str]:
    """Decode a whole file, never failing: (text, ``"utf-8"`` / ``"utf-16"`` / ``"utf-32"`` / ``"cp1252"``).

    ``"cp1252"`` means the bytes were not valid UTF-8 (nor marked as another encoding).
    """
    codec, skip, name = sniff_encoding(raw[:64])
    if codec is not None and codec != "utf-8":
        return raw[skip:].decode(codec, errors="replace"), name
    try:
        return raw[skip:].decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw[skip:].decode("cp1252", errors="replace"), "cp1252"


def not_text_reason(text: str) -> str | None:
    """Why ``text`` is not text (binary content decoded), or ``None`` when it is text."""
    sample = text[:SAMPLE_CHARS]
    if not sample:
        return None
    if len(_NOT_TEXT.findall(sample)) <= MAX_NOT_TEXT_SHARE * len(sample):
        return None
    # One wording for every such file, so that reports can count them under one reason.
    return NOT_TEXT


def iter_text_lines(path: Path) -> Iterator[tuple[int, bytes | str]]:
    """(line number, line) of a text file: UTF-8 lines as bytes (each decoded by the caller, so one
    bad line is one bad record), lines of a file marked UTF-16/32 as ``str``. A UTF-8 BOM is dropped."""
    with path.open("rb") as handle:
        codec, skip, _ = sniff_encoding(handle.read(64))
        handle.seek(skip)
        if codec is None or codec == "utf-8":
            yield from enumerate(handle, start=1)
            return
        # A wide encoding cannot be split on b"\n"; a bad byte pair becomes U+FFFD, which the
        # caller's JSON parser then refuses for that line only.
        with io.TextIOWrapper(handle, encoding=codec, errors="replace", newline=None) as text:
            yield from enumerate(text, start=1)
