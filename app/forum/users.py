"""Profiles and user moderation."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from .extensions import db
from .hygiene import nfkc
from .forms import ActionForm
from .models import ROLES, Post, Topic, User
from .utils import get_page, moderator_required

bp = Blueprint("users", __name__)


def _get_user(username: str) -> User:
    username = nfkc(username)
    user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        abort(404)
    return user


@bp.get("/u/<username>")
def profile(username: str):
    user = _get_user(username)
    stmt = (
        select(Post)
        .where(Post.user_id == user.id)
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


@bp.post("/u/<username>/ban")
@login_required
@moderator_required
def toggle_ban(username: str):
    user = _get_user(username)
    if user.id == current_user.id or user.is_admin or (user.is_moderator and not current_user.is_admin):
        abort(403, description="You cannot ban this user.")
    user.is_banned = not user.is_banned
    db.session.commit()
    flash(f"{user.username} {'banned' if user.is_banned else 'unbanned'}.", "info")
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
        abort(403, description="You cannot change your own role.")
    user.role = role
    db.session.commit()
    flash(f"{user.username} is now {role}.", "info")
    return redirect(url_for("users.profile", username=user.username))
