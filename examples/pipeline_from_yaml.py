"""The whole pipeline from a YAML config: DAPT -> TAPT -> fine-tune, then the ablation table.

What it shows: the config route of the tutorial ("The YAML route") from Python. The config is
the one ``sec-cybert demo`` runs, written with the synthetic demo corpus it points at by
``sec_cybert.app.demo.write_demo_config``; this script loads it as a mapping, changes a setting
(as you would edit the file), builds the pipeline with ``load_run_config`` (which reports every
problem of the config at once) and runs it, base vs +DAPT vs +DAPT+TAPT.

Run (offline, CPU; a tiny random-init ModernBERT, no downloads):

    python examples/pipeline_from_yaml.py --out runs/examples/yaml           # about a minute on 2 cores
    python examples/pipeline_from_yaml.py --fast --out /tmp/yaml-fast         # a few steps per stage

The same run from the command line, on the file this script writes:

    sec-cybert run runs/examples/yaml/pipeline.yaml --ablate
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from sec_cybert import load_run_config
from sec_cybert.app.demo import write_demo_config
from sec_cybert.core.log_setup import configure_logging
from sec_cybert.host.config import load_yaml

FAST_STEPS = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/yaml"), help="run directory")
    parser.add_argument("--fast", action="store_true", help=f"{FAST_STEPS} optimizer steps per stage (a smoke test)")
    parser.add_argument("--hardware", default="auto", help="hardware profile: auto, cpu, cuda, rtx3090 ...")
    args = parser.parse_args(argv)
    configure_logging()  # log lines on stderr, as the CLI writes them: stdout is for what this script prints
    out = args.out.resolve()

    # The demo corpus under OUT/data and its pipeline config, OUT/demo.yaml (output_dir: OUT).
    demo_yaml = write_demo_config(out)
    config = load_yaml(demo_yaml)

    # Edit it as you would edit the file: the hardware, and (--fast) the length of every stage.
    config["hardware"] = args.hardware
    if args.fast:
        for stage in config["stages"]:
            stage.setdefault("training", {})["max_steps"] = FAST_STEPS
    edited = out / "pipeline.yaml"
    edited.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    # load_run_config validates the whole mapping and raises one ConfigError listing every problem.
    run_config = load_run_config(load_yaml(edited), source=str(edited))
    print("stages:", ", ".join(f"{s.name} ({type(s).__name__})" for s in run_config.pipeline.stages))

    result = run_config.pipeline.run(run_config.output_dir or out)  # reuses finished stages on a re-run
    table = result.ablation(run_config.ablation_seeds)  # fine-tunes base and +DAPT too
    print(table.to_markdown())
    print(f"done: {out} (ablation.md, ablation.json, lineage.json; config in {edited})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
