"""Properties of the MLM collator and the maskers over arbitrary token ids and word ids: targets
only on maskable tokens, labels are the original ids, padding on the right, whole words whole."""

from __future__ import annotations

import datasets
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_support import examples, messy_text

from sec_cybert.datapath.chunking import ConcatChunker, ParagraphChunker
from sec_cybert.datapath.collator import MaskingCollator
from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker, WholeWordMasker
from sec_cybert.errors import DataError

datasets.disable_progress_bars()

VOCAB = 300  # the tiny tokenizer's vocabulary size (checked in the fixture below)
SPECIAL = [0, 1, 2, 3, 4]  # [UNK] [CLS] [SEP] [PAD] [MASK]
PAD, MASK = 3, 4


@pytest.fixture(scope="module")
def tok(tokenizer):
    assert len(tokenizer) == VOCAB and sorted(tokenizer.all_special_ids) == SPECIAL
    assert (tokenizer.pad_token_id, tokenizer.mask_token_id) == (PAD, MASK)
    return tokenizer


token_ids = st.one_of(st.integers(5, VOCAB - 1), st.sampled_from(SPECIAL))


@st.composite
def shares(draw):
    mask = draw(st.sampled_from([0.0, 0.8, 1.0]) | st.floats(0.0, 1.0))
    rand = draw(st.sampled_from([0.0, 1.0 - mask]) | st.floats(0.0, 1.0 - mask))
    return mask, rand


@st.composite
def maskers(draw, whole_word: bool | None = None):
    kind = draw(st.booleans()) if whole_word is None else whole_word
    probability = draw(st.sampled_from([0.15, 0.5, 0.999]) | st.floats(0.001, 0.999))
    mask, rand = draw(shares())
    cls = WholeWordMasker if kind else TokenMasker
    return cls(probability=probability, mask_replace_prob=mask, random_replace_prob=rand)


@st.composite
def word_ids_for(draw, ids: list[int]) -> list[int]:
    """Word ids as a chunker writes them (-1 at specials, runs of equal ids), or arbitrary ones."""
    if draw(st.booleans()):
        return draw(st.lists(st.integers(-1, 12), min_size=len(ids), max_size=len(ids)))
    out, word = [], draw(st.integers(0, 10**6))  # a chunk cut from a long text keeps its numbering
    for token in ids:
        if token in SPECIAL:
            out.append(-1)
        else:
            word += draw(st.sampled_from([0, 0, 1, 2]))
            out.append(word)
    return out


@st.composite
def batches(draw, with_word_ids: bool):
    rows = draw(st.lists(st.lists(token_ids, min_size=1, max_size=24), min_size=1, max_size=6))
    features = []
    for ids in rows:
        feature = {"input_ids": ids, "id": "doc", "n_tokens": len(ids)}  # other keys are ignored
        if with_word_ids:
            feature["word_ids"] = draw(word_ids_for(ids))
        features.append(feature)
    return features


