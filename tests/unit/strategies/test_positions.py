"""Exact average opening prices from fills, netted the way Nautilus nets them (hand-computed cases)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from strategies.positions import average_open_price

D = Decimal


@pytest.mark.parametrize(
    ("fills", "expected"),
    [
        ([], D(0)),
        ([(D(1), D(100))], D(100)),
        # adding re-weights: (1 x 100 + 1 x 110) / 2
        ([(D(1), D(100)), (D(1), D(110))], D(105)),
        # reducing keeps the average
        ([(D(1), D(100)), (D(1), D(110)), (D(-1), D(120))], D(105)),
        # crossing through flat restarts at the fill price
        ([(D(1), D(100)), (D(1), D(110)), (D(-1), D(120)), (D(-2), D(90))], D(90)),
        # back to flat
        ([(D(1), D(100)), (D(-1), D(80))], D(0)),
        # shorts add the same way: (2 x 50.1 + 1 x 50.4) / 3 = 50.2
        ([(D(-2), D("50.1")), (D(-1), D("50.4"))], D("50.2")),
    ],
)
def test_average_open_price_nets_like_nautilus(fills: list[tuple[Decimal, Decimal]], expected: Decimal) -> None:
    assert average_open_price(fills) == expected


def test_average_open_price_is_exact_where_a_float_is_not() -> None:
    # 0.1 and 0.2 bought once each: exactly 0.15; (0.1 + 0.2) / 2 in binary floats is 0.15000000000000002.
    assert average_open_price([(D(1), D("0.1")), (D(1), D("0.2"))]) == D("0.15")
    assert (0.1 + 0.2) / 2 != 0.15
