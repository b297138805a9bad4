"""Account recovery and e-mail: a password reset link by e-mail (signed,
expiring, single use), and the optional verification of a new account's
address (FORUM_REQUIRE_EMAIL_VERIFICATION).

The link carries the account id and a fingerprint of its current password
hash and session generation, signed with the app's secret key
(itsdangerous) and stamped with the time: it stops working after
FORUM_PASSWORD_RESET_SECONDS, once the password is changed (by this link or
any other way), and when the member logs out everywhere.
"""
from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select

from . import services
from .extensions import db, limiter, normalise_username
from .forms import ActionForm, ForgotPasswordForm, ResetPasswordForm
from .identity import find_user
from .mail import mail_enabled, send_mail
from .models import User, utcnow

bp = Blueprint("recovery", __name__)

RESET_ACCOUNT_SCOPE = "reset-account"


def reset_limit() -> str:
    return current_app.config["FORUM_RESET_RATE_LIMIT"]


def reset_account_limit() -> str:
    return current_app.config["FORUM_RESET_ACCOUNT_RATE_LIMIT"]


def reset_account_key() -> str:
    return "reset:" + (normalise_username(request.form.get("account")) or "-")


RESET_SALT = "forum.password-reset"
VERIFY_SALT = "forum.verify-email"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    """Signed, time-stamped tokens of one kind (the salt keeps the kinds apart)."""
    return URLSafeTimedSerializer(current_app.secret_key, salt=salt)


def public_link(endpoint: str, base_url: str | None = None, **values) -> str:
    """An absolute link for a mail, on FORUM_PUBLIC_URL (never the request's Host
    header); without one (development), on the address the request used."""
    base = base_url or current_app.config.get("FORUM_PUBLIC_URL")
    if not base:
        return url_for(endpoint, _external=True, **values)
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


def _fingerprint(user: User) -> str:
    seed = f"{user.id}:{user.password_hash}:{user.session_generation}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def reset_token(user: User) -> str:
    return _serializer(RESET_SALT).dumps({"u": user.id, "f": _fingerprint(user)})


def user_for_token(token: str) -> User | None:
    """The account a valid, unexpired, unused link is for; None otherwise."""
    try:
        data = _serializer(RESET_SALT).loads(token, max_age=current_app.config["FORUM_PASSWORD_RESET_SECONDS"])
        user = db.session.get(User, int(data["u"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if user is None or data.get("f") != _fingerprint(user):
        return None
    return user


def reset_url(user: User, base_url: str | None = None) -> str:
    """The absolute reset link for ``user`` (see public_link)."""
    return public_link("recovery.reset_password", base_url, token=reset_token(user))


def _account(value: str) -> User | None:
    value = (value or "").strip()
    if "@" in value:
        return db.session.scalar(select(User).where(func.lower(User.email) == value.lower()))
    return find_user(value)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(reset_limit, methods=["POST"])
@limiter.limit(reset_account_limit, methods=["POST"], key_func=reset_account_key,
               scope=RESET_ACCOUNT_SCOPE)
def forgot_password():
    if current_user.is_authenticated:
        return redirect(url_for("auth.change_password"))
    mail_on = mail_enabled()
    form = ForgotPasswordForm()
    if mail_on and form.validate_on_submit():
        user = _account(form.account.data)
        if user is not None and not user.is_banned and user.email:
            minutes = current_app.config["FORUM_PASSWORD_RESET_SECONDS"] // 60
            link = reset_url(user)
            body = render_template("mail/reset_password.txt", user=user, link=link, minutes=minutes)
            send_mail(_("Reset your password on %(site)s", site=urlsplit(link).netloc), user.email, body)
        # The same answer whether or not the account exists.
        flash(_("If that account exists, a link to reset its password is on its way to the "
                "account's e-mail address. It works once, for a limited time."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form, mail_on=mail_on)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(reset_limit, methods=["POST"])
def reset_password(token: str):
    user = user_for_token(token)
    if user is None:
        return render_template("auth/reset_invalid.html"), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        user.set_password(form.password.data)
        services.revoke_sessions(user)  # every session and remember-me cookie ends
        db.session.commit()
        if current_user.is_authenticated:
            logout_user()
        flash(_("Your password has been changed: log in with the new one."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, user=user)


# --- e-mail verification ---------------------------------------------------------

VERIFY_SECONDS = 3 * 86400  # a verification link works for three days


def email_unverified(user=None) -> bool:
    """True when the forum asks for verified addresses and ``user``'s is not."""
    user = current_user if user is None else user
    return bool(current_app.config.get("FORUM_REQUIRE_EMAIL_VERIFICATION") and user.is_authenticated
                and user.email_verified_at is None)


def send_verification(user: User) -> None:
    """Mail ``user`` the link that verifies their address (tied to that address)."""
    token = _serializer(VERIFY_SALT).dumps({"u": user.id, "e": user.email})
    link = public_link("recovery.verify_email", token=token)
    body = render_template("mail/verify_email.txt", user=user, link=link, days=VERIFY_SECONDS // 86400)
    send_mail(_("Confirm your e-mail address on %(site)s", site=urlsplit(link).netloc), user.email, body)


@bp.get("/account/verify/<token>")
def verify_email(token: str):
    try:
        data = _serializer(VERIFY_SALT).loads(token, max_age=VERIFY_SECONDS)
        user = db.session.get(User, int(data["u"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        user = None
    if user is None or user.email != data.get("e"):
        return render_template("auth/verify_invalid.html"), 400
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        db.session.commit()
    flash(_("Your e-mail address is confirmed: you can post now."), "success")
    return redirect(url_for("boards.index"))


@bp.post("/account/verify")
@login_required
@limiter.limit(reset_limit)
def resend_verification():
    if ActionForm().validate_on_submit() and email_unverified():
        send_verification(db.session.get(User, current_user.id))
        flash(_("A new confirmation link is on its way to %(email)s.", email=current_user.email), "info")
    return redirect(request.referrer if request.referrer and request.referrer.startswith(request.host_url)
                    else url_for("boards.index"))
