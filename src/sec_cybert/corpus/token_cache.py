"""Tokenize once: an MLM stage's tokenized documents, kept on disk under a key of what made them.

What is kept is the stage's documents after the blank filter and deduplication, tokenized by
its chunker (every column but ``text``; ``cluster`` included), *before* the token budget and the
validation split: those (``max_tokens``, ``validation_split``, the seed) are what one changes
between runs, and selecting and grouping a kept entry takes seconds where tokenizing took
minutes. ``plan``, the run after it, every rank of a distributed run and a resumed run all read
the entry the first of them wrote.

The key is a hash of

* the documents, by what they are made of when the source says its documents are a function of
  its files and settings alone (``documents_from_files = True``: ``jsonl-shards`` and
  ``paragraphs``): the source's class, its settings and the BLAKE2 of each of its files' content,
  with the contamination check's exclusions (position, id, lines) and ``validation_group_field``.
  A warm ``plan`` or ``run`` then reads no document: it hashes the files, which the contamination
  check's cache key hashed already in the same process (:func:`~sec_cybert.core.files.file_digest`
  remembers each by path, inode, size, mtime and ctime; ~1 GB/s on one core). The content is
  hashed, not trusted to a file's stat from an earlier process, so any changed byte misses
  (also with its mtime set back). The files' stat is taken before they are hashed and checked
  again after a miss has read them: a file changed in between stops the command rather than
  storing what it read under the old content's key. The entry's ``meta.json`` keeps the read's
  report (records kept and skipped), which a hit reports as its own;
* otherwise (``edgar-html``, whose text also depends on the HTML parser installed, or a plugin's
  source) the documents as read (ids, texts, filing dates, groups: after the contamination
  check's exclusions and the source's own filters, so a changed corpus, filter or holdout misses),
* the tokenizer (its backend's vocabulary, merges, normalizer, pre-tokenizer and
  post-processor, and its special tokens),
* the chunker (its class and :meth:`tokenize_settings`, or all its settings when it has none;
  for a plugin's chunker, the version of the package that registered it),
* the deduplication settings,
* :data:`CACHE_FORMAT` and the library version.

Entries live in ``$SEC_CYBERT_CACHE/tokenized/<key>/`` (:func:`~sec_cybert.corpus.scratch.cache_root`):
``data.arrow`` and ``meta.json``, written into a ``.part`` directory and renamed into place
whole, so a half-written entry is never read. One that fails to load (a truncated file, a
changed size, unreadable metadata) is removed with a warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import structlog

from sec_cybert.core.distributed import is_main_process, wait_for_everyone
from sec_cybert.core.files import write_json_atomic
from sec_cybert.corpus.dataset import COLUMNS

if TYPE_CHECKING:
    import datasets

    from sec_cybert.plugins.registry import Registry

log = structlog.get_logger(__name__)

#: Bump when what ``tokenize`` writes, or how an entry is laid out, changes: older entries then miss.
CACHE_FORMAT = 2  # 2: of exact copies, the newest (then lowest id) is kept, not the first read
#: The columns of the documents dataset the key hashes: all of them.
DOCUMENT_COLUMNS = COLUMNS
DATA = "data.arrow"
META = "meta.json"

#: What building the tokenized documents returns besides them: counts for the stage report
#: (JSON-serialisable; kept in the entry's ``meta.json``, so a hit reports what the miss found).
Build = Callable[[], "tuple[datasets.Dataset, dict[str, Any]]"]


def documents_digest(documents: datasets.Dataset, columns: Sequence[str] = DOCUMENT_COLUMNS) -> str:
    """Hash of the documents' ``columns``, read from their Arrow buffers batch by batch (the
    text is never turned into Python strings). The same documents give the same digest however
    the table is chunked."""
    from sec_cybert.corpus.dataset import text_batch_size

    lengths = {name: hashlib.blake2b(digest_size=16) for name in columns}
    data = {name: hashlib.blake2b(digest_size=16) for name in columns}
    rows = documents.select_columns(list(columns)).with_format("arrow")
    for table in rows.iter(batch_size=text_batch_size(documents)):
        for name in columns:
            array = table.column(name).combine_chunks()
            offset_buffer, data_buffer = array.buffers()[1:3]
            if offset_buffer is None:
                continue
            offsets = np.frombuffer(offset_buffer, dtype=np.int32)[
                array.offset : array.offset + len(array) + 1
            ]
            lengths[name].update(np.diff(offsets).astype("<i8").tobytes())
            if data_buffer is not None:
                data[name].update(memoryview(data_buffer)[offsets[0] : offsets[-1]])
    whole = hashlib.blake2b(digest_size=16)
    whole.update(str(len(documents)).encode())
    for name in columns:
        whole.update(name.encode() + lengths[name].digest() + data[name].digest())
    return whole.hexdigest()


def tokenizer_digest(tokenizer: Any) -> str | None:
    """Hash of what decides a fast tokenizer's output; ``None`` for one without a Rust backend."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    state = json.loads(backend.to_str())
    # Set by the last call (``truncation=True, max_length=...``), not part of the tokenizer.
    state.pop("truncation", None)
    state.pop("padding", None)
    identity = {
        "class": type(tokenizer).__qualname__,
        "backend": state,
        "special": sorted(zip(tokenizer.all_special_tokens, tokenizer.all_special_ids, strict=True)),
    }
    return hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=16).hexdigest()


