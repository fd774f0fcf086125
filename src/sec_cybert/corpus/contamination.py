"""The contamination check: what pretraining and fine-tuning see of the texts a model is judged on.

Companies repeat their Item 1C text year after year, and DAPT filings contain Item 1C too, so
without a check the pretraining corpora hold the very paragraphs the fine-tune is later scored
on, and a fine-tune's training file can hold copies of its holdout. The Pipeline runs this
check once, before any stage trains:

* every **pretraining** text (each line of a DAPT filing, each TAPT paragraph) against the
  fine-tune **eval and holdout** texts;
* the fine-tune files against each other: train vs eval, train vs holdout, eval vs holdout.

A match is an exact copy or a near copy (:mod:`sec_cybert.corpus.dedup`: normalised text, word
n-gram Jaccard >= ``threshold``). In pretraining text a holdout paragraph is also found when it
is *contained* rather than copied (:mod:`sec_cybert.corpus.containment`): embedded in a longer
line, a line that is a piece of it, or split over consecutive lines. Counts per pair go into the
stage records and ``lineage.json``; :class:`ContaminationPolicy` decides what happens. Lines of
fewer than ``min_words`` words in a pretraining corpus (headings, "None.") are not compared on
their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog
from attrs import validators as v

from sec_cybert.core.components import Document, ReadReport
from sec_cybert.errors import DataError

if TYPE_CHECKING:
    from sec_cybert.corpus.containment import ContainmentIndex
    from sec_cybert.corpus.contamination_cache import ContaminationCache
    from sec_cybert.corpus.dedup import NearDuplicateIndex

log = structlog.get_logger(__name__)

PretrainingPolicy = Literal["exclude", "warn", "error"]
FinetunePolicy = Literal["error", "warn"]
_EXAMPLES = 5


@attrs.frozen
class ContaminationPolicy:
    """What the check does with what it finds.

    ``pretraining``: ``exclude`` (default) removes fine-tune eval/holdout text from the
    pretraining corpora -- whole paragraphs, or the matching lines inside a filing; ``warn``
    keeps it and logs the counts; ``error`` stops before training. ``finetune``: ``error``
    (default) stops when the fine-tune files overlap (train/eval/holdout), ``warn`` only logs.
    """

    pretraining: PretrainingPolicy = attrs.field(
        default="exclude", validator=v.in_(("exclude", "warn", "error"))
    )
    finetune: FinetunePolicy = attrs.field(default="error", validator=v.in_(("error", "warn")))
    threshold: float = attrs.field(default=0.8, validator=[v.gt(0), v.le(1)])
    shingle_size: int = attrs.field(default=3, validator=[v.instance_of(int), v.ge(1)])
    min_words: int = attrs.field(default=8, validator=[v.instance_of(int), v.ge(1)])


@attrs.frozen
class Exclusions:
    """What the check removes from one stage's corpus, by document position in the source.

    ``removed`` maps a position to ``(document id, line numbers)``; ``None`` for the lines means
    the whole document. Positions are stable because the same source is read again moments later;
    the id is checked so that a corpus changed in between is an error, not a wrong cut.
    """

    stage: str
    removed: Mapping[int, tuple[str, tuple[int, ...] | None]] = attrs.field(factory=dict)

    def __bool__(self) -> bool:
        return bool(self.removed)

    @property
    def digest(self) -> str:
        """A fingerprint of what is removed, so a run with other exclusions is another run."""
        payload = json.dumps(sorted((k, list(e[1]) if e[1] else None) for k, e in self.removed.items()))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def apply(self, position: int, document: Document) -> Document | None:
        entry = self.removed.get(position)
        if entry is None:
            return document
        expected_id, lines = entry
        if expected_id != document.id:
            raise DataError(
                f"the corpus of stage {self.stage!r} changed while the run started (document {position} "
                f"was {expected_id!r}, is now {document.id!r}); run the command again"
            )
        if lines is None:
            return None
        drop = set(lines)
        kept = [line for number, line in enumerate(document.text.split("\n")) if number not in drop]
        return attrs.evolve(document, text="\n".join(kept))

    def counts(self) -> dict[str, int]:
        whole = sum(1 for _, lines in self.removed.values() if lines is None)
        return {
            "documents_removed": whole,
            "documents_cut": len(self.removed) - whole,
            "lines_removed": sum(len(lines) for _, lines in self.removed.values() if lines),
        }


@attrs.frozen
class Overlap:
    """How many texts of ``source`` copy a text of ``target`` (e.g. ``dapt`` vs ``finetune.holdout``)."""

    source: str
    target: str
    exact: int = 0
    near: int = 0
    documents: int = 0
    chars: int = 0
    examples: tuple[str, ...] = ()
    #: Lines that contain a target text, are a piece of one, or hold one split over lines.
    contained: int = 0

    @property
    def total(self) -> int:
        return self.exact + self.near + self.contained

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class _Tally:
    exact: int = 0
    near: int = 0
    contained: int = 0
    documents: set[str] = attrs.field(factory=set)
    chars: int = 0
    examples: list[str] = attrs.field(factory=list)

    def add(self, kind: str, source_id: str, target_id: str, similarity: float, chars: int) -> None:
        if kind == "exact":
            self.exact += 1
        elif kind == "near":
            self.near += 1
        else:
            self.contained += 1
        self.documents.add(source_id)
        self.chars += chars
        if len(self.examples) < _EXAMPLES:
            # J: Jaccard of the two texts; share: of the target's shingles found in the source.
            measure = "share" if kind == "contained" else "J"
            self.examples.append(f"{source_id} ~ {target_id} ({kind}, {measure}={similarity:.2f})")

    def overlap(self, source: str, target: str) -> Overlap:
        return Overlap(
            source,
            target,
            self.exact,
            self.near,
            len(self.documents),
            self.chars,
            tuple(self.examples),
            self.contained,
        )


@attrs.frozen
class ContaminationReport:
    """Every pair's counts, and the exclusions each pretraining stage applies."""

    policy: ContaminationPolicy
    overlaps: tuple[Overlap, ...]
    exclusions: Mapping[str, Exclusions]

    def for_stage(self, name: str) -> dict[str, Any]:
        """This stage's share of the report, for its ``stage.json``."""
        prefix = f"{name}."
        overlaps = [
            o.as_dict()
            for o in self.overlaps
            if o.source == name or o.source.startswith(prefix) or o.target.startswith(prefix)
        ]
        excluded = self.exclusions.get(name)
        return {
            "policy": attrs.asdict(self.policy),
            "overlaps": overlaps,
            "excluded": excluded.counts() if excluded else {},
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": attrs.asdict(self.policy),
            "overlaps": [o.as_dict() for o in self.overlaps],
            "excluded": {name: e.counts() for name, e in self.exclusions.items() if e},
        }

    def summary_lines(self) -> list[str]:
        lines = []
        for o in self.overlaps:
            if o.total:
                contained = f", {o.contained} contained" if o.contained else ""
                lines.append(
                    f"{o.source} vs {o.target}: {o.exact} exact, {o.near} near copies{contained} "
                    f"in {o.documents} documents ({o.chars:,} chars)"
                )
        return lines or ["no overlap found"]

    def enforce(self) -> None:
        """Raise on what the policy refuses; log what it only warns about or excludes."""
        refused = []
        for o in self.overlaps:
            if not o.total:
                continue
            finetune_pair = "." in o.source
            policy = self.policy.finetune if finetune_pair else self.policy.pretraining
            contained = f" and {o.contained} lines containing or inside them" if o.contained else ""
            line = (
                f"{o.source} holds {o.exact} exact and {o.near} near copies of {o.target} texts"
                f"{contained} (e.g. {o.examples[0]})"
            )
            if policy == "error":
                fix = (
                    "split the labeled file by company or filing with `sec-cybert split`, or set "
                    "contamination.finetune: warn"
                    if finetune_pair
                    else "set contamination.pretraining: exclude to remove them from the corpus, or warn to keep them"
                )
                refused.append(f"{line}; {fix}")
            elif policy == "warn":
                log.warning("contamination kept", source=o.source, target=o.target, exact=o.exact, near=o.near)
            else:
                log.info("contamination excluded", source=o.source, target=o.target, exact=o.exact, near=o.near)
        if refused:
            raise DataError("; ".join(refused))


