"""A Masker plugin registered from code, then used by name in a config: ``masker: {kind: span}``.

What it shows (docs/plugins.md, "Other component kinds: a span masker"): a masker is an attrs
class with ``needs_word_ids`` and a ``mask`` method; a ``register_maskers`` hook implementation
registers the class under a name. Here the hook lives in a plain object registered on a plugin
manager at run time, with no package and no entry point: the manager holds the built-ins and
the installed plugins (``new_plugin_manager`` + ``load_entry_point_plugins``), plus this object.
The config then picks the masker by name, its fields are the config keys, the conformance check
that sec_cybert runs on its own maskers runs on it, and ``lineage.json`` records it with its kind.

Run (offline, CPU; a TAPT on the synthetic demo paragraphs with a tiny random-init ModernBERT):

    python examples/custom_masker_plugin.py --out runs/examples/span              # 40 steps
    python examples/custom_masker_plugin.py --fast --out /tmp/span-fast            # 3 steps

To ship it as a package instead, put the class and the hook in a module and name that module in
an entry point of the ``sec_cybert`` group (docs/plugins.md, "The parts").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import attrs
import torch
import yaml
from attrs import validators as v

from sec_cybert import hookimpl, load_run_config
from sec_cybert.core.log_setup import configure_logging
from sec_cybert.plugins import load_entry_point_plugins, new_plugin_manager

IGNORE_INDEX = -100  # labels the MLM loss skips


@attrs.frozen
class SpanMasker:
    """Mask spans of ``span_length`` tokens; about ``probability`` of the tokens become targets."""

    probability: float = attrs.field(default=0.15, validator=[v.gt(0), v.lt(1)])
    span_length: int = attrs.field(default=3, validator=[v.instance_of(int), v.ge(1)])
    needs_word_ids: bool = attrs.field(default=False, init=False)

    def mask(
        self,
        input_ids: torch.Tensor,
        special_tokens_mask: torch.Tensor,
        *,
        mask_token_id: int,
        vocab_size: int,
        word_ids: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        device = generator.device if generator is not None else input_ids.device
        draws = torch.rand(input_ids.shape, generator=generator, device=device).to(input_ids.device)
        starts = draws < self.probability / self.span_length
        targets = starts.clone()
        for shift in range(1, self.span_length):
            targets[:, shift:] |= starts[:, :-shift]
        targets &= ~special_tokens_mask.to(input_ids.device, torch.bool)  # never special or padding
        labels = torch.where(targets, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
        return input_ids.masked_fill(targets, mask_token_id), labels


class SpanMaskPlugin:
    """The plugin object: it holds the hook implementations (a module would do as well)."""

    @hookimpl
    def register_maskers(self, register):
        register("span", SpanMasker)  # the class, never an instance


CONFIG = """
encoder: tiny-modernbert
encoder_options: {{vocab_size: 2048, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2,
                  intermediate_size: 128, max_position_embeddings: 512}}
hardware: {hardware}
seed: 42
stages:
  - kind: mlm
    name: tapt-span
    corpus: {{kind: paragraphs, path: "{paragraphs}"}}
    chunker: {{kind: paragraph, max_length: 256}}
    masker: {{kind: span, probability: 0.3, span_length: 3}}    # the plugin's masker, by name
    validation_split: 0.05
    training: {{per_device_train_batch_size: 16, gradient_accumulation_steps: 1, max_steps: {steps},
               learning_rate: 1.0e-3, logging_steps: 10, save_steps: {save_steps}}}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/span"), help="run directory")
    parser.add_argument("--hardware", default="auto")
    parser.add_argument("--fast", action="store_true", help="3 optimizer steps (a smoke test)")
    args = parser.parse_args(argv)
    configure_logging()  # log lines on stderr, as the CLI writes them: stdout is for what this script prints
    out = args.out.resolve()

    # The contract the host relies on, checked the way sec_cybert checks its own maskers.
    from sec_cybert.testing.conformance import check_masker

    check_masker(SpanMasker(probability=0.3))

    # A plugin manager with the built-ins and installed plugins, plus this plugin, from code.
    pm = new_plugin_manager()
    load_entry_point_plugins(pm)
    pm.register(SpanMaskPlugin(), name="spanmask")

    from sec_cybert.testing.demo_data import unpack_demo_corpus

    paragraphs = unpack_demo_corpus(out / "data").paragraphs_file
    steps = 3 if args.fast else 40
    text = CONFIG.format(hardware=args.hardware, paragraphs=paragraphs, steps=steps, save_steps=max(1, steps // 2))
    config_path = out / "span.yaml"
    config_path.write_text(text, encoding="utf-8")

    # Built by the same loader as any config: `kind: span` resolves through this manager only.
    run_config = load_run_config(yaml.safe_load(text), plugin_manager=pm, source=str(config_path))
    print("masker:", run_config.pipeline.stages[0].masker)
    result = run_config.pipeline.run(out)

    stage = result.variants[-1].mlm_result
    print(f"{stage.stage}: {stage.metrics['global_step']} steps, validation loss {stage.metrics['eval_loss']:.4f}")
    lineage = json.loads((out / "lineage.json").read_text())
    (entry,) = [e for e in lineage["stages"] if e["stage"] == "tapt-span"]
    print("lineage.json records the masker as", json.dumps(entry["config"]["masker"]))
    print("plugins of the run:", ", ".join(sorted(lineage.get("plugins", {}))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
