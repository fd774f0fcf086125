"""sec_cybert hooks: the ``neobert`` (hub) and ``tiny-neobert`` (offline, random init) encoders.

Found through the entry point ``neobert = "sec_cybert_neobert.plugin"`` in the ``sec_cybert``
group. Importing this module imports the package, which registers the ``neobert`` model type
with transformers' Auto classes, so the stages' ``AutoModelForMaskedLM.from_pretrained`` and
``AutoModel.from_pretrained`` load NeoBERT checkpoints without ``trust_remote_code``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sec_cybert import hookimpl
from sec_cybert.core.encoders import hub_encoder, write_random_encoder

from sec_cybert_neobert import register_auto_classes
from sec_cybert_neobert.configuration_neobert import NeoBERTConfig
from sec_cybert_neobert.modeling_neobert import NeoBERTForMaskedLM

HUB_ID = "chandar-lab/NeoBERT"


def tiny_neobert(
    workdir: Path,
    corpus_texts: Iterable[str],
    *,
    vocab_size: int = 4096,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 1024,
    tie_word_embeddings: bool = True,
    seed: int = 0,
) -> str:
    """Write a random-init NeoBERT and a BPE tokenizer trained on ``corpus_texts`` to ``workdir/base``.

    The offline counterpart of ``tiny-modernbert``: every option can be overridden from a pipeline
    config's ``encoder_options``. Reused when ``workdir/base`` already holds a checkpoint, so a re-run
    resumes on the same base weights.
    """
    sizes = {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "intermediate_size": intermediate_size,
        "max_position_embeddings": max_position_embeddings,
        "tie_word_embeddings": tie_word_embeddings,
    }

    def build(tokenizer: Any) -> NeoBERTForMaskedLM:
        config = NeoBERTConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            mask_token_id=tokenizer.mask_token_id,
            **sizes,
        )
        return NeoBERTForMaskedLM(config)

    return write_random_encoder(
        workdir,
        corpus_texts,
        build,
        name="tiny-neobert",
        recipe={**sizes, "vocab_size": vocab_size, "seed": seed},
    )


@hookimpl
def register_encoders(register: Any) -> None:
    # Registration at import already happened; repeat it in case the Auto mappings were reset.
    register_auto_classes()
    register("tiny-neobert", tiny_neobert)
    register("neobert", hub_encoder(HUB_ID))
