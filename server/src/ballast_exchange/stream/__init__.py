"""The WebSocket stream at ``/stream``: market data, private updates and order entry."""
