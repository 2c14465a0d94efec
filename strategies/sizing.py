"""Position sizing every strategy shares: how much notional an entry gets, and how much all of them may hold.

Three modes (``Sizing.mode``) turn a strategy's configured notional into the notional of one entry:

- ``fixed_notional`` (the default, and what every strategy did before): the configured notional;
- ``volatility_target``: ``notional x target_volatility / realised_volatility``, the realised volatility
  annualised from the log returns of the last ``volatility_window_bars`` bar closes
  (``realised_volatility``), capped at ``max_notional``. No entry until the window is full;
- ``kelly``: a fraction of equity, ``kelly_fraction x edge / variance`` (the continuous Kelly
  fraction, ``kelly_fraction``), the edge and variance of one trade's return estimated from a win rate
  and the average win and loss (``trade_statistics``), capped at ``max_notional``.

On top of any mode, a correlation-aware cap on total exposure (``max_correlated_exposure_usd``):
exposures of correlated instruments count together, as ``sqrt(sum_ij |e_i| |e_j| |rho_ij|)``
(``correlated_exposure``). With every ``|rho| = 1`` that is the gross exposure ``sum |e_i|``; with
uncorrelated instruments it is ``sqrt(sum e_i^2)``. ``|rho|`` makes a hedge count as exposure too: the cap
bounds how much of the book rides on one factor, whichever side, not its net risk. A pair the matrix
does not name counts as fully correlated, so a missing estimate never loosens the cap. An entry that
would breach it is scaled down to the largest size that does not (``exposure_scale``).

The correlation matrix comes in through the config (``engine.correlation`` estimates it from the store
over a window before the run): a strategy does no I/O. Everything here is pure ``Decimal`` arithmetic.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any, Literal, get_args

SizingMode = Literal["fixed_notional", "volatility_target", "kelly"]
SIZING_MODES: tuple[str, ...] = get_args(SizingMode)
NS_PER_YEAR = 365 * 86_400 * 1_000_000_000  # crypto trades every day of the year

Correlation = Mapping[str, Mapping[str, Decimal]]
SCALE_STEP = Decimal("1e-12")  # resolution of exposure_scale: far below any lot


class SizingError(ValueError):
    """A sizing parameter is missing, mistyped or out of range."""


def trade_statistics(*, win_rate: Decimal, average_win: Decimal, average_loss: Decimal) -> tuple[Decimal, Decimal]:
    """Return the mean (edge) and variance of one trade's return from its win rate and average win and loss.

    A trade returns ``+average_win`` with probability ``p = win_rate`` and ``-average_loss`` otherwise
    (both fractions of the notional): the edge is ``p W - (1 - p) L`` and the variance
    ``p (1 - p) (W + L)^2``.

    Raises
    ------
    SizingError
        If ``win_rate`` is outside [0, 1] or an average is not positive.
    """
    if not Decimal(0) <= win_rate <= Decimal(1):
        raise SizingError(f"sizing.win_rate: expected within [0, 1], was {win_rate}")
    for name, value in (("average_win", average_win), ("average_loss", average_loss)):
        if value <= 0:
            raise SizingError(f"sizing.{name}: expected > 0 (a fraction of the notional), was {value}")
    edge = win_rate * average_win - (1 - win_rate) * average_loss
    variance = win_rate * (1 - win_rate) * (average_win + average_loss) ** 2
    return edge, variance


def kelly_fraction(*, edge: Decimal, variance: Decimal, fraction: Decimal) -> Decimal:
    """Return the fraction of equity to commit: ``fraction x edge / variance``, 0 for a negative edge.

    Raises
    ------
    SizingError
        If ``variance`` is not positive (a win rate of 0 or 1 has none: no estimate to size from) or
        ``fraction`` is outside (0, 1].
    """
    if variance <= 0:
        raise SizingError(
            f"sizing: expected a positive variance of trade returns, was {variance}; "
            "a win rate of 0 or 1 leaves no variance to size from"
        )
    if not Decimal(0) < fraction <= Decimal(1):
        raise SizingError(f"sizing.kelly_fraction: expected within (0, 1], was {fraction}")
    return max(Decimal(0), fraction * edge / variance)


def realised_volatility(closes: Sequence[Decimal], *, bar_interval_ns: int) -> Decimal:
    """Return the annualised volatility of ``closes``: the sample standard deviation of their log returns.

    Annualised by ``sqrt(bars per year)``, a year being 365 days.

    Raises
    ------
    SizingError
        If fewer than three closes are given or one is not positive.
    """
    if len(closes) < 3:
        raise SizingError(f"sizing: expected at least 3 closes for a volatility, was {len(closes)}")
    if any(close <= 0 for close in closes):
        raise SizingError(f"sizing: expected positive closes, was {min(closes)}")
    returns = [(b / a).ln() for a, b in itertools.pairwise(closes)]
    mean = sum(returns, Decimal(0)) / len(returns)
    variance = sum(((r - mean) ** 2 for r in returns), Decimal(0)) / (len(returns) - 1)
    return (variance * (Decimal(NS_PER_YEAR) / bar_interval_ns)).sqrt()


def correlated_exposure(exposures: Mapping[str, Decimal], correlation: Correlation) -> Decimal:
    """Return ``sqrt(sum_ij |e_i| |e_j| |rho_ij|)``: exposures of correlated instruments counted together.

    ``rho_ii = 1``; a pair ``correlation`` does not name counts as ``|rho| = 1``.
    """
    names = [name for name, value in exposures.items() if value]
    total = Decimal(0)
    for first in names:
        for second in names:
            total += abs(exposures[first]) * abs(exposures[second]) * _rho(correlation, first, second)
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        return total.sqrt()


def exposure_scale(
    current: Mapping[str, Decimal], added: Mapping[str, Decimal], correlation: Correlation, *, cap: Decimal
) -> Decimal:
    """Return the largest ``s`` in [0, 1] with ``correlated_exposure(|current| + s |added|) <= cap``.

    Exposures are gross (absolute values): an entry only adds to them. The quadratic
    ``a s^2 + 2 b s + c <= 0`` is solved rounding down, to a multiple of ``SCALE_STEP``, and the result
    checked, so the scaled entry never breaches.
    """
    names = sorted({*current, *added})
    e = [abs(current.get(name, Decimal(0))) for name in names]
    d = [abs(added.get(name, Decimal(0))) for name in names]
    r = [[_rho(correlation, i, j) for j in names] for i in names]
    n = range(len(names))
    a = sum((d[i] * d[j] * r[i][j] for i in n for j in n), Decimal(0))
    b = sum((e[i] * d[j] * r[i][j] for i in n for j in n), Decimal(0))
    c = sum((e[i] * e[j] * r[i][j] for i in n for j in n), Decimal(0)) - cap * cap
    if c >= 0:
        return Decimal(0)
    if a == 0:
        return Decimal(1)
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        root = (b * b - a * c).sqrt()
        scale = min(Decimal(1), (root - b) / a).quantize(SCALE_STEP)
    # 28 significant digits round the exposure of the scaled entry: step down until it is within the cap.
    while scale > 0 and correlated_exposure(_scaled(current, added, scale), correlation) > cap:
        scale -= SCALE_STEP
    return max(scale, Decimal(0))


def _scaled(current: Mapping[str, Decimal], added: Mapping[str, Decimal], scale: Decimal) -> dict[str, Decimal]:
    return {k: abs(current.get(k, Decimal(0))) + scale * abs(added.get(k, Decimal(0))) for k in {*current, *added}}


def _rho(correlation: Correlation, first: str, second: str) -> Decimal:
    if first == second:
        return Decimal(1)
    row = correlation.get(first)
    value = row.get(second) if row is not None else None
    if value is None:
        other = correlation.get(second)
        value = other.get(first) if other is not None else None
    return Decimal(1) if value is None else abs(value)


@dataclass(frozen=True, slots=True)
class Sizing:
    """How a strategy sizes its entries; see the module docstring. Fields are checked on construction.

    Attributes
    ----------
    mode : {"fixed_notional", "volatility_target", "kelly"}
    target_volatility : Decimal, optional
        ``volatility_target``: annualised volatility aimed at (0.20 = 20 %/year).
    volatility_window_bars : int
        ``volatility_target``: bar closes the realised volatility is measured over (at least 3).
    max_notional : Decimal, optional
        Cap on one entry's notional in ``volatility_target`` and ``kelly`` mode (required there).
    win_rate, average_win, average_loss : Decimal, optional
        ``kelly``: the estimated share of winning trades and their average return and loss (fractions
        of the notional, both positive).
    kelly_fraction : Decimal
        ``kelly``: the share of the full Kelly fraction taken, within (0, 1].
    max_correlated_exposure_usd : Decimal, optional
        Cap on ``correlated_exposure`` of the strategy's positions, in USD.
    correlation : dict[str, dict[str, Decimal]]
        Nautilus instrument id -> instrument id -> correlation of returns, within [-1, 1].

    Raises
    ------
    SizingError
        If a field is out of range or a mode lacks the fields it needs.
    """

    mode: SizingMode = "fixed_notional"
    target_volatility: Decimal | None = None
    volatility_window_bars: int = 720
    max_notional: Decimal | None = None
    win_rate: Decimal | None = None
    average_win: Decimal | None = None
    average_loss: Decimal | None = None
    kelly_fraction: Decimal = Decimal("0.5")
    max_correlated_exposure_usd: Decimal | None = None
    correlation: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in SIZING_MODES:
            raise SizingError(f"sizing.mode: expected one of {', '.join(SIZING_MODES)}, was {self.mode!r}")
        for name in ("target_volatility", "max_notional", "max_correlated_exposure_usd"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SizingError(f"sizing.{name}: expected > 0, was {value}")
        self._check_mode()
        for first, row in self.correlation.items():
            for second, rho in row.items():
                if not Decimal(-1) <= rho <= Decimal(1):
                    raise SizingError(f"sizing.correlation[{first!r}][{second!r}]: expected within [-1, 1], was {rho}")

    def _check_mode(self) -> None:
        if self.volatility_window_bars < 3:
            raise SizingError(f"sizing.volatility_window_bars: expected >= 3, was {self.volatility_window_bars}")
        if self.mode != "fixed_notional" and self.max_notional is None:
            raise SizingError(f"sizing.max_notional: expected a cap on one entry in {self.mode} mode, was none")
        if self.mode == "volatility_target" and self.target_volatility is None:
            raise SizingError("sizing.target_volatility: expected a target in volatility_target mode, was none")
        if self.mode == "kelly":
            self.kelly()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> Sizing:
        """Return sizing from a config table, numbers as numbers or decimal text (None: fixed notional).

        Raises
        ------
        SizingError
            If a key is unknown or a value is malformed or out of range.
        """
        if not raw:
            return cls()
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SizingError(f"sizing: unknown field {unknown[0]!r}, expected one of {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "mode":
                values[key] = value
            elif key == "volatility_window_bars":
                values[key] = int(value)
            elif key == "correlation":
                values[key] = {
                    str(i): {str(j): _decimal(f"correlation[{i!r}][{j!r}]", x) for j, x in row.items()}
                    for i, row in value.items()
                }
            else:
                values[key] = None if value is None else _decimal(key, value)
        return cls(**values)

    def kelly(self) -> Decimal:
        """Return the fraction of equity one entry commits in ``kelly`` mode.

        Raises
        ------
        SizingError
            If the win rate or averages are missing or invalid, or they leave no variance.
        """
        if self.win_rate is None or self.average_win is None or self.average_loss is None:
            raise SizingError("sizing: expected win_rate, average_win and average_loss in kelly mode, some are missing")
        edge, variance = trade_statistics(
            win_rate=self.win_rate, average_win=self.average_win, average_loss=self.average_loss
        )
        return kelly_fraction(edge=edge, variance=variance, fraction=self.kelly_fraction)

    def entry_notional(
        self, notional: Decimal, *, equity: Decimal, closes: Sequence[Decimal], bar_interval_ns: int
    ) -> Decimal:
        """Return one entry's notional: ``notional`` as configured, volatility-targeted or a Kelly share of equity.

        ``volatility_target`` returns 0 (no entry) until ``closes`` holds ``volatility_window_bars`` closes.
        """
        if self.mode == "fixed_notional":
            return notional
        cap = self.max_notional if self.max_notional is not None else notional
        if self.mode == "kelly":
            return min(cap, max(Decimal(0), equity) * self.kelly())
        if len(closes) < self.volatility_window_bars or self.target_volatility is None:
            return Decimal(0)
        volatility = realised_volatility(closes[-self.volatility_window_bars :], bar_interval_ns=bar_interval_ns)
        if volatility == 0:
            return cap
        return min(cap, notional * self.target_volatility / volatility)

    def entry_scale(self, current: Mapping[str, Decimal], added: Mapping[str, Decimal]) -> Decimal:
        """Return the share in [0, 1] of an entry adding ``added`` exposure (USD) that the exposure cap allows."""
        if self.max_correlated_exposure_usd is None:
            return Decimal(1)
        return exposure_scale(current, added, self.correlation, cap=self.max_correlated_exposure_usd)


def _decimal(name: str, value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise SizingError(f"sizing.{name}: expected a decimal number, was {value!r}") from None
    if not result.is_finite():
        raise SizingError(f"sizing.{name}: expected a finite number, was {value!r}")
    return result
