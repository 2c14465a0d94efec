"""The liquidator economics on hand-built liquidation_extras rows (values computed by hand in each test)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasets.schemas import LIQUIDATION_EXTRAS
from research.liquidator import (
    EconomicsError,
    concentration,
    daily_protocol_stats,
    event_economics,
    hhi,
    liquidator_league,
    top_share,
)

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOL = "So11111111111111111111111111111111111111112"
DAY = datetime(2025, 10, 10, tzinfo=UTC)


def extras_row(**overrides: Any) -> dict[str, Any]:
    # 100 USDC repaid for 0.55 SOL seized; fee 9,000 lamports of which 4,000 priority; 100,000 CU used.
    row: dict[str, Any] = {name: None for name in LIQUIDATION_EXTRAS.polars_schema}
    row |= {
        "venue": "solana",
        "protocol": "marginfi",
        "ts": DAY.replace(hour=12),
        "slot": 1,
        "tx_signature": "sig",
        "instruction_index": 0,
        "record_index": 0,
        "instruction": "lending_account_liquidate",
        "idl_version": "0.1.7",
        "liquidator": "A",
        "repay_mint": USDC,
        "repay_amount": Decimal(100_000_000),
        "repay_decimals": 6,
        "seized_mint": SOL,
        "seized_amount": Decimal(550_000_000),
        "seized_decimals": 9,
        "fee_lamports": 9_000,
        "priority_fee_lamports": 4_000,
        "compute_units_consumed": 100_000,
        "event_id": "e",
    }
    return row | overrides


def extras(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=LIQUIDATION_EXTRAS.polars_schema, orient="row")


def prices(sol_usd: float = 200.0) -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": ["SOL", "USDC", "SOL"], "ts": [DAY, DAY, DAY.replace(hour=13)], "price_usd": [sol_usd, 1.0, 1e9]}
    )


def test_event_economics_values_each_leg_at_the_latest_price_before_the_event() -> None:
    (event,) = event_economics(extras(extras_row()), prices()).to_dicts()
    # 0.55 SOL x $200 = $110 seized against 100 USDC x $1 repaid: bonus $10 = 1,000 bps of the repaid value.
    # The SOL price of 1e9 at 13:00 is after the event and must not be used.
    assert event["repaid_usd"] == pytest.approx(100.0, abs=1e-12)
    assert event["seized_usd"] == pytest.approx(110.0, abs=1e-12)
    assert event["bonus_usd"] == pytest.approx(10.0, abs=1e-12)
    assert event["bonus_bps"] == pytest.approx(1_000.0, abs=1e-9)
    # fee 9,000 lamports = 9e-6 SOL x $200 = $0.0018; priority 4,000 -> $0.0008; base 5,000 lamports.
    assert event["base_fee_lamports"] == 5_000
    assert event["fee_usd"] == pytest.approx(0.0018, abs=1e-15)
    assert event["priority_fee_usd"] == pytest.approx(0.0008, abs=1e-15)
    assert event["priority_fee_per_cu_lamports"] == pytest.approx(0.04, abs=1e-15)
    assert event["net_usd"] == pytest.approx(10.0 - 0.0018, abs=1e-12)
    assert (event["liquidator"], event["repay_symbol"], event["seized_symbol"]) == ("A", "USDC", "SOL")


def test_event_economics_leaves_a_leg_without_price_null() -> None:
    unknown = extras(extras_row(seized_mint="UnknownMint1111111111111111111111111111111"))
    (event,) = event_economics(unknown, prices()).to_dicts()
    assert event["seized_symbol"] is None
    assert event["bonus_usd"] is None


def test_event_economics_names_missing_columns() -> None:
    with pytest.raises(EconomicsError, match=r"prices lack the columns \['price_usd'\]"):
        event_economics(extras(extras_row()), prices().drop("price_usd"))


def test_hhi_and_top_shares_of_known_amounts() -> None:
    # shares 0.6, 0.3, 0.1: HHI = 0.36 + 0.09 + 0.01 = 0.46; top 1 = 0.6, top 2 = 0.9, top 5 = everything.
    assert hhi([30.0, 60.0, 10.0]) == pytest.approx(0.46, abs=1e-15)
    assert top_share([30.0, 60.0, 10.0], 1) == pytest.approx(0.6, abs=1e-15)
    assert top_share([30.0, 60.0, 10.0], 2) == pytest.approx(0.9, abs=1e-15)
    assert top_share([30.0, 60.0, 10.0], 5) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("amounts", [[], [0.0, 0.0], [1.0, -1.0]])
def test_hhi_refuses_amounts_without_a_positive_total(amounts: list[float]) -> None:
    with pytest.raises(EconomicsError, match="non-negative amounts with a positive total"):
        hhi(amounts)


def test_top_share_refuses_k_below_one() -> None:
    with pytest.raises(EconomicsError, match="k >= 1, was 0"):
        top_share([1.0], 0)


amounts = st.lists(st.floats(min_value=0.0, max_value=1e12, allow_nan=False), min_size=1, max_size=40).filter(
    lambda xs: sum(xs) > 0
)


@given(amounts)
def test_hhi_lies_between_one_over_n_and_one(xs: list[float]) -> None:
    n = sum(1 for x in xs if x > 0)
    assert 1 / n - 1e-12 <= hhi(xs) <= 1 + 1e-12


@given(amounts)
def test_top_shares_grow_with_k_to_one(xs: list[float]) -> None:
    shares = [top_share(xs, k) for k in range(1, len(xs) + 1)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(shares))
    assert shares[-1] == pytest.approx(1.0, abs=1e-9)


def three_liquidators() -> pl.DataFrame:
    # One day. marginfi: A repays $60, B $30, C $10, each seizing 10 % more in SOL at $200; kamino: A repays $5
    # and seizes 0.025 SOL = $5 (no bonus).
    rows = [
        extras_row(liquidator="A", repay_amount=Decimal(60_000_000), seized_amount=Decimal(330_000_000), event_id="1"),
        extras_row(liquidator="B", repay_amount=Decimal(30_000_000), seized_amount=Decimal(165_000_000), event_id="2"),
        extras_row(liquidator="C", repay_amount=Decimal(10_000_000), seized_amount=Decimal(55_000_000), event_id="3"),
        extras_row(
            liquidator="A", protocol="kamino", repay_amount=Decimal(5_000_000), seized_amount=Decimal(25_000_000)
        ),
    ]
    return event_economics(extras(*rows), prices())


def test_daily_protocol_stats_of_three_liquidators() -> None:
    stats = {row["protocol"]: row for row in daily_protocol_stats(three_liquidators()).to_dicts()}
    marginfi = stats["marginfi"]
    # volume 60 + 30 + 10 = $100 in 3 liquidations, shares 0.6/0.3/0.1 -> HHI 0.46, top 1 0.6, top 5 1.
    assert (marginfi["count"], marginfi["liquidators"]) == (3, 3)
    assert marginfi["volume_usd"] == pytest.approx(100.0, abs=1e-12)
    assert marginfi["hhi"] == pytest.approx(0.46, abs=1e-12)
    assert marginfi["top_1_share"] == pytest.approx(0.6, abs=1e-12)
    assert marginfi["top_5_share"] == pytest.approx(1.0, abs=1e-12)
    # each seizes 0.0055 SOL per USDC repaid: 0.0055 x $200 = $1.10 -> 1,000 bps at every quantile.
    assert marginfi["bonus_bps_p10"] == pytest.approx(1_000.0, abs=1e-9)
    assert marginfi["bonus_bps_p90"] == pytest.approx(1_000.0, abs=1e-9)
    assert marginfi["bonus_usd"] == pytest.approx(10.0, abs=1e-12)
    # kamino: one liquidator, 0.025 SOL x 200 = $5 seized for $5 repaid: no bonus, HHI 1.
    kamino = stats["kamino"]
    assert (kamino["count"], kamino["hhi"], kamino["top_1_share"]) == (1, 1.0, 1.0)
    assert kamino["bonus_usd"] == pytest.approx(0.0, abs=1e-12)


def test_concentration_by_count_weighs_each_win_equally() -> None:
    (row,) = concentration(three_liquidators(), group_by=("day",), by="count").to_dicts()
    # A won 2 of 4 (one per protocol), B 1, C 1: shares 0.5/0.25/0.25 -> HHI 0.25 + 0.0625 + 0.0625 = 0.375.
    assert row["hhi"] == pytest.approx(0.375, abs=1e-15)
    assert row["top_1_share"] == pytest.approx(0.5, abs=1e-15)


def test_liquidator_league_orders_by_volume() -> None:
    league = liquidator_league(three_liquidators())
    assert league["liquidator"].to_list() == ["A", "B", "C"]
    # A: 60 + 5 = $65 of $105.
    assert league["volume_share"][0] == pytest.approx(65 / 105, abs=1e-15)
    assert float(np.sum(league["volume_share"].to_numpy())) == pytest.approx(1.0, abs=1e-12)


def test_daily_protocol_stats_refuses_top_k_below_one() -> None:
    with pytest.raises(EconomicsError, match=r"top_k must all be >= 1, was \[0\]"):
        daily_protocol_stats(three_liquidators(), top_k=(0,))
