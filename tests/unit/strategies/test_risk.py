"""The shared risk controls (``strategies.risk_limits.RiskGate``): each control fires, says why, and what it does."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nautilus_trader.model import Quantity

from datasets.catalog.instruments import build_instrument
from datasets.testing import fixture_spec
from strategies.risk_limits import (
    NS_PER_DAY,
    NS_PER_SECOND,
    OrderIntent,
    RiskConfigError,
    RiskGate,
    RiskLimits,
    lot_quantity,
)
from strategies.spot_perp_carry import SpotPerpCarryConfig

D = Decimal
SPOT, PERP = "BTCUSDT.BINANCE", "BTCUSDT-PERP.BINANCE"
PRICES = {SPOT: D(50_000), PERP: D(50_000)}
NOW = 1_704_067_200 * NS_PER_SECOND  # 2024-01-01T00:00Z


def _pair(quantity: str) -> list[OrderIntent]:
    return [
        OrderIntent(SPOT, "BINANCE", D(quantity), D(50_000)),
        OrderIntent(PERP, "BINANCE", -D(quantity), D(50_000)),
    ]


def _check(gate: RiskGate, intents: list[OrderIntent], positions: dict[str, Decimal] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {
        "positions": positions or {},
        "prices": PRICES,
        "equity_by_venue": {"BINANCE": D(100_000)},
        "now_ns": NOW,
    }
    arguments.update(kw)
    return gate.check(intents, **arguments)  # type: ignore[arg-type]


def test_limits_from_mapping_parse_and_reject_unknown_keys() -> None:
    limits = RiskLimits.from_mapping({"max_total_exposure_usd": 1000, "max_leverage": {"binance": "2.5"}})
    assert limits.max_total_exposure_usd == D(1000)
    assert limits.max_leverage == {"BINANCE": D("2.5")}
    with pytest.raises(RiskConfigError, match="risk: unknown limit 'max_levrage'"):
        RiskLimits.from_mapping({"max_levrage": 2})
    with pytest.raises(RiskConfigError, match=r"risk\.max_drawdown_pct: expected a positive number, was -1"):
        RiskLimits.from_mapping({"max_drawdown_pct": -1})
    with pytest.raises(ValueError, match="risk: unknown limit 'typo'"):
        SpotPerpCarryConfig(spot_id=SPOT, perp_id=PERP, risk={"typo": 1})


def test_instrument_exposure_cap_denies_an_order_that_would_exceed_it() -> None:
    gate = RiskGate(RiskLimits(max_instrument_exposure_usd=D(60_000)))
    assert _check(gate, _pair("1")).allowed  # 50,000 per instrument
    decision = _check(gate, _pair("1"), positions={SPOT: D("0.5"), PERP: D("-0.5")})
    assert not decision.allowed
    assert decision.control == "exposure_instrument"
    assert decision.reason == "BTCUSDT-PERP.BINANCE exposure would be 75000.00 USD, cap 60000"


def test_total_exposure_cap_counts_open_positions_and_orders_in_flight() -> None:
    gate = RiskGate(RiskLimits(max_total_exposure_usd=D(150_000)))
    assert _check(gate, _pair("1"), positions={SPOT: D("0.5"), PERP: D("-0.5")}).allowed  # 150,000
    decision = _check(gate, _pair("0.1"), positions={SPOT: D("1.5"), PERP: D("-1.5")})
    assert (decision.allowed, decision.control) == (False, "exposure_total")
    assert decision.reason == "total exposure would be 160000.00 USD, cap 150000"


OKX_SPOT, OKX_PERP = "BTC-USDT.OKX", "BTC-USDT-SWAP.OKX"
OKX_MULTIPLIERS = {OKX_PERP: D("0.01")}  # one contract = 0.01 BTC


def _okx_pair(spot: str, contracts: str) -> list[OrderIntent]:
    return [OrderIntent(OKX_SPOT, "OKX", D(spot), D(50_000)), OrderIntent(OKX_PERP, "OKX", -D(contracts), D(50_000))]


def test_exposure_is_contracts_times_multiplier_times_price() -> None:
    # 100 contracts of 0.01 BTC at 50,000 = 50,000 USD, as much as the 1 BTC spot leg.
    gate = RiskGate(RiskLimits(max_instrument_exposure_usd=D(60_000), max_total_exposure_usd=D(100_000)))
    assert _check(gate, _okx_pair("1", "100"), multipliers=OKX_MULTIPLIERS).allowed
    decision = _check(
        gate, _okx_pair("0.1", "10"), positions={OKX_SPOT: D(1), OKX_PERP: D(-100)}, multipliers=OKX_MULTIPLIERS
    )
    assert (decision.allowed, decision.control) == (False, "exposure_total")
    assert decision.reason == "total exposure would be 110000.00 USD, cap 100000"
    over = _check(gate, _okx_pair("0", "130"), multipliers=OKX_MULTIPLIERS)
    assert over.reason == "BTC-USDT-SWAP.OKX exposure would be 65000.00 USD, cap 60000"
    # Without the multiplier, 100 contracts would count as 100 BTC.
    assert _check(gate, _okx_pair("1", "100")).reason == "BTC-USDT-SWAP.OKX exposure would be 5000000.00 USD, cap 60000"


def test_leverage_counts_contracts_in_base_units() -> None:
    gate = RiskGate(RiskLimits(max_leverage={"OKX": D(1)}))
    okx_equity = {"OKX": D(100_000)}
    assert _check(gate, _okx_pair("1", "100"), equity_by_venue=okx_equity, multipliers=OKX_MULTIPLIERS).allowed
    decision = _check(gate, _okx_pair("1", "150"), equity_by_venue=okx_equity, multipliers=OKX_MULTIPLIERS)
    assert decision.reason == "OKX leverage would be 1.25x, limit 1x"


def test_lot_quantity_rounds_down_exactly_where_the_float_path_does_not() -> None:
    binance_perp = build_instrument(fixture_spec("binance", "BTC-USDT-PERP"))  # lot 0.001
    okx_perp = build_instrument(fixture_spec("okx", "BTC-USDT-PERP"))  # lot 0.01 contracts
    close_to_one = D("0.99999999999999999")
    assert binance_perp.make_qty(float(close_to_one), round_down=True) == Quantity.from_str("1.000")
    assert lot_quantity(binance_perp, close_to_one) == Quantity.from_str("0.999")
    # 0.0003 BTC in contracts of 0.01 BTC: 0.03 exactly; through floats 0.029999999999999995, floored to 0.02.
    assert okx_perp.make_qty(0.0003 / 0.01, round_down=True) == Quantity.from_str("0.02")
    assert lot_quantity(okx_perp, D("0.0003") / D("0.01")) == Quantity.from_str("0.03")
    assert lot_quantity(okx_perp, D("-23.809")) == Quantity.from_str("23.80")
    assert lot_quantity(binance_perp, D("0.0009")) == Quantity.from_str("0.000")


def test_reducing_orders_pass_every_limit_even_when_halted() -> None:
    gate = RiskGate(RiskLimits(max_total_exposure_usd=D(1), max_price_age_secs=1))
    gate.kill("test")
    decision = _check(gate, _pair("-1"), positions={SPOT: D(2), PERP: D(-2)})
    assert decision.allowed
    assert decision.reason == "reduces positions only"
    flipping = _check(gate, _pair("-3"), positions={SPOT: D(2), PERP: D(-2)})
    assert (flipping.allowed, flipping.control) == (False, "halted")


def test_leverage_per_venue_is_gross_exposure_over_equity() -> None:
    gate = RiskGate(RiskLimits(max_leverage={"BINANCE": D(1)}))
    assert _check(gate, _pair("1")).allowed  # 100,000 / 100,000 = 1x
    decision = _check(gate, _pair("1"), equity_by_venue={"BINANCE": D(80_000)})
    assert (decision.allowed, decision.control) == (False, "leverage")
    assert decision.reason == "BINANCE leverage would be 1.25x, limit 1x"
    broke = _check(gate, _pair("1"), equity_by_venue={"BINANCE": D(0)})
    assert broke.reason == "BINANCE equity is 0, no leverage allowed"


def test_stale_price_and_funding_block_new_exposure() -> None:
    gate = RiskGate(RiskLimits(max_price_age_secs=7200, max_funding_age_secs=32400))
    never = _check(gate, _pair("1"), funding_instruments=[PERP])
    assert (never.control, never.reason) == ("stale_price", "last price of BTCUSDT.BINANCE never seen, limit 7200 s")
    for instrument in (SPOT, PERP):
        gate.observe_price(instrument, NOW - 7300 * NS_PER_SECOND)
    old = _check(gate, _pair("1"), funding_instruments=[PERP])
    assert old.reason == "last price of BTCUSDT.BINANCE 7300 s old, limit 7200 s"
    for instrument in (SPOT, PERP):
        gate.observe_price(instrument, NOW - 3600 * NS_PER_SECOND)
    gate.observe_funding(PERP, NOW - 40_000 * NS_PER_SECOND)
    funding = _check(gate, _pair("1"), funding_instruments=[PERP])
    assert (funding.control, funding.reason) == (
        "stale_funding",
        "last funding update of BTCUSDT-PERP.BINANCE 40000 s old, limit 32400 s",
    )
    gate.observe_funding(PERP, NOW - 8 * 3600 * NS_PER_SECOND)
    assert _check(gate, _pair("1"), funding_instruments=[PERP]).allowed


def test_daily_loss_halts_until_the_next_utc_day() -> None:
    gate = RiskGate(RiskLimits(daily_loss_limit_usd=D(500)))
    assert gate.update_equity(NOW, D(100_000)) == []
    assert gate.update_equity(NOW + 3600 * NS_PER_SECOND, D(99_600)) == []
    breach = gate.update_equity(NOW + 7200 * NS_PER_SECOND, D(99_500))
    assert [(d.control, d.allowed) for d in breach] == [("daily_loss", False)]
    assert breach[0].reason == "daily loss 500.00 USD >= 500 since the UTC day began"
    assert gate.halted
    assert not _check(gate, _pair("1")).allowed
    resumed = gate.update_equity(NOW + NS_PER_DAY, D(99_500))
    assert [(d.control, d.allowed) for d in resumed] == [("daily_loss", True)]
    assert not gate.halted


def test_drawdown_from_peak_halts_for_good() -> None:
    gate = RiskGate(RiskLimits(max_drawdown_pct=D(10)))
    gate.update_equity(NOW, D(100_000))
    gate.update_equity(NOW + 1, D(120_000))
    breach = gate.update_equity(NOW + 2, D(108_000))
    assert [(d.control, d.allowed) for d in breach] == [("drawdown", False)]
    assert breach[0].reason == "drawdown 10.00% from peak 120000.00 >= 10%"
    assert gate.update_equity(NOW + 2 * NS_PER_DAY, D(130_000)) == []
    assert gate.halted


def test_kill_switch_halts_for_good() -> None:
    gate = RiskGate(RiskLimits())
    decision = gate.kill("operator")
    assert (decision.control, decision.reason) == ("kill_switch", "kill switch: operator")
    assert gate.update_equity(NOW + 5 * NS_PER_DAY, D(1)) == []
    assert not _check(gate, _pair("1")).allowed


signals = st.lists(
    st.tuples(
        st.sampled_from([SPOT, PERP]),
        st.decimals(min_value=-5, max_value=5, places=3).filter(lambda q: q != 0),
        st.decimals(min_value=1_000, max_value=200_000, places=2),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    orders=signals,
    instrument_cap=st.decimals(min_value=1, max_value=300_000, places=0),
    total_cap=st.decimals(min_value=1, max_value=500_000, places=0),
)
def test_notional_caps_are_never_exceeded_by_an_allowed_order(
    orders: list[tuple[str, Decimal, Decimal]], instrument_cap: Decimal, total_cap: Decimal
) -> None:
    # Whatever sequence of signals and prices arrives, after every allowed order each instrument's and
    # the total exposure (at the price the order was checked at) are within the caps, or the order
    # reduced them (a reduce-only order, or a price move that had already pushed exposure over a cap).
    gate = RiskGate(RiskLimits(max_instrument_exposure_usd=instrument_cap, max_total_exposure_usd=total_cap))
    positions: dict[str, Decimal] = {}
    prices: dict[str, Decimal] = {}
    for instrument, quantity, price in orders:
        prices[instrument] = price
        before = {i: abs(q) * prices.get(i, D(0)) for i, q in positions.items()}
        decision = gate.check(
            [OrderIntent(instrument, "BINANCE", quantity, price)],
            positions=positions,
            prices=prices,
            equity_by_venue={},
            now_ns=NOW,
        )
        if not decision.allowed:
            continue
        positions[instrument] = positions.get(instrument, D(0)) + quantity
        after = {i: abs(q) * prices.get(i, D(0)) for i, q in positions.items()}
        assert after[instrument] <= instrument_cap or after[instrument] <= before.get(instrument, D(0))
        assert sum(after.values()) <= total_cap or sum(after.values()) <= sum(before.values())


def test_a_paper_funding_booking_makes_the_strategy_re_read_its_balances() -> None:
    # The node publishes on FUNDING_BOOKED_TOPIC once paper funding is in the sandbox account; the message
    # carries no amounts (the account has them), so the strategy only drops its cached balances.
    from strategies.risk import RiskManagedStrategy
    from strategies.spot_perp_carry import SpotPerpCarry

    strategy = SpotPerpCarry(SpotPerpCarryConfig(spot_id=SPOT, perp_id=PERP, notional="1000"))
    assert isinstance(strategy, RiskManagedStrategy)
    strategy._balances = {"BINANCE": D(100_000)}
    strategy._on_funding_booked({"settlements": []})
    assert strategy._balances is None
