"""Properties of the store and validator over generated batches (hypothesis)."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from datasets.errors import ValidationError
from datasets.schemas import OHLCV
from datasets.store import SourceInfo, Store
from datasets.validate import validate_batch
from tests.kit.store import ohlcv_batch

T0 = datetime(2023, 12, 31, 18, tzinfo=UTC)
prices = st.decimals(min_value=Decimal("-5"), max_value=Decimal("500"), places=4, allow_nan=False)
positive_prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("500"), places=4)


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))
    }


@st.composite
def valid_bars(draw: st.DrawFn) -> list[tuple[datetime, str, str, str, str, str]]:
    hours = draw(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=12, unique=True))
    bars = []
    for hour in sorted(hours):
        open_, close = draw(positive_prices), draw(positive_prices)
        high = max(open_, close) + draw(st.decimals(min_value=0, max_value=10, places=4))
        low = min(open_, close) * draw(st.sampled_from([Decimal("1"), Decimal("0.5"), Decimal("0.999")]))
        bars.append((T0 + timedelta(hours=hour), str(open_), str(high), str(low), str(close), "1.5"))
    return bars


@settings(max_examples=25, deadline=None)
@given(bars=valid_bars(), split=st.integers(min_value=0, max_value=12), overlap=st.integers(min_value=0, max_value=4))
def test_merge_order_does_not_change_stored_bytes(
    bars: list[tuple[datetime, str, str, str, str, str]], split: int, overlap: int
) -> None:
    first, second = bars[: split + overlap], bars[split:]
    info_a = SourceInfo("a.feather", "a" * 64, "test", "1")
    info_b = SourceInfo("b.feather", "b" * 64, "test", "1")
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        for root, order in ((one, [(first, info_a), (second, info_b)]), (two, [(second, info_b), (first, info_a)])):
            for part, info in order:
                if part:
                    Store(root).write("ohlcv", ohlcv_batch(part), info)
        assert _snapshot(Path(one)) == _snapshot(Path(two))
        assert Store(one).scan("ohlcv").collect().height == len(bars)


@settings(max_examples=25, deadline=None)
@given(bars=valid_bars())
def test_importing_twice_equals_importing_once(bars: list[tuple[datetime, str, str, str, str, str]]) -> None:
    info = SourceInfo("x.feather", "c" * 64, "test", "1")
    with tempfile.TemporaryDirectory() as root:
        Store(root).write("ohlcv", ohlcv_batch(bars), info)
        once = _snapshot(Path(root))
        Store(root).write("ohlcv", ohlcv_batch(bars), info)
        assert _snapshot(Path(root)) == once


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(min_value=0, max_value=6), prices, prices, prices, prices, prices),
        min_size=1,
        max_size=6,
    )
)
def test_validator_accepts_exactly_the_batches_that_keep_every_invariant(
    rows: list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]],
) -> None:
    bars = [(T0 + timedelta(hours=h), str(o), str(hi), str(lo), str(c), str(v)) for h, o, hi, lo, c, v in rows]
    by_key: dict[int, set[tuple[Decimal, ...]]] = {}
    for h, *values in rows:
        by_key.setdefault(h, set()).add(tuple(values))
    expected_valid = all(
        o > 0 and hi > 0 and lo > 0 and c > 0 and v >= 0 and hi >= max(o, c) and lo <= min(o, c)
        for _, o, hi, lo, c, v in rows
    ) and all(len(values) == 1 for values in by_key.values())
    try:
        validate_batch(ohlcv_batch(bars), OHLCV, source="generated")
    except ValidationError:
        assert not expected_valid
    else:
        assert expected_valid
