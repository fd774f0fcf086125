"""Word ids from offsets, by hand and for the three tokenizer families an encoder may bring.

The family tests train tiny tokenizers (byte-level BPE four ways, WordPiece, Unigram) on a
few hundred generated disclosure sentences, then check that words come out as whitespace-free
spans and that whole-word masking through the collator keeps them whole.
"""

from __future__ import annotations

import random
import re

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from sec_cybert.datapath.collator import MaskingCollator
from sec_cybert.datapath.masking import IGNORE_INDEX, TokenMasker, WholeWordMasker
from sec_cybert.datapath.wordsplit import word_ids_for_batch, word_ids_from_offsets

# ---------------------------------------------------------------- hand-checked offsets


def spans(text: str, pieces: str) -> tuple[list[tuple[int, int]], list[int]]:
    """Offsets of ``|``-separated ``pieces`` found left to right in ``text``; ``<S>`` is a special token."""
    offsets, special, pos = [], [], 0
    for piece in pieces.split("|"):
        if piece == "<S>":
            offsets.append((0, 0))
            special.append(1)
            continue
        start = text.index(piece, pos)
        offsets.append((start, start + len(piece)))
        special.append(0)
        pos = start + len(piece)
    return offsets, special


SENTENCE = "The CISO reports to the Board's audit committee."


@pytest.mark.parametrize(
    ("text", "pieces", "expected"),
    [
        pytest.param(  # BERT: punctuation split off by the pre-tokenizer, ## continuations
            SENTENCE,
            "<S>|The|CISO|reports|to|the|Board|'|s|audit|commit|tee|.|<S>",
            [-1, 0, 1, 2, 3, 4, 5, 5, 5, 6, 7, 7, 7, -1],
            id="wordpiece",
        ),
        pytest.param(  # byte-level BPE, untrimmed offsets: the leading space is in the token
            SENTENCE,
            "<S>|The| C|ISO| reports| to| the| Board|'s| audit| commit|tee|.|<S>",
            [-1, 0, 1, 1, 2, 3, 4, 5, 5, 6, 7, 7, 7, -1],
            id="byte-level",
        ),
        pytest.param(  # byte-level BPE, trimmed offsets: the space is in the gap
            SENTENCE,
            "<S>|The|C|ISO|reports|to|the|Board|'s|audit|commit|tee|.|<S>",
            [-1, 0, 1, 1, 2, 3, 4, 5, 5, 6, 7, 7, 7, -1],
            id="byte-level-trimmed",
        ),
        pytest.param(  # hyphens and trailing commas do not split words
            "cyber-security, incident-response.",
            "cyber|-|security|,| incident|-|response|.",
            [0, 0, 0, 0, 1, 1, 1, 1],
            id="punctuation",
        ),
        pytest.param(  # a blank token leads the word after it: "  oversight", "\n\nThe", "\tmeets."
            "Risk  oversight\n\nThe Board\tmeets.",
            "Risk| | oversight|\n\n|The| Board|\t|meets|.",
            [0, 1, 1, 2, 2, 3, 4, 4, 4],
            id="spaces-and-newlines",
        ),
        pytest.param(  # SentencePiece: a lone "▁" is the space in front of the next word
            "The CISO  reports",
            "The| C|ISO| | re|ports",
            [0, 1, 1, 2, 2, 2],
            id="metaspace",
        ),
        pytest.param(  # a token that ends in whitespace ends its word ("é\t" in Unigram)
            "é\tend",
            "é\t|end",
            [0, 1],
            id="token-ends-in-whitespace",
        ),
        pytest.param(  # trailing whitespace is a unit of its own, so it can still be masked
            "Board \n",
            "<S>|Board| \n|<S>",
            [-1, 0, 1, -1],
            id="trailing-whitespace",
        ),
        pytest.param(  # a special token in the middle separates words even without whitespace
            "alphabeta",
            "<S>|alpha|<S>|beta|<S>",
            [-1, 0, -1, 1, -1],
            id="special-in-the-middle",
        ),
    ],
)
def test_hand_checked(text, pieces, expected):
    offsets, special = spans(text, pieces)
    assert word_ids_from_offsets(text, offsets, special) == expected


