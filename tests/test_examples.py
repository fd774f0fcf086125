"""Every script in examples/ runs, as a reader runs it: ``python examples/NAME.py --fast --out DIR``.

Each runs in its own process, offline, on the CPU, with ``--fast`` (3 optimizer steps per
stage); torch gets one thread (``OMP_NUM_THREADS=1``: the tiny models gain nothing from a second,
and a busy machine loses a lot to it). ``SEC_CYBERT_PLUGINS`` is empty, so an installed
third-party plugin cannot change what the scripts do. What each must leave behind is in
``EXPECTED``; a new script in examples/ is run too, and must say in its docstring what it
shows and how to run it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))

#: Files (relative to --out) each script must write, and a line it must print.
EXPECTED: dict[str, tuple[list[str], str]] = {
    "pipeline_from_yaml": (["pipeline.yaml", "demo.yaml", "lineage.json", "ablation.md", "finetune-dapt-tapt/heads.json"], "| +DAPT+TAPT |"),
    "pipeline_in_python": (["dapt/stage.json", "tapt/stage.json", "ablation.md", "finetune-base/heads.json"], "| +DAPT+TAPT |"),
    "tapt_only": (["tapt/stage.json", "tapt/config.json", "lineage.json"], "TAPT: 3 steps"),
    "finetune_only": (["finetune-base/heads.json", "finetune-base/heads.safetensors"], "category -> "),
    "custom_masker_plugin": (["span.yaml", "tapt-span/stage.json", "lineage.json"], '"kind": "span"'),
}


def test_every_script_says_what_it_shows_and_how_to_run_it():
    assert {p.stem for p in SCRIPTS} >= set(EXPECTED)
    for script in SCRIPTS:
        docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
        assert "What it shows" in docstring, f"{script.name}: say what it shows"
        assert f"python examples/{script.name}" in docstring and "--fast" in docstring, f"{script.name}: say how to run it"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_runs_fast(script, tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "SEC_CYBERT_PLUGINS": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "WANDB_MODE": "disabled",
        "TOKENIZERS_PARALLELISM": "false",
    }
    done = subprocess.run(
        [sys.executable, str(script), "--fast", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script.name} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    files, line = EXPECTED.get(script.stem, ([], ""))
    missing = [f for f in files if not (out / f).exists()]
    assert not missing, f"{script.name} did not write {missing}"
    assert line in done.stdout, f"{script.name} did not print {line!r}:\n{done.stdout}"
    # Log lines go to stderr, in the CLI's format; stdout holds what the script prints, and no
    # library warns (a masker class in __main__ once made dill warn on every run).
    logged = [text for text in done.stdout.splitlines() if "[info     ]" in text or "[warning  ]" in text]
    assert not logged, f"{script.name} logged on stdout:\n" + "\n".join(logged[:5])
    assert "[info     ] stage " in done.stderr, done.stderr[-2000:]
    assert "Warning" not in done.stderr, done.stderr[-4000:]
    if (out / "lineage.json").is_file():
        json.loads((out / "lineage.json").read_text(encoding="utf-8"))
