"""Position sizing (``strategies.sizing``): hand-computed values, validation, caps as properties, and the
``[sizing]`` section wired through the config into the carry strategy on real Binance data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nautilus_trader.persistence import ParquetDataCatalog

from datasets.catalog import export_catalog
from datasets.pipeline import import_paths
from datasets.store import SourceInfo, Store
from datasets.testing import FIXTURE_INSTRUMENTS
from engine.backtest import run_backtest
from engine.correlation import estimate_correlation
from engine.errors import ConfigError
from engine.loading import check_config, config_json, load_strategy, parse_config
from strategies.carry import pair_base_quantity
from strategies.sizing import (
    Sizing,
    SizingError,
    correlated_exposure,
    exposure_scale,
    kelly_fraction,
    realised_volatility,
    trade_statistics,
)
from tests.kit.live import flat_perp_catalog
from tests.kit.store import canonical_frame

DAY_NS = 86_400 * 1_000_000_000
HOUR_NS = 3_600 * 1_000_000_000
D = Decimal


# --- Kelly -------------------------------------------------------------------------------------------


def test_trade_statistics_are_the_mean_and_variance_of_a_two_outcome_trade() -> None:
    # p = 0.6, W = 0.02, L = 0.01: edge = 0.6 x 0.02 - 0.4 x 0.01 = 0.012 - 0.004 = 0.008;
    # variance = E[x^2] - edge^2 = 0.6 x 0.0004 + 0.4 x 0.0001 - 0.000064 = 0.00028 - 0.000064 = 0.000216
    # (= p (1 - p) (W + L)^2 = 0.24 x 0.0009).
    edge, variance = trade_statistics(win_rate=D("0.6"), average_win=D("0.02"), average_loss=D("0.01"))
    assert edge == D("0.008")
    assert variance == D("0.000216")


def test_kelly_fraction_is_the_fraction_of_edge_over_variance() -> None:
    # Half Kelly of edge 0.01 and variance 0.04: 0.5 x 0.01 / 0.04 = 0.125.
    assert kelly_fraction(edge=D("0.01"), variance=D("0.04"), fraction=D("0.5")) == D("0.125")
    # A losing edge commits nothing (a valid answer, not an error).
    assert kelly_fraction(edge=D("-0.01"), variance=D("0.04"), fraction=D("0.5")) == 0


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"win_rate": "1.2", "average_win": "0.02", "average_loss": "0.01"}, r"win_rate: expected within \[0, 1\]"),
        ({"win_rate": "-0.1", "average_win": "0.02", "average_loss": "0.01"}, r"win_rate: expected within \[0, 1\]"),
        ({"win_rate": "1", "average_win": "0.02", "average_loss": "0.01"}, "expected a positive variance"),
        ({"win_rate": "0", "average_win": "0.02", "average_loss": "0.01"}, "expected a positive variance"),
        ({"win_rate": "0.5", "average_win": "0.02", "average_loss": "0"}, "average_loss: expected > 0"),
        ({"win_rate": "0.5", "average_win": "0.02", "average_loss": "0.01", "kelly_fraction": "0"}, r"\(0, 1\]"),
        ({"win_rate": "0.5", "average_win": "0.02", "average_loss": "0.01", "kelly_fraction": "1.5"}, r"\(0, 1\]"),
        ({"win_rate": "0.5"}, "expected win_rate, average_win and average_loss"),
    ],
)
def test_invalid_kelly_inputs_are_an_error_never_a_zero(fields: dict[str, str], match: str) -> None:
    with pytest.raises(SizingError, match=match):
        Sizing.from_mapping({"mode": "kelly", "max_notional": "50000", **fields})


def test_kelly_entry_is_the_fraction_of_equity_capped_at_max_notional() -> None:
    # p = 0.55, W = L = 0.01: edge = 0.0055 - 0.0045 = 0.001, variance = 0.2475 x 0.0004 = 0.000099;
    # quarter Kelly = 0.25 x 0.001 / 0.000099 = 2.5252...; of 10,000 equity: 25,252.52..., under the 30,000 cap.
    sizing = Sizing.from_mapping(
        {
            "mode": "kelly",
            "win_rate": "0.55",
            "average_win": "0.01",
            "average_loss": "0.01",
            "kelly_fraction": "0.25",
            "max_notional": "30000",
        }
    )
    expected = D(10_000) * D("0.25") * D("0.001") / D("0.000099")
    assert sizing.entry_notional(D(1), equity=D(10_000), closes=[], bar_interval_ns=HOUR_NS) == expected
    assert sizing.entry_notional(D(1), equity=D(20_000), closes=[], bar_interval_ns=HOUR_NS) == D(30_000)


@settings(max_examples=200, deadline=None)
@given(
    first=st.decimals(min_value=-1, max_value=1, places=6),
    second=st.decimals(min_value=-1, max_value=1, places=6),
    variance=st.decimals(min_value=D("0.000001"), max_value=1, places=6),
    fraction=st.decimals(min_value=D("0.01"), max_value=1, places=2),
)
def test_kelly_fraction_is_monotone_in_the_edge(first: D, second: D, variance: D, fraction: D) -> None:
    low, high = sorted((first, second))
    assert kelly_fraction(edge=low, variance=variance, fraction=fraction) <= kelly_fraction(
        edge=high, variance=variance, fraction=fraction
    )


# --- volatility target -----------------------------------------------------------------------------------


def test_realised_volatility_is_the_annualised_sample_deviation_of_log_returns() -> None:
    # Daily closes 100, 110, 99: returns r1 = ln 1.1, r2 = ln 0.9; the sample variance of two values is
    # (r1 - r2)^2 / 2, so the annualised volatility is |r1 - r2| x sqrt(365 / 2) = ln(1.1 / 0.9) x sqrt(182.5).
    expected = (D("1.1") / D("0.9")).ln() * D("182.5").sqrt()
    volatility = realised_volatility([D(100), D(110), D(99)], bar_interval_ns=DAY_NS)
    assert abs(volatility - expected) < D("1e-24")
    assert D("2.71") < volatility < D("2.72")  # 0.20067 x 13.509


def test_volatility_target_scales_the_notional_and_waits_for_its_window() -> None:
    closes = [D(100), D(110), D(99)]
    realised = (D("1.1") / D("0.9")).ln() * D("182.5").sqrt()
    sizing = Sizing.from_mapping(
        {"mode": "volatility_target", "target_volatility": "0.5", "volatility_window_bars": 3, "max_notional": "9000"}
    )
    # 10,000 x 0.5 / 2.7109 = 1,844.4...: well under the 9,000 cap.
    notional = sizing.entry_notional(D(10_000), equity=D(0), closes=closes, bar_interval_ns=DAY_NS)
    assert abs(notional - D(10_000) * D("0.5") / realised) < D("1e-20")
    assert sizing.entry_notional(D(10_000), equity=D(0), closes=closes[:2], bar_interval_ns=DAY_NS) == 0
    # A target 10x the realised volatility would be 10x the notional: capped at 9,000.
    loose = Sizing.from_mapping(
        {"mode": "volatility_target", "target_volatility": "30", "volatility_window_bars": 3, "max_notional": "9000"}
    )
    assert loose.entry_notional(D(10_000), equity=D(0), closes=closes, bar_interval_ns=DAY_NS) == D(9_000)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"mode": "volatility_target", "max_notional": "1"}, "target_volatility: expected a target"),
        ({"mode": "volatility_target", "target_volatility": "0.2"}, "max_notional: expected a cap"),
        (
            {"mode": "volatility_target", "target_volatility": "-1", "max_notional": "1"},
            "target_volatility: expected > 0",
        ),
        ({"volatility_window_bars": 2}, "volatility_window_bars: expected >= 3"),
        ({"mode": "martingale"}, "mode: expected one of fixed_notional"),
        ({"notional": "1"}, "unknown field 'notional'"),
        ({"correlation": {"A": {"B": "1.5"}}}, r"correlation\['A'\]\['B'\]: expected within \[-1, 1\]"),
    ],
)
def test_malformed_sizing_fails_naming_the_field(fields: dict[str, object], match: str) -> None:
    with pytest.raises(SizingError, match=match):
        Sizing.from_mapping(fields)


# --- correlated exposure cap -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rho", "expected"),
    [
        # sqrt(3^2 + 4^2 + 2 x 3 x 4 x |rho|): uncorrelated 5, fully (either sign) or unknown 7, 0.5: sqrt(37).
        ("0", D(5)),
        ("1", D(7)),
        ("-1", D(7)),
        (None, D(7)),
        ("0.5", D(37).sqrt()),
    ],
)
def test_correlated_exposure_counts_correlated_instruments_together(rho: str | None, expected: D) -> None:
    correlation = {} if rho is None else {"A": {"B": D(rho)}}
    assert abs(correlated_exposure({"A": D(3), "B": D(-4)}, correlation) - expected) < D("1e-26")


def test_exposure_scale_is_the_largest_entry_under_the_cap() -> None:
    pair = {"A": D(100), "B": D(100)}
    # Fully correlated: 200 s <= 100 -> s = 0.5. Uncorrelated: 100 sqrt(2) s <= 100 -> s = 1 / sqrt(2).
    assert exposure_scale({}, pair, {"A": {"B": D(1)}}, cap=D(100)) == D("0.5")
    half_root = exposure_scale({}, pair, {"A": {"B": D(0)}}, cap=D(100))
    assert abs(half_root - 1 / D(2).sqrt()) <= D("1e-12")  # to the 1e-12 resolution
    assert half_root <= 1 / D(2).sqrt()  # rounded down, never over the cap
    assert exposure_scale({"A": D(100)}, pair, {}, cap=D(100)) == 0  # already at the cap
    assert exposure_scale({}, pair, {}, cap=D(1000)) == 1


exposures = st.dictionaries(
    st.sampled_from(["A", "B", "C"]), st.decimals(min_value=-(10**6), max_value=10**6, places=2), max_size=3
)


@settings(max_examples=200, deadline=None)
@given(
    current=exposures,
    added=exposures,
    rhos=st.lists(st.decimals(min_value=-1, max_value=1, places=4), min_size=3, max_size=3),
    cap=st.decimals(min_value=1, max_value=10**7, places=2),
)
def test_a_scaled_entry_never_breaches_the_cap(
    current: dict[str, D], added: dict[str, D], rhos: list[D], cap: D
) -> None:
    correlation = {"A": {"B": rhos[0], "C": rhos[1]}, "B": {"C": rhos[2]}}
    scale = exposure_scale(current, added, correlation, cap=cap)
    assert 0 <= scale <= 1
    after = {k: abs(current.get(k, D(0))) + scale * abs(added.get(k, D(0))) for k in {*current, *added}}
    if correlated_exposure({k: abs(v) for k, v in current.items()}, correlation) < cap:
        assert correlated_exposure(after, correlation) <= cap
    else:
        assert scale == 0


@settings(max_examples=100, deadline=None)
@given(
    closes=st.lists(st.decimals(min_value=1, max_value=10**5, places=2), min_size=3, max_size=30),
    target=st.decimals(min_value=D("0.01"), max_value=10, places=2),
    cap=st.decimals(min_value=1, max_value=10**6, places=2),
    win_rate=st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2),
    equity=st.decimals(min_value=0, max_value=10**7, places=2),
)
def test_an_entry_never_exceeds_max_notional(closes: list[D], target: D, cap: D, win_rate: D, equity: D) -> None:
    volatility = Sizing.from_mapping(
        {"mode": "volatility_target", "target_volatility": target, "volatility_window_bars": 3, "max_notional": cap}
    )
    kelly = Sizing.from_mapping(
        {"mode": "kelly", "win_rate": win_rate, "average_win": "0.02", "average_loss": "0.01", "max_notional": cap}
    )
    for sizing in (volatility, kelly):
        notional = sizing.entry_notional(D(10_000), equity=equity, closes=closes, bar_interval_ns=HOUR_NS)
        assert 0 <= notional <= cap


# --- the [sizing] section through the config -------------------------------------------------------------

CONFIG = """
name = "sizing"
start = 2024-01-01T00:00:00Z
end = 2024-01-08T00:00:00Z
[[venues]]
name = "binance"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
spot_id = "binance:BTC-USDT"
perp_id = "binance:BTC-USDT-PERP"
notional = "40000"
"""


def test_absent_sizing_is_fixed_notional_and_leaves_the_config_hash_alone() -> None:
    config = parse_config(CONFIG.encode())
    assert "sizing" not in json.loads(config_json(config))
    assert load_strategy(config).config.sizing == Sizing()


def test_bad_sizing_section_fails_at_load_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"win_rate: expected within \[0, 1\].*\$\.sizing"):
        parse_config(
            (
                CONFIG
                + '[sizing]\nmode = "kelly"\nwin_rate = 2\naverage_win = 0.02\naverage_loss = 0.01\nmax_notional = 1\n'
            ).encode()
        )
    with pytest.raises(ConfigError, match=r"unknown field `notional`.*\$\.sizing"):
        parse_config((CONFIG + "[sizing]\nnotional = 1\n").encode())
    demo = CONFIG.replace("strategies.spot_perp_carry:SpotPerpCarry", "tests.kit.engine:Scripted")
    config = parse_config((demo.split("[strategy.params]")[0] + "[strategy.params]\norders = []\n[sizing]\n").encode())
    with pytest.raises(ConfigError, match="expected a strategy config with a sizing parameter"):
        check_config(config)


def _store_with_closes(root: Path, closes: dict[str, list[str]]) -> Store:
    store = Store(root)
    info = SourceInfo(source="synthetic: hand-made closes", sha256="0" * 64, importer="test", importer_version="1")
    for symbol, values in closes.items():
        rows = [
            {
                "ts": datetime(2023, 12, 31, hour, tzinfo=UTC),
                "open": close,
                "high": close,
                "low": close,
                "close": close,
                "volume": "1",
            }
            for hour, close in enumerate(values)
        ]
        frame = canonical_frame(
            "ohlcv",
            rows,
            venue="binance",
            symbol=symbol,
            market="perp" if symbol.endswith("PERP") else "spot",
            price_type="trade",
            interval="1h",
        )
        store.write("ohlcv", frame, info)
    return store


def test_correlation_is_estimated_from_the_store_before_the_start(tmp_path: Path) -> None:
    # Synthetic closes: the perp moves 2x the spot's relative moves (log returns 2 ln 1.1, 2 ln 0.9, ...
    # when the spot's are ln 1.1, ln 0.9): perfectly correlated, correlation 1.000000.
    store = _store_with_closes(
        tmp_path / "store",
        {"BTC-USDT": ["100", "110", "99", "108.9"], "BTC-USDT-PERP": ["100", "121", "98.01", "118.5921"]},
    )
    config = parse_config(
        (CONFIG + f'[sizing]\nmax_correlated_exposure_usd = 40000\nstore = "{store.root}"\n').encode()
    )
    assert config.sizing is not None
    instruments = [("binance", "BTC-USDT", "BTCUSDT.BINANCE"), ("binance", "BTC-USDT-PERP", "BTCUSDT-PERP.BINANCE")]
    matrix = estimate_correlation(config, config.sizing, instruments=instruments)
    assert matrix == {
        "BTCUSDT.BINANCE": {"BTCUSDT-PERP.BINANCE": D("1.000000")},
        "BTCUSDT-PERP.BINANCE": {"BTCUSDT.BINANCE": D("1.000000")},
    }
    # The matrix reaches the strategy through its config.
    assert load_strategy(config).config.sizing.correlation == matrix


def test_correlation_without_bars_in_the_window_fails_with_the_fix(tmp_path: Path) -> None:
    config = parse_config((CONFIG + f'[sizing]\nmax_correlated_exposure_usd = 1\nstore = "{tmp_path}"\n').encode())
    with pytest.raises(ConfigError, match=r"expected binance:BTC-USDT 1h trade bars .* found none; import them"):
        check_config(config)


FILES = (
    "binance_freqtrade/spot/BTC_USDT-1h.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-futures.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-mark.feather",
    "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",
)


@pytest.fixture(scope="module")
def carry_data(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[D]]:
    """Binance BTC spot + perp from ../shared/data: the store, a catalog from 2023-12-20, and the legs' lots."""
    root = tmp_path_factory.mktemp("sizing-carry")
    store = Store(root / "store")
    import_paths([*(shared_data / name for name in FILES), FIXTURE_INSTRUMENTS], store)
    export_catalog(
        store, root / "catalog", start=datetime(2023, 12, 20, tzinfo=UTC), end=datetime(2024, 1, 8, tzinfo=UTC)
    )
    instruments = {str(i.id): i for i in ParquetDataCatalog(str(root / "catalog")).instruments()}
    lots = [instruments[i].size_increment.as_decimal() for i in ("BTCUSDT.BINANCE", "BTCUSDT-PERP.BINANCE")]
    return root / "store", root / "catalog", lots


