"""The two-leg carry base (``strategies.carry``): shared config, exact sizing in base units, warm-up in
bars of the configured spec, and hedging when a perp's contract is a fraction of a coin (OKX: 0.01 BTC)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from nautilus_trader.model import FundingRateUpdate, InstrumentId

from datasets.catalog.instruments import build_instrument
from datasets.testing import fixture_spec
from strategies.carry import (
    CarryConfig,
    TwoLegCarry,
    check_carry_params,
    common_lot,
    decimal_param,
    pair_base_quantity,
    warmup_bars,
)
from strategies.cross_venue_carry import CrossVenueCarry, CrossVenueCarryConfig
from strategies.funding import FundingBook
from strategies.signals import annualize, expected_rate
from strategies.spot_perp_carry import SpotPerpCarry, SpotPerpCarryConfig

D = Decimal
INSTRUMENTS = {
    (venue, symbol): build_instrument(fixture_spec(venue, symbol))
    for venue in ("binance", "okx")
    for symbol in ("BTC-USDT", "BTC-USDT-PERP")
}
OKX_SPOT, OKX_PERP = INSTRUMENTS["okx", "BTC-USDT"], INSTRUMENTS["okx", "BTC-USDT-PERP"]
BINANCE_SPOT, BINANCE_PERP = INSTRUMENTS["binance", "BTC-USDT"], INSTRUMENTS["binance", "BTC-USDT-PERP"]
HOUR_NS = 3600 * 1_000_000_000


class _Cache:
    def __init__(self, instruments: Sequence[Any]) -> None:
        self.instruments = {i.id: i for i in instruments}

    def instrument(self, instrument_id: InstrumentId) -> Any:
        return self.instruments.get(instrument_id)


def _probe(strategy_class: type[TwoLegCarry], config: CarryConfig) -> Any:
    # The strategy's own sizing and hedging, with positions and order submission replaced by plain dicts.
    class Probe(strategy_class):  # type: ignore[misc, valid-type]
        held: dict[InstrumentId, Decimal]
        sent: list[list[tuple[InstrumentId, Decimal]]]

        @property
        def cache(self) -> _Cache:
            return _Cache(list(INSTRUMENTS.values()))

        def holding(self, instrument_id: InstrumentId) -> Decimal:
            return self.held.get(instrument_id, D(0))

        def submit_checked(self, orders: Sequence[tuple[InstrumentId, Decimal]]) -> bool:
            self.sent.append(list(orders))
            return True

    probe = Probe(config)
    probe.held, probe.sent = {}, []
    return probe


def _spot_perp(spot: Any, perp: Any, **params: Any) -> Any:
    return _probe(SpotPerpCarry, SpotPerpCarryConfig(spot_id=str(spot.id), perp_id=str(perp.id), **params))


def test_okx_perp_contract_is_a_hundredth_of_a_coin() -> None:
    assert OKX_PERP.multiplier.as_decimal() == D("0.01")
    assert BINANCE_PERP.multiplier.as_decimal() == D(1)


def test_spot_perp_entry_holds_spot_base_equal_to_perp_contracts_times_multiplier() -> None:
    strategy = _spot_perp(OKX_SPOT, OKX_PERP, notional="10000")
    strategy.last_price[OKX_SPOT.id] = D("42000.1")
    strategy.switch(1, 0)
    # 10000 / 42000.1 = 0.238094... BTC, rounded down to both lots in BTC: spot 1e-8, perp 0.01 x 0.01 = 1e-4.
    assert strategy.sent == [[(OKX_SPOT.id, D("0.2380")), (OKX_PERP.id, D("-23.80"))]]
    (_, spot), (_, perp) = strategy.sent[0]
    assert spot == -(perp * OKX_PERP.multiplier.as_decimal())
    assert strategy.target == D("0.2380")


def test_rebalance_measures_the_hedge_in_base_units() -> None:
    strategy = _spot_perp(OKX_SPOT, OKX_PERP, notional="10000")
    strategy.target = D("0.2380")
    strategy.held = {OKX_SPOT.id: D("0.2380"), OKX_PERP.id: D("-23.80")}
    strategy.rebalance()
    assert strategy.sent == []  # hedged: 23.80 contracts x 0.01 = 0.2380 BTC
    strategy.held[OKX_PERP.id] = D("-20.00")  # a partial fill: 0.2000 BTC short, 16 % off
    strategy.holdings_version += 1  # what the fill's events do (RiskManagedStrategy._positions_moved)
    strategy.rebalance()
    assert strategy.sent == [[(OKX_PERP.id, D("-3.80"))]]
    assert strategy.max_drift == D("0.038") / D("0.2380")


def test_spot_perp_short_spot_direction_mirrors_the_legs() -> None:
    strategy = _spot_perp(OKX_SPOT, OKX_PERP, notional="10000", allow_short_spot=True)
    strategy.last_price[OKX_SPOT.id] = D("42000.1")
    strategy.switch(-1, 0)
    assert strategy.sent == [[(OKX_SPOT.id, D("-0.2380")), (OKX_PERP.id, D("23.80"))]]


def test_closing_trades_the_held_quantities_in_each_instruments_units() -> None:
    strategy = _spot_perp(OKX_SPOT, OKX_PERP, notional="10000")
    strategy.direction, strategy.target = 1, D("0.2380")
    strategy.held = {OKX_SPOT.id: D("0.2380"), OKX_PERP.id: D("-23.80")}
    strategy.switch(0, HOUR_NS)
    assert strategy.sent == [[(OKX_SPOT.id, D("-0.2380")), (OKX_PERP.id, D("23.80"))]]
    assert (strategy.direction, strategy.target) == (0, D(0))


def test_cross_venue_with_one_fractional_contract_hedges_in_base_units() -> None:
    config = CrossVenueCarryConfig(first_id=str(OKX_PERP.id), second_id=str(BINANCE_PERP.id), notional="10000")
    strategy = _probe(CrossVenueCarry, config)
    strategy.last_price[OKX_PERP.id] = D("42000.1")
    strategy.switch(1, 0)  # short the first (OKX), long the second (Binance)
    # Lots in BTC: OKX 0.01 x 0.01 = 0.0001, Binance 0.001: a whole number of both is a multiple of 0.001.
    assert strategy.sent == [[(OKX_PERP.id, D("-23.8")), (BINANCE_PERP.id, D("0.238"))]]
    strategy.held = {OKX_PERP.id: D("-23.8"), BINANCE_PERP.id: D("0.238")}
    strategy.sent = []
    strategy.rebalance()
    assert strategy.sent == []


def test_multiplier_one_sizes_both_legs_alike() -> None:
    strategy = _spot_perp(BINANCE_SPOT, BINANCE_PERP, notional="40000")
    strategy.last_price[BINANCE_SPOT.id] = D("42345.67")
    strategy.switch(1, 0)
    assert strategy.sent == [[(BINANCE_SPOT.id, D("0.944")), (BINANCE_PERP.id, D("-0.944"))]]


def test_pair_base_quantity_is_exact_where_a_float_round_trip_is_not() -> None:
    assert pair_base_quantity(D("40000"), D("42345.67"), lots=[D("0.00001"), D("0.001")]) == D("0.944")
    # notional / price = 0.09999999999999999976...: as a float it is 0.1, which a float path rounds to 0.100.
    notional, price = D("4234.5669999999999999"), D("42345.67")
    assert float(notional / price) == 0.1
    assert pair_base_quantity(notional, price, lots=[D("0.00001"), D("0.001")]) == D("0.099")
    assert pair_base_quantity(D("40000"), D(0), lots=[D("0.001")]) == 0


def test_common_lot_is_a_whole_number_of_every_lot() -> None:
    assert common_lot([D("0.00001"), D("0.001")]) == D("0.001")
    assert common_lot([D("0.00000001"), D("0.01") * D("0.01")]) == D("0.0001")
    assert common_lot([D("0.003"), D("0.002")]) == D("0.006")
    assert common_lot([D(10), D("0.5")]) == D(10)
    with pytest.raises(ValueError, match=r"lots: expected positive lot sizes, was \[Decimal\('0'\)\]"):
        common_lot([D(0)])


@pytest.mark.parametrize(
    ("bar_spec", "settlements", "bars"),
    [
        ("1-HOUR-LAST-EXTERNAL", 6, 48),
        ("5-MINUTE-LAST-EXTERNAL", 1, 96),  # 8 h of funding history = 96 bars of 5 minutes
        ("15-MINUTE-LAST-EXTERNAL", 6, 192),
        ("3-HOUR-LAST-EXTERNAL", 1, 3),  # 8 / 3 = 2.7, rounded up
        ("4-HOUR-LAST-EXTERNAL", 3, 6),
        ("1-DAY-LAST-EXTERNAL", 6, 2),
    ],
)
def test_warmup_counts_bars_of_the_configured_spec(bar_spec: str, settlements: int, bars: int) -> None:
    assert warmup_bars(bar_spec, settlements=settlements) == bars
    spot_perp = SpotPerpCarryConfig(
        spot_id="BTCUSDT.BINANCE", perp_id="BTCUSDT-PERP.BINANCE", bar_spec=bar_spec, lookback_settlements=settlements
    )
    cross = CrossVenueCarryConfig(
        first_id="BTCUSDT-PERP.BINANCE",
        second_id="BTC-USD-PERP.HYPERLIQUID",
        bar_spec=bar_spec,
        lookback_settlements=settlements,
    )
    assert spot_perp.warmup_bars == cross.warmup_bars == bars


def test_bar_spec_must_be_time_bars_with_a_source() -> None:
    ids = {"spot_id": "BTCUSDT.BINANCE", "perp_id": "BTCUSDT-PERP.BINANCE"}
    with pytest.raises(ValueError, match=r"bar_spec: expected a bar specification like '1-HOUR-LAST-EXTERNAL'"):
        SpotPerpCarryConfig(**ids, bar_spec="1-HOUR-LAST")
    with pytest.raises(ValueError, match=r"was '7-MINUTE-LAST-EXTERNAL' \(.*invalid token: '7'"):
        SpotPerpCarryConfig(**ids, bar_spec="7-MINUTE-LAST-EXTERNAL")
    with pytest.raises(ValueError, match=r"bar_spec: expected time bars .*, was '100-TICK-LAST-EXTERNAL'"):
        SpotPerpCarryConfig(**ids, bar_spec="100-TICK-LAST-EXTERNAL")


def test_both_configs_parse_the_shared_parameters_alike() -> None:
    shared: dict[str, Any] = {
        "notional": "40000",
        "entry_apr": "0.15",
        "exit_apr": "0.03",
        "lookback_settlements": 3,
        "predicted_weight": "0.25",
        "cost_horizon_days": "20",
        "max_holding_hours": 336,
        "hedge_tolerance_pct": "2",
        "risk": {"max_total_exposure_usd": 1000},
        "order_id_tag": "007",
    }
    spot_perp = SpotPerpCarryConfig(spot_id="BTCUSDT.BINANCE", perp_id="BTCUSDT-PERP.BINANCE", **shared)
    cross = CrossVenueCarryConfig(first_id="BTCUSDT-PERP.BINANCE", second_id="BTC-USD-PERP.HYPERLIQUID", **shared)
    for config in (spot_perp, cross):
        assert config.notional == D(40000)
        assert (config.entry_apr, config.exit_apr, config.predicted_weight) == (D("0.15"), D("0.03"), D("0.25"))
        assert (config.lookback_settlements, config.max_holding_hours) == (3, 336)
        assert (config.cost_horizon_days, config.hedge_tolerance_pct) == (D(20), D(2))
        assert config.risk.max_total_exposure_usd == D(1000)
        assert config.order_id_tag == "007"
        assert config.bar_spec == "1-HOUR-LAST-EXTERNAL"
    # The defaults that differ: each venue pair's round-trip cost.
    assert SpotPerpCarryConfig(spot_id="A.X", perp_id="B.X").round_trip_cost_bps == D(30)
    assert CrossVenueCarryConfig(first_id="A.X", second_id="B.Y").round_trip_cost_bps == D(19)
    assert spot_perp.cost == D(30) / D(10_000) * 365 / 20


def test_configs_reject_unknown_parameters_and_same_or_different_venues() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'entry_aprr'"):
        SpotPerpCarryConfig(spot_id="A.X", perp_id="B.X", entry_aprr="0.1")
    with pytest.raises(ValueError, match=r"perp_id: expected a perp on the spot's venue X, was B\.Y"):
        SpotPerpCarryConfig(spot_id="A.X", perp_id="B.Y")
    with pytest.raises(ValueError, match=r"second_id: expected a perp on another venue than X, was B\.X"):
        CrossVenueCarryConfig(first_id="A.X", second_id="B.X")
    with pytest.raises(ValueError, match=r"exit_apr: expected <= entry_apr 0\.10, was 0\.2"):
        CrossVenueCarryConfig(first_id="A.X", second_id="B.Y", exit_apr="0.2")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"notional": D(0)}, "notional: expected > 0, was 0"),
        ({"lookback_settlements": 0}, "lookback_settlements: expected >= 1, was 0"),
        ({"predicted_weight": D(2)}, r"predicted_weight: expected within \[0, 1\], was 2"),
        ({"round_trip_cost_bps": D(-1)}, "round_trip_cost_bps: expected >= 0, was -1"),
        ({"cost_horizon_days": D(0)}, "cost_horizon_days: expected > 0, was 0"),
        ({"max_holding_hours": 0}, "max_holding_hours: expected >= 1, was 0"),
        ({"hedge_tolerance_pct": D(51)}, r"hedge_tolerance_pct: expected within \[0, 50\], was 51"),
    ],
)
def test_check_carry_params_names_the_bad_parameter(params: Mapping[str, Any], message: str) -> None:
    valid: dict[str, Any] = {
        "notional": D(1),
        "entry_apr": D("0.1"),
        "exit_apr": D(0),
        "lookback_settlements": 1,
        "predicted_weight": D(0),
        "round_trip_cost_bps": D(0),
        "cost_horizon_days": D(1),
        "max_holding_hours": 1,
        "hedge_tolerance_pct": D(0),
    }

    class Params:
        pass

    config = Params()
    for key, value in {**valid, **params}.items():
        setattr(config, key, value)
    with pytest.raises(ValueError, match=message):
        check_carry_params(config)


def test_decimal_param_rejects_non_numbers() -> None:
    assert decimal_param("notional", 0.5) == D("0.5")
    with pytest.raises(ValueError, match="notional: expected a decimal number, was 'ten'"):
        decimal_param("notional", "ten")
    with pytest.raises(ValueError, match="notional: expected a finite number, was 'inf'"):
        decimal_param("notional", "inf")


def _update(settles_at_ns: int, rate: str, *, interval_minutes: int = 480) -> FundingRateUpdate:
    announced_ns = settles_at_ns - interval_minutes * 60 * 1_000_000_000
    return FundingRateUpdate(
        BINANCE_PERP.id, D(rate), announced_ns, announced_ns, interval=interval_minutes, next_funding_ns=settles_at_ns
    )


def test_funding_book_expected_apr_is_the_blended_rate_annualised_on_the_perps_clock() -> None:
    book = FundingBook()
    book.add(_update(8 * HOUR_NS, "0.0001"))
    book.add(_update(16 * HOUR_NS, "0.0003"))
    book.advance(8 * HOUR_NS)
    assert book.expected_apr(lookback=2, predicted_weight=D("0.5")) is None  # one settled, two needed
    book.add(_update(24 * HOUR_NS, "0.0002"))
    book.advance(16 * HOUR_NS)
    assert book.settled == [D("0.0001"), D("0.0003")]
    assert book.predicted() == (D("0.0002"), 8 * 3600)
    expected = annualize(expected_rate(book.settled, D("0.0002"), lookback=2, predicted_weight=D("0.5")), 8 * 3600)  # type: ignore[arg-type]
    assert book.expected_apr(lookback=2, predicted_weight=D("0.5")) == expected
    assert expected == (D("0.5") * D("0.0002") + D("0.5") * D("0.0002")) * 3 * 365


def test_funding_book_ignores_updates_without_a_settlement_instant() -> None:
    book = FundingBook()
    book.add(FundingRateUpdate(BINANCE_PERP.id, D("0.0001"), 0, 0))
    assert book.announced == {}
    book.announce(HOUR_NS, D("0.0001"), 3600)
    book.advance(HOUR_NS)
    assert (book.settled, book.interval_secs) == ([D("0.0001")], 3600)
    assert book.expected_apr(lookback=1, predicted_weight=D(1)) == D("0.0001") * 24 * 365
