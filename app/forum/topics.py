"""Topics and posts: view, create, reply, edit, delete, moderate."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from . import services
from .extensions import db, limiter, posting_exempt, posting_key, posting_limit
from .forms import EditPostForm, MoveTopicForm, PostForm, TopicForm
from .models import Board, Post, Topic
from .pagecache import cached_page
from .utils import get_page, moderator_required

bp = Blueprint("topics", __name__)


def _require_can_post() -> None:
    if current_user.is_banned:
        abort(403, description="Your account is banned from posting.")


def _get_topic(topic_id: int) -> Topic:
    topic = db.session.scalar(
        select(Topic).where(Topic.id == topic_id).options(joinedload(Topic.board))
    )
    if topic is None:
        abort(404)
    return topic


def _get_post(post_id: int) -> Post:
    post = db.session.scalar(
        select(Post).where(Post.id == post_id).options(joinedload(Post.topic).joinedload(Topic.board))
    )
    if post is None:
        abort(404)
    return post


def _first_post_id(topic_id: int) -> int | None:
    return db.session.scalar(select(func.min(Post.id)).where(Post.topic_id == topic_id))


def _post_url(post: Post) -> str:
    per_page = current_app.config["POSTS_PER_PAGE"]
    position = db.session.scalar(
        select(func.count(Post.id)).where(Post.topic_id == post.topic_id, Post.id <= post.id)
    ) or 1
    page = (position - 1) // per_page + 1
    return url_for("topics.topic", topic_id=post.topic_id, page=page, _anchor=f"p{post.id}")


def _can_edit(post: Post) -> bool:
    return current_user.is_authenticated and (
        current_user.is_moderator or (post.user_id == current_user.id and not current_user.is_banned)
    )


# New topics and replies share one limit per account (forum.extensions.posting_limit).
_posting_limit = limiter.shared_limit(
    posting_limit, scope="posting", key_func=posting_key, methods=["POST"], exempt_when=posting_exempt
)


@bp.route("/b/<slug>/new", methods=["GET", "POST"])
@login_required
@_posting_limit
def new_topic(slug: str):
    board = db.session.scalar(select(Board).where(Board.slug == slug))
    if board is None:
        abort(404)
    _require_can_post()
    form = TopicForm()
    if form.validate_on_submit():
        topic = services.create_topic(board, current_user, form.title.data, form.body.data)
        db.session.commit()
        flash("Topic created.", "success")
        return redirect(url_for("topics.topic", topic_id=topic.id))
    return render_template("topics/new.html", board=board, form=form)


@bp.get("/t/<int:topic_id>")
@cached_page
def topic(topic_id: int):
    topic = _get_topic(topic_id)
    stmt = (
        select(Post)
        .where(Post.topic_id == topic.id)
        .options(joinedload(Post.author))
        .order_by(Post.id)
    )
    posts = db.paginate(
        stmt, page=get_page(), per_page=current_app.config["POSTS_PER_PAGE"], error_out=False,
        count=False,
    )
    posts.total = topic.reply_count + 1  # denormalised: no COUNT(*) per page view
    first_post_id = posts.items[0].id if posts.items and posts.page == 1 else None
    # Forms only for logged-in users: building one stores a CSRF token in the session,
    # which anonymous readers (and the page cache) do not need.
    form = move_form = None
    if current_user.is_authenticated:
        form = PostForm()
        if current_user.is_moderator:
            move_form = _move_form(topic)
    return render_template(
        "topics/topic.html",
        topic=topic,
        posts=posts,
        form=form,
        first_post_id=first_post_id,
        can_edit=_can_edit,
        move_form=move_form,
    )


def _move_form(topic: Topic) -> MoveTopicForm:
    form = MoveTopicForm()
    form.board_id.choices = [
        (b_id, name) for b_id, name in db.session.execute(
            select(Board.id, Board.name).order_by(Board.position, Board.name)
        )
    ]
    if form.board_id.data is None:
        form.board_id.data = topic.board_id
    return form


@bp.post("/t/<int:topic_id>/reply")
@login_required
@_posting_limit
def reply(topic_id: int):
    topic = _get_topic(topic_id)
    _require_can_post()
    if topic.is_locked and not current_user.is_moderator:
        abort(403, description="This topic is locked.")
    form = PostForm()
    if form.validate_on_submit():
        post = services.create_reply(topic, current_user, form.body.data)
        db.session.commit()
        return redirect(_post_url(post))
    for error in form.body.errors:
        flash(f"Reply not posted: {error}", "error")
    return redirect(url_for("topics.topic", topic_id=topic.id))


@bp.get("/p/<int:post_id>")
def post(post_id: int):
    return redirect(_post_url(_get_post(post_id)))


@bp.route("/p/<int:post_id>/edit", methods=["GET", "POST"])
@login_required
def edit_post(post_id: int):
    post = _get_post(post_id)
    if not _can_edit(post):
        abort(403)
    if post.topic.is_locked and not current_user.is_moderator:
        abort(403, description="This topic is locked.")
    is_opening_post = post.id == _first_post_id(post.topic_id)
    form = EditPostForm(obj=post)
    if request.method == "GET" and is_opening_post:
        form.title.data = post.topic.title
    if form.validate_on_submit():
        services.edit_post(post, form.body.data)
        if is_opening_post and form.title.data and form.title.data.strip():
            post.topic.title = form.title.data.strip()
        db.session.commit()
        flash("Post updated.", "success")
        return redirect(_post_url(post))
    return render_template("topics/edit.html", post=post, form=form, is_opening_post=is_opening_post)


@bp.post("/p/<int:post_id>/delete")
@login_required
def delete_post(post_id: int):
    post = _get_post(post_id)
    if not _can_edit(post):
        abort(403)
    topic = post.topic
    board_slug = topic.board.slug
    if post.id == _first_post_id(topic.id):
        # Deleting the opening post removes the whole topic; members may only do
        # that while nobody has replied yet.
        if topic.reply_count > 0 and not current_user.is_moderator:
            flash("The first post of a topic with replies cannot be deleted.", "error")
            return redirect(url_for("topics.topic", topic_id=topic.id))
        services.delete_topic(topic)
        db.session.commit()
        flash("Topic deleted.", "info")
        return redirect(url_for("boards.board", slug=board_slug))
    services.delete_post(post)
    db.session.commit()
    flash("Post deleted.", "info")
    return redirect(url_for("topics.topic", topic_id=topic.id))


@bp.post("/t/<int:topic_id>/lock")
@login_required
@moderator_required
def toggle_lock(topic_id: int):
    topic = _get_topic(topic_id)
    topic.is_locked = not topic.is_locked
    db.session.commit()
    flash("Topic locked." if topic.is_locked else "Topic unlocked.", "info")
    return redirect(url_for("topics.topic", topic_id=topic.id))


@bp.post("/t/<int:topic_id>/pin")
@login_required
@moderator_required
def toggle_pin(topic_id: int):
    topic = _get_topic(topic_id)
    topic.is_pinned = not topic.is_pinned
    db.session.commit()
    flash("Topic pinned." if topic.is_pinned else "Topic unpinned.", "info")
    return redirect(url_for("topics.topic", topic_id=topic.id))


@bp.post("/t/<int:topic_id>/delete")
@login_required
@moderator_required
def delete_topic(topic_id: int):
    topic = _get_topic(topic_id)
    slug = topic.board.slug
    services.delete_topic(topic)
    db.session.commit()
    flash("Topic deleted.", "info")
    return redirect(url_for("boards.board", slug=slug))


@bp.post("/t/<int:topic_id>/move")
@login_required
@moderator_required
def move_topic(topic_id: int):
    topic = _get_topic(topic_id)
    form = _move_form(topic)
    if not form.validate_on_submit():
        abort(400, description="Choose an existing board to move the topic to.")
    target = db.session.get(Board, form.board_id.data)
    services.move_topic(topic, target)
    db.session.commit()
    flash(f"Topic moved to {target.name}.", "info")
    return redirect(url_for("topics.topic", topic_id=topic.id))
