"""Who is next: the collateral that becomes liquidatable under a grid of price shocks.

Input is the ``account_states`` kind (``datasets.onchain.account_states``; decimals are cast to float): per
account its weighted ``collateral_usd`` and ``borrows_usd`` (repeated on each row) and per lending position
(``position_kind`` ``deposit`` or ``borrow``) its ``mint``, ``value_usd`` and ``weight`` (liquidation
threshold of a deposit, borrow factor of a borrow). A shock ``s`` to the shocked mints moves each of their
positions' weighted value by ``s``::

    collateral' = collateral_usd + s * sum(value_usd * weight of shocked deposits)
    borrows'    = borrows_usd    + s * sum(value_usd * weight of shocked borrows)

and an account is liquidatable when ``collateral' < borrows'``. Perp positions (Drift) are not shocked: their
value is not a deposit or a borrow of a mint (stated limit). ``newly`` counts the accounts healthy before the
shock; the collateral reported is their deposits' market value after the shock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import polars as pl

from research.errors import ResearchError

SHOCKS_PCT: tuple[float, ...] = (-2.0, -5.0, -10.0, -15.0, -20.0, -25.0, -30.0)
STATE_COLUMNS = ("protocol", "account", "position_kind", "mint", "value_usd", "weight", "collateral_usd", "borrows_usd")


class ShockError(ResearchError, ValueError):
    """The account states lack what the shock grid needs."""


def liquidatable_under_shocks(
    states: pl.DataFrame, *, mints: Collection[str], shocks_pct: Sequence[float] = SHOCKS_PCT
) -> pl.DataFrame:
    """Return per protocol and shock the accounts and collateral that become liquidatable.

    Parameters
    ----------
    states : pl.DataFrame
        Rows of the ``account_states`` kind.
    mints : Collection[str]
        The mints whose price is shocked (e.g. SOL and its liquid staking tokens, wBTC, wETH). A Kamino
        deposit row names the reserve's collateral (cToken) mint: list those of the shocked reserves too.
    shocks_pct : Sequence[float]
        Price changes in percent (negative for a fall).

    Returns
    -------
    pl.DataFrame
        ``protocol, shock_pct, accounts, liquidatable, newly_liquidatable, newly_collateral_usd,
        newly_borrows_usd``, sorted by protocol and falling shock.

    Raises
    ------
    ShockError
        If a column is missing or no account carries both collateral and borrows.
    """
    missing = [c for c in STATE_COLUMNS if c not in states.columns]
    if missing:
        raise ShockError(f"account states lack {missing}; pass rows of the account_states kind")
    numbers = ("value_usd", "weight", "collateral_usd", "borrows_usd")
    lending = states.with_columns(pl.col(numbers).cast(pl.Float64)).filter(
        pl.col("collateral_usd").is_not_null(), pl.col("borrows_usd").is_not_null()
    )
    if lending.is_empty():
        raise ShockError("no account state carries collateral_usd and borrows_usd; decode obligations or accounts")
    shocked = pl.col("mint").is_in(list(mints))
    weighted = pl.col("value_usd").fill_null(0) * pl.col("weight").fill_null(0)
    market = pl.col("value_usd").fill_null(0)
    accounts = lending.group_by("protocol", "account").agg(
        pl.col("collateral_usd").first(),
        pl.col("borrows_usd").first(),
        shocked_collateral=weighted.filter(shocked & (pl.col("position_kind") == "deposit")).sum(),
        shocked_borrows=weighted.filter(shocked & (pl.col("position_kind") == "borrow")).sum(),
        deposits_usd=market.filter(pl.col("position_kind") == "deposit").sum(),
        shocked_deposits_usd=market.filter(shocked & (pl.col("position_kind") == "deposit")).sum(),
        debt_usd=market.filter(pl.col("position_kind") == "borrow").sum(),
        shocked_debt_usd=market.filter(shocked & (pl.col("position_kind") == "borrow")).sum(),
    )
    grid = pl.DataFrame({"shock_pct": [float(s) for s in shocks_pct]})
    s = pl.col("shock_pct") / 100
    after = accounts.join(grid, how="cross").with_columns(
        before=pl.col("collateral_usd") < pl.col("borrows_usd"),
        after=pl.col("collateral_usd") + s * pl.col("shocked_collateral")
        < pl.col("borrows_usd") + s * pl.col("shocked_borrows"),
        collateral_after_usd=pl.col("deposits_usd") + s * pl.col("shocked_deposits_usd"),
        borrows_after_usd=pl.col("debt_usd") + s * pl.col("shocked_debt_usd"),
    )
    newly = pl.col("after") & ~pl.col("before")
    return (
        after.group_by("protocol", "shock_pct")
        .agg(
            accounts=pl.len(),
            liquidatable=pl.col("after").sum(),
            newly_liquidatable=newly.sum(),
            newly_collateral_usd=pl.col("collateral_after_usd").filter(newly).sum(),
            newly_borrows_usd=pl.col("borrows_after_usd").filter(newly).sum(),
        )
        .sort(["protocol", "shock_pct"], descending=[False, True])
    )
