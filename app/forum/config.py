"""Configuration, read only from environment variables.

Variables: FORUM_ENV, SECRET_KEY, DATABASE_URL, SESSION_COOKIE_SECURE,
FORUM_RELEASE (plus optional FORUM_PAGE_CACHE_SECONDS, FORUM_DEFAULT_TIMEZONE and the
rate limits below).

``FORUM_DEFAULT_TIMEZONE``: the time zone (an IANA name such as ``Asia/Shanghai``) of
the dates shown to visitors and to members who chose none (default ``UTC``).

Rate limits (Flask-Limiter, moving window; each limit is a Flask-Limiter string
such as ``10 per minute`` or ``5/hour;20/day``; a bad value stops the start with
an error naming the variable):

- ``RATELIMIT_STORAGE_URI``: where the counters live, shared by every gunicorn
  worker and web host, e.g. ``redis://:PASSWORD@10.0.0.5:6379/0``. Unset:
  ``memory://``, i.e. each worker counts on its own (N workers let N x the limit
  through; a warning says so at start).
- ``RATELIMIT_ENABLED``: ``true`` (default) / ``false``.
- ``FORUM_LOGIN_RATE_LIMIT``: POST /login (and /account/password) per client
  address (default ``10 per minute``).
- ``FORUM_LOGIN_ACCOUNT_RATE_LIMIT``: failed logins per account, by the username
  tried (NFKC, case-folded), from any address (default ``10 per hour``); a
  successful login clears the account's count.
- ``FORUM_REGISTER_RATE_LIMIT``: POST /register per client address
  (default ``5 per hour``).
- ``FORUM_POST_RATE_LIMIT``: new topics and replies together, per account
  (default ``10 per minute``; moderators and admins are exempt).
- ``FORUM_NEW_ACCOUNT_POST_RATE_LIMIT``: the same for accounts younger than
  ``FORUM_NEW_ACCOUNT_SECONDS`` (defaults ``3 per 10 minutes`` and ``86400``).
- ``FORUM_PREVIEW_RATE_LIMIT``: previews of a draft (the Preview button: rendered,
  never stored; they do not count against the posting limits) per account
  (default ``30 per minute``).
- ``FORUM_RESET_RATE_LIMIT``: password reset requests per client address
  (default ``5 per hour``); ``FORUM_RESET_ACCOUNT_RATE_LIMIT``: per account asked
  for, from any address, so nobody can flood a member's mailbox (``3 per hour``).

E-mail (password reset links; Flask-Mail). Unset ``FORUM_MAIL_SERVER``: the forum
sends no mail and the reset page tells members to ask an administrator, who
makes a link with ``flask forum reset-link``.

- ``FORUM_MAIL_SERVER``, ``FORUM_MAIL_PORT`` (default 587, 465 with ``ssl``, 25
  with ``none``), ``FORUM_MAIL_SECURITY`` (``starttls`` default, ``ssl`` or
  ``none``), ``FORUM_MAIL_USERNAME`` / ``FORUM_MAIL_PASSWORD`` (optional),
  ``FORUM_MAIL_FROM`` (required with a server).
- ``FORUM_PUBLIC_URL``: the forum's address as members reach it, e.g.
  ``https://forum.example.org``; links in mails use it, never the request's
  Host header. Required with a mail server.
- ``FORUM_PASSWORD_RESET_SECONDS``: how long a reset link works (60-86400,
  default 3600). A link works once: it is tied to the password it replaces.
- ``FORUM_REQUIRE_EMAIL_VERIFICATION``: ``true`` to let new accounts post only
  once they opened the link mailed to them (default ``false``; needs a mail
  server). Accounts that existed before are verified.
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


def _parse_limit(name: str, value: str | None, default: str) -> str:
    from limits import parse_many

    if value is None or value.strip() == "":
        return default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate limit such as '10 per minute' or '5/hour;20/day', got {value!r}"
        ) from None
    return value.strip()


def _parse_age(name: str, value: str | None, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        seconds = int(value)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise ConfigError(f"{name} must be a whole number of seconds (0 or more), got {value!r}")
    return seconds


MAIL_SECURITY = {"starttls": 587, "ssl": 465, "none": 25}


def _parse_int(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return number


def _parse_mail(env: Mapping[str, str]) -> dict[str, Any]:
    """Flask-Mail's settings and the public URL from FORUM_MAIL_* (see above)."""
    server = (env.get("FORUM_MAIL_SERVER") or "").strip()
    security = (env.get("FORUM_MAIL_SECURITY") or "starttls").strip().lower()
    if security not in MAIL_SECURITY:
        raise ConfigError(
            f"FORUM_MAIL_SECURITY must be one of {', '.join(MAIL_SECURITY)}, got {security!r}")
    port = _parse_int("FORUM_MAIL_PORT", env.get("FORUM_MAIL_PORT"), MAIL_SECURITY[security], 1, 65535)
    sender = (env.get("FORUM_MAIL_FROM") or "").strip()
    public_url = (env.get("FORUM_PUBLIC_URL") or "").strip().rstrip("/")
    if public_url and not public_url.startswith(("https://", "http://")):
        raise ConfigError(
            f"FORUM_PUBLIC_URL must start with https:// (or http://), got {public_url!r}")
    if server and not sender:
        raise ConfigError("FORUM_MAIL_SERVER is set but FORUM_MAIL_FROM is not: "
                          "set the sender address, e.g. forum@example.org")
    if server and not public_url:
        raise ConfigError("FORUM_MAIL_SERVER is set but FORUM_PUBLIC_URL is not: links in mails "
                          "need the forum's address, e.g. https://forum.example.org")
    verify = _parse_bool("FORUM_REQUIRE_EMAIL_VERIFICATION", env.get("FORUM_REQUIRE_EMAIL_VERIFICATION"), False)
    if verify and not server:
        raise ConfigError("FORUM_REQUIRE_EMAIL_VERIFICATION=true needs FORUM_MAIL_SERVER: "
                          "without mail nobody could verify an address")
    return {
        "MAIL_SERVER": server or None,
        "MAIL_PORT": port,
        "MAIL_USE_TLS": security == "starttls",
        "MAIL_USE_SSL": security == "ssl",
        "MAIL_USERNAME": (env.get("FORUM_MAIL_USERNAME") or "").strip() or None,
        "MAIL_PASSWORD": env.get("FORUM_MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": sender or None,
        # Flask-Mail suppresses sending under TESTING by default; the tests
        # send to a local SMTP sink instead.
        "MAIL_SUPPRESS_SEND": False,
        "FORUM_PUBLIC_URL": public_url or None,
        "FORUM_REQUIRE_EMAIL_VERIFICATION": verify,
        "FORUM_PASSWORD_RESET_SECONDS": _parse_int(
            "FORUM_PASSWORD_RESET_SECONDS", env.get("FORUM_PASSWORD_RESET_SECONDS"), 3600, 60, 86400),
    }
def _parse_timezone(value: str | None) -> str:
    import pytz

    if value is None or value.strip() == "":
        return "UTC"
    if value.strip() not in pytz.all_timezones_set:
        raise ConfigError(
            f"FORUM_DEFAULT_TIMEZONE must be an IANA time zone name such as 'UTC' or "
            f"'Asia/Shanghai', got {value!r}")
    return value.strip()


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
        # Moving window: a limit of N lets exactly N through in any window, never 2N
        # across a window boundary. Retry-After is set by the 429 handler (forum.errors),
        # so no X-RateLimit-* headers (and no counter read) on every response.
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_KEY_PREFIX": "forum",
        # Redis unreachable: count in this worker's memory until it answers again
        # (logged), rather than failing every limited request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "FORUM_LOGIN_RATE_LIMIT": _parse_limit(
            "FORUM_LOGIN_RATE_LIMIT", env.get("FORUM_LOGIN_RATE_LIMIT"), "10 per minute"),
        "FORUM_LOGIN_ACCOUNT_RATE_LIMIT": _parse_limit(
            "FORUM_LOGIN_ACCOUNT_RATE_LIMIT", env.get("FORUM_LOGIN_ACCOUNT_RATE_LIMIT"), "10 per hour"),
        "FORUM_REGISTER_RATE_LIMIT": _parse_limit(
            "FORUM_REGISTER_RATE_LIMIT", env.get("FORUM_REGISTER_RATE_LIMIT"), "5 per hour"),
        "FORUM_POST_RATE_LIMIT": _parse_limit(
            "FORUM_POST_RATE_LIMIT", env.get("FORUM_POST_RATE_LIMIT"), "10 per minute"),
        "FORUM_NEW_ACCOUNT_POST_RATE_LIMIT": _parse_limit(
            "FORUM_NEW_ACCOUNT_POST_RATE_LIMIT", env.get("FORUM_NEW_ACCOUNT_POST_RATE_LIMIT"),
            "3 per 10 minutes"),
        "FORUM_NEW_ACCOUNT_SECONDS": _parse_age(
            "FORUM_NEW_ACCOUNT_SECONDS", env.get("FORUM_NEW_ACCOUNT_SECONDS"), 86400),
        "FORUM_PREVIEW_RATE_LIMIT": _parse_limit(
            "FORUM_PREVIEW_RATE_LIMIT", env.get("FORUM_PREVIEW_RATE_LIMIT"), "30 per minute"),
        "FORUM_RESET_RATE_LIMIT": _parse_limit(
            "FORUM_RESET_RATE_LIMIT", env.get("FORUM_RESET_RATE_LIMIT"), "5 per hour"),
        "FORUM_RESET_ACCOUNT_RATE_LIMIT": _parse_limit(
            "FORUM_RESET_ACCOUNT_RATE_LIMIT", env.get("FORUM_RESET_ACCOUNT_RATE_LIMIT"), "3 per hour"),
        **_parse_mail(env),
        # Anonymous page cache lifetime (see forum.pagecache); 0 disables it.
        "PAGE_CACHE_SECONDS": _parse_seconds(env.get("FORUM_PAGE_CACHE_SECONDS"), 10.0),
        # Dates of visitors and of members without a zone of their own (forum.i18n).
        "BABEL_DEFAULT_TIMEZONE": _parse_timezone(env.get("FORUM_DEFAULT_TIMEZONE")),
        "BABEL_DEFAULT_LOCALE": "en",
        "TOPICS_PER_PAGE": 20,
        "POSTS_PER_PAGE": 20,
        "SEARCH_PER_PAGE": 20,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
    }
