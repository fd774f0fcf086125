"""Properties of word splitting from character offsets: words are the whitespace-free runs of the
text, numbered in order, -1 exactly at special tokens, whatever the text or the offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_support import examples, messy_text

from sec_cybert.datapath.wordsplit import word_ids_for_batch, word_ids_from_offsets


def _check_numbering(ids: list[int], special: list[int]) -> None:
    assert [i == -1 for i in ids] == [bool(s) for s in special], "-1 exactly at special tokens"
    words = [i for i in ids if i >= 0]
    assert all(b in (a, a + 1) for a, b in zip(words, words[1:], strict=False)), (
        "numbered 0, 1, 2 ... in order"
    )
    assert not words or words[0] == 0


def _runs(text: str) -> list[int]:
    """For each character, the index of the whitespace-free run it belongs to (-1 for whitespace)."""
    out, run, inside = [], -1, False
    for ch in text:
        if ch.isspace():
            out.append(-1)
            inside = False
        else:
            if not inside:
                run += 1
            out.append(run)
            inside = True
    return out


def _expected_words(text: str, offsets, special) -> list[int]:
    """The documented rule, by union-find over the text's runs: tokens in one special-free stretch
    that touch the same run are one word; a token spanning whitespace joins the runs either side."""
    runs = _runs(text)
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    token_runs: list[set[int]] = []
    for (start, end), s in zip(offsets, special, strict=True):
        touched = set() if s else {runs[c] for c in range(start, end) if runs[c] >= 0}
        token_runs.append(touched)
        for r in touched:
            parent[find(r)] = find(min(touched))
    return [min((find(r) for r in touched), default=-1) for touched in token_runs]


@settings(max_examples=examples(200))
@given(messy_text)
def test_words_are_the_whitespace_free_runs(tokenizer, text):
    enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    offsets, special = enc["offset_mapping"], enc["special_tokens_mask"]
    ids = word_ids_from_offsets(text, offsets, special)
    assert len(ids) == len(enc["input_ids"])
    _check_numbering(ids, special)
    # Tokens of one run share a word id; tokens of different (unjoined) runs do not.
    expected = _expected_words(text, offsets, special)
    pairs = [(i, e) for i, e in zip(ids, expected, strict=True) if e >= 0]
    assert len({e for _, e in pairs}) == len({i for i, _ in pairs}), (text, offsets, ids)
    assert len(set(pairs)) == len({e for _, e in pairs}), (text, offsets, ids)
    # Blank tokens (whitespace, zero-width) belong to the word after them, or to a final word.
    for k, ((start, end), s) in enumerate(zip(offsets, special, strict=True)):
        if s or text[start:end].strip():
            continue
        stretch_end = next((j for j in range(k + 1, len(ids)) if special[j]), len(ids))
        after = [ids[j] for j in range(k + 1, stretch_end) if text[slice(*offsets[j])].strip()]
        if after:
            assert ids[k] == after[0]
        else:  # trailing blanks of a stretch: one word of their own, after every earlier word
            blank_tail = [ids[j] for j in range(k, stretch_end)]
            assert len(set(blank_tail)) == 1
            earlier = [ids[j] for j in range(k) if not special[j] and text[slice(*offsets[j])].strip()]
            assert ids[k] > max(earlier, default=-1)


@settings(max_examples=examples(60))
@given(st.lists(messy_text, min_size=1, max_size=5))
def test_batch_equals_one_text_at_a_time(tokenizer, texts):
    enc = tokenizer(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
    one_by_one = [
        word_ids_from_offsets(t, o, s)
        for t, o, s in zip(texts, enc["offset_mapping"], enc["special_tokens_mask"], strict=True)
    ]
    assert word_ids_for_batch(texts, enc) == one_by_one
    assert word_ids_for_batch(texts, enc.encodings) == one_by_one


@st.composite
def arbitrary_offsets(draw):
    """Any text with any offsets, even out of range or reversed, and any special marks."""
    text = draw(messy_text)
    n = draw(st.integers(0, 30))
    bound = len(text) + 3
    offsets = draw(st.lists(st.tuples(st.integers(0, bound), st.integers(0, bound)), min_size=n, max_size=n))
    special = draw(st.lists(st.sampled_from([0, 1, True, False]), min_size=n, max_size=n))
    return text, offsets, special


@settings(max_examples=examples(200))
@given(arbitrary_offsets())
def test_any_offsets_number_words_without_failing(case):
    text, offsets, special = case
    ids = word_ids_from_offsets(text, offsets, special)
    assert len(ids) == len(offsets)
    _check_numbering(ids, special)


@settings(max_examples=examples(30))
@given(arbitrary_offsets(), st.integers(1, 3))
def test_mismatched_lengths_are_a_value_error(case, extra):
    text, offsets, special = case
    with pytest.raises(ValueError, match="one entry per token"):
        word_ids_from_offsets(text, offsets, list(special) + [0] * extra)