def check_batch(out, features, masker) -> None:
    lengths = [len(f["input_ids"]) for f in features]
    input_ids, attention, labels = out["input_ids"], out["attention_mask"], out["labels"]
    assert input_ids.shape == attention.shape == labels.shape
    assert input_ids.dtype == attention.dtype == labels.dtype == torch.long
    width = input_ids.shape[1]
    assert input_ids.shape[0] == len(features) and width >= max(lengths)
    positions = torch.arange(width)
    for i, feature in enumerate(features):
        n = lengths[i]
        original = torch.full((width,), PAD, dtype=torch.long)
        original[:n] = torch.tensor(feature["input_ids"])
        assert torch.equal(attention[i], (positions < n).long()), "attention_mask matches the length"
        assert torch.equal(input_ids[i, n:], original[n:]), "padding on the right, untouched"
        target = labels[i] != IGNORE_INDEX
        assert bool((labels[i][~target] == IGNORE_INDEX).all())
        maskable = (positions < n) & ~torch.isin(original, torch.tensor(SPECIAL))
        assert not bool((target & ~maskable).any()), "a special or padding token became a target"
        assert torch.equal(labels[i][target], original[target]), "label == original id"
        assert torch.equal(input_ids[i][~target], original[~target]), "only targets are corrupted"
        corrupted = input_ids[i][target]
        assert bool(((corrupted >= 0) & (corrupted < VOCAB)).all())
        if masker.random_replace_prob == 0.0:
            assert bool(((corrupted == MASK) | (corrupted == original[target])).all())
        if masker.mask_replace_prob == 1.0:
            assert bool((corrupted == MASK).all())
        if isinstance(masker, WholeWordMasker):
            words = torch.tensor(feature["word_ids"])
            in_word = torch.zeros(width, dtype=torch.bool)
            in_word[:n] = words >= 0
            assert not bool((target & ~in_word).any()), "a token outside any word became a target"
            for w in set(feature["word_ids"]) - {-1}:
                tokens = (positions < n) & maskable
                tokens[:n] &= words == w
                chosen = target[tokens]
                assert bool(chosen.all()) or not bool(chosen.any()), f"word {w} partly masked"
                if masker.random_replace_prob == 0.0 and bool(chosen.all()) and chosen.numel():
                    # The replacement is decided once per word: all mask tokens, or all kept.
                    became_mask = input_ids[i][tokens] == MASK
                    assert bool(became_mask.all()) or not bool(became_mask.any()), f"word {w} split"


@settings(max_examples=examples(200))
@given(
    st.booleans().flatmap(
        lambda w: st.tuples(batches(with_word_ids=w), maskers(whole_word=w if w else False))
    ),
    st.none() | st.integers(1, 16),
    st.none() | st.integers(-(2**63), 2**63 - 1),
)
def test_collated_batches_keep_every_invariant(tok, case, multiple, seed):
    features, masker = case
    collator = MaskingCollator(tokenizer=tok, masker=masker, pad_to_multiple_of=multiple, seed=seed)
    out = collator(features)
    if multiple is not None:
        assert out["input_ids"].shape[1] % multiple == 0
        assert out["input_ids"].shape[1] - max(len(f["input_ids"]) for f in features) < multiple
    else:
        assert out["input_ids"].shape[1] == max(len(f["input_ids"]) for f in features)
    check_batch(out, features, masker)


@settings(max_examples=examples(60))
@given(batches(with_word_ids=True), maskers(), st.integers(0, 2**32))
def test_a_seed_makes_masks_reproducible(tok, features, masker, seed):
    first = MaskingCollator(tokenizer=tok, masker=masker, seed=seed)(features)
    again = MaskingCollator(tokenizer=tok, masker=masker, seed=seed)(features)
    assert all(torch.equal(first[k], again[k]) for k in first)


@settings(max_examples=examples(40))
@given(
    st.lists(messy_text, min_size=1, max_size=5),
    maskers(),
    st.sampled_from(["paragraph", "concat"]),
    st.integers(8, 32),
)
def test_chunked_documents_collate(tok, texts, masker, chunking, length):
    """The real path: documents -> chunker -> collator, word ids from the tokenizer's offsets."""
    chunker = (
        ParagraphChunker(max_length=length)
        if chunking == "paragraph"
        else ConcatChunker(seq_len=length, word_ids=True)
    )
    blocks = chunker.group(chunker.tokenize(datasets.Dataset.from_dict({"text": texts}), tok))
    features = [{"input_ids": list(b["input_ids"]), "word_ids": list(b["word_ids"])} for b in blocks]
    out = MaskingCollator(tokenizer=tok, masker=masker, seed=0)(features)
    check_batch(out, features, masker)


