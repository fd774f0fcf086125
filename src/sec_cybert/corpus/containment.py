"""Holdout paragraphs inside pretraining text: containment where Jaccard cannot see it.

The contamination check compares each line of a filing with each holdout paragraph by Jaccard
similarity, which needs the two to be about the same size. A filing can hold a paragraph in
other shapes, and Jaccard misses them all (on a real filing, a 226-word holdout paragraph kept
51% of its word 5-grams that way):

* **embedded**: the paragraph sits inside a longer line (run in with the next paragraph);
* **a piece**: a line that is a sentence or two of the paragraph;
* **split**: the paragraph spread over consecutive lines (a page break, a list, a table cell),
  a piece per line, each too small for Jaccard.

With ``S(x)`` the word-shingle set of ``x`` (:func:`~sec_cybert.corpus.dedup.shingles`) and
``t`` the threshold, a line is flagged for a holdout paragraph ``P`` when

* ``|S(line) & S(P)| >= t |S(P)|`` -- the line contains the paragraph (``P`` of at least
  ``min_words`` words, so a holdout "None." does not take every line that says it);
* ``|S(line) & S(P)| >= t |S(line)|`` -- the line is inside the paragraph (a line of at least
  ``min_words`` words, as for Jaccard);
* it is part of a *run* of consecutive lines that are each mostly ``P`` (``>= t`` of their own
  shingles) or hold a sizeable piece of it (``>= max(1 - t, 0.1)`` of ``P``'s shingles), and the
  run's text, joined, contains ``>= t`` of ``S(P)``. Empty lines and lines of fewer words than a
  shingle between two such lines do not break a run, and go with it.

Candidates come from an inverted index of the holdout shingles; every candidate is verified on
the exact shingle sets. A line with no holdout shingle at all costs one vectorised lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from sec_cybert.corpus.dedup import shingles

#: The smallest share of a paragraph's shingles a line must hold to count as a piece of it.
MIN_PIECE_SHARE = 0.1


@attrs.frozen
class ContainmentScan:
    """What :meth:`ContainmentIndex.scan` found in one document's lines."""

    #: Line number -> (payload, share of the paragraph's shingles found) for each flagged line.
    flagged: dict[int, tuple[object, float]]
    #: Lines that could be an exact or near copy of an indexed text (at least ``threshold`` of
    #: their shingles are in one); no other line can reach a Jaccard of ``threshold`` with any.
    copy_candidates: frozenset[int]


