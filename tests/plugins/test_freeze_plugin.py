"""The sec-cybert-freeze example (examples/plugins/sec-cybert-freeze), installed as a third party
installs it: pip from a copy, found through its entry point, and used by name from a config --
a stage kind, a hardware profile and a tracker. The assertions read what the run left on disk.

The package's own tests (its conformance checks) run beside this file: ``conftest.py`` collects
``examples/plugins/sec-cybert-freeze/tests`` with it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sec_cybert.cli import main
from sec_cybert.host.pipeline import load_run_config
from sec_cybert.plugins.registry import get_plugin_manager, get_registry, reset_plugin_manager
from sec_cybert.testing import TINY_ENCODER_OPTIONS, tiny_pipeline_config, write_tiny_corpus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "sec-cybert-freeze"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
PACKAGE = "sec_cybert_freeze"


def _package_modules() -> dict[str, object]:
    return {name: module for name, module in sys.modules.items() if name.split(".")[0] == PACKAGE}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-install a copy of the example into a temp site directory (offline, no build isolation),
    and import it from there: the source tree that conftest.py puts on sys.path is taken off, and
    modules already imported from it are set aside until the tests of this module are done."""
    root = tmp_path_factory.mktemp("freeze-plugin")
    source = root / "sec-cybert-freeze"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".*_cache"))
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
        check=True,
    )
    saved_path, saved_modules = sys.path[:], _package_modules()
    for name in saved_modules:
        del sys.modules[name]
    sys.path[:] = [str(site), *(p for p in sys.path if Path(p) != EXAMPLE / "src")]
    importlib.invalidate_caches()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SEC_CYBERT_PLUGINS", raising=False)
        reset_plugin_manager()
        yield site
        reset_plugin_manager()
    for name in _package_modules():
        del sys.modules[name]
    sys.modules.update(saved_modules)
    sys.path[:] = saved_path
    importlib.invalidate_caches()


def _config(corpus) -> dict:
    """As YAML would give it: the package's three components by name, then the built-in fine-tune."""
    base = tiny_pipeline_config(corpus)
    dapt, tapt, finetune = base["stages"]
    quick = {"gradient_accumulation_steps": 1, "warmup_ratio": 0.0, "save_strategy": "no"}

    def frozen(stage, steps, max_steps):
        mlm = {key: value for key, value in stage.items() if key != "kind"}
        mlm["training"] = {**mlm["training"], **quick, "max_steps": max_steps}
        return {"kind": "freeze-embeddings", "steps": steps, "mlm": mlm}

    finetune["training"] = {**finetune["training"], **quick, "max_steps": 2}
    return {
        "encoder": "tiny-modernbert",
        "encoder_options": dict(TINY_ENCODER_OPTIONS),
        "hardware": "ci-runner",
        "seed": 7,
        "tracking": [{"kind": "jsonl"}],
        "stages": [
            frozen(dapt, steps=3, max_steps=2),  # never released: the embeddings must not move
            frozen(tapt, steps=1, max_steps=3),  # released after step 1: they must move
            finetune,
        ],
    }


@pytest.fixture(scope="module")
def ran(installed, tmp_path_factory):
    """The pipeline, then its ablation, through the process-wide plugin manager (entry points)."""
    root = tmp_path_factory.mktemp("freeze-run")
    config = _config(write_tiny_corpus(root / "corpus"))
    pm = get_plugin_manager()
    pipeline = load_run_config(config, plugin_manager=pm).pipeline
    result = pipeline.run(root / "run")
    table = result.ablation()
    return {"run_dir": root / "run", "config": config, "result": result, "table": table, "root": root}


def test_it_is_the_installed_copy_that_loads(installed):
    pm = get_plugin_manager()
    registry = get_registry(pm)
    for kind, name in [("stage", "freeze-embeddings"), ("hardware", "ci-runner"), ("tracker", "jsonl")]:
        assert registry.get(kind, name).plugin == "freeze"  # the entry point's name
    assert Path(pm.get_plugin("freeze").__file__).is_relative_to(installed)


def _embeddings(path: Path) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(path)
    embeddings = model.get_input_embeddings().weight
    return embeddings.detach(), {n: p.detach() for n, p in model.named_parameters() if p is not embeddings}


def test_the_stages_froze_the_embeddings(ran):
    run_dir = ran["run_dir"]
    base, base_rest = _embeddings(run_dir / "base")
    dapt, dapt_rest = _embeddings(run_dir / "dapt")  # steps 3 >= max_steps 2
    tapt, _ = _embeddings(run_dir / "tapt")  # steps 1 < max_steps 3
    assert torch.equal(dapt, base)
    assert all(not torch.equal(p, base_rest[n]) for n, p in dapt_rest.items())  # the rest trained
    assert not torch.equal(tapt, dapt)
    variants = [(v.name, v.tag) for v in ran["result"].variants]
    assert variants == [("base", "base"), ("+DAPT", "dapt"), ("+DAPT+TAPT", "dapt-tapt")]
    record = json.loads((run_dir / "tapt" / "stage.json").read_text())
    assert record["kind"] == "freeze-embeddings"
    assert record["report"]["freeze_embeddings"] == {"steps": 1, "started_at_step": 0, "frozen_steps": 1}


