"""Data acquisition: resumable ccxt downloads, Binance public dumps, live liquidation recorders.

Modules: ``ccxt_venues`` (the one table of venue facts), ``fetch`` (plan and run downloads),
``retry`` (capped backoff on transient errors), ``dumps`` (data.binance.vision), ``record``
(WebSocket liquidation recorders), ``update`` (bring the store up to now). The loopback venues the
tests download from live in ``tests/kit/venues.py``. Nothing here runs on import; the CLI imports each
module when its command runs.
"""
