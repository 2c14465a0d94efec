"""Assemble a Nautilus 2.x ``LiveNode`` for a run config: paper (sandbox execution) or live.

Assembly only: the venue model's balances, fees, leverage and OMS become sandbox execution clients
(paper) or the venues' execution adapters (live); market data comes from the venues' adapters (with
``[data] liquidations``, plus the venue's liquidation stream, ``engine.live.liquidations``) or, in a
replay, from ``ReplayDataClient``; the Nautilus risk engine gets the config's limits. Running,
stopping and reporting a session is ``engine.live.session``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from nautilus_trader.adapters.sandbox import SandboxExecutionClientConfig, SandboxExecutionClientFactory
from nautilus_trader.common import Environment, LoggerConfig, LogLevel
from nautilus_trader.live import (
    DataClientConfig,
    ExecutionClientConfig,
    LiveExecutionEngineConfig,
    LiveNode,
    LiveRiskEngineConfig,
)
from nautilus_trader.model import TraderId

from engine.config import ConnectionConfig, LiveConfig, RunConfig
from engine.errors import EngineError, NodeError
from engine.live.funding_account import FUNDING_CLIENT_SUFFIX, FundingAccounts
from engine.live.liquidations import CLIENT_SUFFIX as LIQUIDATIONS_CLIENT_SUFFIX
from engine.live.liquidations import LiquidationDataClientFactory, liquidation_stream
from engine.live.quotes import QuoteSubscriber
from engine.live.replay import ReplayDataClientFactory, ReplayFeed
from engine.live.secrets import REDACTOR, Credentials
from engine.live.venues import data_client, exec_client, nautilus_venue, needs_quotes
from engine.loading import instrument_id_for, max_notional_per_order
from engine.venue_models import VenueModel

Mode = Literal["paper", "live"]


def build_node(
    config: RunConfig,
    *,
    mode: Mode,
    log_level: str,
    models: list[VenueModel],
    live_config: LiveConfig,
    credentials: Mapping[str, Credentials],
    feed: ReplayFeed | None,
    funding_accounts: FundingAccounts | None = None,
) -> LiveNode:
    """Return the built node: data clients (the venues' adapters, or the replay), execution clients, risk engine.

    A live node on a venue whose market orders need a cached quote (``engine.live.venues.needs_quotes``)
    gets a ``QuoteSubscriber`` for that venue's instruments.
    In paper mode with ``funding_accounts``, each sandbox gets a ``FundingAccountClient`` on its account
    (``engine.live.funding_account``), through which the session books paper funding.

    Raises
    ------
    NodeError
        If Nautilus refuses to build it (the message is redacted of every secret).
    CredentialsError
        If a live venue lacks a credential field its adapter needs.
    """
    environment = Environment.LIVE if mode == "live" else Environment.SANDBOX
    notional = {str(i): str(int(value)) for i, value in max_notional_per_order(config).items()}
    try:
        builder = LiveNode.builder(f"carrylab-{mode}", TraderId(config.trader_id), environment)
        builder = builder.with_logging(LoggerConfig(stdout_level=getattr(LogLevel, log_level)))
        builder = builder.with_risk_engine_config(
            LiveRiskEngineConfig(
                max_order_submit_rate=config.risk.max_order_submit_rate, max_notional_per_order=notional or None
            )
        )
        exec_engine = LiveExecutionEngineConfig(
            reconciliation=mode == "live",
            position_check_interval_secs=live_config.position_check_interval_secs if mode == "live" else None,
        )
        builder = builder.with_exec_engine_config(exec_engine)
        builder = builder.with_reconciliation(mode == "live")
        builder = builder.with_delay_post_stop_secs(0).with_timeout_disconnection_secs(2).with_delay_shutdown_secs(0)
        if feed is not None:
            builder = builder.add_data_client(
                "REPLAY", ReplayDataClientFactory(feed, venue=nautilus_venue(config.venues[0].name)), DataClientConfig()
            )
        for venue, model in zip(config.venues, models, strict=True):
            connection = (live_config.connections.get(venue.name)) or ConnectionConfig()
            if feed is None:
                client = data_client(venue, connection, credentials.get(venue.name))
                builder = builder.add_data_client(client.name, client.factory, client.config)
                stream = (
                    liquidation_stream(venue.name, venue.instruments, base_url_ws=connection.base_url_ws)
                    if config.data.liquidations
                    else None
                )
                if stream is not None:
                    name = f"{client.name}{LIQUIDATIONS_CLIENT_SUFFIX}"
                    builder = builder.add_data_client(name, LiquidationDataClientFactory(stream), DataClientConfig())
            if mode == "live":
                client = exec_client(venue, connection, credentials[venue.name])
                builder = builder.add_exec_client(client.name, client.factory, client.config)
            else:
                sandbox = _sandbox(model)
                builder = builder.add_simulated_exec_client(model.venue.value, SandboxExecutionClientFactory(), sandbox)
                if funding_accounts is not None:
                    factory = funding_accounts.factory(
                        venue.name,
                        venue=model.venue,
                        account_id=sandbox.account_id,
                        account_type=sandbox.account_type,
                        oms_type=sandbox.oms_type,
                    )
                    name = f"{model.venue.value}{FUNDING_CLIENT_SUFFIX}"
                    builder = builder.add_exec_client(name, factory, ExecutionClientConfig())
        node = builder.build()
        quoted = [instrument_id_for(v.name, s) for v in config.venues if needs_quotes(v.name) for s in v.instruments]
        if mode == "live" and quoted:
            node.add_actor(QuoteSubscriber(instrument_ids=quoted))
        return node
    except EngineError:
        raise
    except Exception as exc:
        message = REDACTOR.redact(str(exc))
        raise NodeError(f"expected the {mode} node to build, it failed with {type(exc).__name__}: {message}") from None


def _sandbox(model: VenueModel) -> SandboxExecutionClientConfig:
    return SandboxExecutionClientConfig(
        venue=model.venue,
        starting_balances=list(model.starting_balances),
        oms_type=model.oms_type,
        account_type=model.account_type,
        default_leverage=model.leverage,
        fee_model=model.fee_model(),
        # The rc6 sandbox takes native fill models only, so market orders fill at the last close
        # without fill.slippage_bps (logged at start when it is set; see the README, "Paper and live trading").
        fill_model=None,
        bar_execution=True,
    )
