"""Check once: the contamination check's findings, kept on disk under a key of what they depend on.

Scanning every line of a DAPT corpus against the holdout paragraphs takes minutes on a full
corpus, and ``plan``, the ``run`` after it and every rank of a distributed run would each pay it.
The findings are kept in two kinds of entry:

* one per **pretraining stage**: its overlaps with each fine-tune eval/holdout file and the
  lines it would exclude, keyed by the stage's corpus (the content digest of each file its
  ``data_files()`` names, the settings of its ``corpus`` -- all its settings when it has no
  ``corpus`` setting -- and the versions of third-party packages that provided it), the
  protected texts (every fine-tune eval and holdout text, with its stage, split and id) and the
  comparison settings (``threshold``, ``shingle_size``, ``min_words``);
* one for the **fine-tune files** against each other, keyed by all their texts and the same
  comparison settings.

What the policy then does (exclude, warn, error) is not in the key: it acts on the findings.
A stage that names no data files (a plugin's in-memory corpus) has no content to key on and is
checked every time.

Entries live in ``$SEC_CYBERT_CACHE/contamination/<key>.json``
(:func:`~sec_cybert.corpus.scratch.cache_root`), written atomically. One that cannot be read
(truncated, not JSON, another format, another key) is removed with a warning and recomputed;
one that cannot be written (a full or read-only disk) is only warned about. Remove the directory
to force a fresh check.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
import structlog

from sec_cybert.core.components import Document

log = structlog.get_logger(__name__)

#: Bump when what an entry holds, or what the check finds for the same inputs, changes.
CACHE_FORMAT = 1
T = TypeVar("T")
SUFFIX = ".json"


def cache_key(parts: Mapping[str, Any]) -> str:
    from sec_cybert.core.version import __version__

    identity = {"format": CACHE_FORMAT, "library": __version__, **parts}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def texts_digest(labeled: Mapping[str, Mapping[str, Sequence[Document]]], splits: Sequence[str]) -> str:
    """Hash of the labeled texts of ``splits`` -- stage name, split, id and text of each, in order."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(labeled):
        for split in splits:
            for document in labeled[name].get(split) or ():
                for part in (name, split, document.id, document.text):
                    encoded = part.encode("utf-8", "surrogatepass")
                    digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()


@attrs.frozen
class ContaminationCache:
    """A directory of findings, one JSON file per key."""

    directory: Path = attrs.field(converter=Path)

    @classmethod
    def default(cls) -> ContaminationCache:
        from sec_cybert.corpus.scratch import cache_root

        return cls(cache_root() / "contamination")

    def entry(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def load(self, key: str, parse: Callable[[Mapping[str, Any]], T]) -> T | None:
        """``parse(findings)`` of the entry; ``None`` when there is none, or when it is damaged --
        unreadable, or ``parse`` finds it malformed (a ``ValueError``, ``KeyError`` or
        ``TypeError``) -- which is then removed with a warning."""
        path = self.entry(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT or record.get("key") != key:
                raise ValueError(f"not this entry's record (format {CACHE_FORMAT}, key {key})")
            findings = record["findings"]
            if not isinstance(findings, dict) or record.get("digest") != _digest(findings):
                raise ValueError("its findings are not what was written (their digest differs)")
            return parse(findings)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            log.warning(
                "contamination cache entry is damaged; removing it and checking again",
                entry=str(path),
                error=f"{type(exc).__name__}: {exc}",
            )
            # Another process removed it, or the disk is read-only: it is ignored either way.
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def store(self, key: str, findings: Mapping[str, Any]) -> None:
        from sec_cybert.core.files import write_json_atomic

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            record = {"format": CACHE_FORMAT, "key": key, "digest": _digest(findings), "findings": dict(findings)}
            write_json_atomic(self.entry(key), record)
        except OSError as exc:  # the check's result stands; only the next run pays again
            log.warning("contamination check not cached", entry=str(self.entry(key)), error=f"{type(exc).__name__}: {exc}")


def _digest(findings: Mapping[str, Any]) -> str:
    return hashlib.blake2b(json.dumps(findings, sort_keys=True).encode(), digest_size=16).hexdigest()
