"""HTML error pages (400/401/403/404/405/413/429/500/503)."""
from __future__ import annotations

import math
import time

from flask import Flask, current_app, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from flask_babel import format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .extensions import db, limiter

TITLES = {
    400: _l("Bad request"),
    401: _l("Login required"),
    403: _l("Forbidden"),
    404: _l("Page not found"),
    405: _l("Method not allowed"),
    413: _l("Request too large"),
    429: _l("Too many requests"),
    500: _l("Internal server error"),
    503: _l("Service unavailable"),
}

MESSAGES = {
    400: _l("The request could not be understood. If you submitted a form, reload the page and try again."),
    401: _l("You need to log in to do that."),
    403: _l("You are not allowed to do that."),
    404: _l("There is nothing here."),
    405: _l("That method is not allowed for this address."),
    413: _l("What you sent is larger than the limit of %(limit)s. Nothing was saved. Your text is not "
         "lost: use your browser's Back button to return to the form, where it is still filled in, "
         "shorten it (a post may have up to 50,000 characters) and send it again."),
    429: _l("You are doing that too often. Please wait a moment and try again."),
    500: _l("Something went wrong on our side."),
    503: _l("The forum is temporarily unavailable. Please try again in a minute."),
}


def render_error(code: int, message: str | None = None):
    if request.path.startswith("/healthz") or request.accept_mimetypes.best == "application/json":
        return jsonify({"status": "error", "code": code, "message": str(message or MESSAGES.get(code, ""))}), code
    return (
        render_template(
            "error.html",
            code=code,
            title=TITLES.get(code) or _("Error"),
            message=message or MESSAGES.get(code, ""),
            minimal=code in (500, 503),
        ),
        code,
    )


def retry_after_seconds(exc: HTTPException) -> int:
    """Whole seconds until the breached limit lets this client through again."""
    reset_at = None
    if isinstance(exc, RateLimitExceeded):
        try:
            current = limiter.current_limit
            if current is not None:
                reset_at = current.window[0]  # when the oldest counted hit leaves the window
        except Exception:  # the store went away meanwhile; fall back to the whole window
            reset_at = None
        if reset_at is None:
            return max(1, int(exc.limit.limit.get_expiry()))
    else:
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            return max(1, int(retry_after))
        if retry_after is not None:  # a datetime
            reset_at = retry_after.timestamp()
    if reset_at is None:
        return 60
    return max(1, math.ceil(reset_at - time.time()))


def render_too_many_requests(exc: HTTPException):
    seconds = retry_after_seconds(exc)
    if request.path.startswith("/healthz") or request.accept_mimetypes.best == "application/json":
        response = jsonify({"status": "error", "code": 429, "message": str(MESSAGES[429]),
                            "retry_after": seconds})
    else:
        response = current_app.make_response(render_template(
            "429.html", code=429, title=TITLES[429], retry_after=seconds))
    response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        if code == 429:
            return render_too_many_requests(exc)
        message = None
        # Only show custom descriptions that we set ourselves via abort(code, description=...).
        if exc.description and exc.description != type(exc).description:
            message = exc.description
        if code == 400 and "CSRF" in (exc.description or ""):
            message = _("Your form expired or is missing its security token. Reload the page and try again.")
        if code == 413 and message is None:
            limit = app.config.get("MAX_CONTENT_LENGTH") or 0
            message = MESSAGES[413] % {"limit": _("%(kib)s KiB (%(bytes)s bytes)", kib=limit // 1024,
                                                       bytes=format_number(limit))}
        return render_error(code, message)

    @app.errorhandler(DataError)
    def _data_error(exc: DataError):
        # A value the database refuses (out of range, invalid text): the client's fault.
        app.logger.warning("database refused a value: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        try:
            db.session.rollback()
        except Exception:  # pragma: no cover
            pass
        return render_error(400, _("The request contains a value the forum cannot store or look up."))

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeoutError)
    def _db_unavailable(exc: Exception):
        app.logger.error("database unavailable: %s", exc)
        try:
            db.session.rollback()
        except Exception:  # pragma: no cover - the connection may be gone
            pass
        return render_error(503)
