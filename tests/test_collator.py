"""MaskingCollator: padding, validation, what it hands the masker, reproducibility."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from sec_cybert.datapath.collator import MaskingCollator
from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker, WholeWordMasker
from sec_cybert.datapath.wordsplit import word_ids_for_batch
from sec_cybert.errors import DataError

TEXTS = [
    "The CISO reports to the Board's audit committee.",
    "Management assesses risks from cybersecurity threats.",
    "Third-party assessors review our incident-response plan annually.",
    "We have not identified any material cybersecurity incidents.",
    "Our cybersecurity team monitors vendors' security practices.",
    "The Audit Committee receives briefings at least quarterly.",
]
SPECIALS = {
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
    "unk_token": "[UNK]",
}


def make_tokenizer(**specials: str) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: every whitespace-separated word is one token, unknown ones are [UNK]."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(TEXTS, trainers.WordLevelTrainer(special_tokens=list(SPECIALS.values())))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(**SPECIALS)


def features_for(tokenizer, texts, *, word_ids=True, **extra):
    enc = tokenizer(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
    words = word_ids_for_batch(texts, enc)
    out = []
    for i, ids in enumerate(enc["input_ids"]):
        f = {"input_ids": ids, **extra}
        if word_ids:
            f["word_ids"] = words[i]
        out.append(f)
    return out


class SpyMasker:
    """Records what the collator passes and masks nothing."""

    def __init__(self, needs_word_ids: bool = False) -> None:
        self.needs_word_ids = needs_word_ids
        self.calls: list[dict] = []

    def mask(
        self, input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None, generator=None
    ):
        self.calls.append(
            {
                "input_ids": input_ids.clone(),
                "special_tokens_mask": special_tokens_mask.clone(),
                "mask_token_id": mask_token_id,
                "vocab_size": vocab_size,
                "word_ids": None if word_ids is None else word_ids.clone(),
                "generator": generator,
            }
        )
        return input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)


# ---------------------------------------------------------------- padding and what the masker sees


def test_pads_mixed_lengths_and_hands_the_masker_everything(tokenizer):
    features = features_for(
        tokenizer, ["Management assesses risks.", TEXTS[2], "The CISO"], id="x", n_tokens=0
    )
    spy = SpyMasker(needs_word_ids=True)
    batch = MaskingCollator(tokenizer=tokenizer, masker=spy, seed=0)(features)

    lengths = [len(f["input_ids"]) for f in features]
    assert lengths == [5, 9, 4]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["labels"].shape == (3, 9)
    assert batch["attention_mask"].sum(1).tolist() == lengths
    pad = tokenizer.pad_token_id
    for r, f in enumerate(features):
        n = lengths[r]
        assert batch["input_ids"][r, :n].tolist() == f["input_ids"]
        assert (batch["input_ids"][r, n:] == pad).all()

    (call,) = spy.calls
    assert call["mask_token_id"] == tokenizer.mask_token_id
    assert call["vocab_size"] == len(tokenizer)
    assert isinstance(call["generator"], torch.Generator)
    # "risks." is not in the word-level vocabulary: [UNK] is special, padding is special.
    expected_special = [[1, 0, 0, 1, 1] + [1] * 4, [1] + [0] * 7 + [1], [1, 0, 0, 1] + [1] * 5]
    assert call["special_tokens_mask"].dtype == torch.bool
    assert call["special_tokens_mask"].int().tolist() == expected_special
    assert call["word_ids"].tolist() == [
        [-1, 0, 1, 2, -1] + [-1] * 4,
        [-1, 0, 1, 2, 3, 4, 5, 6, -1],
        [-1, 0, 1, -1] + [-1] * 5,
    ]


@pytest.mark.parametrize(("multiple", "width"), [(None, 10), (8, 16), (5, 10), (1, 10)])
def test_pad_to_multiple_of(tokenizer, multiple, width):
    features = features_for(tokenizer, TEXTS[:3], word_ids=False)
    batch = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), pad_to_multiple_of=multiple)(features)
    assert batch["input_ids"].shape[1] == width


def test_unknown_and_special_tokens_are_never_targets(tokenizer):
    # "Zebras" and "quagga" are not in the vocabulary: they become [UNK], which, as in
    # transformers, is a special token and never a target.
    texts = ["Zebras quagga The CISO reports.", *TEXTS]
    collate = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(probability=0.9), seed=0)
    features = features_for(tokenizer, texts, word_ids=False)
    special_ids = torch.tensor(tokenizer.all_special_ids)
    assert tokenizer.unk_token_id in features[0]["input_ids"]
    labelled = 0
    for _ in range(20):
        batch = collate(features)
        targets = batch["labels"] != IGNORE_INDEX
        assert not torch.isin(batch["labels"][targets], special_ids).any()
        assert not (targets & (batch["attention_mask"] == 0)).any()
        labelled += int(targets.sum())
    assert labelled > 0


def test_token_masker_split_through_the_collator(tokenizer):
    collate = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(probability=0.5), seed=0)
    features = features_for(tokenizer, TEXTS, word_ids=False)
    originals = collate.__class__(tokenizer=tokenizer, masker=SpyMasker())(features)["input_ids"]
    n = masked = kept = 0
    for epoch in range(100):
        collate.epoch = epoch  # a seeded collator masks a batch afresh each epoch
        batch = collate(features)
        targets = batch["labels"] != IGNORE_INDEX
        n += int(targets.sum())
        masked += int((batch["input_ids"][targets] == tokenizer.mask_token_id).sum())
        kept += int((batch["input_ids"][targets] == originals[targets]).sum())
        assert (batch["input_ids"] < len(tokenizer)).all()
    # ~2,700 targets; a random draw equals the original 1 time in 60, so "kept" runs ~0.0015 high.
    assert masked / n == pytest.approx(0.8, abs=0.03)
    assert kept / n == pytest.approx(0.1, abs=0.03)
    assert (n - masked - kept) / n == pytest.approx(0.1, abs=0.03)


def test_accepts_arrays_tensors_and_ignores_extra_keys(tokenizer):
    lists = features_for(tokenizer, TEXTS[:3])
    mixed = [
        {
            "input_ids": np.asarray(lists[0]["input_ids"]),
            "word_ids": np.asarray(lists[0]["word_ids"]),
            "id": "a",
        },
        {
            "input_ids": torch.tensor(lists[1]["input_ids"]),
            "word_ids": torch.tensor(lists[1]["word_ids"]),
            "n_tokens": 9,
        },
        {**lists[2], "text": TEXTS[2], "metadata": {"cik": 1}},
    ]
    a = MaskingCollator(tokenizer=tokenizer, masker=WholeWordMasker(), seed=3)(lists)
    b = MaskingCollator(tokenizer=tokenizer, masker=WholeWordMasker(), seed=3)(mixed)
    for key in a:
        assert torch.equal(a[key], b[key])


def test_word_ids_are_passed_only_when_every_feature_has_them(tokenizer):
    features = features_for(tokenizer, TEXTS[:2])
    del features[1]["word_ids"]
    spy = SpyMasker(needs_word_ids=False)
    MaskingCollator(tokenizer=tokenizer, masker=spy)(features)
    assert spy.calls[0]["word_ids"] is None
    assert spy.calls[0]["generator"] is None


def test_works_as_a_dataloader_collate_fn_over_a_dataset(tokenizer):
    import datasets

    features = features_for(tokenizer, TEXTS, n_tokens=1)
    dataset = datasets.Dataset.from_list(features)
    collate = MaskingCollator(tokenizer=tokenizer, masker=WholeWordMasker(probability=0.5), seed=0)
    batches = list(torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate))
    assert [b["input_ids"].shape[0] for b in batches] == [4, 2]
    assert any((b["labels"] != IGNORE_INDEX).any() for b in batches)


# ---------------------------------------------------------------- validation


def test_tokenizer_without_mask_token_is_rejected():
    no_mask = make_tokenizer(**{k: v for k, v in SPECIALS.items() if k != "mask_token"})
    with pytest.raises(DataError, match="no mask token.*add_special_tokens"):
        MaskingCollator(tokenizer=no_mask, masker=TokenMasker())


def test_tokenizer_without_pad_token_is_rejected():
    no_pad = make_tokenizer(**{k: v for k, v in SPECIALS.items() if k != "pad_token"})
    with pytest.raises(DataError, match="no pad token.*pad_token"):
        MaskingCollator(tokenizer=no_pad, masker=TokenMasker())


def test_whole_word_masker_without_word_ids_is_rejected(tokenizer):
    collate = MaskingCollator(tokenizer=tokenizer, masker=WholeWordMasker())
    features = features_for(tokenizer, TEXTS[:3])
    del features[1]["word_ids"]
    with pytest.raises(
        DataError, match="needs word ids but 1 of 3 features.*paragraph.*remove_unused_columns"
    ):
        collate(features)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([], "empty batch"),
        ([{"word_ids": [-1, -1]}], "no `input_ids`"),
        ([{"input_ids": []}], "no tokens"),
        ([{"input_ids": [[1, 2], [3, 4]]}], "flat list"),
        ([{"input_ids": ["a", "b"]}], "list of integers"),
        ([{"input_ids": [2, 7, 3], "word_ids": [-1, 0]}], "word_ids has 2 entries but input_ids has 3"),
    ],
)
def test_malformed_features_are_rejected(tokenizer, features, message):
    collate = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker())
    with pytest.raises(DataError, match=message):
        collate(features)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"pad_to_multiple_of": 0}, ValueError),
        ({"pad_to_multiple_of": 8.0}, ValueError),
        ({"seed": "1"}, TypeError),
    ],
)
def test_bad_settings_are_rejected(tokenizer, kwargs, error):
    with pytest.raises(error):
        MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(), **kwargs)


# ---------------------------------------------------------------- reproducibility


def _labels(collate, features, n):
    return [collate(features)["labels"] for _ in range(n)]


@pytest.mark.parametrize(
    "masker", [TokenMasker(probability=0.3), WholeWordMasker(probability=0.3)], ids=["token", "whole-word"]
)
def test_seed_makes_the_mask_sequence_reproducible(tokenizer, masker):
    features = features_for(tokenizer, TEXTS)
    first = _labels(MaskingCollator(tokenizer=tokenizer, masker=masker, seed=11), features, 5)
    again = _labels(MaskingCollator(tokenizer=tokenizer, masker=masker, seed=11), features, 5)
    other = _labels(MaskingCollator(tokenizer=tokenizer, masker=masker, seed=12), features, 5)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    # Within an epoch a batch's masks are a function of the batch; the next epoch masks it afresh.
    assert len({tuple(t.flatten().tolist()) for t in first}) == 1
    collate = MaskingCollator(tokenizer=tokenizer, masker=masker, seed=11)
    by_epoch = []
    for epoch in range(4):
        collate.epoch = epoch
        by_epoch.append(tuple(collate(features)["labels"].flatten().tolist()))
    assert len(set(by_epoch)) == 4


def test_pickled_copy_continues_the_same_sequence(tokenizer):
    features = features_for(tokenizer, TEXTS)
    collate = MaskingCollator(tokenizer=tokenizer, masker=WholeWordMasker(probability=0.3), seed=4)
    collate(features)
    copy = pickle.loads(pickle.dumps(collate))
    assert torch.equal(collate(features)["labels"], copy(features)["labels"])


@pytest.mark.parametrize("masker", [TokenMasker(probability=0.3), WholeWordMasker(probability=0.3)], ids=["token", "whole-word"])
def test_masks_do_not_depend_on_the_worker_count_or_the_loaders_generator(tokenizer, masker):
    # Features without a `row` (a plain DataLoader, not the Trainer's path): transformers' own
    # test_seed_multiworker_dataloader, plus the worker count and the epoch.
    features = features_for(tokenizer, TEXTS + TEXTS[::-1])

    def epochs(workers, generator_seed):
        collate = MaskingCollator(tokenizer=tokenizer, masker=masker, seed=42)
        generator = torch.Generator().manual_seed(generator_seed) if generator_seed is not None else None
        loader = torch.utils.data.DataLoader(
            features, batch_size=2, num_workers=workers, generator=generator, collate_fn=collate
        )
        run = []
        for epoch in range(2):
            collate.epoch = epoch  # what EpochToCollator does; workers copy the collator per epoch
            run.append([b["labels"] for b in loader])
        return run

    reference = epochs(0, None)
    for workers, generator_seed in [(2, 42), (2, None), (2, 7), (1, None)]:
        other = epochs(workers, generator_seed)
        assert all(
            torch.equal(a, b) for ea, eb in zip(reference, other, strict=True) for a, b in zip(ea, eb, strict=True)
        ), (workers, generator_seed)
    # Each epoch masks afresh, and batches differ from one another.
    labels = [tuple(t.flatten().tolist()) for epoch in reference for t in epoch]
    assert len(labels) == 12 and len(set(labels)) == 12


def test_premasked_validation_is_fixed_and_only_padded():
    import datasets

    from sec_cybert.core.encoders import train_bpe_tokenizer
    from sec_cybert.datapath.collator import MaskingCollator, premask
    from sec_cybert.datapath.masking import WholeWordMasker

    tokenizer = train_bpe_tokenizer(["the audit committee oversees cyber risk"] * 30, vocab_size=280)
    rows = {"input_ids": [[1, 7, 8, 9, 10, 11, 2], [1, 7, 8, 2]], "word_ids": [[-1, 0, 0, 1, 2, 2, -1], [-1, 0, 1, -1]]}
    dataset = datasets.Dataset.from_dict(rows)
    masker = WholeWordMasker(probability=0.5)
    first = premask(dataset, tokenizer, masker, seed=3)
    again = premask(dataset, tokenizer, masker, seed=3)
    assert first["labels"] == again["labels"] and first["input_ids"] == again["input_ids"]
    assert first.column_names == ["input_ids", "labels"]
    assert [len(x) for x in first["labels"]] == [7, 4]
    batch = MaskingCollator(tokenizer=tokenizer, masker=masker)(list(first))
    assert batch["labels"][1].tolist()[4:] == [-100, -100, -100]
    assert batch["labels"][0].tolist() == first["labels"][0]
    assert batch["input_ids"][1, 4:].tolist() == [tokenizer.pad_token_id] * 3
