"""stdout holds a command's result and nothing else; stderr holds log lines, every one JSON with
``--log-format json`` -- W&B tracking on, third-party prints and user errors included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
import structlog
import yaml

from sec_cybert.cli import main
from sec_cybert.testing import tiny_pipeline_config

CLI = "import sys; from sec_cybert.cli import main; sys.exit(main())"


#: Only the built-in plugins load (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("builtins_only")


def _json_lines(text: str) -> list[dict]:
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"stderr line {number} is not JSON: {line!r}\n--- stderr ---\n{text[-3000:]}")
    return events


def _tracked_config(tiny_corpus, tmp_path):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = config["stages"][1:]  # TAPT and the fine-tune: two variants to compare
    config["tracking"] = {"kind": "wandb", "mode": "offline", "project": "streams-test"}
    path = tmp_path / "tracked.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_a_tracked_run_in_json_keeps_every_stderr_line_json_and_stdout_for_the_table(tmp_path, tiny_corpus):
    pytest.importorskip("wandb")
    path = _tracked_config(tiny_corpus, tmp_path)
    env = {
        **os.environ,
        "WANDB_MODE": "offline",  # transformers prints "[INFO] Running in WANDB offline mode" on import
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "",
        "SEC_CYBERT_PLUGINS": "",
        "OMP_NUM_THREADS": "1",
    }
    argv = ["--log-format", "json", "ablate", str(path), "--out", str(tmp_path / "run"), "--resamples", "99"]
    done = subprocess.run(
        [sys.executable, "-c", CLI, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    events = _json_lines(done.stderr)
    names = [e.get("event") for e in events]
    assert names.count("stage complete") == 3  # tapt, and the fine-tunes of base and +TAPT
    assert "wandb run" in names  # W&B's own banner, said as one of our events
    assert any("Running in WANDB offline mode" in str(e.get("event")) for e in events)  # routed, not lost
    lines = done.stdout.splitlines()
    assert lines[0].startswith("| Variant | category_macro_f1 (holdout)"), done.stdout[:500]
    assert not [line for line in lines if "wandb" in line.lower() or line.startswith("[INFO]")]
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) >= 4  # tracked all the same


def test_a_user_error_in_json_is_a_json_event_on_stderr(tmp_path, capsys):
    assert main(["--log-format", "json", "validate", str(tmp_path / "none.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (event,) = _json_lines(captured.err)
    assert event["level"] == "error" and event["event"] == "error"
    assert "none.yaml" in event["problem"] and "does not exist" in event["problem"]


def test_a_usage_error_in_json_is_a_json_event_too(capsys):
    assert main(["--log-format", "json", "plan"]) == 2
    (event,) = _json_lines(capsys.readouterr().err)
    assert event["level"] == "error" and "CONFIG" in event["problem"]


def test_library_prints_and_warnings_become_log_events_while_a_command_works(capsys):
    from sec_cybert.core.log_setup import configure_logging, library_output, unconfigure_logging

    configure_logging(0, "json")
    try:
        with library_output():
            print("[INFO] a library's own line")
            print("bar 1/2\rbar 2/2", file=sys.stderr)
            warnings.warn("a library's warning", UserWarning, stacklevel=1)
    finally:
        unconfigure_logging()
        structlog.reset_defaults()
    captured = capsys.readouterr()
    assert captured.out == ""
    events = _json_lines(captured.err)
    assert {"event": "[INFO] a library's own line", "stream": "stdout", "level": "info"}.items() <= events[0].items()
    assert events[1]["event"] == "bar 2/2" and events[1]["stream"] == "stderr"
    assert events[2]["level"] == "warning" and "a library's warning" in events[2]["event"]
    assert events[2]["logger"] == "py.warnings"


class _UnpicklableMasker:
    """Stands for a masker class datasets cannot pickle (one defined in a script's __main__:
    dill warned with a PicklingWarning on every run and the set got a random fingerprint)."""

    needs_word_ids = False

    def __reduce_ex__(self, protocol):
        raise TypeError("cannot pickle this masker")

    def __repr__(self):
        return "_UnpicklableMasker()"

    def mask(self, input_ids, special_tokens_mask, *, mask_token_id, vocab_size, word_ids=None, generator=None):
        return input_ids, input_ids.clone()


def test_premasking_names_its_set_without_pickling_the_masker(caplog):
    import datasets

    from sec_cybert.core.encoders import train_bpe_tokenizer
    from sec_cybert.datapath.collator import premask
    from sec_cybert.datapath.masking import TokenMasker

    tokenizer = train_bpe_tokenizer(["the audit committee oversees cyber risk"] * 30, vocab_size=280)
    rows = datasets.Dataset.from_dict({"input_ids": [[1, 7, 8, 9, 2], [1, 7, 2]]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a PicklingWarning (or any other) fails the test
        first = premask(rows, tokenizer, _UnpicklableMasker(), seed=3)
        again = premask(rows, tokenizer, _UnpicklableMasker(), seed=3)
    assert "couldn't be hashed" not in caplog.text
    assert first._fingerprint == again._fingerprint  # the same set, the same name: a cache can find it
    assert premask(rows, tokenizer, _UnpicklableMasker(), seed=4)._fingerprint != first._fingerprint
    token = premask(rows, tokenizer, TokenMasker(probability=0.3), seed=3)._fingerprint
    assert token != premask(rows, tokenizer, TokenMasker(probability=0.4), seed=3)._fingerprint
