"""Flask extension singletons, initialised in :func:`forum.create_app`."""
import unicodedata
from datetime import timedelta

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names so Alembic migrations work on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
class WriteLimiter(Limiter):
    """Flask-Limiter for a forum whose limits all count writes (each is declared with
    ``methods=["POST"]``): a read does not enter the limiter at all. Without this, every
    page view resolved its (empty) set of limits, a tenth of a member's cached page.
    A limit on reads would need this class changed."""

    READS = frozenset({"GET", "HEAD", "OPTIONS"})

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        if request.method in self.READS:
            return
        super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)


limiter = WriteLimiter(key_func=get_remote_address)

# --- Rate limits (configured in forum.config; the 429 page is in forum.errors) ---

LOGIN_ACCOUNT_SCOPE = "login-account"


def warn_if_limits_per_worker(app) -> None:
    """One warning at start when the counters are kept in this process only."""
    if app.config.get("RATELIMIT_ENABLED", True) and str(
        app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    ).startswith("memory://"):
        app.logger.warning(
            "RATELIMIT_STORAGE_URI is not set: rate limits are counted in memory, per worker "
            "process, so N gunicorn workers (and each web host) let up to N times each limit "
            "through; set it to a shared store such as redis://"
        )


def login_limit() -> str:
    """POST /login (and /account/password) per client address."""
    return current_app.config["FORUM_LOGIN_RATE_LIMIT"]


def login_account_limit() -> str:
    """Failed logins per account, from any address."""
    return current_app.config["FORUM_LOGIN_ACCOUNT_RATE_LIMIT"]


def register_limit() -> str:
    """POST /register per client address."""
    return current_app.config["FORUM_REGISTER_RATE_LIMIT"]


def normalise_username(value: str | None) -> str:
    """The account a login names, as the limit counts it: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", value or "").strip().casefold()[:100]


def login_account_key() -> str:
    # "-" for an empty username: Flask-Limiter skips (and logs) an empty key.
    return "account:" + (normalise_username(request.form.get("username")) or "-")


def clear_login_failures() -> None:
    """After a successful login: the account's failed attempts no longer count.

    Every POST /login takes one from the account's limit before the password is
    checked (atomic in the store, so concurrent guesses cannot overshoot); this
    gives it back to the account that proved its password."""
    for request_limit in limiter.current_limits:
        if LOGIN_ACCOUNT_SCOPE in request_limit.request_args[-1]:
            try:
                request_limit.limiter.clear(request_limit.limit, *request_limit.request_args)
            except Exception:  # the store is down: the count expires on its own
                current_app.logger.warning("rate limit store unreachable: login count not cleared")


def posting_key() -> str:
    from flask_login import current_user

    return f"user:{current_user.get_id()}"


def posting_limit() -> str:
    """New topics and replies per account; stricter for accounts younger than
    FORUM_NEW_ACCOUNT_SECONDS."""
    from flask_login import current_user

    from .models import utcnow

    config = current_app.config
    created = getattr(current_user, "created_at", None)
    age = timedelta(seconds=config["FORUM_NEW_ACCOUNT_SECONDS"])
    if created is None or utcnow() - created < age:
        return config["FORUM_NEW_ACCOUNT_POST_RATE_LIMIT"]
    return config["FORUM_POST_RATE_LIMIT"]


def preview_limit() -> str:
    """Previews of a draft (rendered, never stored) per account."""
    return current_app.config["FORUM_PREVIEW_RATE_LIMIT"]


def posting_exempt() -> bool:
    from flask_login import current_user

    return bool(current_user.is_authenticated and current_user.is_moderator)
