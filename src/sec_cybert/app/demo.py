"""``sec-cybert demo``: the whole chain on the embedded corpus, offline, on a CPU.

Unpacks the synthetic corpus shipped with the package (:mod:`sec_cybert.testing.demo_data`) under
``OUT/data``, writes a real pipeline config ``OUT/demo.yaml``
(edit it and re-run with ``sec-cybert run OUT/demo.yaml --ablate``), then runs DAPT, TAPT and
the fine-tune of base, +DAPT and +DAPT+TAPT into ``OUT``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from sec_cybert.host.config import load_yaml
from sec_cybert.host.pipeline import load_run_config

DEMO_TEMPLATE = "pipeline/demo.yaml"


def write_demo_config(out: Path, *, seed: int = 42) -> Path:
    """Write the demo corpus and ``out/demo.yaml`` pointing at it; return the config's path."""
    from sec_cybert.testing.demo_data import unpack_demo_corpus

    out = Path(out).resolve()
    corpus = unpack_demo_corpus(out / "data")
    template = Template(
        resources.files("sec_cybert.configs").joinpath(DEMO_TEMPLATE).read_text(encoding="utf-8")
    )
    text = template.substitute(
        seed=seed,
        seed_2=seed + 1,
        seed_3=seed + 2,
        out=out,
        dapt_dir=corpus.dapt_dir,
        paragraphs_file=corpus.paragraphs_file,
        train_file=corpus.train_file,
        eval_file=corpus.eval_file,
        holdout_file=corpus.holdout_file,
    )
    path = out / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_demo(out: Path, *, hardware: str = "auto", seed: int = 42, plugin_manager: Any = None) -> Any:
    """Run the demo end to end and return its ablation table."""
    config_path = write_demo_config(out, seed=seed)
    data = load_yaml(config_path)
    data["hardware"] = hardware
    run_config = load_run_config(data, plugin_manager=plugin_manager, source=str(config_path))
    return run_config.pipeline.run(Path(out)).ablation(run_config.ablation_seeds)