def test_tracking_jsonl_tells_every_stage_run_apart(ran):
    run_dir = ran["run_dir"]
    lines = [json.loads(line) for line in (run_dir / "tracking.jsonl").read_text().splitlines()]
    by_run: dict[tuple[str, str, str], list[dict]] = {}
    for line in lines:
        if line["call"] != "finish_run":
            by_run.setdefault((line["stage"], line["variant"], line["tag"]), []).append(line)
    # A pretraining stage runs on the variant it starts from; the ablation fine-tunes every variant.
    assert set(by_run) == {
        ("dapt", "base", "base"),
        ("tapt", "+DAPT", "dapt"),
        ("finetune", "+DAPT+TAPT", "dapt-tapt"),
        ("finetune", "base", "base"),
        ("finetune", "+DAPT", "dapt"),
    }
    for (stage, _, tag), calls in by_run.items():
        assert calls[0]["call"] == "start_stage" and calls[-1]["call"] == "finish_stage", (stage, tag)
        assert calls[-1]["status"] == "finished"
        steps = [c["step"] for c in calls if c["call"] == "log" and c["event"] == "log" and "loss" in c["metrics"]]
        assert steps == sorted(steps) and steps[0] == 1, (stage, tag)
        expected_dir = run_dir / (stage if stage != "finetune" else f"finetune-{tag}")
        assert calls[-1]["output_dir"] == str(expected_dir)
    start = by_run[("tapt", "+DAPT", "dapt")][0]
    assert start["config"]["kind"] == "freeze-embeddings" and start["config"]["steps"] == 1
    assert start["init_from"] == str(run_dir / "dapt")
    summaries = [line for line in lines if line["call"] == "finish_run"]
    assert [next(k for k in s if k in ("lineage", "ablation")) for s in summaries] == ["lineage", "ablation"]
    rows = {row["variant"] for row in summaries[1]["ablation"]["rows"]}
    assert rows == {"base", "+DAPT", "+DAPT+TAPT"}


def _example_version() -> str:
    return re.search(r'^version = "([^"]+)"', (EXAMPLE / "pyproject.toml").read_text(), re.MULTILINE).group(1)


def test_lineage_names_the_distribution_and_its_components(ran):
    lineage = json.loads((ran["run_dir"] / "lineage.json").read_text())
    entry = lineage["plugins"]["freeze"]
    assert (entry["distribution"], entry["version"]) == ("sec-cybert-freeze", _example_version())
    assert importlib.metadata.version("sec-cybert-freeze") == _example_version()
    assert sorted(entry["components"]) == ["hardware:ci-runner", "stage:freeze-embeddings", "tracker:jsonl"]
    assert lineage["hardware"] == "ci-runner"
    assert [(s["stage"], s["kind"]) for s in lineage["stages"][:2]] == [("dapt", "freeze-embeddings"), ("tapt", "freeze-embeddings")]


def test_a_recorded_config_pastes_back_as_it_is(ran):
    """lineage.json records the nested mlm settings with their own kind; the loader takes them."""
    lineage = json.loads((ran["run_dir"] / "lineage.json").read_text())
    recorded = [s["config"] for s in lineage["stages"][:2]]
    assert recorded[0]["mlm"]["kind"] == "mlm"
    again = load_run_config({**ran["config"], "stages": [*recorded, ran["config"]["stages"][2]]}, plugin_manager=get_plugin_manager())
    assert list(again.pipeline.stages[:2]) == list(ran["result"].pipeline.stages[:2])


def test_plugins_command_lists_the_package(installed, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  freeze-embeddings\s+freeze$", out, re.MULTILINE)
    assert re.search(r"^  ci-runner\s+freeze$", out, re.MULTILINE)
    assert re.search(r"^  jsonl\s+freeze$", out, re.MULTILINE)
    line = next(line for line in out.splitlines() if line.startswith("  freeze "))
    assert f"sec-cybert-freeze {_example_version()}" in line
    assert line.split()[-3:] == ["register_hardware_profiles,", "register_stages,", "register_trackers"]


def test_plan_shows_the_stage_and_the_profile(ran, capsys):
    path = ran["root"] / "pipeline.yaml"
    path.write_text(yaml.safe_dump(ran["config"]))
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hardware: ci-runner" in out
    assert re.search(r"throughput: [\d,]+ tokens/s \(measured", out)
    assert "[dapt] (freeze-embeddings)" in out and "[tapt] (freeze-embeddings)" in out
    assert "note: input embeddings frozen for the first 2 of 2 optimizer steps (all of them: they will not train)" in out
    assert "note: input embeddings frozen for the first 1 of 3 optimizer steps" in out


# -- docs/plugins.md shows the package's real code ----------------------------------------------------
#: A code block headed by a line "`sec-cybert-freeze/<path>`:" shows that file of the package.
_BLOCK = re.compile(
    r"^`sec-cybert-freeze/(?P<file>[^`\n]+)`:\n\n```\w+\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL
)


def _doc_blocks() -> list[tuple[str, str]]:
    return [(m["file"], m["code"]) for m in _BLOCK.finditer(DOCS.read_text())]


def test_docs_walk_through_every_file_of_the_package():
    shown = {file for file, _ in _doc_blocks()}
    package = {
        path.relative_to(EXAMPLE).as_posix()
        for path in [EXAMPLE / "pyproject.toml", *(EXAMPLE / "src").rglob("*.py")]
    }
    assert package <= shown, f"docs/plugins.md does not show {sorted(package - shown)}"


@pytest.mark.parametrize(("file", "code"), _doc_blocks(), ids=[file for file, _ in _doc_blocks()])
def test_docs_code_is_the_package_code(file, code):
    """A block headed by a file of the package is that file, or an exact excerpt of it."""
    assert code in (EXAMPLE / file).read_text(), f"docs/plugins.md's {file} differs from the package's"
