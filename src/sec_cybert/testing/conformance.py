"""Conformance checks: run a component for real and assert what the host relies on.

Our own conformance test runs these over every registered component; a plugin's author runs
them on theirs::

    from sec_cybert.testing.conformance import check_stage, check_tracker, check_hardware_profile

    def test_my_stage(tmp_path):
        check_stage(MyStage(..., training=Training(max_steps=1)), tmp_path)

Each check raises ``AssertionError`` naming what is wrong. They need no network and no GPU (a
stage runs on the ``tiny-modernbert`` encoder, a CUDA profile is resolved without being run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from sec_cybert.core.components import (
    Chunker,
    CorpusSource,
    Document,
    HardwareProfile,
    Masker,
    ReadReport,
    Tracker,
    stage_problems,
)

#: Two texts that make a tokenizer worth testing with.
_TEXTS = [
    "The audit committee of the board oversees cybersecurity risk and receives quarterly briefings.",
    "Our chief information security officer leads incident response and reports to the chief executive.",
]


def check_masker(masker: Any) -> None:
    """Masks a batch: never a special or padding token; labels are the original ids or -100."""
    import torch

    assert isinstance(masker, Masker), f"{masker!r} lacks needs_word_ids or mask()"
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(10, 100, (16, 40), generator=generator)
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    special[:8, 30:] = True  # padding
    word_ids = torch.where(special, -1, torch.arange(40).expand(16, 40) // 2)
    corrupted, labels = masker.mask(
        input_ids, special, mask_token_id=3, vocab_size=100, word_ids=word_ids, generator=generator
    )
    assert corrupted.shape == labels.shape == input_ids.shape, "mask() must keep the batch shape"
    assert (labels[special] == -100).all(), "a special or padding token got a label"
    assert (corrupted[special] == input_ids[special]).all(), "a special or padding token was changed"
    chosen = labels != -100
    # Out of range, either is an IndexError in the model (a device-side assert on CUDA).
    assert ((corrupted >= 0) & (corrupted < 100)).all(), (
        "mask() put token ids outside the vocabulary (0..vocab_size-1) into the batch: the mask id is "
        "mask_token_id, a random replacement is drawn from range(vocab_size)"
    )
    assert ((labels[chosen] >= 0) & (labels[chosen] < 100)).all(), (
        "labels must be token ids of the vocabulary (0..vocab_size-1), or -100 where no loss is taken"
    )
    assert chosen.any(), "nothing was masked in 16 x 40 tokens"
    assert (labels[chosen] == input_ids[chosen]).all(), "labels must be the original token ids"


def check_chunker(chunker: Any, tokenizer: Any = None) -> None:
    """Tokenizes and groups; ``group`` reads only the rows it is given (a selection)."""
    import datasets

    from sec_cybert.core.encoders import train_bpe_tokenizer

    assert isinstance(chunker, Chunker), f"{chunker!r} lacks provides_word_ids, tokenize() or group()"
    tokenizer = tokenizer or train_bpe_tokenizer(_TEXTS * 20, vocab_size=300)
    documents = datasets.Dataset.from_dict({"text": [*_TEXTS, "A third document, to be left out."]})
    tokenized = chunker.tokenize(documents, tokenizer)
    assert tokenized["n_tokens"] == [len(ids) for ids in tokenized["input_ids"]], "n_tokens must count input_ids"
    if chunker.provides_word_ids:
        assert [len(w) for w in tokenized["word_ids"]] == tokenized["n_tokens"], "one word id per token"
    selected = tokenized.select([0, 1])  # the way a budget hands rows over
    blocks = chunker.group(selected)
    assert "input_ids" in blocks.column_names
    assert ("word_ids" in blocks.column_names) == bool(chunker.provides_word_ids)
    grouped = sum(len(ids) for ids in blocks["input_ids"])
    assert grouped <= sum(selected["n_tokens"]), "group() read rows outside its selection (dataset.data?)"


def check_corpus_source(source: Any) -> list[Document]:
    """Yields Documents with string ids and texts, and counts into the report it is given."""
    assert isinstance(source, CorpusSource), f"{source!r} lacks iter_documents() or describe()"
    assert isinstance(source.describe(), str)
    report = ReadReport()
    documents = list(source.iter_documents(report))
    assert documents or report.total_skipped, "the source yielded nothing and reported no skip"
    for document in documents:
        assert isinstance(document, Document) and isinstance(document.id, str) and isinstance(document.text, str)
        assert isinstance(document.metadata, Mapping)
    # The host counts what it receives; a source that counts too must agree with it.
    assert report.kept in (0, len(documents)), "report.kept, when the source keeps it, must count the documents yielded"
    return documents


def check_hardware_profile(profile: Any) -> Any:
    """Has every attribute the host reads, and resolves to runtime settings."""
    from sec_cybert.core.hardware import resolve_runtime

    missing = [name for name in HardwareProfile.__annotations__ if not hasattr(profile, name)]
    assert not missing, f"profile {profile!r} lacks {', '.join(missing)}"
    assert profile.device in ("cpu", "cuda"), "device must be 'cpu' or 'cuda'"
    assert isinstance(profile.problems(), list)
    assert isinstance(profile.dataloader_num_workers, int) and profile.dataloader_num_workers >= 0
    if profile.device == "cpu":
        runtime = resolve_runtime(profile)
        assert runtime.device == "cpu" and runtime.attn_implementation in ("sdpa", "eager")
        return runtime
    return None  # a CUDA profile's settings are downgraded only where its GPU is visible


def check_encoder(factory: Any, workdir: Path, **options: Any) -> str:
    """Materialises a base that ``AutoModelForMaskedLM`` and ``AutoTokenizer`` load, twice alike."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    reference = factory(Path(workdir), iter(_TEXTS * 50), **options)
    assert isinstance(reference, str), "an encoder factory returns a from_pretrained reference (str)"
    AutoModelForMaskedLM.from_pretrained(reference)
    AutoTokenizer.from_pretrained(reference)
    assert factory(Path(workdir), iter(_TEXTS * 50), **options) == reference, "a second call must reuse the base"
    return reference