@settings(max_examples=examples(100))
@given(st.data(), maskers())
def test_maskers_alone_on_any_batch(data, masker):
    """The Masker protocol directly, with any special-token mask and any word ids."""
    n_rows, width = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 20))
    shape = (n_rows, width)
    ids = torch.tensor(
        data.draw(st.lists(st.integers(0, VOCAB - 1), min_size=n_rows * width, max_size=n_rows * width))
    ).view(shape)
    special = torch.tensor(
        data.draw(st.lists(st.booleans(), min_size=n_rows * width, max_size=n_rows * width))
    ).view(shape)
    words = torch.tensor(
        data.draw(st.lists(st.integers(-3, 2**40), min_size=n_rows * width, max_size=n_rows * width))
    ).view(shape)
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**32)))
    corrupted, labels = masker.mask(
        ids.clone(), special, mask_token_id=MASK, vocab_size=VOCAB, word_ids=words, generator=generator
    )
    assert corrupted.shape == labels.shape == ids.shape
    target = labels != IGNORE_INDEX
    assert not bool((target & special).any())
    assert torch.equal(labels[target], ids[target]) and torch.equal(corrupted[~target], ids[~target])
    if isinstance(masker, WholeWordMasker):
        assert not bool((target & (words < 0)).any())
        for r in range(n_rows):
            for w in set(words[r].tolist()):
                tokens = (words[r] == w) & ~special[r] & (words[r] >= 0)
                chosen = target[r][tokens]
                assert bool(chosen.all()) or not bool(chosen.any())


# Feature values a dataset or a buggy chunker could hand over: each must be collated or refused
# with a DataError that says which feature is wrong, never another exception.
bad_values = st.one_of(
    st.lists(token_ids, min_size=1, max_size=6),
    st.just([]),
    st.none(),
    st.text(max_size=5),
    st.integers(0, VOCAB - 1),
    st.lists(st.lists(token_ids, min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(st.one_of(token_ids, st.text(max_size=2), st.none()), min_size=1, max_size=4),
    st.lists(st.integers(2**63, 2**70), min_size=1, max_size=2),
)


@settings(max_examples=examples(200))
@given(
    st.lists(
        st.fixed_dictionaries({}, optional={"input_ids": bad_values, "word_ids": bad_values}),
        min_size=0,
        max_size=3,
    ),
    maskers(),
)
def test_invalid_features_are_a_data_error(tok, features, masker):
    collator = MaskingCollator(tokenizer=tok, masker=masker, seed=1)
    try:
        out = collator(features)
    except DataError:
        return
    assert out["input_ids"].shape[0] == len(features)


@st.composite
def premasked(draw):
    """Features masked once (a fixed validation set): labels as long as input_ids."""
    rows = draw(st.lists(st.lists(token_ids, min_size=1, max_size=16), min_size=1, max_size=4))
    labels = [[draw(st.sampled_from([IGNORE_INDEX, t])) for t in ids] for ids in rows]
    return [{"input_ids": ids, "labels": lab} for ids, lab in zip(rows, labels, strict=True)]


@settings(max_examples=examples(60))
@given(premasked(), maskers(), st.none() | st.integers(1, 8))
def test_premasked_features_are_padded_never_remasked(tok, features, masker, multiple):
    out = MaskingCollator(tokenizer=tok, masker=masker, pad_to_multiple_of=multiple, seed=3)(features)
    for i, feature in enumerate(features):
        n = len(feature["input_ids"])
        assert out["input_ids"][i, :n].tolist() == feature["input_ids"]
        assert out["labels"][i, :n].tolist() == feature["labels"]
        assert bool((out["labels"][i, n:] == IGNORE_INDEX).all()) and bool(
            (out["input_ids"][i, n:] == PAD).all()
        )
        assert out["attention_mask"][i].tolist() == [1] * n + [0] * (out["input_ids"].shape[1] - n)


# Found by test_invalid_features_are_a_data_error when it also drew `labels`: a shorter or longer
# premasked row raised RuntimeError, a 1-entry row was broadcast ([9] for [5, 6, 7] gave [9, 9, 9]).
@pytest.mark.parametrize(
    "feature",
    [
        {"input_ids": [5], "labels": []},
        {"input_ids": [5], "labels": [5, 6]},
        {"input_ids": [5, 6, 7], "labels": [9]},
    ],
)
def test_premasked_labels_of_another_length_are_a_data_error(tok, feature):
    with pytest.raises(DataError, match="labels"):
        MaskingCollator(tokenizer=tok, masker=TokenMasker())([feature])
