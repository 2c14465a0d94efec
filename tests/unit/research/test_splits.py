"""Splits are pure: properties over every size hypothesis draws, plus hand-checked cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from research.errors import SplitError
from research.splits import combinatorial_purged, purge_embargo, purged_kfold, walk_forward


def _bars(ranges: tuple[range, ...]) -> set[int]:
    return {i for r in ranges for i in r}


@given(
    n_bars=st.integers(10, 400),
    train_bars=st.integers(1, 100),
    test_bars=st.integers(1, 60),
    purge_bars=st.integers(0, 30),
    anchored=st.booleans(),
)
def test_walk_forward_tests_every_bar_once_and_trains_before_purge(
    n_bars: int, train_bars: int, test_bars: int, purge_bars: int, anchored: bool
) -> None:
    if train_bars + purge_bars >= n_bars:
        with pytest.raises(SplitError, match="shorten the train window"):
            walk_forward(n_bars, train_bars=train_bars, test_bars=test_bars, purge_bars=purge_bars)
        return
    folds = walk_forward(n_bars, train_bars=train_bars, test_bars=test_bars, purge_bars=purge_bars, anchored=anchored)
    tested = [i for fold in folds for r in fold.test for i in r]
    assert tested == list(range(train_bars + purge_bars, n_bars))  # each once, in order
    for fold in folds:
        (train,), (test,) = fold.train, fold.test
        assert train.stop + purge_bars == test.start  # nothing within the purge before the test
        assert len(train) == (train.stop if anchored else train_bars)
        assert train.start >= 0


@given(
    n_bars=st.integers(20, 400),
    groups=st.integers(2, 8),
    data=st.data(),
    purge_bars=st.integers(0, 10),
    embargo_bars=st.integers(0, 10),
)
def test_cpcv_never_trains_on_a_test_range_its_purge_or_embargo(
    n_bars: int, groups: int, data: st.DataObject, purge_bars: int, embargo_bars: int
) -> None:
    test_groups = data.draw(st.integers(1, groups - 1))
    error: SplitError | None = None
    try:
        folds = combinatorial_purged(
            n_bars, groups=groups, test_groups=test_groups, purge_bars=purge_bars, embargo_bars=embargo_bars
        )
    except SplitError as exc:
        error = exc
    if error is not None:  # only when purge and embargo leave a fold nothing to train on
        assert "no training bars left" in str(error)
        return
    for fold in folds:
        train = _bars(fold.train)
        for test in fold.test:
            guarded = set(range(test.start - purge_bars, test.stop + embargo_bars))
            assert not train & guarded
        # Everything not guarded is trained on.
        guarded_all = {i for t in fold.test for i in range(t.start - purge_bars, t.stop + embargo_bars)}
        assert train == set(range(n_bars)) - guarded_all
    # Every bar is tested in the same number of folds (C(groups - 1, test_groups - 1)).
    counts = [sum(i in _bars(f.test) for f in folds) for i in range(n_bars)]
    assert len(set(counts)) == 1


def test_purged_kfold_hand_checked() -> None:
    folds = purged_kfold(12, folds=3, purge_bars=1, embargo_bars=2)
    assert [(f.train, f.test) for f in folds] == [
        ((range(6, 12),), (range(4),)),
        ((range(3), range(10, 12)), (range(4, 8),)),  # 3 purged before, 8 and 9 embargoed after
        ((range(7),), (range(8, 12),)),
    ]


def test_purge_embargo_sized_from_holding_horizon_and_warmup() -> None:
    # 720 h holding, 192 h warm-up, split in days: purge 30 days, embargo 8 days.
    assert purge_embargo(warmup_bars=192, holding_bars=720, unit_bars=24) == (30, 8)
    assert purge_embargo(warmup_bars=1, holding_bars=25, unit_bars=24) == (2, 1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: walk_forward(10, train_bars=0, test_bars=1), "train_bars >= 1"),
        (lambda: combinatorial_purged(10, groups=3, test_groups=3), "test_groups: expected within"),
        (lambda: combinatorial_purged(10, groups=11, test_groups=1), "groups <= n_bars"),
        (lambda: purged_kfold(10, folds=2, purge_bars=5, embargo_bars=5), "no training bars left"),
        (lambda: purge_embargo(warmup_bars=-1, holding_bars=0), "warmup_bars and holding_bars >= 0"),
    ],
)
def test_bad_sizes_raise(call: object, match: str) -> None:
    with pytest.raises(SplitError, match=match):
        call()  # type: ignore[operator]
