# ruff: noqa: E501  (fixture lines are long on purpose: they mirror real filing text)
"""Shared helpers for the corpus tests: fixture paths, bad-input files, a tiny tokenizer."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

pytest.importorskip("selectolax")


@pytest.fixture
def filing_html() -> Callable[[str], str]:
    """Read a fixture as most filing agents write HTML: without line breaks between tags.

    Parsers keep those breaks as text, so a fixture read as written would hide text glued together.
    """

    def read(name: str) -> str:
        return re.sub(r">\s*\n\s*<", "><", (FIXTURES / name).read_text(encoding="utf-8"))

    return read


@pytest.fixture
def without_selectolax(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import selectolax`` fail, as it does without the ``corpus`` extra."""
    monkeypatch.setitem(sys.modules, "selectolax", None)
    monkeypatch.setitem(sys.modules, "selectolax.lexbor", None)


@pytest.fixture
def acme_html() -> bytes:
    return (FIXTURES / "acme_10k_ixbrl.htm").read_bytes()


@pytest.fixture
def html_dir(tmp_path: Path) -> Path:
    """Two good filings plus one of each kind of bad input the issue names."""
    root = tmp_path / "html"
    root.mkdir()
    shutil.copy(FIXTURES / "acme_10k_ixbrl.htm", root / "123456_10K_2024_0000123456-25-000007.htm")
    shutil.copy(FIXTURES / "legacy_10k.htm", root / "legacy_10k.htm")
    acme = (FIXTURES / "acme_10k_ixbrl.htm").read_bytes()
    (root / "truncated.htm").write_bytes(acme[: len(acme) * 2 // 3])
    (root / "cp1252.htm").write_bytes(
        b"<html><body><p>ITEM 1. BUSINESS</p><p>We call it the \x93widget\x94 business \x96 since 1952, "
        b"and it has grown every year.</p></body></html>"
    )
    (root / "empty.htm").write_bytes(b"")
    (root / "scan.htm").write_bytes(b"<html><body><img src='p1.jpg'><img src='p2.jpg'></body></html>")
    (root / "exhibits.htm").write_bytes(
        b"<html><body><p>Amendment No. 1 to Form 10-K, filed solely to furnish Exhibit 23.1.</p><table>"
        b"<tr><td>Exhibit</td><td>Description</td></tr>"
        b"<tr><td>23.1</td><td>Consent of Independent Registered Public Accounting Firm to the use of its report</td></tr>"
        b"<tr><td>31.1</td><td>Certification of the Chief Executive Officer pursuant to Section 302 of the Act</td></tr>"
        b"<tr><td>32.1</td><td>Certification of the Chief Executive Officer pursuant to Section 906 of the Act</td></tr>"
        b"</table></body></html>"
    )
    return root


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small BPE tokenizer trained on the spot and saved like a hub tokenizer (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [(FIXTURES / "acme_10k_ixbrl.htm").read_text(encoding="ascii")] * 2
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]", "[CLS]", "[SEP]"])
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    out = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(out)
    return out