def _carry_config(catalog: Path, sizing: str) -> bytes:
    return f"""
name = "sizing-carry"
start = 2024-01-01T00:00:00Z
end = 2024-01-08T00:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 3
funding_interval = "8h"
[risk.max_notional_per_order]
"binance:BTC-USDT" = 250000
"binance:BTC-USDT-PERP" = 250000
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
spot_id = "binance:BTC-USDT"
perp_id = "binance:BTC-USDT-PERP"
notional = "40000"
entry_apr = "0.05"
lookback_settlements = 3
[sizing]
{sizing.strip()}
""".encode()


def _entry(fills: pl.DataFrame) -> tuple[D, D, D]:
    """Return the first entry's base quantity (equal on both legs) and the spot and perp fill prices."""
    fills = fills.sort("ts")
    entry = fills.filter(pl.col("ts") == fills["ts"][0])
    spot = entry.filter(entry["instrument_id"] == "BTCUSDT.BINANCE")
    perp = entry.filter(entry["instrument_id"] == "BTCUSDT-PERP.BINANCE")
    quantity = D(str(spot["quantity"][0]))
    assert D(str(perp["quantity"][0])) == quantity
    return quantity, D(str(spot["price"][0])), D(str(perp["price"][0]))


def test_carry_entry_is_scaled_to_the_correlated_exposure_cap(carry_data: tuple[Path, Path, list[D]]) -> None:
    store, catalog, lots = carry_data
    sizing = f'max_correlated_exposure_usd = 40000\ncorrelation_window_days = 14\nstore = "{store}"'
    config = parse_config(_carry_config(catalog, sizing))
    rho = load_strategy(config).config.sizing.correlation["BTCUSDT.BINANCE"]["BTCUSDT-PERP.BINANCE"]
    assert D("0.95") < rho <= 1  # spot and perp of one coin move together
    quantity, spot_close, perp_close = _entry(run_backtest(config).fills)
    # Fixed notional would buy 40,000 / price (about 0.95 BTC; 2 x 40,000 of correlated exposure). The cap
    # of 40,000 allows one entry of N per leg with N^2 (1 + k^2 + 2 k rho) <= 40,000^2, k = perp / spot
    # price: N = 40,000 / sqrt(1 + k^2 + 2 k rho), so the quantity is N / spot close rounded down to the
    # legs' common lot (the fill model fills at the close, no slippage configured).
    k = perp_close / spot_close
    notional = D(40_000) / (1 + k * k + 2 * k * rho).sqrt()
    assert quantity == pair_base_quantity(notional, spot_close, lots=lots)
    assert quantity * spot_close < D(30_000)  # well under the fixed 40,000


