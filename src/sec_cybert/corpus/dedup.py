"""Exact and near-duplicate texts: one normalisation, one shingling, MinHash LSH for clusters.

Companies copy their Item 1C text from year to year, so a paragraph file built from several
years of filings holds many verbatim and near-verbatim copies (a changed year, a new committee
name). Every split, validation set and contamination check must treat a copy as the same text.

* **Exact**: equal after :func:`normalize_for_matching` (Unicode NFKC, case-folded, punctuation
  and whitespace runs folded to one space), so layout, quotes and capitalisation do not matter.
* **Near**: the Jaccard similarity of the two texts' word n-gram sets (``shingle_size`` words)
  reaches ``threshold``. Candidates come from MinHash LSH (``datasketch``), so the work grows
  with the number of texts, not its square; the bands are chosen so a pair at the threshold is
  proposed with probability >= 99.5 % (:func:`lsh_bands`), and every candidate is then verified
  on the exact shingle sets, so no pair below the threshold is ever merged.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import attrs
import numpy as np
from attrs import validators as v

_NON_WORD = re.compile(r"[\W_]+")


def normalize_for_matching(text: str) -> str:
    """The form two copies of a text share: NFKC, case-folded, punctuation and spaces folded."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", folded).strip()


def exact_key(text: str) -> int:
    """A 64-bit hash of the normalised text: two texts with the same key are copies."""
    digest = hashlib.blake2b(normalize_for_matching(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def shingles(text: str, size: int) -> np.ndarray:
    """Sorted unique 32-bit hashes of the text's word ``size``-grams (the whole text if shorter)."""
    words = normalize_for_matching(text).split()
    if not words:
        return np.zeros(0, dtype=np.uint32)
    grams = (
        [" ".join(words)]
        if len(words) <= size
        else [" ".join(words[i : i + size]) for i in range(len(words) - size + 1)]
    )
    return np.unique(np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), np.uint32, len(grams)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique shingle arrays."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


DedupMode = Literal["none", "exact", "near"]


@attrs.frozen
class Deduplication:
    """How an MLM stage treats repeated texts.

    ``mode``: ``none`` (every text is its own), ``exact`` (equal after normalisation) or
    ``near`` (also Jaccard >= ``threshold`` on word ``shingle_size``-grams). Copies form
    *clusters*; a cluster always lands on one side of the validation split. With ``drop`` (the
    default) only the first text of each cluster is kept for training, and the rest are counted.
    """

    mode: DedupMode = attrs.field(default="exact", validator=v.in_(("none", "exact", "near")))
    threshold: float = attrs.field(default=0.8, validator=[v.gt(0), v.le(1)])
    shingle_size: int = attrs.field(default=3, validator=[v.instance_of(int), v.ge(1)])
    num_perm: int = attrs.field(default=128, validator=[v.instance_of(int), v.ge(16)])
    drop: bool = True


@attrs.frozen
class Clusters:
    """Cluster id per text (the index of its first member), and how each cluster was joined."""

    ids: tuple[int, ...]
    exact_copies: int
    near_copies: int

    @property
    def count(self) -> int:
        return len(set(self.ids))

    def first_of_each(self) -> list[int]:
        """Indices of the texts that open a cluster (the ones kept when copies are dropped)."""
        return [i for i, cluster in enumerate(self.ids) if cluster == i]

    def as_dict(self) -> dict[str, int]:
        return {
            "texts": len(self.ids),
            "clusters": self.count,
            "exact_copies": self.exact_copies,
            "near_copies": self.near_copies,
        }


class DisjointSets:
    """Union-find over ``parent`` (a list the caller may grow as items arrive)."""

    def __init__(self, parent: list[int]) -> None:
        self.parent = parent

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        # The smaller index stays the root, so a cluster is named by its first text.
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


#: The share of pairs at exactly the threshold that LSH must propose as candidates. datasketch's
#: default band choice balances false positives and negatives, which at 128 permutations and a
#: 0.8 threshold proposes only ~40 % of the pairs at 0.8; verification removes false positives
#: cheaply, so the bands are chosen for recall instead.
LSH_RECALL = 0.995


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): the most rows (fewest false candidates) that still propose a pair
    at ``threshold`` with probability ``LSH_RECALL`` (1 - (1 - t^r)^b); higher pairs more surely."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= LSH_RECALL:
            return bands, rows
    return num_perm, 1


@attrs.frozen
class Match:
    """A text found in an index: what it was added with, and ``exact`` or ``near`` (with the Jaccard)."""

    payload: object
    kind: Literal["exact", "near"]
    similarity: float


class NearDuplicateIndex:
    """Texts to compare others against: exact keys, MinHash LSH, and the shingle sets to verify.

    ``find`` returns every indexed text that is an exact copy of the query or whose Jaccard
    similarity reaches ``threshold``. With ``prefilter`` the index also keeps the union of all
    its shingles: a query whose shingles are mostly unknown cannot reach the threshold
    (J(A, B) <= |A & B| / |A| <= |A & U| / |A|), so it is answered without a MinHash. That makes
    scanning millions of filing lines against a few thousand protected paragraphs cheap.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.8,
        shingle_size: int = 3,
        num_perm: int = 128,
        near: bool = True,
        prefilter: bool = False,
    ) -> None:
        from datasketch import MinHash, MinHashLSH

        self.threshold = threshold
        self.shingle_size = shingle_size
        self.num_perm = num_perm
        self._payloads: list[object] = []
        self._exact: dict[int, int] = {}
        self._shingles: list[np.ndarray] = []
        self._lsh = MinHashLSH(num_perm=num_perm, params=lsh_bands(threshold, num_perm)) if near else None
        self._known: set[int] | None = set() if prefilter and near else None
        # Drawing the permutations is most of a MinHash's construction: draw them once.
        template = MinHash(num_perm=num_perm, seed=1)
        self._permutations, self._scheme = template.permutations, template.scheme
        self._prepared: tuple[str, int, np.ndarray | None, Any] | None = None

    def __len__(self) -> int:
        return len(self._payloads)

    def _prepare(self, text: str, *, signature: bool) -> tuple[int, np.ndarray | None, Any]:
        """Exact key, shingles and (when asked) MinHash of ``text``, kept for the next call, since
        ``add`` usually follows ``find`` on the same text."""
        from datasketch import MinHash

        if self._prepared is None or self._prepared[0] is not text:
            key = exact_key(text)
            grams = shingles(text, self.shingle_size) if self._lsh is not None else None
            self._prepared = (text, key, grams, None)
        _, key, grams, minhash = self._prepared
        if signature and minhash is None and grams is not None:
            minhash = MinHash(
                num_perm=self.num_perm, hashfunc=int, permutations=self._permutations, scheme=self._scheme
            )
            minhash.update_batch(grams.tolist())
            self._prepared = (text, key, grams, minhash)
        return key, grams, minhash

    def add(self, payload: object, text: str) -> None:
        """Index ``text``, returned as ``payload`` by ``find``; an exact copy of an indexed text is
        not indexed again (``find`` returns the first one)."""
        exact, grams, signature = self._prepare(text, signature=True)
        if exact in self._exact:
            return
        key = len(self._payloads)
        self._payloads.append(payload)
        self._exact[exact] = key
        if self._lsh is None:
            return
        self._lsh.insert(key, signature)
        self._shingles.append(grams)
        if self._known is not None:
            self._known.update(grams.tolist())

    def find(self, text: str) -> list[Match]:
        """Indexed texts that ``text`` copies: the exact copy if any, else the verified near ones."""
        return list(self.iter_matches(text))

    def iter_matches(self, text: str, *, skip: Callable[[object], bool] | None = None) -> Iterator[Match]:
        """``find``, lazily: ``skip(payload)`` is asked before each candidate is verified, so a
        clustering that joins as it goes never computes the Jaccard of a text it already joined."""
        exact, grams, _ = self._prepare(text, signature=False)
        found = self._exact.get(exact)
        if found is not None:
            yield Match(self._payloads[found], "exact", 1.0)
            return
        if self._lsh is None or not len(self):
            return
        if self._known is not None and len(grams):
            known = sum(1 for g in grams.tolist() if g in self._known)
            if known < self.threshold * len(grams):
                return
        _, _, signature = self._prepare(text, signature=True)
        for candidate in sorted(self._lsh.query(signature)):
            if skip is not None and skip(self._payloads[candidate]):
                continue
            similarity = jaccard(grams, self._shingles[candidate])
            if similarity >= self.threshold:
                yield Match(self._payloads[candidate], "near", similarity)


def duplicate_clusters(
    texts: Iterable[str],
    mode: DedupMode = "exact",
    *,
    threshold: float = 0.8,
    shingle_size: int = 3,
    num_perm: int = 128,
) -> Clusters:
    """Group ``texts`` into clusters of copies (see the module docstring for what a copy is).

    One pass that holds keys (and, for ``near``, the shingle sets of distinct texts), never the
    texts: a corpus streams through. ``near`` suits paragraphs; for whole filings use ``exact``.
    """
    parents: list[int] = []
    union = DisjointSets(parents)
    index = NearDuplicateIndex(
        threshold=threshold, shingle_size=shingle_size, num_perm=num_perm, near=mode == "near"
    )
    exact = near = 0
    for position, text in enumerate(texts):
        parents.append(position)
        if mode == "none":
            continue
        copy_of_indexed = False
        same_cluster = lambda first: union.find(first) == union.find(position)  # noqa: B023, E731
        for match in index.iter_matches(text, skip=same_cluster):
            joined = union.union(match.payload, position)  # type: ignore[arg-type]
            if match.kind == "exact":
                exact += joined
                copy_of_indexed = True
            else:
                near += joined
        if not copy_of_indexed:
            index.add(position, text)
    return Clusters(tuple(union.find(i) for i in range(len(parents))), exact, near)