def _tiny_pipeline(stages: Sequence[Any], tracking: Sequence[Any] = (), plugin_manager: Any = None) -> Any:
    from sec_cybert.host.pipeline import Pipeline
    from sec_cybert.testing import TINY_ENCODER_OPTIONS, builtin_plugin_manager

    return Pipeline(
        encoder="tiny-modernbert",
        encoder_options=TINY_ENCODER_OPTIONS,
        hardware="cpu",
        seed=0,
        stages=tuple(stages),
        tracking=tuple(tracking),
        plugin_manager=plugin_manager or builtin_plugin_manager(),
    )


def check_stage(stage: Any, tmp_path: Path, *, plugin_manager: Any = None) -> Any:
    """Runs the stage in a pipeline of its own, for real, on the ``tiny-modernbert`` encoder.

    Asserts the Protocol, every capability it declares (the right types back), a ``stage.json``
    the host wrote, a loadable encoder when it produces a variant, and that a second run reuses
    the first. Give it a stage configured to train a step or two. Returns the ``StageResult``.
    """
    from transformers import AutoModelForMaskedLM

    from sec_cybert.core.context import StageResult
    from sec_cybert.host.planner import plan_pipeline
    from sec_cybert.planning.plan import StagePlan

    missing = stage_problems(stage)
    assert not missing, f"{type(stage).__name__} lacks {', '.join(missing)}"
    if hasattr(stage, "pretraining_documents"):
        documents = list(stage.pretraining_documents(ReadReport()))
        assert documents and all(isinstance(d, Document) for d in documents), "pretraining_documents yields Documents"
    if hasattr(stage, "labeled_documents"):
        splits = stage.labeled_documents()
        assert isinstance(splits, Mapping) and set(splits) <= {"train", "eval", "holdout"}
        assert all(isinstance(d, Document) for docs in splits.values() for d in docs)
    if hasattr(stage, "ablation_metrics"):
        assert all(isinstance(name, str) for name in stage.ablation_metrics())
    pipeline = _tiny_pipeline([stage], plugin_manager=plugin_manager)
    if hasattr(stage, "plan"):
        (planned,) = plan_pipeline(pipeline).stages
        assert isinstance(planned, StagePlan) and planned.stage == stage.name
    run_dir = Path(tmp_path) / "conformance-run"
    result = pipeline.run(run_dir)
    if stage.produces_variant:
        record = result.variants[-1].mlm_result
        AutoModelForMaskedLM.from_pretrained(record.output_dir)
    else:
        (record,) = result.finetuned.values()
    assert isinstance(record, StageResult) and record.stage == stage.name
    saved = json.loads((Path(record.output_dir) / "stage.json").read_text())
    assert saved["fingerprint"] == record.fingerprint and saved["produces_variant"] == stage.produces_variant
    json.dumps(saved["metrics"])  # the metrics must be plain data
    again = pipeline.run(run_dir)
    rerun = again.variants[-1].mlm_result if stage.produces_variant else next(iter(again.finetuned.values()))
    assert rerun.fingerprint == record.fingerprint, "a second run into the same directory must reuse the first"
    return record


@attrs.define
class _Spy:
    """Wraps a tracker, recording the calls the host made and any exception it raised."""

    tracker: Any
    calls: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.tracker, name)

        def call(*args: Any) -> Any:
            self.calls.append(name)
            try:
                return method(*args)
            except Exception as exc:
                self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                raise

        return call


def check_tracker(tracker: Any, tmp_path: Path, *, stages: Iterable[Any] = (), plugin_manager: Any = None) -> list[str]:
    """Runs a tiny pipeline (TAPT and a fine-tune on the tiny corpus, unless ``stages`` are given)
    with the tracker, and asserts every method the host called returned without raising.
    Returns the calls, in order."""
    from sec_cybert.testing import tiny_pipeline_config, write_tiny_corpus

    assert isinstance(tracker, Tracker), f"{tracker!r} lacks start_stage, log, finish_stage or finish_run"
    stages = list(stages)
    if not stages:
        from sec_cybert.host.pipeline import load_run_config

        config = tiny_pipeline_config(write_tiny_corpus(Path(tmp_path) / "corpus"))
        config["stages"] = config["stages"][1:]
        for stage in config["stages"]:
            # One step with no warmup: a warmup step would train at learning rate 0, and the
            # degenerate-run guard would warn about the check's own pipeline.
            stage["training"] = {**stage["training"], "max_steps": 1, "save_strategy": "no", "warmup_ratio": 0.0}
        stages = list(load_run_config(config, plugin_manager=plugin_manager).pipeline.stages)
    spy = _Spy(tracker)
    _tiny_pipeline(stages, tracking=[spy], plugin_manager=plugin_manager).run(Path(tmp_path) / "tracked-run")
    assert not spy.errors, f"the tracker raised: {spy.errors}"
    expected = ["start_stage", "log", "finish_stage", "finish_run"]
    assert all(name in spy.calls for name in expected), f"the host called {spy.calls}"
    return spy.calls