def chunker_identity(chunker: Any, registry: Registry | None = None) -> dict[str, Any] | None:
    """The chunker's class and what its ``tokenize`` depends on: its ``tokenize_settings()``
    when it has that method, else all its settings (an attrs class); ``None`` when neither.

    A chunker from a third-party package adds ``plugins``, ``{distribution: version}`` of the
    packages that registered it (and components nested in it): upgrading one can change how it
    tokenizes. A built-in's identity has none; sec_cybert's own version is in every key already.
    ``registry`` is the run's (the process-wide plugin manager's when ``None``).
    """
    settings = getattr(chunker, "tokenize_settings", None)
    if callable(settings):
        values: Any = dict(settings())
    elif attrs.has(type(chunker)):
        values = attrs.asdict(chunker)
    else:
        return None
    identity = {"class": f"{type(chunker).__module__}.{type(chunker).__qualname__}", "settings": values}
    plugins = _plugin_versions(chunker, registry)
    if plugins:
        identity["plugins"] = plugins
    return identity


def _plugin_versions(component: Any, registry: Registry | None) -> dict[str, str]:
    """The third-party packages that registered ``component`` in the run's ``registry`` (else the
    process-wide plugin manager's, the one the CLI runs with); nothing to look up for one of
    sec_cybert's own classes."""
    if type(component).__module__.partition(".")[0] == "sec_cybert":
        return {}
    from sec_cybert.plugins.registry import get_registry, third_party_versions

    return third_party_versions(component, registry if registry is not None else get_registry())


def source_identity(source: Any, files: Sequence[Path], registry: Registry | None = None) -> dict[str, Any] | None:
    """What a corpus source's documents are a function of, without reading them: its class, all
    its settings, the content digest of each of its ``files`` (in order) and, for a third-party
    source, the versions of the packages that registered it. ``None`` unless the source says its
    documents are a function of those alone (``documents_from_files = True``, an attrs class).

    The digests are :func:`~sec_cybert.core.files.file_digest`'s, which the contamination check's
    cache shares: a file is hashed once per process, and a changed byte is another key.
    """
    from sec_cybert.core.files import file_digest

    if not getattr(source, "documents_from_files", False) or not attrs.has(type(source)) or not files:
        return None
    identity: dict[str, Any] = {
        "class": f"{type(source).__module__}.{type(source).__qualname__}",
        "settings": attrs.asdict(source),
        "files": [[str(path), file_digest(path)] for path in files],
    }
    plugins = _plugin_versions(source, registry)
    if plugins:
        identity["plugins"] = plugins
    return identity


def check_unchanged(files: Sequence[tuple[Path, Any]], what: str) -> None:
    """Raise when a file of ``(path, signature)`` (:func:`~sec_cybert.core.files.file_signature`,
    taken before its digest went into a key) has changed since: what was read from it then is not
    what the key names, and must not be stored under it."""
    from sec_cybert.core.files import file_signature
    from sec_cybert.errors import DataError

    for path, signature in files:
        if not Path(path).exists() or file_signature(path) != signature:
            raise DataError(f"{what} changed while it was read ({path}); run the command again")


