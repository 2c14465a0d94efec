"""LiquidationCascade's pure parts: config checks, exit prices, entry side, notionals, declared space, saved state."""

from __future__ import annotations

import inspect
from decimal import Decimal
from types import SimpleNamespace

import pytest
from nautilus_trader.model import OrderSide

from strategies.liquidation_cascade import (
    LiquidationCascade,
    LiquidationCascadeConfig,
    entry_side,
    exit_prices,
    liquidation_notional,
)

PERP = "BTCUSDT-PERP.BINANCE"


def test_exit_prices_of_a_long_round_away_from_the_entry() -> None:
    # 95.0 x 0.97 = 92.15 -> 92.1 (down); 95.0 x 1.03 = 97.85 -> 97.9 (up); 95.0 x 0.95 = 90.25 -> 90.2 (down).
    prices = exit_prices(
        Decimal("95.0"),
        side=OrderSide.BUY,
        stop_loss_pct=Decimal(3),
        take_profit_pct=Decimal(3),
        trailing_stop_pct=Decimal(5),
        tick=Decimal("0.1"),
    )
    assert prices == (Decimal("92.1"), Decimal("97.9"), Decimal("90.2"))


def test_exit_prices_of_a_short_are_mirrored_and_rounded_away_from_the_entry() -> None:
    # 95.0 x 1.03 = 97.85 -> 97.9 (up); 95.0 x 0.97 = 92.15 -> 92.1 (down); 95.0 x 1.05 = 99.75 -> 99.8 (up).
    prices = exit_prices(
        Decimal("95.0"),
        side=OrderSide.SELL,
        stop_loss_pct=Decimal(3),
        take_profit_pct=Decimal(3),
        trailing_stop_pct=Decimal(5),
        tick=Decimal("0.1"),
    )
    assert prices == (Decimal("97.9"), Decimal("92.1"), Decimal("99.8"))


@pytest.mark.parametrize(
    ("liquidated", "reaction", "side"),
    [
        ("long", "fade", OrderSide.BUY),
        ("long", "follow", OrderSide.SELL),
        ("short", "fade", OrderSide.SELL),
        ("short", "follow", OrderSide.BUY),
    ],
)
def test_entry_side_fades_or_follows_the_forced_flow(liquidated: str, reaction: str, side: OrderSide) -> None:
    assert entry_side(liquidated, reaction) == side  # type: ignore[arg-type]


def test_liquidation_notional_prefers_the_stated_usd_then_price_times_quantity() -> None:
    stated = SimpleNamespace(notional_usd="1626.6042", price="3845.4", quantity="0.423")
    derived = SimpleNamespace(notional_usd="", price="3845.4", quantity="0.423")
    silent = SimpleNamespace(notional_usd="", price="", quantity="")
    assert liquidation_notional(stated) == Decimal("1626.6042")
    assert liquidation_notional(derived) == Decimal("3845.4") * Decimal("0.423") == Decimal("1626.6042")
    assert liquidation_notional(silent) == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"trigger": "volume"}, "trigger: expected one of notional, count, volume_multiple, was 'volume'"),
        ({"reaction": "fight"}, "reaction: expected one of fade, follow, was 'fight'"),
        ({"stop_loss_pct": "0"}, r"stop_loss_pct: expected within \(0, 100\), was 0"),
        ({"trailing_stop_pct": "100"}, r"trailing_stop_pct: expected within \(0, 100\), was 100"),
        ({"window_bars": 0}, "window_bars: expected >= 1, was 0"),
        ({"threshold_notional_usd": "-1"}, "threshold_notional_usd: expected > 0, was -1"),
        ({"notional": "abc"}, "notional: expected a decimal number, was 'abc'"),
        ({"bar_spec": "1-TICK-LAST-EXTERNAL"}, "bar_spec: expected time bars"),
    ],
)
def test_config_rejects_a_bad_parameter_naming_it(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LiquidationCascadeConfig(instrument_id=PERP, **params)  # type: ignore[arg-type]


def test_declared_space_names_only_config_parameters_and_warmup_follows_the_trigger() -> None:
    accepted = set(inspect.signature(LiquidationCascadeConfig).parameters)
    assert set(LiquidationCascadeConfig.PARAMETER_SPACE) <= accepted
    for name, declared in LiquidationCascadeConfig.PARAMETER_SPACE.items():
        value = int(declared.low) if declared.integer else str(declared.low)
        assert LiquidationCascadeConfig(instrument_id=PERP, **{name: value}) is not None  # the low end is valid
    assert LiquidationCascadeConfig(instrument_id=PERP, window_bars=3).warmup_bars == 3
    volume = LiquidationCascadeConfig(instrument_id=PERP, trigger="volume_multiple", volume_lookback_bars=48)
    assert volume.warmup_bars == 48


def test_saved_state_restores_the_window_volumes_and_orders_of_a_restarted_node() -> None:
    config = LiquidationCascadeConfig(instrument_id=PERP, volume_lookback_bars=2)
    before = LiquidationCascade(config)
    before.liquidations.extend([(1_000, "long", Decimal("96000")), (2_000, "short", Decimal("0.5"))])
    before.quote_volumes.extend([Decimal("100000"), Decimal("95000.5")])
    before.bars_seen, before.entered_bars = 7, 3
    before.exit_orders = {"O-1", "O-2"}
    after = LiquidationCascade(config)
    after.on_load(before.on_save())
    assert list(after.liquidations) == list(before.liquidations)
    assert list(after.quote_volumes) == list(before.quote_volumes)
    assert after.quote_volumes.maxlen == 2
    assert (after.bars_seen, after.entered_bars, after.exit_orders) == (7, 3, {"O-1", "O-2"})


def test_a_corrupt_saved_state_is_refused_naming_the_field() -> None:
    strategy = LiquidationCascade(LiquidationCascadeConfig(instrument_id=PERP))
    state = strategy.on_save()
    state["liquidation_cascade"] = b'{"liquidations": "none"}'
    with pytest.raises(ValueError, match=r"liquidation_cascade\.liquidations: expected list"):
        strategy.on_load(state)
