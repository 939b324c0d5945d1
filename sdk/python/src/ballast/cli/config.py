"""Where the command's key, secret and server come from: flags, then environment variables,
then a profile in the credentials file (``~/.config/ballast/credentials``, INI).

```ini
[default]
api_key = bmkt_test_…
api_secret = bmkt_secret_…
base_url = http://127.0.0.1:8000/v1

[prod]
api_key = bmkt_live_…
api_secret = bmkt_secret_…
```

Each setting is taken from the first place that has it: ``--api-key`` over
``BALLAST_API_KEY`` over ``api_key`` in the profile, and so on. The server is one setting: the
first of flags, environment and profile that names one (``base_url`` or ``environment``)
decides it. The profile is ``--profile``, else ``BALLAST_PROFILE``, else ``default``; a profile
named explicitly must exist.
"""

from __future__ import annotations

import configparser
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILE_KEYS",
    "ConfigError",
    "Settings",
    "credentials_path",
    "read_profile",
    "resolve",
]

DEFAULT_PROFILE = "default"
#: The keys a profile may hold.
PROFILE_KEYS = ("api_key", "api_secret", "base_url", "environment", "stream_url")
#: The environment variable of each setting (the SDK's own, where it reads one).
ENV_VARS = {
    "api_key": "BALLAST_API_KEY",
    "api_secret": "BALLAST_API_SECRET",
    "base_url": "BALLAST_BASE_URL",
    "environment": "BALLAST_ENVIRONMENT",
    "stream_url": "BALLAST_STREAM_URL",
}
PROFILE_VAR = "BALLAST_PROFILE"


class ConfigError(Exception):
    """The configuration is unusable (a missing profile, a half key): a usage error."""


@dataclass(frozen=True)
class Settings:
    """What the client is built from; ``None`` leaves a setting to the SDK's default."""

    api_key: str | None = None
    api_secret: str | None = None
    base_url: str | None = None
    environment: str | None = None
    stream_url: str | None = None
    #: The profile read, if the credentials file had it.
    profile: str | None = None

    @property
    def has_key(self) -> bool:
        return self.api_key is not None and self.api_secret is not None


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/ballast/credentials``, by default ``~/.config/ballast/credentials``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "ballast" / "credentials"


def _clean(values: Mapping[str, str | None]) -> dict[str, str]:
    """The settings that are set: empty text counts as unset."""
    return {key: value.strip() for key, value in values.items() if value and value.strip()}


def read_profile(path: Path, name: str, *, required: bool) -> dict[str, str]:
    """The settings of profile ``name`` in the INI file at ``path`` (``{}`` when the file or, if
    not ``required``, the profile is missing)."""
    if not path.is_file():
        if required:
            raise ConfigError(f"profile {name!r}: there is no credentials file at {path}")
        return {}
    parser = configparser.ConfigParser(interpolation=None)  # secrets may hold '%'
    try:
        with path.open(encoding="utf-8") as file:
            parser.read_file(file)
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    _warn_if_readable(path)
    if not parser.has_section(name):
        if required:
            known = ", ".join(parser.sections()) or "none"
            raise ConfigError(f"no profile {name!r} in {path} (profiles: {known})")
        return {}
    section = parser[name]
    unknown = sorted(set(section) - set(PROFILE_KEYS))
    if unknown:
        print(
            f"warning: {path} [{name}]: ignoring unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(PROFILE_KEYS)})",
            file=sys.stderr,
        )
    return _clean({key: section.get(key) for key in PROFILE_KEYS})


def _warn_if_readable(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(
            f"warning: {path} holds API secrets and other users may read it; run: chmod 600 {path}",
            file=sys.stderr,
        )


def resolve(
    flags: Mapping[str, str | None],
    env: Mapping[str, str] | None = None,
    *,
    profile: str | None = None,
) -> Settings:
    """The settings from ``flags`` (``api_key``, ``api_secret``, ``base_url``; ``None`` when not
    given), the environment and the profile (``profile``, else ``BALLAST_PROFILE``, else
    ``default``)."""
    env = os.environ if env is None else env
    chosen = profile or env.get(PROFILE_VAR) or None
    name = chosen or DEFAULT_PROFILE
    from_profile = read_profile(credentials_path(env), name, required=chosen is not None)
    layers = [
        _clean(flags),
        _clean({key: env.get(var) for key, var in ENV_VARS.items()}),
        from_profile,
    ]

    def first(key: str) -> str | None:
        return next((layer[key] for layer in layers if key in layer), None)

    api_key, api_secret = first("api_key"), first("api_secret")
    if (api_key is None) != (api_secret is None):
        have, lack = ("key", "secret") if api_key is not None else ("secret", "key")
        raise ConfigError(
            f"an API {have} without its {lack}: set both (--api-key/--api-secret, "
            "BALLAST_API_KEY/BALLAST_API_SECRET, or api_key/api_secret in a profile)"
        )
    # The server is one setting: a base URL from one place never pairs with another's stream.
    where = next((layer for layer in layers if "base_url" in layer or "environment" in layer), {})
    stream_url = where.get("stream_url") or (None if where else first("stream_url"))
    return Settings(
        api_key=api_key,
        api_secret=api_secret,
        base_url=where.get("base_url"),
        environment=where.get("environment"),
        stream_url=stream_url,
        profile=name if from_profile else None,
    )
