"""The account dashboard: sign-up and login, account pages, API keys and market pages."""

from .routes import install

__all__ = ["install"]