def test_hand_checked_awkward_offsets():
    # Byte-level BPE splits a multi-byte character into tokens that share its span; a trimmed
    # whitespace token has a zero-width span; neither starts a word.
    text = "Zoë’s  risk"
    offsets = [(0, 0), (0, 2), (2, 3), (2, 3), (3, 4), (3, 4), (3, 4), (4, 5), (6, 6), (7, 11), (0, 0)]
    special = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert word_ids_from_offsets(text, offsets, special) == [-1, 0, 0, 0, 0, 0, 0, 0, 1, 1, -1]
    assert word_ids_from_offsets("", [], []) == []
    assert word_ids_from_offsets("", [(0, 0), (0, 0)], [1, 1]) == [-1, -1]
    with pytest.raises(ValueError, match="one entry per token"):
        word_ids_from_offsets(text, offsets, special[:-1])


def random_encoding(rng: random.Random):
    """A random text cut into tokens the ways the tokenizer families cut text.

    Pre-tokens carry their leading whitespace (byte-level BPE, Metaspace) or not (BERT); tokens
    are random pieces of them, including empty ones, ones with the leading whitespace trimmed
    off the span, and multi-byte characters split over tokens sharing one span. No token spans
    whitespace in its middle: no pre-tokenizer produces that.
    """
    text = "".join(rng.choice("ab  c\n\t’é-,\u3000") for _ in range(rng.randint(0, 30)))
    pattern = r"\s*\S+|\s+" if rng.random() < 0.5 else r"\S+|\s+"
    offsets, pos = [(0, 0)], 0
    for pre in re.findall(pattern, text):
        stop = pos + len(pre)
        while pos < stop:
            end = min(stop, pos + rng.randint(0, 3))
            start = pos
            if rng.random() < 0.3:
                while start < end and text[start].isspace():
                    start += 1
            offsets.append((start, end))
            if rng.random() < 0.1 and end > pos:
                offsets.append((end - 1, end))
            pos = end
    offsets.append((0, 0))
    special = [1] + [0] * (len(offsets) - 2) + [1]
    return text, offsets, special


def test_random_encodings_give_whitespace_split_words():
    rng = random.Random(0)
    for _ in range(3000):
        text, offsets, special = random_encoding(rng)
        ids = word_ids_from_offsets(text, offsets, special)
        assert words_from_ids(text, offsets, ids) == text.split(), (text, offsets)
        assert ids[1:-1] == sorted(ids[1:-1])


# ---------------------------------------------------------------- tiny tokenizers

SUBJECTS = [
    "The CISO",
    "Our Board of Directors",
    "The Audit Committee",
    "Management",
    "The Company",
    "Our cybersecurity team",
    "Third-party assessors",
    "The Chief Information Officer",
    "Our internal audit function",
    "The Risk Committee",
]
VERBS = [
    "reports to",
    "oversees",
    "reviews",
    "assesses",
    "monitors",
    "is informed of",
    "evaluates",
    "is responsible for",
    "periodically discusses",
    "receives briefings on",
]
OBJECTS = [
    "the Board's audit committee",
    "material cybersecurity incidents",
    "risks from cybersecurity threats",
    "ransomware attacks",
    "our incident-response plan",
    "vendors' security practices",
    "phishing and social-engineering campaigns",
    "unauthorized access to our systems",
    "the NIST Cybersecurity Framework",
    "penetration tests and tabletop exercises",
]
TAILS = [
    ".",
    " annually.",
    " at least quarterly.",
    ", as described in Item 1C.",
    ", including those at third-party service providers.",
    " and reports findings to management.",
]


def make_corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"
        for _ in range(n)
    ]


CORPUS = make_corpus()
TRICKY = [
    SENTENCE,
    "Risk  oversight\n\nThe Board\tmeets quarterly.  ",
    "  Leading spaces, cyber-security, and (parenthetical) remarks;\nthen a new line.",
    "Vendors’ café-style résumés: 10-K, Item 1C.",
]

