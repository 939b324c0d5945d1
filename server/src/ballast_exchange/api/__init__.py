"""HTTP API layer: request signing, API keys and rate limiting."""
