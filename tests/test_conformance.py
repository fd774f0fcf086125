"""Every registered component of every kind honours its Protocol (run over all plugins' registrations)."""

from __future__ import annotations

import inspect

import attrs
import pytest
import torch

from sec_cybert.components import Chunker, CorpusSource, HardwareProfile, Masker, Stage
from sec_cybert.hookspecs import PROJECT_NAME
from sec_cybert.plugins import Registry
from sec_cybert.testing import builtin_plugin_manager

REGISTRY = Registry.collect(builtin_plugin_manager())


def _registrations(kind):
    return [pytest.param(r, id=r.name) for r in REGISTRY.entries[kind].values()]


@pytest.mark.parametrize("registration", _registrations("masker"))
def test_maskers_never_mask_special_or_padding_tokens(registration):
    masker = registration.factory()
    assert isinstance(masker, Masker) and attrs.has(type(masker)) and attrs.fields(type(masker))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        masker.probability = 0.5
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(10, 100, (16, 40), generator=generator)
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    special[:8, 30:] = True  # padding
    word_ids = torch.where(special, -1, torch.arange(40).expand(16, 40) // 2)
    corrupted, labels = masker.mask(input_ids, special, mask_token_id=3, vocab_size=100, word_ids=word_ids, generator=generator)
    assert corrupted.shape == labels.shape == input_ids.shape
    assert (labels[special] == -100).all() and (corrupted[special] == input_ids[special]).all()
    assert (labels != -100).any()
    chosen = labels != -100
    assert (labels[chosen] == input_ids[chosen]).all()


@pytest.mark.parametrize("registration", _registrations("chunker"))
def test_chunkers_produce_input_ids(registration, tiny_corpus):
    import datasets

    from sec_cybert.encoders import train_bpe_tokenizer

    chunker = registration.factory()
    assert isinstance(chunker, Chunker)
    tokenizer = train_bpe_tokenizer(["the audit committee oversees cyber risk"] * 20, vocab_size=280)
    tokenized = chunker.tokenize(datasets.Dataset.from_dict({"text": ["the audit committee", "oversees cyber risk"]}), tokenizer)
    assert tokenized["n_tokens"] == [len(ids) for ids in tokenized["input_ids"]]
    blocks = chunker.group(tokenized)
    assert "input_ids" in blocks.column_names
    assert ("word_ids" in blocks.column_names) == chunker.provides_word_ids


@pytest.mark.parametrize("registration", _registrations("corpus"))
def test_corpus_sources_are_frozen_attrs_with_a_path(registration):
    cls = registration.factory
    assert attrs.has(cls) and cls.__attrs_attrs__ and inspect.isclass(cls)
    assert "path" in attrs.fields_dict(cls)
    assert callable(cls.iter_documents) and callable(cls.describe)
    assert issubclass(cls, CorpusSource)  # structural check of the runtime Protocol


@pytest.mark.parametrize("registration", _registrations("hardware"))
def test_hardware_profiles(registration):
    profile = registration.factory()
    assert isinstance(profile, HardwareProfile)
    assert profile.name == registration.name
    assert isinstance(profile.problems(), list)


@pytest.mark.parametrize("registration", _registrations("stage"))
def test_stages_are_frozen_attrs_with_a_kind(registration):
    cls = registration.factory
    assert attrs.has(cls) and "name" in attrs.fields_dict(cls) and cls.kind in ("mlm", "finetune")
    # Stage has data members, so issubclass() cannot check it: compare the methods instead.
    for method in ("run", "output_dir"):
        assert list(inspect.signature(getattr(cls, method)).parameters) == list(inspect.signature(getattr(Stage, method)).parameters)


@pytest.mark.parametrize("registration", _registrations("encoder"))
def test_encoders_take_the_documented_arguments(registration):
    parameters = list(inspect.signature(registration.factory).parameters)
    assert parameters[:2] == ["workdir", "corpus_texts"]


def test_project_name_is_the_entry_point_group():
    assert PROJECT_NAME == "sec_cybert"