BERT_SPECIALS = {
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
    "unk_token": "[UNK]",
}
ROBERTA_SPECIALS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "unk_token": "<unk>",
}


def _wrap(tok: Tokenizer, specials: dict[str, str]) -> PreTrainedTokenizerFast:
    first, last = (specials["cls_token"], specials["sep_token"])
    tok.post_processor = processors.Sequence(
        [
            *([tok.post_processor] if tok.post_processor is not None else []),
            processors.TemplateProcessing(
                single=f"{first} $A {last}",
                special_tokens=[(first, tok.token_to_id(first)), (last, tok.token_to_id(last))],
            ),
        ]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


def byte_level_bpe(add_prefix_space: bool, trim_offsets: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=list(dict.fromkeys(ROBERTA_SPECIALS.values())),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.post_processor = processors.ByteLevel(trim_offsets=trim_offsets)
    return _wrap(tok, ROBERTA_SPECIALS)


def wordpiece() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(
        CORPUS + TRICKY,
        trainers.WordPieceTrainer(vocab_size=400, special_tokens=list(BERT_SPECIALS.values())),
    )
    return _wrap(tok, BERT_SPECIALS)


def unigram() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(
        CORPUS + TRICKY,
        trainers.UnigramTrainer(
            vocab_size=400, special_tokens=list(dict.fromkeys(ROBERTA_SPECIALS.values())), unk_token="<unk>"
        ),
    )
    return _wrap(tok, ROBERTA_SPECIALS)


FAMILIES = {
    "byte-bpe": lambda: byte_level_bpe(add_prefix_space=False, trim_offsets=False),
    "byte-bpe-prefix": lambda: byte_level_bpe(add_prefix_space=True, trim_offsets=False),
    "byte-bpe-trim": lambda: byte_level_bpe(add_prefix_space=False, trim_offsets=True),
    "byte-bpe-prefix-trim": lambda: byte_level_bpe(add_prefix_space=True, trim_offsets=True),
    "wordpiece": wordpiece,
    "unigram": unigram,
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def tokenizer(request) -> PreTrainedTokenizerFast:
    return FAMILIES[request.param]()


def encode(tokenizer, texts):
    enc = tokenizer(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
    return enc, word_ids_for_batch(texts, enc)


def words_from_ids(text, offsets, ids) -> list[str]:
    """Rebuild each word from the text span its tokens cover; drop whitespace-only units."""
    bounds: dict[int, list[int]] = {}
    for (start, end), w in zip(offsets, ids, strict=True):
        if w >= 0:
            lo, hi = bounds.setdefault(w, [start, end])
            bounds[w] = [min(lo, start), max(hi, end)]
    assert sorted(bounds) == list(range(len(bounds))), "word ids are not numbered 0, 1, 2 ..."
    words = [text[lo:hi].strip() for lo, hi in (bounds[w] for w in sorted(bounds))]
    # Only the last unit may be blank (trailing whitespace).
    assert all(words[:-1]), f"a blank unit in the middle of {text!r}: {words}"
    return [w for w in words if w]


# ---------------------------------------------------------------- family tests


def test_words_are_whitespace_free_spans(tokenizer):
    texts = CORPUS + TRICKY
    enc, all_ids = encode(tokenizer, texts)
    multi_token_words = 0
    for i, text in enumerate(texts):
        ids, special = all_ids[i], enc["special_tokens_mask"][i]
        assert words_from_ids(text, enc["offset_mapping"][i], ids) == text.split()
        assert all((w == -1) == bool(s) for w, s in zip(ids, special, strict=True))
        real = [w for w in ids if w >= 0]
        multi_token_words += len(real) - len(set(real))
    assert multi_token_words > 100, "the tiny vocabulary should split many words into subword tokens"


def test_sentence_has_eight_words_for_every_family(tokenizer):
    _, (ids,) = encode(tokenizer, [SENTENCE])
    assert ids[0] == ids[-1] == -1
    assert max(ids) == 7
    assert ids[1:-1] == sorted(ids[1:-1]), "word ids must not go back"


def test_batch_helper_accepts_encodings_and_overflow(tokenizer):
    texts = TRICKY
    enc, from_mapping = encode(tokenizer, texts)
    from_encodings = word_ids_for_batch(texts, enc.encodings)
    assert from_mapping == from_encodings
    assert from_mapping[0] == word_ids_from_offsets(
        texts[0], enc["offset_mapping"][0], enc["special_tokens_mask"][0]
    )

    over = tokenizer(
        texts,
        truncation=True,
        max_length=8,
        stride=2,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    rows = word_ids_for_batch(texts, over)
    assert len(rows) == len(over["input_ids"]) > len(texts)
    for ids, n in zip(rows, map(len, over["input_ids"]), strict=True):
        assert len(ids) == n and ids[0] == -1 and ids[-1] == -1 and ids[1] == 0

    with pytest.raises(ValueError, match="return_offsets_mapping"):
        word_ids_for_batch(texts, tokenizer(texts))


@pytest.mark.parametrize(
    "masker",
    [WholeWordMasker(), WholeWordMasker(probability=0.3, mask_replace_prob=0.8, random_replace_prob=0.1)],
    ids=["default", "80-10-10"],
)
def test_whole_word_masking_end_to_end(tokenizer, masker):
    enc, all_ids = encode(tokenizer, CORPUS)
    features = [
        {"input_ids": x, "word_ids": w, "id": i}
        for i, (x, w) in enumerate(zip(enc["input_ids"], all_ids, strict=True))
    ]
    collate = MaskingCollator(tokenizer=tokenizer, masker=masker, seed=0)
    special_ids = torch.tensor(tokenizer.all_special_ids)
    mask_id = tokenizer.mask_token_id
    n_tokens = n_targets = n_masked = n_kept = 0
    for _epoch in range(3):
        for b in range(0, len(features), 32):
            chunk = features[b : b + 32]
            batch = collate(chunk)
            original = torch.full_like(batch["input_ids"], tokenizer.pad_token_id)
            word_ids = torch.full_like(batch["input_ids"], -1)
            for r, f in enumerate(chunk):
                original[r, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
                word_ids[r, : len(f["word_ids"])] = torch.tensor(f["word_ids"])
            labels = batch["labels"]
            targets = labels != IGNORE_INDEX
            special = torch.isin(original, special_ids) | (batch["attention_mask"] == 0)
            assert not (targets & special).any()
            assert torch.equal(labels[targets], original[targets])
            # Whole words: a word with one target token has all its tokens as targets.
            for r in range(len(chunk)):
                hit = word_ids[r][targets[r]].unique()
                in_hit = torch.isin(word_ids[r], hit) & (word_ids[r] >= 0)
                assert torch.equal(in_hit, targets[r])
            n_tokens += int((~special).sum())
            n_targets += int(targets.sum())
            n_masked += int((batch["input_ids"][targets] == mask_id).sum())
            n_kept += int((batch["input_ids"][targets] == original[targets]).sum())
    # ~12,000 tokens in words of ~1.6 tokens: standard error of the share < 0.005.
    assert n_targets / n_tokens == pytest.approx(masker.probability, abs=0.02)
    assert n_masked / n_targets == pytest.approx(masker.mask_replace_prob, abs=0.04)
    keep_share = 1 - masker.mask_replace_prob - masker.random_replace_prob
    assert n_kept / n_targets == pytest.approx(keep_share, abs=0.04)
    if masker.mask_replace_prob == 1.0:
        assert n_masked == n_targets


def test_token_masking_end_to_end_ignores_word_ids(tokenizer):
    enc, _ = encode(tokenizer, CORPUS[:64])
    collate = MaskingCollator(tokenizer=tokenizer, masker=TokenMasker(probability=0.3), seed=1)
    batch = collate([{"input_ids": x} for x in enc["input_ids"]])
    targets = batch["labels"] != IGNORE_INDEX
    n = int(batch["attention_mask"].sum()) - 2 * 64
    assert int(targets.sum()) / n == pytest.approx(0.3, abs=0.05)