def _index(policy: ContaminationPolicy, *, prefilter: bool) -> NearDuplicateIndex:
    from sec_cybert.corpus.dedup import NearDuplicateIndex

    return NearDuplicateIndex(
        threshold=policy.threshold, shingle_size=policy.shingle_size, prefilter=prefilter
    )


def _scan_pretraining(
    stage: str,
    documents: Iterable[Document],
    protected: NearDuplicateIndex,
    inside: ContainmentIndex,
    policy: ContaminationPolicy,
) -> tuple[dict[str, _Tally], Exclusions]:
    tallies: dict[str, _Tally] = {}
    removed: dict[int, tuple[str, tuple[int, ...] | None]] = {}
    for position, document in enumerate(documents):
        lines = document.text.split("\n")
        scan = inside.scan(lines)
        hits = []
        # Only a line most of whose shingles are in some protected text can copy one: the rest
        # need no MinHash.
        for number in sorted(scan.copy_candidates):
            line = lines[number]
            if len(line.split()) < policy.min_words:
                continue
            matches = protected.find(line)
            if not matches:
                continue
            hits.append(number)
            best = max(matches, key=lambda m: m.similarity)
            target, target_id = best.payload  # type: ignore[misc]
            tallies.setdefault(target, _Tally()).add(best.kind, document.id, target_id, best.similarity, len(line))
        copied = set(hits)
        for number, (payload, share) in scan.flagged.items():
            if number in copied:
                continue
            hits.append(number)
            target, target_id = payload  # type: ignore[misc]
            tallies.setdefault(target, _Tally()).add("contained", document.id, target_id, share, len(lines[number]))
        hits.sort()
        if hits:
            whole = all(number in hits or not line.strip() for number, line in enumerate(lines))
            removed[position] = (document.id, None if whole else tuple(hits))
    return tallies, Exclusions(stage, removed)


