"""A member's notifications: mentions of them and replies in their topics.

The header shows ``User.unread_notifications`` (part of the cached account
row, so a page view still runs no query for it); this page recomputes it
from the rows, which also drops notifications whose post was deleted since.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import false, func, select, update
from sqlalchemy.orm import joinedload

from .extensions import db
from .forms import ActionForm
from .models import Notification, Post, Topic, User, utcnow
from .utils import get_page

bp = Blueprint("notifications", __name__)

PER_PAGE = 20


def _visible(stmt, user_id: int):
    """Only the member's own notifications, of posts and topics that still stand."""
    return (stmt.join(Post, Notification.post_id == Post.id).join(Topic, Post.topic_id == Topic.id)
            .where(Notification.user_id == user_id, Post.is_deleted == false(), Topic.is_deleted == false()))


def _recount(user_id: int) -> int:
    unread = db.session.scalar(_visible(select(func.count(Notification.id)), user_id)
                               .where(Notification.read_at.is_(None))) or 0
    db.session.execute(update(User).where(User.id == user_id, User.unread_notifications != unread)
                       .values(unread_notifications=unread).execution_options(synchronize_session=False))
    return unread


@bp.get("/notifications")
@login_required
def index():
    stmt = _visible(select(Notification), current_user.id).options(
        joinedload(Notification.actor), joinedload(Notification.post).joinedload(Post.topic),
    ).order_by(Notification.id.desc())
    page = db.paginate(stmt, page=get_page(), per_page=PER_PAGE, error_out=False)
    unread = _recount(current_user.id)
    if unread != current_user.unread_notifications:
        db.session.commit()
    else:
        db.session.rollback()
    return render_template("notifications/index.html", notifications=page, unread=unread,
                           form=ActionForm())


@bp.get("/notifications/<int:notification_id>")
@login_required
def open_one(notification_id: int):
    """Mark one as read and go to its post (the link of each row)."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.user_id != current_user.id:
        abort(404)
    if notification.read_at is None:
        notification.read_at = utcnow()
        _recount(current_user.id)
        db.session.commit()
    return redirect(url_for("topics.post", post_id=notification.post_id))


@bp.post("/notifications/read")
@login_required
def read_all():
    if ActionForm().validate_on_submit():
        db.session.execute(update(Notification).where(Notification.user_id == current_user.id,
                                                      Notification.read_at.is_(None))
                           .values(read_at=utcnow()).execution_options(synchronize_session=False))
        _recount(current_user.id)
        db.session.commit()
        flash(_("All notifications are marked as read."), "success")
    return redirect(url_for("notifications.index"))
