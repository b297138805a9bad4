"""Configuration, read only from environment variables.

Variables: FORUM_ENV, SECRET_KEY, DATABASE_URL, SESSION_COOKIE_SECURE,
FORUM_RELEASE (plus optional RATELIMIT_STORAGE_URI, RATELIMIT_ENABLED,
FORUM_AUTH_RATE_LIMIT, FORUM_PAGE_CACHE_SECONDS).
"""
from __future__ import annotations

import os
from typing import Any, Mapping

REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL")
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(RuntimeError):
    """Raised when the environment does not describe a usable configuration."""


def _parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{name} must be 'true' or 'false', got {value!r}")


def _parse_seconds(value: str | None, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ConfigError(f"FORUM_PAGE_CACHE_SECONDS must be a number of seconds (0-3600), got {value!r}")
    return seconds


def normalise_database_url(url: str) -> str:
    """Make plain postgres URLs use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config dict from the environment.

    Returns a dict; ``DATABASE_URL`` may be None in development (the caller then
    falls back to SQLite in the instance folder).
    """
    env = os.environ if env is None else env
    explicit_env = bool((env.get("FORUM_ENV") or "").strip())
    forum_env = (env.get("FORUM_ENV") or "development").strip().lower()
    if forum_env not in ("production", "development"):
        raise ConfigError(
            f"FORUM_ENV must be 'production' or 'development', got {forum_env!r}"
        )
    production = forum_env == "production"

    secret_key = env.get("SECRET_KEY") or None
    database_url = env.get("DATABASE_URL") or None
    if production:
        missing = [
            name
            for name, value in (("SECRET_KEY", secret_key), ("DATABASE_URL", database_url))
            if not value
        ]
        if missing:
            raise ConfigError(
                "FORUM_ENV=production but required environment variable(s) are not set: "
                + ", ".join(missing)
            )

    secure = _parse_bool("SESSION_COOKIE_SECURE", env.get("SESSION_COOKIE_SECURE"), production)

    return {
        "FORUM_ENV": forum_env,
        "FORUM_RELEASE": env.get("FORUM_RELEASE") or "dev",
        # The public development key only with an explicit FORUM_ENV=development;
        # otherwise None, and create_app refuses to start (unless TESTING).
        "SECRET_KEY": secret_key or (DEV_SECRET_KEY if explicit_env and not production else None),
        "DATABASE_URL": normalise_database_url(database_url) if database_url else None,
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "WTF_CSRF_ENABLED": True,
        "RATELIMIT_ENABLED": _parse_bool("RATELIMIT_ENABLED", env.get("RATELIMIT_ENABLED"), True),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "FORUM_AUTH_RATE_LIMIT": env.get("FORUM_AUTH_RATE_LIMIT") or "10 per minute",
        # Anonymous page cache lifetime (see forum.pagecache); 0 disables it.
        "PAGE_CACHE_SECONDS": _parse_seconds(env.get("FORUM_PAGE_CACHE_SECONDS"), 10.0),
        "TOPICS_PER_PAGE": 20,
        "POSTS_PER_PAGE": 20,
        "SEARCH_PER_PAGE": 20,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
    }