def _compare(
    source: str, texts: Sequence[Document], target: str, index: NearDuplicateIndex
) -> Overlap:
    tally = _Tally()
    for document in texts:
        matches = index.find(document.text)
        if matches:
            best = max(matches, key=lambda m: m.similarity)
            tally.add(best.kind, document.id, str(best.payload), best.similarity, len(document.text))
    return tally.overlap(source, target)


def check_contamination(
    pretraining: Mapping[str, Any],
    finetune: Mapping[str, Mapping[str, Sequence[Document]]],
    policy: ContaminationPolicy,
    *,
    identities: Mapping[str, Mapping[str, Any] | None] | None = None,
    cache: ContaminationCache | None = None,
) -> ContaminationReport:
    """Run the check.

    ``pretraining`` maps an MLM stage's name to a callable ``documents(report)`` yielding the
    documents it would train on; ``finetune`` maps a fine-tune stage's name to its labeled
    texts by split (``train``, ``eval``, ``holdout``; missing splits are skipped).

    ``identities`` turns the cache on (:mod:`sec_cybert.corpus.contamination_cache`): what each
    pretraining stage's corpus is (``None`` for one that cannot be cached). In a distributed run
    the main process checks first and the others then read its entries.
    """
    if identities is None:
        return _check(pretraining, finetune, policy, None, None)
    from sec_cybert.core.distributed import is_main_process, wait_for_everyone
    from sec_cybert.corpus.contamination_cache import ContaminationCache

    cache = cache if cache is not None else ContaminationCache.default()
    if is_main_process():
        try:
            return _check(pretraining, finetune, policy, identities, cache)
        finally:
            wait_for_everyone()  # also when the check failed: no rank is left waiting
    wait_for_everyone()
    return _check(pretraining, finetune, policy, identities, cache)


