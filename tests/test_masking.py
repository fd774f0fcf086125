"""Maskers on synthetic batches, where every word, special token and pad is known."""

from __future__ import annotations

import attrs
import pytest
import torch

from sec_cybert.core.components import Masker
from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker, WholeWordMasker
from sec_cybert.errors import DataError

# Original ids live in [VOCAB, 2*VOCAB) while random replacements are drawn from [0, VOCAB), and
# the mask id is outside both: every corrupted position tells exactly which of the three it got.
VOCAB = 5000
MASK_ID = 3 * VOCAB
CLS, SEP, PAD = 3 * VOCAB + 1, 3 * VOCAB + 2, 3 * VOCAB + 3


def synthetic_batch(rows: int = 64, width: int = 200, seed: int = 0):
    """[CLS] words... [SEP] [PAD]...; words of 1-4 tokens; rows of different lengths."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.full((rows, width), PAD, dtype=torch.long)
    word_ids = torch.full((rows, width), -1, dtype=torch.long)
    for r in range(rows):
        length = int(torch.randint(width // 2, width + 1, (1,), generator=g))
        input_ids[r, :length] = torch.randint(VOCAB, 2 * VOCAB, (length,), generator=g)
        input_ids[r, 0], input_ids[r, length - 1] = CLS, SEP
        pos, word = 1, 0
        while pos < length - 1:
            n = int(torch.randint(1, 5, (1,), generator=g))
            word_ids[r, pos : min(pos + n, length - 1)] = word
            pos, word = pos + n, word + 1
    special = word_ids < 0
    return input_ids, special, word_ids


def run(masker, batch, seed: int = 1):
    input_ids, special, word_ids = batch
    return masker.mask(
        input_ids,
        special,
        mask_token_id=MASK_ID,
        vocab_size=VOCAB,
        word_ids=word_ids,
        generator=torch.Generator().manual_seed(seed),
    )


def shares(input_ids, corrupted, labels):
    targets = labels != IGNORE_INDEX
    n = int(targets.sum())
    masked = int((corrupted[targets] == MASK_ID).sum()) / n
    random = int((corrupted[targets] < VOCAB).sum()) / n
    kept = int((corrupted[targets] == input_ids[targets]).sum()) / n
    return masked, random, kept


@pytest.fixture(scope="module")
def batch():
    return synthetic_batch()


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("cls", [TokenMasker, WholeWordMasker])
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"probability": 0.0}, ValueError),
        ({"probability": 1.0}, ValueError),
        ({"probability": -0.1}, ValueError),
        ({"probability": float("nan")}, ValueError),
        ({"probability": "0.15"}, TypeError),
        ({"probability": True}, TypeError),
        ({"mask_replace_prob": 1.5}, ValueError),
        ({"random_replace_prob": -0.1}, ValueError),
        ({"mask_replace_prob": 0.8, "random_replace_prob": 0.3}, ValueError),
    ],
)
def test_validators_reject_bad_probabilities(cls, kwargs, error):
    with pytest.raises(error):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [TokenMasker, WholeWordMasker])
def test_field_validators_work_without_an_instance(cls):
    # The config layer validates each field on its own (instance=None) to report every problem.
    fields = attrs.fields(cls)
    fields.random_replace_prob.validator(None, fields.random_replace_prob, 0.9)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fields.probability.validator(None, fields.probability, 1.5)


def test_defaults_and_protocol():
    token, whole = TokenMasker(), WholeWordMasker()
    assert (token.probability, token.mask_replace_prob, token.random_replace_prob) == (0.15, 0.8, 0.1)
    assert (whole.probability, whole.mask_replace_prob, whole.random_replace_prob) == (0.15, 1.0, 0.0)
    assert token.needs_word_ids is False
    assert whole.needs_word_ids is True
    assert isinstance(token, Masker) and isinstance(whole, Masker)
    with pytest.raises(TypeError):
        TokenMasker(needs_word_ids=True)  # a class constant, not a setting
    # Shares that sum to exactly 1 despite float rounding are accepted.
    TokenMasker(mask_replace_prob=0.7, random_replace_prob=0.3)
    WholeWordMasker(probability=0.4, mask_replace_prob=0.8, random_replace_prob=0.1)


def test_builtin_plugin_registers_both():
    from sec_cybert.default_plugins import maskers

    registered = {}
    maskers.register_maskers(register=lambda name, factory: registered.__setitem__(name, factory))
    assert registered == {"token": TokenMasker, "whole-word": WholeWordMasker}


# ---------------------------------------------------------------- both maskers


@pytest.mark.parametrize(
    "masker",
    [
        TokenMasker(),
        WholeWordMasker(),
        WholeWordMasker(probability=0.5, mask_replace_prob=0.5, random_replace_prob=0.3),
    ],
    ids=["token", "whole-word", "whole-word-mixed"],
)
def test_contract(masker, batch):
    input_ids, special, word_ids = batch
    before = [t.clone() for t in batch]
    corrupted, labels = run(masker, batch)

    for t, b in zip(batch, before, strict=True):
        assert torch.equal(t, b), "inputs were modified in place"
    assert corrupted.shape == labels.shape == input_ids.shape
    assert corrupted.dtype == labels.dtype == input_ids.dtype
    targets = labels != IGNORE_INDEX
    assert targets.any()
    assert not (targets & special).any(), "a special or padding position was labelled"
    assert torch.equal(corrupted[special], input_ids[special])
    assert torch.equal(labels[targets], input_ids[targets])
    assert torch.equal(corrupted[~targets], input_ids[~targets]), "a non-target was corrupted"


@pytest.mark.parametrize("cls", [TokenMasker, WholeWordMasker])
@pytest.mark.parametrize("p", [0.15, 0.4])
def test_masked_share_matches_probability(cls, p, batch):
    _, special, _ = batch
    total = int((~special).sum())  # ~9,500 tokens; in five batches ~47,000
    shares_seen = []
    for seed in range(5):
        _, labels = run(cls(probability=p), batch, seed=seed)
        shares_seen.append(int((labels != IGNORE_INDEX).sum()) / total)
    share = sum(shares_seen) / len(shares_seen)
    # Standard error is < 0.004 for tokens, < 0.007 for whole words (tokens come in clumps).
    assert share == pytest.approx(p, abs=0.02)
    assert len(set(shares_seen)) > 1, "every seed gave the same number of targets"


@pytest.mark.parametrize(
    ("masker", "expected"),
    [
        (TokenMasker(probability=0.5), (0.8, 0.1, 0.1)),
        (TokenMasker(probability=0.5, mask_replace_prob=0.5, random_replace_prob=0.2), (0.5, 0.2, 0.3)),
        (WholeWordMasker(probability=0.5, mask_replace_prob=0.8, random_replace_prob=0.1), (0.8, 0.1, 0.1)),
        (WholeWordMasker(probability=0.5), (1.0, 0.0, 0.0)),
        (TokenMasker(probability=0.5, mask_replace_prob=0.0, random_replace_prob=0.0), (0.0, 0.0, 1.0)),
    ],
    ids=["token-default", "token-50-20-30", "whole-word-80-10-10", "whole-word-default", "keep-only"],
)
def test_replacement_split(masker, expected, batch):
    input_ids, _, _ = batch
    corrupted, labels = run(masker, batch)
    masked, random, kept = shares(input_ids, corrupted, labels)
    assert masked + random + kept == pytest.approx(1.0)
    # ~4,700 targets (~1,900 words); standard error of a share <= 0.01.
    assert (masked, random, kept) == pytest.approx(expected, abs=0.03)
    if expected[0] == 1.0:
        assert masked == 1.0
    if expected[1] == 0.0:
        assert random == 0.0


def test_same_generator_seed_same_masks_different_seed_different(batch):
    for masker in (TokenMasker(), WholeWordMasker(mask_replace_prob=0.8, random_replace_prob=0.1)):
        a, b, c = run(masker, batch, seed=7), run(masker, batch, seed=7), run(masker, batch, seed=8)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[1], c[1])


def test_without_generator_uses_global_rng(batch):
    input_ids, special, word_ids = batch
    kwargs = {"mask_token_id": MASK_ID, "vocab_size": VOCAB, "word_ids": word_ids}
    torch.manual_seed(3)
    a = WholeWordMasker().mask(input_ids, special, **kwargs)
    torch.manual_seed(3)
    b = WholeWordMasker().mask(input_ids, special, **kwargs)
    assert torch.equal(a[1], b[1])


def test_token_masker_ignores_word_ids(batch):
    input_ids, special, _ = batch
    corrupted, labels = TokenMasker().mask(input_ids, special, mask_token_id=MASK_ID, vocab_size=VOCAB)
    assert (labels != IGNORE_INDEX).any()


def test_shape_mismatch_is_rejected(batch):
    input_ids, special, word_ids = batch
    with pytest.raises(ValueError, match="special_tokens_mask"):
        TokenMasker().mask(input_ids, special[:, :-1], mask_token_id=MASK_ID, vocab_size=VOCAB)
    with pytest.raises(ValueError, match="word_ids"):
        WholeWordMasker().mask(
            input_ids, special, mask_token_id=MASK_ID, vocab_size=VOCAB, word_ids=word_ids[:1]
        )
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        TokenMasker().mask(input_ids[0], special[0], mask_token_id=MASK_ID, vocab_size=VOCAB)


# ---------------------------------------------------------------- whole words


def test_whole_word_needs_word_ids(batch):
    input_ids, special, _ = batch
    with pytest.raises(DataError, match="whole-word masking needs word ids.*paragraph"):
        WholeWordMasker().mask(input_ids, special, mask_token_id=MASK_ID, vocab_size=VOCAB)


@pytest.mark.parametrize("mixed", [False, True], ids=["default", "80-10-10"])
def test_whole_word_targets_whole_words_with_one_decision_each(mixed, batch):
    input_ids, special, word_ids = batch
    masker = (
        WholeWordMasker(probability=0.3, mask_replace_prob=0.8, random_replace_prob=0.1)
        if mixed
        else WholeWordMasker(probability=0.3)
    )
    corrupted, labels = run(masker, batch)
    targets = labels != IGNORE_INDEX
    # Outcome per token: 0 kept, 1 mask, 2 random.
    outcome = torch.where(corrupted == MASK_ID, 1, torch.where(corrupted < VOCAB, 2, 0))
    n_words = chosen_words = 0
    for r in range(word_ids.shape[0]):
        for w in word_ids[r][word_ids[r] >= 0].unique():
            at = word_ids[r] == w
            n_words += 1
            t = targets[r][at]
            assert t.all() or not t.any(), f"row {r} word {int(w)} partly targeted: {t.tolist()}"
            if t.all():
                chosen_words += 1
                assert outcome[r][at].unique().numel() == 1, "tokens of one word were treated differently"
    assert chosen_words / n_words == pytest.approx(0.3, abs=0.03)


def test_whole_word_never_targets_special_tokens_even_with_word_ids(batch):
    input_ids, special, word_ids = batch
    # A sloppy chunker gave [CLS] and [SEP] the word id of their neighbours.
    sloppy = word_ids.clone()
    sloppy[:, 0] = sloppy[:, 1]
    for r in range(sloppy.shape[0]):
        sep = int((input_ids[r] == SEP).nonzero())
        sloppy[r, sep] = sloppy[r, sep - 1]
    _, labels = WholeWordMasker(probability=0.9).mask(
        input_ids, special, mask_token_id=MASK_ID, vocab_size=VOCAB, word_ids=sloppy
    )
    assert not ((labels != IGNORE_INDEX) & special).any()


def test_whole_word_ids_are_per_row_and_need_not_be_contiguous():
    # Two identical rows, word ids far apart: each row draws its own words.
    row_ids = torch.tensor([CLS] + list(range(VOCAB, VOCAB + 8)) + [SEP])
    input_ids = row_ids.repeat(2, 1)
    word_ids = torch.tensor([-1, 1000, 1000, 7, 7, 7, 123456, 5, 5, -1]).repeat(2, 1)
    special = word_ids < 0
    g = torch.Generator().manual_seed(0)
    rows_differ = 0
    for _ in range(50):
        _, labels = WholeWordMasker(probability=0.5).mask(
            input_ids, special, mask_token_id=MASK_ID, vocab_size=VOCAB, word_ids=word_ids, generator=g
        )
        rows_differ += int(not torch.equal(labels[0], labels[1]))
        t = labels[0] != IGNORE_INDEX
        for group in ([1, 2], [3, 4, 5], [7, 8]):
            assert t[group].all() or not t[group].any()
    assert rows_differ > 10


def test_batch_without_words_gives_no_targets():
    input_ids = torch.tensor([[CLS, SEP, PAD]])
    word_ids = torch.tensor([[-1, -1, -1]])
    corrupted, labels = WholeWordMasker().mask(
        input_ids, word_ids < 0, mask_token_id=MASK_ID, vocab_size=VOCAB, word_ids=word_ids
    )
    assert torch.equal(corrupted, input_ids)
    assert (labels == IGNORE_INDEX).all()
