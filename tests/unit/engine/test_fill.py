"""The slippage fill model's price arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.fill import slipped_price


@pytest.mark.parametrize(
    ("reference", "is_buy", "bps", "expected"),
    [
        (Decimal("42010.0"), True, Decimal(10), Decimal("42052.1")),
        (Decimal("42040.0"), False, Decimal(10), Decimal("41997.9")),
        (Decimal("100.0"), True, Decimal(0), Decimal("100.0")),
        (Decimal("100.05"), False, Decimal(0), Decimal("100.0")),
    ],
)
def test_slipped_price_moves_against_the_taker_and_rounds_against_it(
    reference: Decimal, is_buy: bool, bps: Decimal, expected: Decimal
) -> None:
    assert slipped_price(reference, Decimal("0.1"), side_is_buy=is_buy, slippage_bps=bps) == expected
