"""Profiles and user moderation."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import false, select
from sqlalchemy.orm import selectinload

from . import services
from .extensions import db
from .forms import ActionForm, ConfirmForm
from .hygiene import nfkc
from .i18n import role_name
from .identity import find_user
from .models import ROLES, Post, Topic, User
from .utils import get_page, moderator_required

bp = Blueprint("users", __name__)


def _get_user(username: str) -> User:
    user = find_user(nfkc(username))
    if user is None:
        abort(404)
    return user


@bp.get("/u/<username>")
def profile(username: str):
    user = _get_user(username)
    stmt = (
        select(Post)
        .join(Post.topic)
        .where(Post.user_id == user.id, Post.is_deleted == false(), Topic.is_deleted == false())
        .options(selectinload(Post.topic).joinedload(Topic.board))
        .order_by(Post.id.desc())
    )
    posts = db.paginate(
        stmt, page=get_page(), per_page=current_app.config["POSTS_PER_PAGE"], error_out=False,
        count=False,
    )
    posts.total = max(user.post_count, 0)
    return render_template(
        "users/profile.html", user=user, posts=posts, action_form=ActionForm(), roles=ROLES
    )


def _user_to_moderate(username: str) -> User:
    user = _get_user(username)
    if user.id == current_user.id or user.is_admin or (user.is_moderator and not current_user.is_admin):
        abort(403, description=_("You cannot ban this user."))
    return user


@bp.route("/u/<username>/ban", methods=["GET", "POST"])
@login_required
@moderator_required
def ban(username: str):
    """GET asks for confirmation; POST bans (again: no change) and ends the user's sessions."""
    user = _user_to_moderate(username)
    form = ConfirmForm()
    if not form.validate_on_submit():
        # GET, or a POST whose reason is too long: (again) the page, with the error.
        status = 400 if request.method == "POST" else 200
        return render_template(
            "confirm.html", heading=_("Ban %(name)s", name=user.username), form=form, confirm_label=_("Ban"),
            message=_("Ban %(name)s? They will be logged out everywhere and can no longer post.",
                      name=user.username),
            cancel_url=url_for("users.profile", username=user.username)), status
    if user.is_banned:
        flash(_("%(name)s is already banned.", name=user.username), "info")
    else:
        user.is_banned = True
        services.revoke_sessions(user)
        services.log_action(current_user, "ban", user, form.reason.data)
        db.session.commit()
        flash(_("%(name)s banned.", name=user.username), "info")
    return redirect(url_for("users.profile", username=user.username))


@bp.post("/u/<username>/unban")
@login_required
@moderator_required
def unban(username: str):
    user = _user_to_moderate(username)
    if not ActionForm().validate_on_submit():
        abort(400)
    if not user.is_banned:
        flash(_("%(name)s is not banned.", name=user.username), "info")
    else:
        user.is_banned = False
        services.log_action(current_user, "unban", user)
        db.session.commit()
        flash(_("%(name)s unbanned.", name=user.username), "info")
    return redirect(url_for("users.profile", username=user.username))


@bp.post("/u/<username>/role")
@login_required
def set_role(username: str):
    if not current_user.is_admin:
        abort(403)
    user = _get_user(username)
    role = request.form.get("role", "")
    if role not in ROLES:
        abort(400)
    if user.id == current_user.id:
        abort(403, description=_("You cannot change your own role."))
    if user.role != role:
        user.role = role
        services.log_action(current_user, "role", user, f"now {role}")
        db.session.commit()
    flash(_("%(name)s is now %(role)s.", name=user.username, role=role_name(role)), "info")
    return redirect(url_for("users.profile", username=user.username))