def exclusions_identity(exclusions: Any) -> list[Any] | None:
    """What the contamination check removes from a corpus, every position with its document id
    and lines (``None`` when it removes nothing: the documents are then the source's own)."""
    if not exclusions:
        return None
    return sorted(
        [position, document_id, None if lines is None else list(lines)]
        for position, (document_id, lines) in exclusions.removed.items()
    )


def cache_parts(
    *,
    source: Any,
    files: Sequence[Path],
    tokenizer: Any,
    chunker: Any,
    deduplicate: Mapping[str, Any],
    exclusions: Any = None,
    group_field: str | None = None,
    documents: datasets.Dataset | None = None,
    registry: Registry | None = None,
) -> dict[str, Any] | None:
    """What the key of an MLM stage's entry hashes (the module docstring says what and why).

    Without ``documents`` the documents are keyed by what they are made of, without reading
    them: the source's ``files`` (:func:`source_identity`), the contamination check's
    ``exclusions`` and the ``group_field``. ``None`` when the source does not allow that (read its
    documents, then ask again with them), or when the tokenizer or the chunker cannot be
    fingerprinted: then nothing is cached.
    """
    if documents is None:
        identity = source_identity(source, files, registry)
        if identity is None:
            return None
        content: dict[str, Any] = {
            "source": identity,
            "exclusions": exclusions_identity(exclusions),
            "group_field": group_field,
        }
    else:
        content = {"documents": documents_digest(documents)}
    parts = {**content, "tokenizer": tokenizer_digest(tokenizer), "chunker": chunker_identity(chunker, registry)}
    missing = [name for name in ("tokenizer", "chunker") if parts[name] is None]
    if missing:
        log.info("tokenization not cached: nothing to key it on", missing=missing)
        return None
    return {**parts, "deduplicate": dict(deduplicate)}


def cache_key(parts: Mapping[str, Any]) -> str:
    from sec_cybert.core.version import __version__

    identity = {"format": CACHE_FORMAT, "library": __version__, **parts}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


