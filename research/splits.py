"""Time-series splits for out-of-sample research: pure functions from a length to index ranges.

Every function takes the number of bars (or of any regular unit: ``research.sweep`` splits whole UTC
days) and returns ``Fold`` s of half-open ``range`` s. Nothing here reads data.

Purge and embargo (Lopez de Prado, *Advances in Financial Machine Learning*, ch. 7), sized by
``purge_embargo`` from what a strategy declares:

- **purge**: train bars within ``purge`` bars *before* a test range are dropped. A decision taken
  there can hold a position into the test range for up to the holding horizon, so its outcome
  overlaps the test; purge = holding horizon.
- **embargo**: train bars within ``embargo`` bars *after* a test range are dropped. A decision there
  reads a signal warmed up on test bars (the funding lookback); embargo = warm-up.

Walk-forward trains only before its test, so only the purge applies; every bar after the first
train window (and its purge) is tested exactly once.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from research.errors import SplitError


@dataclass(frozen=True, slots=True)
class Fold:
    """One split: train and test as sorted, disjoint half-open index ranges.

    Attributes
    ----------
    index : int
        Position of the fold in its split (0-based).
    train : tuple[range, ...]
        Training ranges (walk-forward: one; k-fold: up to two; CPCV: several).
    test : tuple[range, ...]
        Test ranges (walk-forward and k-fold: one; CPCV: one per contiguous run of test groups).
    """

    index: int
    train: tuple[range, ...]
    test: tuple[range, ...]

    @property
    def train_bars(self) -> int:
        """Bars in the training ranges."""
        return sum(len(r) for r in self.train)

    @property
    def test_bars(self) -> int:
        """Bars in the test ranges."""
        return sum(len(r) for r in self.test)


def purge_embargo(*, warmup_bars: int, holding_bars: int, unit_bars: int = 1) -> tuple[int, int]:
    """Return ``(purge, embargo)`` in units of ``unit_bars`` bars: the holding horizon and the warm-up, rounded up.

    Raises
    ------
    SplitError
        If a count is negative or ``unit_bars`` is not positive.
    """
    if warmup_bars < 0 or holding_bars < 0:
        raise SplitError(f"expected warmup_bars and holding_bars >= 0, was {warmup_bars} and {holding_bars}")
    if unit_bars < 1:
        raise SplitError(f"unit_bars: expected >= 1, was {unit_bars}")
    return math.ceil(holding_bars / unit_bars), math.ceil(warmup_bars / unit_bars)


def walk_forward(
    n_bars: int,
    *,
    train_bars: int,
    test_bars: int,
    purge_bars: int = 0,
    anchored: bool = False,
) -> list[Fold]:
    """Return walk-forward folds: train on a window, test on the next ``test_bars``, step by ``test_bars``.

    The first test starts at ``train_bars + purge_bars``; tests tile the rest of ``[0, n_bars)``
    (the last one may be shorter). Rolling: each train window is the ``train_bars`` bars ending
    ``purge_bars`` before its test; anchored: it starts at 0 and grows.

    Raises
    ------
    SplitError
        If a size is out of range or no test bar is left after the first train window.
    """
    if train_bars < 1 or test_bars < 1 or purge_bars < 0:
        raise SplitError(
            f"expected train_bars >= 1, test_bars >= 1, purge_bars >= 0, was {train_bars}, {test_bars}, {purge_bars}"
        )
    first = train_bars + purge_bars
    if first >= n_bars:
        raise SplitError(
            f"expected more than train_bars + purge_bars = {first} bars, was {n_bars}: shorten the train window"
        )
    folds = []
    for index, start in enumerate(range(first, n_bars, test_bars)):
        train_end = start - purge_bars
        train_start = 0 if anchored else train_end - train_bars
        folds.append(Fold(index, (range(train_start, train_end),), (range(start, min(start + test_bars, n_bars)),)))
    return folds


def _groups(n_bars: int, count: int) -> list[range]:
    if count < 2 or count > n_bars:
        raise SplitError(f"expected 2 <= groups <= n_bars {n_bars}, was {count}")
    bounds = [n_bars * i // count for i in range(count + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(count)]


def _merge(ranges: list[range]) -> tuple[range, ...]:
    merged: list[range] = []
    for r in sorted(ranges, key=lambda r: r.start):
        if len(r) == 0:
            continue
        if merged and merged[-1].stop >= r.start:
            merged[-1] = range(merged[-1].start, max(merged[-1].stop, r.stop))
        else:
            merged.append(r)
    return tuple(merged)


def _purged_train(n_bars: int, test: tuple[range, ...], *, purge_bars: int, embargo_bars: int) -> tuple[range, ...]:
    blocked = _merge([range(max(t.start - purge_bars, 0), min(t.stop + embargo_bars, n_bars)) for t in test])
    train, cursor = [], 0
    for block in blocked:
        train.append(range(cursor, block.start))
        cursor = block.stop
    train.append(range(cursor, n_bars))
    return _merge(train)


def combinatorial_purged(
    n_bars: int, *, groups: int, test_groups: int, purge_bars: int = 0, embargo_bars: int = 0
) -> list[Fold]:
    """Return combinatorial purged cross-validation folds: every choice of ``test_groups`` of ``groups`` as test.

    ``[0, n_bars)`` is cut into ``groups`` contiguous groups; each fold tests ``test_groups`` of them
    and trains on the rest, less ``purge_bars`` before and ``embargo_bars`` after every test range.
    ``test_groups = 1`` is purged, embargoed k-fold.

    Raises
    ------
    SplitError
        If the counts are out of range, or a fold has no training bar left.
    """
    if not 1 <= test_groups < groups:
        raise SplitError(f"test_groups: expected within [1, groups - 1 = {groups - 1}], was {test_groups}")
    if purge_bars < 0 or embargo_bars < 0:
        raise SplitError(f"expected purge_bars and embargo_bars >= 0, was {purge_bars} and {embargo_bars}")
    cut = _groups(n_bars, groups)
    folds = []
    for index, chosen in enumerate(itertools.combinations(range(groups), test_groups)):
        test = _merge([cut[g] for g in chosen])
        train = _purged_train(n_bars, test, purge_bars=purge_bars, embargo_bars=embargo_bars)
        if not train:
            raise SplitError(
                f"fold {index}: no training bars left after purge {purge_bars} and embargo {embargo_bars}; "
                "use more groups or a shorter horizon"
            )
        folds.append(Fold(index, train, test))
    return folds


def purged_kfold(n_bars: int, *, folds: int, purge_bars: int = 0, embargo_bars: int = 0) -> list[Fold]:
    """Return purged, embargoed k-fold splits over time (``combinatorial_purged`` with one test group).

    Raises
    ------
    SplitError
        If ``folds`` is out of range or a fold has no training bar left.
    """
    return combinatorial_purged(n_bars, groups=folds, test_groups=1, purge_bars=purge_bars, embargo_bars=embargo_bars)
