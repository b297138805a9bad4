"""Administration: boards (create, edit, delete when empty) and the user list with roles."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from .extensions import db
from .forms import ActionForm, BoardForm
from .models import ROLES, Board, ModerationLog, Post, Topic, User
from .utils import get_page, slugify, unique_slug

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view: Callable) -> Callable:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _slug_taken(slug: str, board_id: int | None) -> bool:
    stmt = select(Board.id).where(Board.slug == slug)
    if board_id is not None:
        stmt = stmt.where(Board.id != board_id)
    return db.session.scalar(stmt) is not None


def _board_slug(form: BoardForm, board_id: int | None) -> str | None:
    """The slug typed (None when another board has it), or one derived from the
    name, made unique with -2, -3... An edit keeps the slug in the field, so renaming
    a board never changes its address."""
    if form.slug.data:
        return None if _slug_taken(form.slug.data, board_id) else form.slug.data
    return unique_slug(slugify(form.name.data), lambda slug: _slug_taken(slug, board_id))


@bp.get("/")
@admin_required
def index():
    return redirect(url_for("admin.boards"))


@bp.route("/boards", methods=["GET", "POST"])
@admin_required
def boards():
    form = BoardForm()
    if form.validate_on_submit():
        slug = _board_slug(form, None)
        if slug is None:
            form.slug.errors.append(_("The slug %(slug)s is already used.", slug=repr(form.slug.data)))
        else:
            position = form.position.data
            if position is None:
                position = (db.session.scalar(select(func.max(Board.position))) or 0) + 1
            board = Board(name=form.name.data, slug=slug,
                          description=(form.description.data or "").strip(), position=position)
            db.session.add(board)
            db.session.commit()
            flash(_("Board %(name)s created.", name=repr(board.name)), "success")
            return redirect(url_for("admin.boards"))
    all_boards = db.session.scalars(select(Board).order_by(Board.position, Board.name)).all()
    return render_template("admin/boards.html", boards=all_boards, form=form, action_form=ActionForm())


@bp.route("/boards/<int:board_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_board(board_id: int):
    board = db.session.get(Board, board_id) or abort(404)
    form = BoardForm(obj=board)
    if form.validate_on_submit():
        slug = _board_slug(form, board.id)
        if slug is None:
            form.slug.errors.append(_("The slug %(slug)s is already used.", slug=repr(form.slug.data)))
        else:
            board.name = form.name.data
            board.slug = slug
            board.description = (form.description.data or "").strip()
            if form.position.data is not None:
                board.position = form.position.data
            db.session.commit()
            flash(_("Board %(name)s saved.", name=repr(board.name)), "success")
            return redirect(url_for("admin.boards"))
    return render_template("admin/edit_board.html", board=board, form=form)


@bp.post("/boards/<int:board_id>/delete")
@admin_required
def delete_board(board_id: int):
    board = db.session.get(Board, board_id) or abort(404)
    # Deleted topics count here: they can still be restored (see the moderation log).
    if db.session.scalar(select(func.count(Topic.id)).where(Topic.board_id == board.id)):
        flash(_("Only empty boards can be deleted: move its topics (deleted ones too) first."), "error")
    else:
        db.session.delete(board)
        db.session.commit()
        flash(_("Board %(name)s deleted.", name=repr(board.name)), "info")
    return redirect(url_for("admin.boards"))


@bp.get("/users")
@admin_required
def users():
    stmt = select(User).order_by(User.role != "admin", User.role != "moderator", User.username)
    page = db.paginate(stmt, page=get_page(), per_page=50, error_out=False)
    return render_template("admin/users.html", users=page, roles=ROLES)


@bp.get("/log")
@admin_required
def moderation_log():
    """Who did what, newest first; deletes that still stand can be undone from here."""
    stmt = select(ModerationLog).options(joinedload(ModerationLog.actor)).order_by(ModerationLog.id.desc())
    page = db.paginate(stmt, page=get_page(), per_page=50, error_out=False)
    ids = {kind: {e.target_id for e in page.items if e.target_type == kind} for kind in ("topic", "post")}
    deleted = {
        "topic": set(db.session.scalars(
            select(Topic.id).where(Topic.id.in_(ids["topic"]), Topic.is_deleted))) if ids["topic"] else set(),
        "post": set(db.session.scalars(
            select(Post.id).where(Post.id.in_(ids["post"]), Post.is_deleted))) if ids["post"] else set(),
    }
    return render_template("admin/log.html", entries=page, deleted=deleted)
