"""The demo corpus as shipped: what ``sec-cybert demo`` trains on, unpacked from package data.

Every demo run used the same corpus (seed 0, default size), so it is generated once and shipped
gzipped under ``sec_cybert/data/demo/corpus/`` (about 0.3 MB for 2.3 MB of JSONL). The
generator that wrote it is :mod:`sec_cybert.testing.demo_corpus`; a test regenerates it and
checks the shipped copy byte for byte, so neither changes without the other.
"""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from sec_cybert.errors import DataError

#: The generator's seed for the shipped corpus (with the default ``DemoSize``).
SHIPPED_SEED = 0
#: Where the shipped corpus lies inside the ``sec_cybert`` package.
SHIPPED_DIR = "data/demo/corpus"
_SPLITS = ("train", "eval", "holdout")


def _existing_path(instance: Any, attribute: attrs.Attribute, value: Path) -> None:
    if not value.exists():
        raise ValueError(f"{attribute.name}: {value} does not exist")


def _positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen
class DemoCorpus:
    """Where a written demo corpus lives, and how many records each part holds."""

    root: Path = attrs.field(validator=_existing_path)
    dapt_dir: Path = attrs.field(validator=_existing_path)
    paragraphs_file: Path = attrs.field(validator=_existing_path)
    train_file: Path = attrs.field(validator=_existing_path)
    eval_file: Path = attrs.field(validator=_existing_path)
    holdout_file: Path = attrs.field(validator=_existing_path)
    n_documents: int = attrs.field(validator=_positive)
    n_paragraphs: int = attrs.field(validator=_positive)
    n_train: int = attrs.field(validator=_positive)
    n_eval: int = attrs.field(validator=_positive)
    n_holdout: int = attrs.field(validator=_positive)

    @property
    def dapt_shards(self) -> list[Path]:
        return sorted(self.dapt_dir.glob("shard-*.jsonl"))

    @property
    def labeled_files(self) -> dict[str, Path]:
        return {"train": self.train_file, "eval": self.eval_file, "holdout": self.holdout_file}

    def as_dict(self) -> dict[str, object]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in attrs.asdict(self).items()}


def shipped_files() -> dict[str, bytes]:
    """The shipped corpus, decompressed: path relative to a corpus root (``dapt/shard-00000.jsonl``,
    ``tapt/paragraphs.jsonl``, ``labeled/train.jsonl`` ...) -> its bytes."""
    found: dict[str, bytes] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".jsonl.gz"):
                found[prefix + child.name.removesuffix(".gz")] = gzip.decompress(child.read_bytes())

    root = resources.files("sec_cybert").joinpath(SHIPPED_DIR)
    if root.is_dir():
        walk(root, "")
    if not found:
        raise DataError(
            f"the demo corpus is missing from the installed package (sec_cybert/{SHIPPED_DIR}); "
            "reinstall sec-cybert"
        )
    return found


def unpack_demo_corpus(out_dir: Path) -> DemoCorpus:
    """Write the shipped demo corpus under ``out_dir`` and return where each part is.

    The same files, bytes and layout as ``write_demo_corpus(out_dir, seed=0)`` of
    :mod:`sec_cybert.testing.demo_corpus`; existing files are overwritten and shards a larger
    corpus left behind are removed, so what a reader of ``dapt/`` sees is this corpus alone.
    """
    out_dir = Path(out_dir)
    lines: dict[str, int] = {}
    for relative, data in shipped_files().items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        lines[relative] = data.count(b"\n")
    dapt_dir = out_dir / "dapt"
    for stale in dapt_dir.glob("shard-*.jsonl"):
        if f"dapt/{stale.name}" not in lines:
            stale.unlink()
    return DemoCorpus(
        root=out_dir,
        dapt_dir=dapt_dir,
        paragraphs_file=out_dir / "tapt" / "paragraphs.jsonl",
        train_file=out_dir / "labeled" / "train.jsonl",
        eval_file=out_dir / "labeled" / "eval.jsonl",
        holdout_file=out_dir / "labeled" / "holdout.jsonl",
        n_documents=sum(n for relative, n in lines.items() if relative.startswith("dapt/")),
        n_paragraphs=lines.get("tapt/paragraphs.jsonl", 0),
        n_train=lines.get("labeled/train.jsonl", 0),
        n_eval=lines.get("labeled/eval.jsonl", 0),
        n_holdout=lines.get("labeled/holdout.jsonl", 0),
    )
