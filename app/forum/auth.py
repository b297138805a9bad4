"""Registration, login and logout."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import refresh as refresh_locale
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from . import services
from .extensions import (
    LOGIN_ACCOUNT_SCOPE,
    clear_login_failures,
    db,
    limiter,
    login_account_key,
    login_account_limit,
    login_limit,
    register_limit,
)
from .identity import find_user, username_taken
from .forms import ActionForm, ChangePasswordForm, LoginForm, RegisterForm, SettingsForm
from .models import User
from .utils import is_safe_next, safe_next

bp = Blueprint("auth", __name__)


# A valid hash to compare against when the user does not exist, so that response
# time does not reveal whether a username is registered.
_DUMMY_HASH: str | None = None


def _dummy_check(password: str) -> None:
    global _DUMMY_HASH
    from werkzeug.security import check_password_hash, generate_password_hash

    if _DUMMY_HASH is None:
        _DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")
    check_password_hash(_DUMMY_HASH, password)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(register_limit, methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("boards.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        username = form.username.data.strip()
        email = form.email.data.strip().lower()
        problem = username_taken(username) or (
            _("That username or email is already registered.")
            if db.session.scalar(select(User.id).where(func.lower(User.email) == email)) else None)
        if problem:
            form.username.errors.append(problem)
        else:
            user = User(username=username, email=email)
            user.set_password(form.password.data)
            db.session.add(user)
            try:
                db.session.commit()
            except IntegrityError:  # lost a race with a concurrent registration
                db.session.rollback()
                form.username.errors.append(_("That username or email is already registered."))
            else:
                login_user(user)
                refresh_locale()
                flash(_("Welcome! Your account has been created."), "success")
                if current_app.config.get("FORUM_REQUIRE_EMAIL_VERIFICATION"):
                    from .recovery import send_verification

                    send_verification(user)
                    flash(_("Before you post, open the link we mailed to %(email)s.", email=email), "info")
                return redirect(url_for("boards.index"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
@limiter.limit(login_account_limit, methods=["POST"], key_func=login_account_key,
               scope=LOGIN_ACCOUNT_SCOPE)
def login():
    form = LoginForm()
    if request.method == "GET":
        nxt = request.args.get("next")
        form.next.data = nxt if is_safe_next(nxt) else ""
    if form.validate_on_submit():
        user = find_user(form.username.data)
        if user is None:
            _dummy_check(form.password.data)
        elif user.check_password(form.password.data):
            login_user(user, remember=form.remember.data)
            clear_login_failures()
            refresh_locale()  # the member's own language from now on
            flash(_("Logged in as %(name)s.", name=user.username), "success")
            return redirect(safe_next(form.next.data))
        flash(_("Invalid username or password."), "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    form = ActionForm()
    if form.validate_on_submit():
        # A copy of this session's cookies (or of the remember-me cookie) dies too.
        services.revoke_sessions(current_user)
        db.session.commit()
        logout_user()
        refresh_locale()
        flash(_("You have been logged out."), "info")
    return redirect(url_for("boards.index"))


@bp.post("/account/logout-everywhere")
@login_required
def logout_everywhere():
    form = ActionForm()
    if form.validate_on_submit():
        services.revoke_sessions(current_user)
        db.session.commit()
        logout_user()
        refresh_locale()
        flash(_("You have been logged out on every device."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@limiter.limit(login_limit, methods=["POST"])
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current.data):
            form.current.errors.append(_("That is not your current password."))
        else:
            user = current_user._get_current_object()
            user.set_password(form.password.data)
            services.revoke_sessions(user)  # every other session and remember-me cookie ends
            db.session.commit()
            # ... but this one goes on, under the new generation.
            remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
            login_user(user, remember=remember)
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("users.profile", username=current_user.username))
    return render_template("auth/change_password.html", form=form)


@bp.route("/account/settings", methods=["GET", "POST"])
@login_required
def settings():
    """The member's language and time zone (forum.i18n)."""
    form = SettingsForm()
    if request.method == "GET":
        form.locale.data = current_user.locale or ""
        form.timezone.data = current_user.timezone or ""
    if form.validate_on_submit():
        user = current_user._get_current_object()  # a POST: the database row
        user.locale = form.locale.data or None
        user.timezone = form.timezone.data or None
        db.session.commit()
        refresh_locale()  # the message below already in the new language
        flash(_("Your settings have been saved."), "success")
        return redirect(url_for("auth.settings"))
    return render_template("auth/settings.html", form=form)
