"""Access adapters: API keys and secrets, signing, the replay cache, rate-limit backends."""
