"""Checkpoints that survive a kill: a manifest written last, verified before every resume.

The HF Trainer writes ``checkpoint-N/`` file by file; a process killed part-way leaves a
directory that looks like a checkpoint (``get_last_checkpoint`` picks it) and a resume that dies
on a missing ``trainer_state.json`` or a truncated weights file -- or, worse, a missing
``optimizer.pt`` that the Trainer accepts silently and continues from another state. So:

* when the Trainer has saved ``checkpoint-N`` (every rank done), :class:`CheckpointManifest`
  writes ``checkpoint-N/manifest.json`` -- every file, its size and its BLAKE2 digest -- to a
  temporary name and renames it into place: a checkpoint is complete exactly when its manifest
  verifies (torchtitan's rule: a step counts once its metadata is written);
* before training, :func:`last_verified_checkpoint` takes the newest checkpoint whose manifest
  verifies and moves every newer one that does not (torn, or written before manifests existed)
  to ``checkpoints/unverified/``, reporting each and why -- nothing is deleted, and the Trainer
  never sees them;
* rotation (``save_total_limit``) is ours, after the manifest: it counts verified checkpoints
  only, keeps the best one when best-model selection is on, and so never deletes the last good
  one.

Renaming the whole directory into place, as the manifest is, would need the Trainer to write
elsewhere first, which it has no public option for; the manifest gives the same guarantee.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from transformers import TrainerCallback

from sec_cybert.core.distributed import is_main_process, wait_for_everyone

log = structlog.get_logger(__name__)

MANIFEST = "manifest.json"
UNVERIFIED = "unverified"
#: What sec_cybert keeps of a run beside the Trainer's state (the loss summed from step 0, the
#: MLM targets counted), written into each checkpoint before its manifest.
RUN_STATE = "sec-cybert-state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: What a resumable checkpoint must hold beside its weights: without any one of them the Trainer
#: resumes from a different state (fresh optimizer moments, a restarted schedule, other RNG).
REQUIRED = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()[:32]


def write_manifest(directory: Path) -> dict[str, Any]:
    """List every file of ``directory`` with size and digest, written last and atomically."""
    files = {
        str(p.relative_to(directory)): {"size": p.stat().st_size, "blake2b": _digest(p)}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not p.name.endswith(".part")
    }
    manifest = {"files": files}
    tmp = directory / (MANIFEST + ".part")
    with tmp.open("w") as handle:
        json.dump(manifest, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / MANIFEST)
    return manifest


def verify(directory: Path) -> str | None:
    """Why ``directory`` is not a complete checkpoint, or ``None`` when its manifest verifies."""
    path = directory / MANIFEST
    if not path.is_file():
        return "no manifest (the save did not finish)"
    try:
        files = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return "unreadable manifest"
    missing = [name for name in REQUIRED if name not in files]
    if not any(name.endswith((".safetensors", ".bin")) for name in files):
        missing.append("model weights")
    if not any(name.startswith("rng_state") for name in files):
        missing.append("rng_state.pth")
    if missing:
        return f"the manifest lacks {', '.join(missing)}"
    for name, expected in files.items():
        file = directory / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != expected["size"]:
            return f"{name} has {file.stat().st_size} bytes, the manifest says {expected['size']}"
        if _digest(file) != expected["blake2b"]:
            return f"{name} does not match its digest"
    return None


def checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``checkpoint-N`` directories under ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return sorted(found)


def last_verified_checkpoint(directory: Path) -> tuple[Path | None, list[str]]:
    """The newest complete checkpoint, after moving newer incomplete ones aside; and what was moved.

    Older checkpoints are left as they are: only the one resumed from needs verifying (each
    verification reads every file once).
    """
    skipped: list[str] = []
    last = None
    for _, path in reversed(checkpoints(directory)):
        problem = verify(path)
        if problem is None:
            last = path
            break
        skipped.append(f"{path.name}: {problem}")
        if is_main_process():
            target = directory / UNVERIFIED / path.name
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    wait_for_everyone()
    for line in skipped:
        log.warning("checkpoint skipped: moved to checkpoints/unverified", reason=line)
    return last, skipped


def read_run_state(checkpoint: Path) -> dict[str, Any]:
    """The :data:`RUN_STATE` of a checkpoint; ``{}`` for one written before it existed."""
    path = Path(checkpoint) / RUN_STATE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


class CheckpointManifest(TrainerCallback):
    """Writes each checkpoint's run state (``run_state()``, when given) and then its manifest,
    once every rank has saved; then rotates verified ones."""

    def __init__(self, directory: Path, keep: int | None, run_state: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.run_state = run_state

    def on_save(self, args, state, control, **kwargs):
        wait_for_everyone()  # every rank's rng_state file is written
        if is_main_process():
            path = self.directory / f"checkpoint-{state.global_step}"
            if path.is_dir():
                if self.run_state is not None:
                    # Exact floats: json writes the shortest repr that reads back the same.
                    (path / RUN_STATE).write_text(json.dumps(dict(self.run_state())))
                write_manifest(path)
                self._rotate(state)
        wait_for_everyone()

    def _rotate(self, state: Any) -> None:
        if not self.keep:
            return
        best = Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None
        # A manifest is written only once its checkpoint's save finished; re-reading every
        # file at each save would cost more than the save.
        verified = [p for _, p in checkpoints(self.directory) if (p / MANIFEST).is_file()]
        removable = [p for p in verified if p.name != best]
        excess = len(verified) - self.keep
        for path in removable[: max(0, excess)]:
            shutil.rmtree(path, ignore_errors=True)