def test_carry_entry_is_a_kelly_share_of_equity(carry_data: tuple[Path, Path, list[D]]) -> None:
    _, catalog, lots = carry_data
    sizing = """
mode = "kelly"
win_rate = 0.55
average_win = 0.01
average_loss = 0.01
kelly_fraction = 0.03
max_notional = 50000
"""
    quantity, spot_close, _ = _entry(run_backtest(parse_config(_carry_config(catalog, sizing))).fills)
    # Edge 0.55 x 0.01 - 0.45 x 0.01 = 0.001, variance 0.55 x 0.45 x 0.02^2 = 0.000099: 3 % of full Kelly is
    # 0.03 x 0.001 / 0.000099 = 0.30303...; of the 100,000 USDT equity before the first fill, 30,303.03 per leg
    # (under the 50,000 cap), then / spot close rounded down to the common lot.
    notional = D(100_000) * D("0.03") * D("0.001") / D("0.000099")
    assert quantity == pair_base_quantity(notional, spot_close, lots=lots)
    assert D(30_000) < quantity * spot_close <= notional


def test_demo_strategy_sizes_its_short_by_volatility_target(tmp_path: Path) -> None:
    # The hand-made flat catalog (tests.kit.live, synthetic): BTC-USDT-PERP at 100.0 every hour, 0.5 % funding
    # every 8 h. FundingShort shorts once a settled rate is known. Flat closes have zero realised volatility, so
    # the volatility target sizes at its cap: 3,000 / 100.0 = 30 contracts (fixed notional: 10,000 / 100 = 100).
    catalog = flat_perp_catalog(tmp_path / "catalog")
    text = f"""
name = "sizing-demo"
start = 2024-01-01T00:00:00Z
end = 2024-01-02T00:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
funding_interval = "8h"
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
[sizing]
mode = "volatility_target"
target_volatility = 0.2
volatility_window_bars = 3
max_notional = 3000
"""
    fills = run_backtest(parse_config(text.encode())).fills
    assert fills["side"].to_list() == ["SELL"]
    assert fills["quantity"].to_list() == [D(30)]
