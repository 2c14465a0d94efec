"""Liquidation prices from maintenance-margin tiers, against hand-computed cases of Binance's published formula.

Binance USD-M, one-way mode (Binance Support, "How to Calculate Liquidation Price of USDⓈ-M Contracts")::

    LP = (WB - TMM + UPNL + cum - side x Q x EP) / (Q x MMR - side x Q)

The brackets below are Binance's BTCUSDT brackets 1-4 as in ``../shared/data/binance_margin/
binance_leverage_tiers.json`` (freqtrade 2026.9 package data, ``BTC/USDT:USDT``): notional caps 300k,
800k, 3M, 12M, ``maintMarginRatio`` 0.004, 0.005, 0.0065, 0.01, ``cum`` 0, 300, 1500, 12000.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from strategies.liquidation_price import (
    Book,
    LiquidationGuard,
    MaintenanceTier,
    MarginTierError,
    OpenLeg,
    bracket,
    flat_tiers,
    largest_safe_quantity,
    liquidation_distance_pct,
    liquidation_price,
    maintenance_margin,
    tiers_from_mapping,
)
from strategies.risk_limits import DEFAULT_MIN_LIQUIDATION_DISTANCE_PCT, RiskConfigError, RiskLimits

D = Decimal
BTC = (
    MaintenanceTier(D(0), D(300_000), D("0.004"), D(0)),
    MaintenanceTier(D(300_000), D(800_000), D("0.005"), D(300)),
    MaintenanceTier(D(800_000), D(3_000_000), D("0.0065"), D(1500)),
    MaintenanceTier(D(3_000_000), D(12_000_000), D("0.01"), D(12000)),
    MaintenanceTier(D(12_000_000), None, D("0.02"), D(132000)),
)
CENT = D("0.01")


def _margin_left(quantity: Decimal, entry: Decimal, margin: Decimal, price: Decimal) -> Decimal:
    return margin + quantity * (price - entry)


def test_isolated_long_bracket_one_matches_hand_computation() -> None:
    """1 BTC long at 50,000, 10x isolated: WB = 50,000 / 10 = 5,000, bracket 1 (notional 50k < 300k).

    LP = (5000 + 0 - 1 x 1 x 50000) / (1 x 0.004 - 1) = -45000 / -0.996 = 45180.7228...
    Check: margin left 5000 + (45180.72 - 50000) = 180.72 = 45180.72 x 0.004 (the maintenance margin).
    """
    price = liquidation_price(BTC, quantity=D(1), entry_price=D(50000), margin=D(5000))
    assert price is not None
    assert price.quantize(CENT) == D("45180.72")
    assert abs(_margin_left(D(1), D(50000), D(5000), price) - maintenance_margin(BTC, price)) < D("1e-20")


def test_isolated_short_bracket_one_matches_hand_computation() -> None:
    """1 BTC short at 50,000 with WB 5,000: LP = (5000 + 50000) / (0.004 + 1) = 55000 / 1.004 = 54780.8764..."""
    price = liquidation_price(BTC, quantity=D(-1), entry_price=D(50000), margin=D(5000))
    assert price is not None
    assert price.quantize(CENT) == D("54780.88")


def test_cross_long_in_bracket_two_uses_its_maintenance_amount() -> None:
    """10 BTC long at 50,000 (notional 500k: bracket 2, MMR 0.005, cum 300), cross wallet 100,000.

    LP = (100000 + 300 - 500000) / (10 x 0.005 - 10) = -399700 / -9.95 = 40170.8542...
    Check: margin left 100000 + 10 x (40170.85 - 50000) = 1708.54 = 401708.54 x 0.005 - 300.
    """
    price = liquidation_price(BTC, quantity=D(10), entry_price=D(50000), margin=D(100000))
    assert price is not None
    assert price.quantize(CENT) == D("40170.85")
    assert abs(_margin_left(D(10), D(50000), D(100000), price) - maintenance_margin(BTC, D(10) * price)) < D("1e-18")


def test_cross_short_counts_other_positions_margin_and_pnl() -> None:
    """2 BTC short at 60,000 (120k, bracket 1), wallet 20,000, other legs TMM 1,000 and UPNL -2,000.

    LP = (20000 - 1000 - 2000 + 0 + 2 x 60000) / (2 x 0.004 + 2) = 137000 / 2.008 = 68227.0916...
    """
    price = liquidation_price(
        BTC,
        quantity=D(-2),
        entry_price=D(60000),
        margin=D(20000),
        other_maintenance=D(1000),
        other_unrealised=D(-2000),
    )
    assert price is not None
    assert price.quantize(CENT) == D("68227.09")


def test_flat_rate_venue_short_matches_hand_computation() -> None:
    """A venue without tiers (Bybit SOL in datasets.venues: margin_maint 0.01): 1 short at 100, WB 50.

    LP = (50 + 1 x 100) / (1 x 0.01 + 1) = 150 / 1.01 = 148.5148...
    """
    price = liquidation_price(flat_tiers(D("0.01")), quantity=D(-1), entry_price=D(100), margin=D(50))
    assert price is not None
    assert price.quantize(CENT) == D("148.51")


def test_fully_backed_long_has_no_liquidation_price() -> None:
    """1 long at 100 with 100 of margin: LP = (100 - 100) / (0.004 - 1) = 0, so nothing liquidates it."""
    assert liquidation_price(BTC, quantity=D(1), entry_price=D(100), margin=D(100)) is None
    assert liquidation_distance_pct(None, D(100)) == D(100)


def test_zero_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="quantity: expected a position, was 0"):
        liquidation_price(BTC, quantity=D(0), entry_price=D(100), margin=D(1))


def test_largest_safe_short_sits_exactly_at_the_distance() -> None:
    """Cross short, wallet 10,000, mark 50,000, minimum distance 20 %, bracket 1.

    Q x mark = 10000 / (0.2 x (1 + 0.004) + 0.004) = 10000 / 0.2048 = 48828.125, Q = 0.9765625 BTC;
    its LP = (10000 + 48828.125) / (0.9765625 x 1.004) = 58828.125 / 0.98046875 = 60000 = mark x 1.2.
    """
    quantity = largest_safe_quantity(
        BTC, side=-1, mark=D(50000), margin=D(10000), min_distance_pct=D(20), margin_mode="cross"
    )
    assert quantity == D("0.9765625")
    assert liquidation_price(BTC, quantity=-quantity, entry_price=D(50000), margin=D(10000)) == D(60000)


def test_largest_safe_quantity_crosses_brackets() -> None:
    """Cross short, wallet 100,000, mark 50,000, distance 10 %.

    Bracket 1: 100000 / (0.1 x 1.004 + 0.004) = 957,854 >= cap 300k, all of it is safe; bracket 2:
    100300 / (0.1 x 1.005 + 0.005) = 950,711 >= 800k; bracket 3: (100000 + 1500) / (0.1 x 1.0065 + 0.0065)
    = 101500 / 0.10715 = 947,270.18 in [800k, 3M): Q = 18.9454 BTC, and its LP is 55,000.
    """
    quantity = largest_safe_quantity(
        BTC, side=-1, mark=D(50000), margin=D(100000), min_distance_pct=D(10), margin_mode="cross"
    )
    assert (quantity * 50000).quantize(CENT) == D("947270.18")
    price = liquidation_price(BTC, quantity=-quantity, entry_price=D(50000), margin=D(100000))
    assert price is not None
    assert abs(price - D(55000)) < D("1e-18")


def test_isolated_leverage_below_the_distance_buys_what_the_wallet_allows() -> None:
    """Isolated 2x: the distance is (1/2 - 0.004) / 1.004 = 49.4 % > 20 %, so all of 2 x 1000 / 100 = 20 units."""
    quantity = largest_safe_quantity(
        flat_tiers(D("0.004")),
        side=-1,
        mark=D(100),
        margin=D(1000),
        min_distance_pct=D(20),
        margin_mode="isolated",
        leverage=D(2),
    )
    assert quantity == D(20)


def test_isolated_leverage_above_the_distance_buys_nothing() -> None:
    """Isolated 10x: (0.1 - 0.004) / 1.004 = 9.6 % < 20 % at every size (no maintenance amount): zero."""
    quantity = largest_safe_quantity(
        flat_tiers(D("0.004")),
        side=-1,
        mark=D(100),
        margin=D(1000),
        min_distance_pct=D(20),
        margin_mode="isolated",
        leverage=D(10),
    )
    assert quantity == 0


def test_tiers_from_config_rows_and_their_errors() -> None:
    rows = [
        {"notional_floor": 0, "notional_cap": "300000", "maintenance_rate": "0.004"},
        {"notional_floor": "300000", "maintenance_rate": "0.005", "maintenance_amount": 300},
    ]
    tiers = tiers_from_mapping(rows)
    assert tiers[1] == MaintenanceTier(D(300000), None, D("0.005"), D(300))
    with pytest.raises(MarginTierError, match=r"margin_tiers\[1\].notional_floor: expected the previous cap 300000"):
        tiers_from_mapping([rows[0], {**rows[1], "notional_floor": 200000}])
    with pytest.raises(MarginTierError, match=r"margin_tiers\[0\].maintenance_rate: expected a finite number"):
        tiers_from_mapping([{**rows[0], "maintenance_rate": "x"}])
    with pytest.raises(MarginTierError, match=r"margin_tiers\[0\]: unknown field 'mmr'"):
        tiers_from_mapping([{**rows[0], "mmr": 1}])
    with pytest.raises(MarginTierError, match=r"margin_tiers\[0\].notional_cap: expected a cap"):
        tiers_from_mapping([{"notional_floor": 0, "maintenance_rate": "0.1"}, rows[1]])


def test_guard_triggers_when_the_mark_reaches_the_distance() -> None:
    """Short 1 BTC at 50,000 on a 10,000 wallet: LP = 60000 / 1.004 = 59760.956...; with 10 % the trigger is
    LP / 1.1 = 54328.14..., so 54,000 passes and 54,400 crosses; the worst distance seen is at 54,400:
    (59760.96 - 54400) / 54400 = 9.855 %."""
    guard = LiquidationGuard({"BTC": BTC}, min_distance_pct=D(10))
    legs = [OpenLeg("BTC", "BINANCE", D(-1), D(50000))]
    guard.refresh(Book(legs, {"BINANCE": D(10000)}, {"BTC": D(50000)}))
    assert guard.observe({"BTC": D(54000)}) == []
    # Only a new worst or a price near the trigger needs the exact price.
    assert not guard.screen("BTC", 53000.0)
    assert guard.screen("BTC", 54000.5)
    assert guard.screen("BTC", 54328.2)
    assert guard.observe({"BTC": D(54400)}) == ["BTC"]
    assert guard.worst_pct()["BTC"].quantize(D("0.001")) == D("9.855")


PRICES = st.decimals(min_value=D(1), max_value=D(200000), places=2)
LEVERAGE = st.decimals(min_value=D("1.1"), max_value=D(100), places=1)


@given(entry=PRICES, quantity=st.decimals(min_value=D("0.001"), max_value=D(500), places=3), leverage=LEVERAGE)
def test_long_liquidates_below_entry_and_closer_with_leverage(
    entry: Decimal, quantity: Decimal, leverage: Decimal
) -> None:
    notional = quantity * entry
    # A venue refuses a leverage whose margin is below the maintenance margin at entry (bracket max leverage).
    assume(notional / (leverage + 1) > maintenance_margin(BTC, notional))
    low = liquidation_price(BTC, quantity=quantity, entry_price=entry, margin=notional / leverage)
    high = liquidation_price(BTC, quantity=quantity, entry_price=entry, margin=notional / (leverage + 1))
    assert low is None or low < entry
    assert high is not None
    assert high < entry
    assert (low or D(0)) <= high  # more leverage, less margin: the liquidation price rises toward the entry


@given(entry=PRICES, quantity=st.decimals(min_value=D("0.001"), max_value=D(500), places=3), leverage=LEVERAGE)
def test_short_liquidates_above_entry_and_closer_with_leverage(
    entry: Decimal, quantity: Decimal, leverage: Decimal
) -> None:
    notional = quantity * entry
    # A venue refuses a leverage whose margin is below the maintenance margin at entry (bracket max leverage).
    assume(notional / (leverage + 1) > maintenance_margin(BTC, notional))
    low = liquidation_price(BTC, quantity=-quantity, entry_price=entry, margin=notional / leverage)
    high = liquidation_price(BTC, quantity=-quantity, entry_price=entry, margin=notional / (leverage + 1))
    assert low is not None
    assert high is not None
    assert entry < high <= low


@given(
    a=st.decimals(min_value=D(0), max_value=D(10**9), places=2),
    b=st.decimals(min_value=D(0), max_value=D(10**9), places=2),
)
def test_bracket_selection_is_monotone_and_maintenance_continuous(a: Decimal, b: Decimal) -> None:
    small, large = min(a, b), max(a, b)
    assert bracket(BTC, small).notional_floor <= bracket(BTC, large).notional_floor
    assert maintenance_margin(BTC, small) <= maintenance_margin(BTC, large)
    for tier in BTC[1:]:  # cum makes the maintenance margin continuous at every floor
        below = bracket(BTC, tier.notional_floor - D("0.01"))
        assert abs(
            tier.notional_floor * below.maintenance_rate
            - below.maintenance_amount
            - maintenance_margin(BTC, tier.notional_floor)
        ) < D("0.0001")


@given(
    side=st.sampled_from([1, -1]),
    mark=PRICES,
    wallet=st.decimals(min_value=D(10), max_value=D(10**7), places=2),
    distance=st.decimals(min_value=D(1), max_value=D(60), places=1),
)
def test_largest_safe_quantity_keeps_the_distance_and_more_breaks_it(
    side: int, mark: Decimal, wallet: Decimal, distance: Decimal
) -> None:
    quantity = largest_safe_quantity(
        BTC, side=side, mark=mark, margin=wallet, min_distance_pct=distance, margin_mode="cross"
    )
    assert quantity > 0
    at = liquidation_distance_pct(
        liquidation_price(BTC, quantity=side * quantity, entry_price=mark, margin=wallet), mark
    )
    beyond = liquidation_distance_pct(
        liquidation_price(BTC, quantity=side * quantity * D("1.01"), entry_price=mark, margin=wallet), mark
    )
    assert at >= distance - D("1e-15")
    assert beyond < distance


def test_risk_limits_default_the_control_on_and_parse_tiers() -> None:
    assert RiskLimits().min_liquidation_distance_pct == DEFAULT_MIN_LIQUIDATION_DISTANCE_PCT == D(15)
    assert RiskLimits.from_mapping({"min_liquidation_distance_pct": 0}).min_liquidation_distance_pct is None
    limits = RiskLimits.from_mapping(
        {
            "min_liquidation_distance_pct": "20",
            "margin_mode": "isolated",
            "margin_tiers": {"BTCUSDT-PERP.BINANCE": [{"notional_floor": 0, "maintenance_rate": "0.004"}]},
        }
    )
    assert limits.min_liquidation_distance_pct == D(20)
    assert limits.margin_mode == "isolated"
    assert limits.margin_tiers == {"BTCUSDT-PERP.BINANCE": flat_tiers(D("0.004"))}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"margin_mode": "portfolio"}, "risk.margin_mode: expected 'cross' or 'isolated', was 'portfolio'"),
        ({"margin_tiers": ["x"]}, "risk.margin_tiers: expected a table instrument id -> brackets"),
        ({"margin_tiers": {"P": [{"notional_floor": 5, "maintenance_rate": "0.1"}]}}, r"risk.margin_tiers.P\[0\]"),
        ({"min_liquidation_distance_pct": -1}, "risk.min_liquidation_distance_pct: expected a positive number"),
    ],
)
def test_risk_limits_reject_bad_liquidation_settings(raw: dict[str, object], message: str) -> None:
    with pytest.raises(RiskConfigError, match=message):
        RiskLimits.from_mapping(raw)
