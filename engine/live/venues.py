"""Nautilus 2.x adapters of the five venues: data and execution client factories and their configs.

One table maps a configured venue (``binance``, ``bybit``, ``okx``, ``hyperliquid``, ``kraken``) and its
``[live.connections.<venue>]`` section to the adapter's factory and config. Perps select the venue's
derivatives product (Binance USD-M, Bybit linear, OKX swaps, Hyperliquid perps, Kraken futures); spot
instruments its spot product. Credentials are revealed only here, into the adapter config.

The connection's ``environment`` picks the adapter's: ``testnet`` its testnet/demo, ``paper`` and
``production`` its production endpoints (a paper node reads production market data). An execution
client is built for ``testnet`` and ``production`` only: a paper config never reaches one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nautilus_trader.model import AccountId

from datasets.symbols import market_of
from datasets.venues import venue_spec
from engine.config import ConnectionConfig, VenueConfig
from engine.errors import CredentialsError, NodeError, SafetyError
from engine.live.secrets import Credentials


@dataclass(frozen=True, slots=True)
class AdapterClient:
    """A client to add to a ``LiveNodeBuilder``: its name, factory and config."""

    name: str
    factory: Any
    config: Any


def nautilus_venue(name: str) -> str:
    """Return the Nautilus venue code of a configured venue (``binance`` -> ``BINANCE``)."""
    return str(venue_spec(name).nautilus_venue)


# Venues whose MARKET orders are denied MARKET_PRICE_UNAVAILABLE without a cached quote (rc6): Hyperliquid's
# adapter sends an IOC limit at the best bid/ask plus its slippage; Kraken Futures streams no EXTERNAL bars,
# so the risk engine has no other price to check the order's notional with. See engine.live.quotes.
_QUOTE_PRICED = frozenset({"hyperliquid", "kraken"})


def needs_quotes(name: str) -> bool:
    """Return whether a live node on venue ``name`` needs quotes subscribed to send market orders."""
    return name in _QUOTE_PRICED


def _is_perp(venue: VenueConfig) -> bool:
    markets = {market_of(symbol) for symbol in venue.instruments}
    if len(markets) > 1:
        raise NodeError(
            f"venues[{venue.name}]: expected spot or perp instruments on one live venue, was both "
            f"({venue.instruments}); a Nautilus adapter client serves one product, split them into two runs"
        )
    return markets == {"perp"}


def data_client(venue: VenueConfig, connection: ConnectionConfig, credentials: Credentials | None) -> AdapterClient:
    """Return the market data client of ``venue``.

    Raises
    ------
    NodeError
        If the venue mixes spot and perps.
    """
    builder = _DATA[venue.name]
    return AdapterClient(nautilus_venue(venue.name), *builder(_is_perp(venue), connection, credentials))


def exec_client(venue: VenueConfig, connection: ConnectionConfig, credentials: Credentials) -> AdapterClient:
    """Return the execution client of ``venue`` (live mode only).

    Raises
    ------
    NodeError
        If the venue mixes spot and perps.
    CredentialsError
        If the venue needs a credential field that is absent (OKX passphrase).
    SafetyError
        If the connection's environment is ``paper``: a paper config never connects an execution client.
    """
    if connection.environment not in ("testnet", "production"):
        raise SafetyError(
            f"venues[{venue.name}]: expected environment 'testnet' or 'production' for an execution client, "
            f"was {connection.environment!r}; a paper config never trades on a venue"
        )
    builder = _EXEC[venue.name]
    name = nautilus_venue(venue.name)
    account_id = AccountId(f"{name}-001")
    return AdapterClient(name, *builder(_is_perp(venue), connection, credentials, account_id))


def _testnet(connection: ConnectionConfig) -> bool:
    return connection.environment == "testnet"


def _key(credentials: Credentials | None) -> str | None:
    return None if credentials is None else credentials.api_key.reveal()


def _secret(credentials: Credentials | None) -> str | None:
    return None if credentials is None else credentials.api_secret.reveal()


def _passphrase(credentials: Credentials | None) -> str | None:
    return None if credentials is None or credentials.passphrase is None else credentials.passphrase.reveal()


def _binance_data(perp: bool, connection: ConnectionConfig, credentials: Credentials | None) -> tuple[Any, Any]:
    from nautilus_trader.adapters import binance

    return binance.BinanceDataClientFactory(), binance.BinanceDataClientConfig(
        product_type=binance.BinanceProductType.USD_M if perp else binance.BinanceProductType.SPOT,
        environment=binance.BinanceEnvironment.TESTNET if _testnet(connection) else binance.BinanceEnvironment.LIVE,
        base_url_http=connection.base_url_http,
        base_url_ws=connection.base_url_ws,
        api_key=_key(credentials),
        api_secret=_secret(credentials),
    )


def _binance_exec(
    perp: bool, connection: ConnectionConfig, credentials: Credentials, account_id: AccountId
) -> tuple[Any, Any]:
    from nautilus_trader.adapters import binance

    return binance.BinanceExecutionClientFactory(), binance.BinanceExecutionClientConfig(
        account_id=account_id,
        product_type=binance.BinanceProductType.USD_M if perp else binance.BinanceProductType.SPOT,
        environment=binance.BinanceEnvironment.TESTNET if _testnet(connection) else binance.BinanceEnvironment.LIVE,
        base_url_http=connection.base_url_http,
        base_url_ws=connection.base_url_ws_private or connection.base_url_ws,
        base_url_ws_trading=connection.base_url_ws_trading,
        use_ws_trading=connection.base_url_ws_trading is not None or connection.base_url_http is None,
        api_key=_key(credentials),
        api_secret=_secret(credentials),
    )


def _bybit_data(perp: bool, connection: ConnectionConfig, credentials: Credentials | None) -> tuple[Any, Any]:
    from nautilus_trader.adapters import bybit

    return bybit.BybitDataClientFactory(), bybit.BybitDataClientConfig(
        product_types=[bybit.BybitProductType.LINEAR if perp else bybit.BybitProductType.SPOT],
        environment=bybit.BybitEnvironment.TESTNET if _testnet(connection) else bybit.BybitEnvironment.MAINNET,
        base_url_http=connection.base_url_http,
        base_url_ws_public=connection.base_url_ws,
        base_url_ws_private=connection.base_url_ws_private,
        api_key=_key(credentials),
        api_secret=_secret(credentials),
    )


def _bybit_exec(
    perp: bool, connection: ConnectionConfig, credentials: Credentials, account_id: AccountId
) -> tuple[Any, Any]:
    from nautilus_trader.adapters import bybit

    return bybit.BybitExecutionClientFactory(), bybit.BybitExecutionClientConfig(
        product_types=[bybit.BybitProductType.LINEAR if perp else bybit.BybitProductType.SPOT],
        environment=bybit.BybitEnvironment.TESTNET if _testnet(connection) else bybit.BybitEnvironment.MAINNET,
        base_url_http=connection.base_url_http,
        base_url_ws_private=connection.base_url_ws_private,
        base_url_ws_trade=connection.base_url_ws_trading,
        account_id=account_id,
        api_key=_key(credentials),
        api_secret=_secret(credentials),
    )


def _okx_data(perp: bool, connection: ConnectionConfig, credentials: Credentials | None) -> tuple[Any, Any]:
    from nautilus_trader.adapters import okx

    return okx.OKXDataClientFactory(), okx.OKXDataClientConfig(
        instrument_types=[okx.OKXInstrumentType.SWAP if perp else okx.OKXInstrumentType.SPOT],
        environment=okx.OKXEnvironment.DEMO if _testnet(connection) else okx.OKXEnvironment.LIVE,
        base_url_http=connection.base_url_http,
        base_url_ws_public=connection.base_url_ws,
        base_url_ws_business=connection.base_url_ws_business,
        api_key=_key(credentials),
        api_secret=_secret(credentials),
        api_passphrase=None
        if credentials is None or credentials.passphrase is None
        else credentials.passphrase.reveal(),
    )


def _okx_exec(
    perp: bool, connection: ConnectionConfig, credentials: Credentials, account_id: AccountId
) -> tuple[Any, Any]:
    from nautilus_trader.adapters import okx

    if credentials.passphrase is None:
        raise CredentialsError("okx: expected CARRYLAB_OKX_PASSPHRASE (or [okx] passphrase in --secrets), was unset")
    return okx.OKXExecutionClientFactory(), okx.OKXExecutionClientConfig(
        account_id=account_id,
        instrument_types=[okx.OKXInstrumentType.SWAP if perp else okx.OKXInstrumentType.SPOT],
        environment=okx.OKXEnvironment.DEMO if _testnet(connection) else okx.OKXEnvironment.LIVE,
        base_url_http=connection.base_url_http,
        base_url_ws_private=connection.base_url_ws_private,
        base_url_ws_business=connection.base_url_ws_business,
        api_passphrase=credentials.passphrase.reveal(),
        api_key=_key(credentials),
        api_secret=_secret(credentials),
    )


def _hyperliquid_data(perp: bool, connection: ConnectionConfig, credentials: Credentials | None) -> tuple[Any, Any]:
    from nautilus_trader.adapters import hyperliquid

    environment = hyperliquid.HyperliquidEnvironment
    return hyperliquid.HyperliquidDataClientFactory(), hyperliquid.HyperliquidDataClientConfig(
        environment=environment.TESTNET if _testnet(connection) else environment.MAINNET,
        base_url_http=connection.base_url_http,
        base_url_ws=connection.base_url_ws,
    )


def _hyperliquid_exec(
    perp: bool, connection: ConnectionConfig, credentials: Credentials, account_id: AccountId
) -> tuple[Any, Any]:
    from nautilus_trader.adapters import hyperliquid

    environment = hyperliquid.HyperliquidEnvironment
    return hyperliquid.HyperliquidExecutionClientFactory(), hyperliquid.HyperliquidExecutionClientConfig(
        account_id=account_id,
        account_address=credentials.api_key.reveal(),
        private_key=credentials.api_secret.reveal(),
        environment=environment.TESTNET if _testnet(connection) else environment.MAINNET,
        base_url_http=connection.base_url_http,
        base_url_ws=connection.base_url_ws,
        base_url_exchange=connection.base_url_ws_trading,
    )


def _kraken_data(perp: bool, connection: ConnectionConfig, credentials: Credentials | None) -> tuple[Any, Any]:
    from nautilus_trader.adapters import kraken

    return kraken.KrakenDataClientFactory(), kraken.KrakenDataClientConfig(
        product_type=kraken.KrakenProductType.FUTURES if perp else kraken.KrakenProductType.SPOT,
        environment=kraken.KrakenEnvironment.DEMO if _testnet(connection) else kraken.KrakenEnvironment.LIVE,
        base_url=connection.base_url_http,
        ws_public_url=connection.base_url_ws,
        ws_private_url=connection.base_url_ws_private,
        api_key=_key(credentials),
        api_secret=_secret(credentials),
    )


def _kraken_exec(
    perp: bool, connection: ConnectionConfig, credentials: Credentials, account_id: AccountId
) -> tuple[Any, Any]:
    from nautilus_trader.adapters import kraken

    return kraken.KrakenExecutionClientFactory(), kraken.KrakenExecutionClientConfig(
        account_id=account_id,
        product_type=kraken.KrakenProductType.FUTURES if perp else kraken.KrakenProductType.SPOT,
        environment=kraken.KrakenEnvironment.DEMO if _testnet(connection) else kraken.KrakenEnvironment.LIVE,
        base_url=connection.base_url_http,
        ws_url=connection.base_url_ws_private,
        api_key=credentials.api_key.reveal(),
        api_secret=credentials.api_secret.reveal(),
    )


_DATA = {
    "binance": _binance_data,
    "bybit": _bybit_data,
    "okx": _okx_data,
    "hyperliquid": _hyperliquid_data,
    "kraken": _kraken_data,
}
_EXEC = {
    "binance": _binance_exec,
    "bybit": _bybit_exec,
    "okx": _okx_exec,
    "hyperliquid": _hyperliquid_exec,
    "kraken": _kraken_exec,
}