class ContainmentIndex:
    """Holdout paragraphs to look for inside pretraining lines (see the module docstring)."""

    def __init__(self, *, threshold: float = 0.8, shingle_size: int = 3, min_words: int = 8) -> None:
        self.threshold = threshold
        self.shingle_size = shingle_size
        self.min_words = min_words
        self.piece_share = max(1.0 - threshold, MIN_PIECE_SHARE)
        self._payloads: list[object] = []
        self._shingles: list[np.ndarray] = []
        self._long_enough: list[bool] = []
        self._postings: dict[int, list[int]] = {}
        self._known: np.ndarray | None = np.zeros(0, dtype=np.uint32)

    def __len__(self) -> int:
        return len(self._payloads)

    def add(self, payload: object, text: str) -> None:
        """Index ``text`` (returned as ``payload``). A text under ``min_words`` words is indexed
        only to name the lines that might copy it (:attr:`ContainmentScan.copy_candidates`)."""
        grams = shingles(text, self.shingle_size)
        key = len(self._payloads)
        self._payloads.append(payload)
        self._shingles.append(grams)
        self._long_enough.append(len(text.split()) >= self.min_words)
        for gram in grams.tolist():
            self._postings.setdefault(gram, []).append(key)
        self._known = None

    def _known_shingles(self) -> np.ndarray:
        if self._known is None:
            self._known = np.fromiter(self._postings, dtype=np.uint32, count=len(self._postings))
            self._known.sort()
        return self._known

    def _shared(self, grams: np.ndarray) -> dict[int, int]:
        """Indexed paragraph -> how many of ``grams`` it holds (only paragraphs holding some)."""
        if not len(grams) or not len(self._postings):
            return {}
        table = self._known_shingles()
        at = np.minimum(np.searchsorted(table, grams), len(table) - 1)
        known = grams[table[at] == grams]
        counts: dict[int, int] = {}
        for gram in known.tolist():
            for key in self._postings[gram]:
                counts[key] = counts.get(key, 0) + 1
        return counts

    def scan(self, lines: Sequence[str]) -> ContainmentScan:
        """The lines that hold an indexed paragraph (see the module docstring), and the lines
        worth comparing with the indexed texts by Jaccard."""
        if not len(self):
            return ContainmentScan({}, frozenset())
        grams = [shingles(line, self.shingle_size) if line.strip() else None for line in lines]
        words = [len(line.split()) for line in lines]
        flagged: dict[int, tuple[object, float]] = {}
        candidates: set[int] = set()
        # paragraph -> {line: whether the line is mostly that paragraph} for the run rule
        members: dict[int, dict[int, bool]] = {}
        for number, line_grams in enumerate(grams):
            if line_grams is None:
                continue
            for key, shared in self._shared(line_grams).items():
                size = len(self._shingles[key])
                inside = shared >= self.threshold * len(line_grams)
                if inside:
                    candidates.add(number)
                if not self._long_enough[key]:
                    continue
                if shared >= self.threshold * size:
                    self._flag(flagged, number, key, shared / size)
                    continue  # the whole paragraph is in this line: no run needs it
                if inside and words[number] >= self.min_words:
                    self._flag(flagged, number, key, shared / size)
                if inside or shared >= self.piece_share * size:
                    members.setdefault(key, {})[number] = inside
        for key, lines_of in members.items():
            for run in self._runs(sorted(lines_of), words):
                found = self._run_share(lines, run, lines_of, key)
                if found is not None:
                    for number in run:
                        if lines[number].strip():
                            self._flag(flagged, number, key, found)
        return ContainmentScan(flagged, frozenset(candidates))

    def _coverage(self, lines: Sequence[str], run: Sequence[int], key: int) -> float:
        joined = " ".join(lines[n] for n in run)
        target = self._shingles[key]
        found = np.intersect1d(shingles(joined, self.shingle_size), target, assume_unique=True)
        return len(found) / len(target)

    def _run_share(
        self, lines: Sequence[str], run: list[int], mostly: dict[int, bool], key: int
    ) -> float | None:
        """The share of paragraph ``key`` the run holds when it is a split copy of it (``run`` is
        then trimmed of end lines that are mostly other text and not needed to reach it)."""
        if len(run) < 2:
            return None
        share = self._coverage(lines, run, key)
        if share < self.threshold:
            return None
        for end in (0, -1):
            while len(run) > 1 and not mostly.get(run[end], True):
                trimmed = run[1:] if end == 0 else run[:-1]
                trimmed_share = self._coverage(lines, trimmed, key)
                if trimmed_share < self.threshold:
                    break
                run[:], share = trimmed, trimmed_share
        return share if len(run) > 1 else None

    def _flag(self, flagged: dict[int, tuple[object, float]], number: int, key: int, share: float) -> None:
        if number not in flagged or flagged[number][1] < share:
            flagged[number] = (self._payloads[key], share)

    def _runs(self, member_lines: list[int], words: Sequence[int]) -> list[list[int]]:
        """Consecutive member lines, bridged over empty and shorter-than-a-shingle lines."""
        runs: list[list[int]] = []
        for number in member_lines:
            if runs:
                last = runs[-1][-1]
                gap = range(last + 1, number)
                if all(words[n] < self.shingle_size for n in gap):
                    runs[-1].extend([*gap, number])
                    continue
            runs.append([number])
        return runs
