"""``sec-cybert ablate``'s statistics options reach the table it writes."""

from __future__ import annotations

import json

import pytest
import yaml

from sec_cybert.cli import main
from sec_cybert.testing import TINY_TRAINING, tiny_pipeline_config

#: Only the built-in plugins load (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("builtins_only")


def _dapt_and_finetune(tmp_path, tiny_corpus):
    config = tiny_pipeline_config(tiny_corpus)
    config["stages"] = config["stages"][:1] + config["stages"][2:]
    config["stages"][0]["training"] = {**TINY_TRAINING, "max_steps": 1, "save_strategy": "no"}
    config["seed"] = 5
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_seed_count_test_and_grouping_options_shape_the_ablation(tmp_path, tiny_corpus, capsys):
    config = _dapt_and_finetune(tmp_path, tiny_corpus)
    argv = ["ablate", str(config), "--out", str(tmp_path / "run"), "--seed-count", "2", "--test", "bootstrap"]
    assert main([*argv, "--group-by", "item", "--resamples", "199", "--confidence", "0.9"]) == 0
    table = json.loads((tmp_path / "run" / "ablation.json").read_text())
    assert table["seeds"] == [5, 6]
    comparison = table["comparisons"]["finetune"]
    assert comparison["seeds"] == 2 and comparison["resamples"] == 199 and comparison["confidence"] == 0.9
    assert comparison["test"].startswith("paired multi-bootstrap") and comparison["group_by"] == "item"
    out = capsys.readouterr().out
    assert "90% intervals from 199 resamples" in out and "+DAPT vs base:" in out


def test_seeds_and_seed_count_together_are_refused(tmp_path, tiny_corpus, capsys):
    config = _dapt_and_finetune(tmp_path, tiny_corpus)
    code = main(["ablate", str(config), "--seeds", "1,2", "--seed-count", "2"])
    assert code == 2 and "--seeds or --seed-count" in capsys.readouterr().err
