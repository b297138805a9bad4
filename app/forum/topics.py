"""Topics and posts: view, create, reply, edit, delete, moderate."""
from __future__ import annotations

from types import SimpleNamespace

from flask import (Blueprint, abort, current_app, flash, get_template_attribute, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import false, func, select
from sqlalchemy.orm import joinedload

from . import reading, services
from .recovery import email_unverified
from .extensions import db, limiter, posting_exempt, posting_key, posting_limit, preview_limit
from .forms import ActionForm, ConfirmForm, EditPostForm, MoveTopicForm, PostForm, TopicForm
from .models import Board, Post, Topic
from .pagecache import cached_fragment, cached_page, member_page
from .utils import get_page, moderator_required

bp = Blueprint("topics", __name__)


def _require_can_post() -> None:
    if current_user.is_banned:
        abort(403, description=_("Your account is banned from posting."))
    if email_unverified():
        abort(403, description=_("Confirm your e-mail address first: open the link we mailed to you."))


def _sees_deleted() -> bool:
    """Soft-deleted topics and posts exist only for admins (404 for everybody else)."""
    return current_user.is_authenticated and current_user.is_admin


def _get_topic(topic_id: int, deleted_ok: bool = False) -> Topic:
    """The topic; a deleted one only for an admin on a page that shows it (``deleted_ok``)."""
    topic = db.session.scalar(
        select(Topic).where(Topic.id == topic_id).options(joinedload(Topic.board))
    )
    if topic is None or (topic.is_deleted and not (deleted_ok and _sees_deleted())):
        abort(404)
    return topic


def _get_post(post_id: int, deleted_ok: bool = False) -> Post:
    post = db.session.scalar(
        select(Post).where(Post.id == post_id).options(joinedload(Post.topic).joinedload(Topic.board))
    )
    if post is None or ((post.is_deleted or post.topic.is_deleted)
                        and not (deleted_ok and _sees_deleted())):
        abort(404)
    return post


def _first_post_id(topic_id: int) -> int | None:
    return db.session.scalar(select(func.min(Post.id)).where(Post.topic_id == topic_id))


def _post_url(post: Post) -> str:
    per_page = current_app.config["POSTS_PER_PAGE"]
    stmt = select(func.count(Post.id)).where(Post.topic_id == post.topic_id, Post.id <= post.id)
    if not _sees_deleted():
        stmt = stmt.where(Post.is_deleted == false())
    position = db.session.scalar(stmt) or 1
    page = (position - 1) // per_page + 1
    return url_for("topics.topic", topic_id=post.topic_id, page=page, _anchor=f"p{post.id}")


def _can_edit(post: Post) -> bool:
    return current_user.is_authenticated and (
        current_user.is_moderator or (post.user_id == current_user.id and not current_user.is_banned)
    )


def _previewing() -> bool:
    """A post form sent with its Preview button: render the draft, store nothing."""
    return request.method == "POST" and "preview" in request.form


# New topics and replies share one limit per account (forum.extensions.posting_limit);
# previews do not count against it but have their own (FORUM_PREVIEW_RATE_LIMIT).
_posting_limit = limiter.shared_limit(
    posting_limit, scope="posting", key_func=posting_key, methods=["POST"],
    exempt_when=lambda: posting_exempt() or _previewing(),
)
_preview_limit = limiter.shared_limit(
    preview_limit, scope="preview", key_func=posting_key, methods=["POST"],
    exempt_when=lambda: not _previewing(),
)


def _draft_html(body: str) -> Markup:
    return Markup(services.render_post(body)[0])


@bp.route("/b/<slug>/new", methods=["GET", "POST"])
@login_required
@_posting_limit
@_preview_limit
def new_topic(slug: str):
    board = db.session.scalar(select(Board).where(Board.slug == slug))
    if board is None:
        abort(404)
    _require_can_post()
    form = TopicForm()
    if form.validate_on_submit():
        if form.preview.data:
            return render_template("topics/new.html", board=board, form=form,
                                   preview=_draft_html(form.body.data))
        topic = services.create_topic(board, current_user, form.title.data, form.body.data)
        db.session.commit()
        reading.record_read(current_user, topic.id, topic.last_post_at, topic.last_post_id)  # one's own post
        flash(_("Topic created."), "success")
        return redirect(url_for("topics.topic", topic_id=topic.id))
    return render_template("topics/new.html", board=board, form=form)


@bp.get("/t/<int:topic_id>")
@cached_page
def topic(topic_id: int):
    if _sees_deleted():  # admins: deleted posts and topics too, never from the shared cache
        return _render_topic(_get_topic(topic_id, deleted_ok=True), get_page())
    # Everybody else sees the same topic head and posts: a shared fragment (see
    # forum.pagecache); the buttons and forms that depend on who looks are added here.
    shared = cached_fragment("topic", lambda: _shared_topic(topic_id, get_page()))
    if shared is None:
        abort(404)
    return _render_topic_page(shared)


def _shared_topic(topic_id: int, page: int) -> dict | None:
    """The parts of a topic page that are the same for every non-admin visitor."""
    topic = db.session.scalar(
        select(Topic).where(Topic.id == topic_id).options(joinedload(Topic.board))
    )
    if topic is None or topic.is_deleted:
        return None
    return _shared_parts(topic, page, sees_deleted=False)


def _shared_parts(topic: Topic, page: int, sees_deleted: bool) -> dict:
    stmt = (
        select(Post)
        .where(Post.topic_id == topic.id)
        .options(joinedload(Post.author))
        .order_by(Post.id)
    )
    if not sees_deleted:
        stmt = stmt.where(Post.is_deleted == false())
    posts = db.paginate(
        stmt, page=page, per_page=current_app.config["POSTS_PER_PAGE"], error_out=False,
        count=False,
    )
    if sees_deleted:  # admins also see deleted posts, which the counter leaves out
        posts.total = db.session.scalar(select(func.count(Post.id)).where(Post.topic_id == topic.id))
    else:
        posts.total = topic.reply_count + 1  # denormalised: no COUNT(*) per page view
    # Plain values only: a cached fragment outlives the session its rows came from.
    head = SimpleNamespace(
        id=topic.id, title=topic.title, is_pinned=topic.is_pinned, is_locked=topic.is_locked,
        is_deleted=topic.is_deleted, deleted_at=topic.deleted_at, board_id=topic.board_id,
        reply_count=topic.reply_count, board=SimpleNamespace(slug=topic.board.slug, name=topic.board.name),
        last_post_id=topic.last_post_id, last_post_at=topic.last_post_at,
    )
    module = get_template_attribute("topics/_posts.html", "post_head")
    items = [SimpleNamespace(id=p.id, user_id=p.user_id, is_deleted=p.is_deleted, html=Markup(module(p)))
             for p in posts.items]
    return {
        "topic": head,
        "posts": items,
        "pagination": Markup(get_template_attribute("_macros.html", "pagination")(posts)),
        "first_post_id": items[0].id if items and posts.page == 1 else None,
    }


def _render_topic(topic: Topic, page: int, reply_form: PostForm | None = None, preview: Markup | None = None):
    """The topic page straight from the database (admins, a failed or previewed reply)."""
    return _render_topic_page(_shared_parts(topic, page, _sees_deleted()), reply_form, preview)


def _render_topic_page(shared: dict, reply_form: PostForm | None = None, preview: Markup | None = None):
    topic = shared["topic"]
    viewer = current_user._get_current_object()
    # Forms only for logged-in users: building one stores a CSRF token in the session,
    # which anonymous readers (and the page cache) do not need.
    reply_fields = move_form = None
    editable: frozenset[int] | set[int] = frozenset()
    if viewer.is_authenticated:
        if viewer.is_moderator:
            move_form = _move_form(topic)
            editable = {p.id for p in shared["posts"]}
        elif not viewer.is_banned:
            editable = {p.id for p in shared["posts"] if p.user_id == viewer.id}
        # A failed reply shows its form again (text, errors); else the empty form's
        # fields, which are the same for everybody (the CSRF token is added per page).
        reply_fields = (_reply_fields(reply_form) if reply_form is not None
                        else _empty_reply_fields())

    def render() -> str:
        return render_template(
            "topics/topic.html",
            topic=topic,
            posts=shared["posts"],
            pagination_html=shared["pagination"],
            reply_fields=reply_fields,
            first_post_id=shared["first_post_id"],
            editable=editable,
            move_form=move_form,
            preview=preview,
        )

    # A failed or previewed reply is the member's own page; else the page is the one
    # every member who may edit the same posts here sees (forum.pagecache).
    page = (render() if reply_form is not None or preview is not None
            else member_page(render, tuple(sorted(editable))))
    if shared["posts"]:  # after rendering: recording a view may commit
        reading.record_read(viewer, topic.id, topic.last_post_at, shared["posts"][-1].id)
    return page


def _reply_fields(form: PostForm) -> Markup:
    return Markup(get_template_attribute("topics/_posts.html", "reply_fields")(form))


def _empty_reply_fields() -> Markup:
    """The empty reply form's fields, rendered once per app and language (they hold
    nothing personal, but their labels are in the page's language)."""
    from .i18n import current_locale

    cached = current_app.extensions.setdefault("forum_reply_fields", {})
    locale = current_locale()
    if locale not in cached:
        cached[locale] = _reply_fields(PostForm(formdata=None, meta={"csrf": False}))
    return cached[locale]


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
@_preview_limit
def reply(topic_id: int):
    topic = _get_topic(topic_id)
    _require_can_post()
    if topic.is_locked and not current_user.is_moderator:
        abort(403, description=_("This topic is locked."))
    form = PostForm()
    last_page = topic.reply_count // current_app.config["POSTS_PER_PAGE"] + 1
    if form.validate_on_submit():
        if form.preview.data:  # the last page, the draft above the form that still holds it
            return _render_topic(topic, last_page, reply_form=form, preview=_draft_html(form.body.data))
        post = services.create_reply(topic, current_user, form.body.data)
        db.session.commit()
        reading.record_read(current_user, topic.id, post.created_at, post.id)  # one's own post
        return redirect(_post_url(post))
    # Not posted: show the topic's last page with the form still holding the text.
    flash(_("Reply not posted: see the message under the text box."), "error")
    return _render_topic(topic, last_page, reply_form=form), 400


@bp.get("/p/<int:post_id>")
def post(post_id: int):
    return redirect(_post_url(_get_post(post_id)))


@bp.route("/p/<int:post_id>/edit", methods=["GET", "POST"])
@login_required
@_preview_limit
def edit_post(post_id: int):
    post = _get_post(post_id)
    if not _can_edit(post):
        abort(403)
    if post.topic.is_locked and not current_user.is_moderator:
        abort(403, description=_("This topic is locked."))
    is_opening_post = post.id == _first_post_id(post.topic_id)
    form = EditPostForm(obj=post)
    if request.method == "GET" and is_opening_post:
        form.title.data = post.topic.title
    if form.validate_on_submit():
        if form.preview.data:
            return render_template("topics/edit.html", post=post, form=form, is_opening_post=is_opening_post,
                                   preview=_draft_html(form.body.data))
        services.edit_post(post, form.body.data)
        if is_opening_post and form.title.data and form.title.data.strip():
            post.topic.title = form.title.data.strip()
        db.session.commit()
        flash(_("Post updated."), "success")
        return redirect(_post_url(post))
    return render_template("topics/edit.html", post=post, form=form, is_opening_post=is_opening_post)


def _confirm(heading: str, message: str, label: str, cancel_url: str, form: ConfirmForm, status: int):
    """The confirmation page of a destructive action: a POST form back to this URL."""
    return render_template("confirm.html", heading=heading, message=message, confirm_label=label,
                           cancel_url=cancel_url, form=form), status


@bp.route("/p/<int:post_id>/delete", methods=["GET", "POST"])
@login_required
def delete_post(post_id: int):
    """GET asks for confirmation; POST (from that page, with its CSRF token) deletes."""
    post = _get_post(post_id)
    if not _can_edit(post):
        abort(403)
    topic = post.topic
    board_slug = topic.board.slug
    is_opening_post = post.id == _first_post_id(topic.id)
    # Deleting the opening post removes the whole topic; members may only do
    # that while nobody has replied yet.
    if is_opening_post and topic.reply_count > 0 and not current_user.is_moderator:
        flash(_("The first post of a topic with replies cannot be deleted."), "error")
        return redirect(url_for("topics.topic", topic_id=topic.id))
    form = ConfirmForm()
    if not form.validate_on_submit():
        # GET, or a POST whose reason is too long: (again) the page, with the error.
        status = 400 if request.method == "POST" else 200
        if is_opening_post:
            message = _("Delete the topic %(title)s with all its posts? Admins can restore it from "
                        "the moderation log.", title=repr(topic.title))
        else:
            message = _("Delete this post? Admins can restore it from the moderation log.")
        return _confirm(_("Delete topic") if is_opening_post else _("Delete post"), message,
                        _("Delete"), _post_url(post), form, status)
    if is_opening_post:
        services.delete_topic(topic)
        services.log_action(current_user, "delete_topic", topic, form.reason.data)
        db.session.commit()
        flash(_("Topic deleted."), "info")
        return redirect(url_for("boards.board", slug=board_slug))
    services.delete_post(post)
    services.log_action(current_user, "delete_post", post, form.reason.data)
    db.session.commit()
    flash(_("Post deleted."), "info")
    return redirect(url_for("topics.topic", topic_id=topic.id))


def _set_topic_flag(topic_id: int, flag: str, wanted: bool, action: str, already: str, done: str):
    """Explicit states: locking a locked topic changes nothing (a double submit
    cannot undo itself) and logs nothing."""
    if not ActionForm().validate_on_submit():
        abort(400)
    topic = _get_topic(topic_id)
    if getattr(topic, flag) == wanted:
        flash(already, "info")
    else:
        setattr(topic, flag, wanted)
        services.log_action(current_user, action, topic)
        db.session.commit()
        flash(done, "info")
    return redirect(url_for("topics.topic", topic_id=topic.id))


@bp.post("/t/<int:topic_id>/lock")
@login_required
@moderator_required
def lock_topic(topic_id: int):
    return _set_topic_flag(topic_id, "is_locked", True, "lock", _("Topic already locked."), _("Topic locked."))


@bp.post("/t/<int:topic_id>/unlock")
@login_required
@moderator_required
def unlock_topic(topic_id: int):
    return _set_topic_flag(topic_id, "is_locked", False, "unlock", _("Topic already unlocked."),
                           _("Topic unlocked."))


@bp.post("/t/<int:topic_id>/pin")
@login_required
@moderator_required
def pin_topic(topic_id: int):
    return _set_topic_flag(topic_id, "is_pinned", True, "pin", _("Topic already pinned."), _("Topic pinned."))


@bp.post("/t/<int:topic_id>/unpin")
@login_required
@moderator_required
def unpin_topic(topic_id: int):
    return _set_topic_flag(topic_id, "is_pinned", False, "unpin", _("Topic already unpinned."),
                           _("Topic unpinned."))


@bp.route("/t/<int:topic_id>/delete", methods=["GET", "POST"])
@login_required
@moderator_required
def delete_topic(topic_id: int):
    """GET asks for confirmation; POST (from that page) soft-deletes the topic."""
    topic = _get_topic(topic_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        # GET, or a POST whose reason is too long: (again) the page, with the error.
        status = 400 if request.method == "POST" else 200
        return _confirm(_("Delete topic"),
                        _("Delete the topic %(title)s with all its posts? Admins can restore it from "
                          "the moderation log.", title=repr(topic.title)), _("Delete topic"),
                        url_for("topics.topic", topic_id=topic.id), form, status)
    slug = topic.board.slug
    services.delete_topic(topic)
    services.log_action(current_user, "delete_topic", topic, form.reason.data)
    db.session.commit()
    flash(_("Topic deleted."), "info")
    return redirect(url_for("boards.board", slug=slug))


def _admin_only() -> None:
    if not _sees_deleted():
        abort(403)


@bp.post("/t/<int:topic_id>/restore")
@login_required
def restore_topic(topic_id: int):
    _admin_only()
    if not ActionForm().validate_on_submit():
        abort(400)
    topic = _get_topic(topic_id, deleted_ok=True)
    if not topic.is_deleted:
        flash(_("Topic is not deleted."), "info")
    else:
        services.restore_topic(topic)
        services.log_action(current_user, "restore_topic", topic)
        db.session.commit()
        flash(_("Topic restored."), "success")
    return redirect(url_for("topics.topic", topic_id=topic.id))


@bp.post("/p/<int:post_id>/restore")
@login_required
def restore_post(post_id: int):
    _admin_only()
    if not ActionForm().validate_on_submit():
        abort(400)
    post = _get_post(post_id, deleted_ok=True)
    if not post.is_deleted:
        flash(_("Post is not deleted."), "info")
    else:
        services.restore_post(post)
        services.log_action(current_user, "restore_post", post)
        db.session.commit()
        flash(_("Post restored."), "success")
    return redirect(_post_url(post))


@bp.post("/t/<int:topic_id>/move")
@login_required
@moderator_required
def move_topic(topic_id: int):
    topic = _get_topic(topic_id)
    form = _move_form(topic)
    if not form.validate_on_submit():
        abort(400, description=_("Choose an existing board to move the topic to."))
    target = db.session.get(Board, form.board_id.data)
    if target.id != topic.board_id:
        services.move_topic(topic, target)
        services.log_action(current_user, "move", topic, f"to {target.name}")
        db.session.commit()
    flash(_("Topic moved to %(board)s.", board=target.name), "info")
    return redirect(url_for("topics.topic", topic_id=topic.id))
