"""The economics on decoder output: the 19 real marginfi liquidations rebuilt by tests/kit/solana.py
(real mints, amounts and signers; the kit's slots, times and fees are its own) decoded by datasets.onchain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from datasets.onchain.decode import decode_transaction, extras_frame
from datasets.onchain.idl import load_idls
from datasets.onchain.mints import MintTable
from research.liquidator import concentration, event_economics
from tests.kit import solana as kit

# SYNTHETIC declared prices (not market data): the test is about the arithmetic, not the level.
PRICES = pl.DataFrame(
    {
        "symbol": ["USDC", "SOL", "JITOSOL"],
        "ts": [datetime(2024, 1, 1, tzinfo=UTC)] * 3,
        "price_usd": [1.0, 180.0, 200.0],
    }
)


@pytest.fixture(scope="module")
def events(shared_data: Path) -> pl.DataFrame:
    idls, mints = load_idls(shared_data / "solana" / "solana_idls"), MintTable.default()
    built = kit.marginfi_liquidation_transactions(shared_data)
    decoded = [decode_transaction(tx, protocol="marginfi", idls=idls, mints=mints) for tx in built.values()]
    return event_economics(extras_frame(decoded), PRICES)


def test_winners_concentration_matches_the_golden_signers(events: pl.DataFrame, shared_data: Path) -> None:
    # the golden file's signer per signature (derisk-solana's own parse, independent of our decoder)
    signer = {g.signature: g.records[0]["signer"] for g in kit.golden_marginfi_liquidations(shared_data)}
    counts: dict[str, int] = {}
    for who in signer.values():
        counts[who] = counts.get(who, 0) + 1
    n = sum(counts.values())
    expected_hhi = sum((c / n) ** 2 for c in counts.values())  # 15 and 4 of 19: (225 + 16) / 361
    (row,) = concentration(events, group_by=("protocol",), by="count").to_dicts()
    assert events.height == n == 19
    assert row["liquidators"] == len(counts) == 2
    assert row["hhi"] == pytest.approx(expected_hhi, abs=1e-15)
    assert row["hhi"] == pytest.approx(241 / 361, abs=1e-15)
    assert dict(zip(events["tx_signature"], events["liquidator"], strict=True)) == signer


def test_bonus_of_a_decoded_liquidation_by_hand(events: pl.DataFrame) -> None:
    first = events.filter(pl.col("tx_signature").str.starts_with("64dt9xEo")).row(0, named=True)
    # repaid 75,905,076 raw JITOSOL (9 decimals) x $200 = $15.1810152; seized 15,232,047 raw USDC (6) = $15.232047.
    assert (first["repay_symbol"], first["seized_symbol"]) == ("JITOSOL", "USDC")
    assert first["repaid_usd"] == pytest.approx(15.1810152, abs=1e-9)
    assert first["bonus_usd"] == pytest.approx(15.232047 - 15.1810152, abs=1e-9)
    # the kit's fee: 5,000 lamports + 400,000 units x 50,000 micro-lamports = 25,000 lamports; at SOL $180 = $0.0045
    assert first["fee_usd"] == pytest.approx(0.0045, abs=1e-12)
