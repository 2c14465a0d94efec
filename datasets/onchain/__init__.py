"""Solana lending and perp liquidations: RPC fetches (``fetch``, ``rpc``, ``progress``) and decoders."""