def _check(
    pretraining: Mapping[str, Any],
    finetune: Mapping[str, Mapping[str, Sequence[Document]]],
    policy: ContaminationPolicy,
    identities: Mapping[str, Mapping[str, Any] | None] | None,
    cache: ContaminationCache | None,
) -> ContaminationReport:
    from sec_cybert.corpus.contamination_cache import cache_key, texts_digest

    comparison = {"threshold": policy.threshold, "shingle_size": policy.shingle_size, "min_words": policy.min_words}
    statuses: dict[str, str] = {}
    overlaps: list[Overlap] = []
    key = None
    if cache is not None:
        key = cache_key({"part": "finetune", "texts": texts_digest(finetune, _SPLITS), "comparison": comparison})
    found_pairs = cache.load(key, _overlaps_from) if cache is not None and key else None
    if found_pairs is None:
        found_pairs = _compare_finetune(finetune, policy)
        if cache is not None and key:
            cache.store(key, {"overlaps": [o.as_dict() for o in found_pairs]})
    overlaps.extend(found_pairs)

    targets = [f"{name}.{split}" for name, splits in finetune.items() for split in _PROTECTED if splits.get(split)]
    protected_digest = texts_digest(finetune, _PROTECTED) if cache is not None else None
    indices: tuple[NearDuplicateIndex, ContainmentIndex] | None = None
    exclusions: dict[str, Exclusions] = {}
    for name, documents in pretraining.items():
        if not targets:
            exclusions[name] = Exclusions(name)
            continue
        identity = identities.get(name) if identities is not None else None
        entry = None
        if cache is not None and identity is not None:
            parts = {"part": "pretraining", "corpus": identity, "protected": protected_digest, "comparison": comparison}
            entry = cache_key(parts)
        cached = cache.load(entry, lambda f, n=name: _stage_findings(n, f)) if cache is not None and entry else None
        if cached is not None:
            stage_overlaps, found = cached
            statuses[name] = "hit"
        else:
            statuses[name] = "miss" if entry else "off"
            indices = indices or _protected_indices(finetune, policy)
            tallies, found = _scan_pretraining(name, documents(ReadReport()), *indices, policy)
            stage_overlaps = [tallies.get(target, _Tally()).overlap(name, target) for target in targets]
            if cache is not None and entry:
                cache.store(entry, {"overlaps": [o.as_dict() for o in stage_overlaps], "removed": _removed_to(found)})
        overlaps.extend(stage_overlaps)
        exclusions[name] = found if policy.pretraining == "exclude" else Exclusions(name)
    report = ContaminationReport(policy, tuple(overlaps), exclusions)
    log.info(
        "contamination check",
        pairs_checked=len(overlaps),
        cache=statuses or None,
        **{f"{o.source}~{o.target}": o.total for o in overlaps if o.total},
    )
    return report


_SPLITS = ("train", "eval", "holdout")
_PROTECTED = ("eval", "holdout")


def _compare_finetune(
    finetune: Mapping[str, Mapping[str, Sequence[Document]]], policy: ContaminationPolicy
) -> list[Overlap]:
    overlaps = []
    for name, splits in finetune.items():
        indices = {}
        for split in _PROTECTED:
            if splits.get(split):
                indices[split] = _index(policy, prefilter=False)
                for document in splits[split]:
                    indices[split].add(document.id, document.text)
        for source, target in (("train", "eval"), ("train", "holdout"), ("eval", "holdout")):
            if splits.get(source) and target in indices:
                overlaps.append(_compare(f"{name}.{source}", splits[source], f"{name}.{target}", indices[target]))
    return overlaps


def _protected_indices(
    finetune: Mapping[str, Mapping[str, Sequence[Document]]], policy: ContaminationPolicy
) -> tuple[NearDuplicateIndex, ContainmentIndex]:
    from sec_cybert.corpus.containment import ContainmentIndex

    protected = _index(policy, prefilter=True)
    inside = ContainmentIndex(
        threshold=policy.threshold, shingle_size=policy.shingle_size, min_words=policy.min_words
    )
    for name, splits in finetune.items():
        for split in _PROTECTED:
            for document in splits.get(split) or ():
                protected.add((f"{name}.{split}", document.id), document.text)
                inside.add((f"{name}.{split}", document.id), document.text)
    return protected, inside


def _overlaps_from(findings: Mapping[str, Any]) -> list[Overlap]:
    return [Overlap(**{**o, "examples": tuple(o["examples"])}) for o in findings["overlaps"]]


def _stage_findings(stage: str, findings: Mapping[str, Any]) -> tuple[list[Overlap], Exclusions]:
    overlaps = _overlaps_from(findings)
    if any(o.source != stage for o in overlaps):
        raise ValueError(f"the entry holds overlaps of another stage than {stage!r}")
    return overlaps, _exclusions_from(stage, findings)


def _removed_to(exclusions: Exclusions) -> list[list[Any]]:
    return [
        [position, document_id, list(lines) if lines is not None else None]
        for position, (document_id, lines) in sorted(exclusions.removed.items())
    ]


def _exclusions_from(stage: str, findings: Mapping[str, Any]) -> Exclusions:
    return Exclusions(
        stage,
        {
            int(position): (str(document_id), tuple(lines) if lines is not None else None)
            for position, document_id, lines in findings["removed"]
        },
    )