@attrs.frozen
class TokenCache:
    """A directory of tokenized-document entries, one per key."""

    directory: Path = attrs.field(converter=Path)

    @classmethod
    def default(cls) -> TokenCache:
        from sec_cybert.corpus.scratch import cache_root

        return cls(cache_root() / "tokenized")

    def entry(self, key: str) -> Path:
        return self.directory / key

    def load(self, key: str) -> tuple[datasets.Dataset, dict[str, Any]] | None:
        """The entry's dataset (memory-mapped) and metadata; ``None`` when there is none, or when
        it is damaged (then it is removed, with a warning, for the caller to rebuild)."""
        import datasets

        entry = self.entry(key)
        if not entry.is_dir():
            return None
        try:
            meta = json.loads((entry / META).read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
                raise ValueError(f"{META} is not this entry's (format {CACHE_FORMAT}, key {key})")
            for name, size in meta["files"].items():
                if (entry / name).stat().st_size != size:
                    raise ValueError(f"{name} is {(entry / name).stat().st_size} bytes; {size} were written")
            dataset = datasets.Dataset.from_file(str(_linked(entry / DATA)))
            if len(dataset) != meta["rows"] or dataset.column_names != meta["columns"]:
                raise ValueError(
                    f"{DATA} holds {len(dataset)} rows {dataset.column_names}, not {meta['rows']} {meta['columns']}"
                )
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with an entry, it is rebuilt
            log.warning(
                "tokenization cache entry is damaged; removing it and tokenizing again",
                entry=str(entry),
                error=f"{type(exc).__name__}: {exc}",
            )
            self._discard(entry)
            return None
        return dataset, meta

    def store(self, key: str, dataset: datasets.Dataset, meta: Mapping[str, Any]) -> Path:
        """Write ``dataset`` and ``meta`` as the entry ``key``: aside first, then renamed into
        place. When another process stored the same key first, its entry is kept."""
        from datasets.arrow_writer import ArrowWriter

        self.directory.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix=f".{key}-", suffix=".part", dir=self.directory))
        try:
            writer = ArrowWriter(features=dataset.features, path=str(part / DATA))
            for table in dataset.with_format("arrow").iter(batch_size=_rows_per_batch(dataset)):
                writer.write_table(table)
            writer.finalize()
            with (part / DATA).open("rb") as handle:
                os.fsync(handle.fileno())
            record = {
                **meta,
                "format": CACHE_FORMAT,
                "key": key,
                "rows": len(dataset),
                "columns": dataset.column_names,
                "files": {DATA: (part / DATA).stat().st_size},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            write_json_atomic(part / META, record)
            try:
                os.rename(part, self.entry(key))
            except OSError:
                if not self.entry(key).is_dir():
                    raise  # not a lost race: a real failure
        finally:
            shutil.rmtree(part, ignore_errors=True)
        return self.entry(key)

    def _discard(self, entry: Path) -> None:
        # Renamed away first, so no reader meets it half-deleted.
        aside = entry.with_name(f".{entry.name}-damaged-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(entry, aside)
        except OSError:
            return  # another process removed it already
        shutil.rmtree(aside, ignore_errors=True)


def _linked(path: Path) -> Path:
    """A link to ``path`` in the scratch directory: ``datasets`` writes what it derives from a
    dataset (selections, maps) beside the dataset's file, and those belong in scratch, not in
    the cache entry."""
    from sec_cybert.corpus.scratch import scratch_path

    link = scratch_path("tokenized")
    try:
        link.symlink_to(path.resolve())
    except OSError:
        return path  # no symlinks here: derived files go beside the entry, which still works
    return link


def _rows_per_batch(dataset: datasets.Dataset) -> int:
    """Rows per write: about a million tokens (whole filings are ~40K tokens each)."""
    if not len(dataset) or "n_tokens" not in dataset.column_names:
        return 1000
    mean = sum(dataset["n_tokens"]) / len(dataset) or 1
    return max(1, min(1000, int((1 << 20) // mean)))


def tokenize_once(
    parts: Mapping[str, Any] | None, build: Build, *, cache: TokenCache | None = None
) -> tuple[datasets.Dataset, dict[str, Any], dict[str, Any]]:
    """``build()``'s (dataset, metadata), from the cache entry keyed by ``parts`` when there is one.

    Returns the dataset, the metadata and what the stage report records: ``{"cache": "hit" |
    "miss" | "off", "key", "seconds"}``. ``parts=None`` turns the cache off. In a distributed
    run the main process loads or builds the entry while the others wait, then they load it;
    a rank that still finds none (a cache directory not shared with the main process's host)
    builds it itself.
    """
    start = time.perf_counter()

    def report(status: str, key: str | None) -> dict[str, Any]:
        return {"cache": status, "key": key, "seconds": round(time.perf_counter() - start, 3)}

    if parts is None:
        dataset, meta = build()
        return dataset, meta, report("off", None)
    cache = cache if cache is not None else TokenCache.default()
    key = cache_key(parts)
    if is_main_process():
        try:
            found = cache.load(key)
            status = "hit" if found is not None else "miss"
            if found is None:
                found = _build_and_store(cache, key, parts, build)
        finally:
            wait_for_everyone()  # also when building failed: no rank is left waiting
    else:
        wait_for_everyone()
        found = cache.load(key)
        status = "hit" if found is not None else "miss"
        if found is None:
            log.info(
                "the main process's tokenization cache entry is not here; tokenizing on this rank", key=key
            )
            found = _build_and_store(cache, key, parts, build)
    dataset, meta = found
    log.info("tokenization", cache=status, key=key, entry=str(cache.entry(key)))
    return dataset, meta, report(status, key)


def _build_and_store(
    cache: TokenCache, key: str, parts: Mapping[str, Any], build: Build
) -> tuple[datasets.Dataset, dict[str, Any]]:
    dataset, meta = build()
    try:
        cache.store(key, dataset, {**meta, "parts": dict(parts)})
    except OSError as exc:  # a full or read-only disk: the run goes on, uncached
        log.warning(
            "tokenization not cached", entry=str(cache.entry(key)), error=f"{type(exc).__name__}: {exc}"
        )
        return dataset, meta
    return cache.load(key) or (dataset, meta)
