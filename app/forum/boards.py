"""Board index, board pages and search."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import bindparam, false, select
from sqlalchemy.orm import aliased, joinedload

from . import reading
from .extensions import db
from .forms import ActionForm
from .models import Board, Post, Topic, User
from .pagecache import cached_fragment, cached_page, member_page
from .search import search_hits
from .utils import RowPagination, get_page

bp = Blueprint("boards", __name__)


@bp.get("/")
@cached_page
def index():
    html, rows = cached_fragment("index", _render_board_list)
    # The unread markers are filled in last, on the member's whole page.
    page = member_page(lambda: render_template("boards/index.html", boards_html=html))
    return reading.mark(page, reading.unread_boards(current_user._get_current_object(), rows))


@bp.post("/read-all")
@login_required
def read_all():
    if ActionForm().validate_on_submit():
        reading.mark_all_read(current_user.id)
        db.session.commit()
        flash(_("Everything is marked as read."), "success")
    return redirect(url_for("boards.index"))


def _render_board_list() -> tuple[Markup, list]:
    """The board table, the same for every visitor, and (id, last post time) per board."""
    last_post = joinedload(Board.last_post).load_only(
        Post.id, Post.topic_id, Post.user_id, Post.created_at
    )
    boards = db.session.scalars(
        select(Board)
        .options(last_post.joinedload(Post.author), last_post.joinedload(Post.topic))
        .order_by(Board.position, Board.name)
    ).unique().all()
    return (Markup(render_template("boards/_board_list.html", boards=boards)),
            [(b.id, b.last_post_at) for b in boards])


def _board_statements():
    """Board-page statements, built once (building SQLAlchemy constructs per request
    costs more than running them; the compiled SQL is cached by SQLAlchemy)."""
    global _BOARD_STMTS
    if _BOARD_STMTS is None:
        board_stmt = select(*Board.__table__.c).where(Board.slug == bindparam("slug"))
        # The LIMIT/OFFSET runs on the listing index in a subquery; then each of the
        # few rows found is joined to its author and last post's author by primary key.
        listing_order = (Topic.is_pinned.desc(), Topic.last_post_at.desc(), Topic.id.desc())
        page_ids = (
            select(Topic.id)
            .where(Topic.board_id == bindparam("board_id"), Topic.is_deleted == false())
            .order_by(*listing_order)
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
            .subquery()
        )
        author, last_post, last_author = aliased(User), aliased(Post), aliased(User)
        rows_stmt = (
            select(
                Topic.id, Topic.title, Topic.is_pinned, Topic.is_locked, Topic.reply_count,
                Topic.created_at, Topic.last_post_id, Topic.last_post_at,
                author.username.label("author_name"),
                last_author.username.label("last_author_name"),
            )
            .join(page_ids, page_ids.c.id == Topic.id)
            .join(author, author.id == Topic.user_id)
            .outerjoin(last_post, last_post.id == Topic.last_post_id)
            .outerjoin(last_author, last_author.id == last_post.user_id)
            .order_by(*listing_order)
        )
        _BOARD_STMTS = (board_stmt, rows_stmt)
    return _BOARD_STMTS


_BOARD_STMTS = None


@bp.get("/b/<slug>")
@cached_page
def board(slug: str):
    # The board's name and its page of topics are the same for every visitor: members
    # get them from the fragment cache too, and render only the page around them.
    found = cached_fragment("board", lambda: _render_board_listing(slug))
    if found is None:
        abort(404)
    board, topics_html, rows = found
    page = member_page(lambda: render_template("boards/board.html", board=board, topics_html=topics_html))
    return reading.mark(page, reading.unread_topics(current_user._get_current_object(), rows))


def _render_board_listing(slug: str) -> tuple[dict, Markup, list] | None:
    board_stmt, rows_stmt = _board_statements()
    # Plain rows, not ORM objects: one query for the board, one for the page of topics.
    board = db.session.execute(board_stmt, {"slug": slug}).first()
    if board is None:
        return None

    def rows(offset: int, limit: int) -> list:
        params = {"board_id": board.id, "offset": offset, "limit": limit}
        return db.session.execute(rows_stmt, params).all()

    # The denormalised topic_count gives the page count: no COUNT(*) per page view.
    topics = RowPagination(rows, get_page(), current_app.config["TOPICS_PER_PAGE"], board.topic_count)
    html = Markup(render_template("boards/_topic_list.html", topics=topics))
    rows = [(t.id, t.last_post_id, t.last_post_at) for t in topics.items]
    return {"name": board.name, "slug": board.slug, "description": board.description}, html, rows


class SimplePage:
    """Prev/next pagination without a COUNT(*) (search results can be large)."""

    def __init__(self, items: list, page: int, has_next: bool) -> None:
        self.items = items
        self.page = page
        self.has_next = has_next
        self.has_prev = page > 1
        self.prev_num = page - 1
        self.next_num = page + 1


@bp.get("/search")
def search():
    """Posts whose body matches, plus the opening post of topics whose title matches,
    best first (see forum.search)."""
    q = (request.args.get("q") or "").strip()[:200]
    results = None
    if q:
        page = get_page()
        per_page = current_app.config["SEARCH_PER_PAGE"]
        ids = search_hits(q, (page - 1) * per_page, per_page + 1)
        posts = {
            post.id: post
            for post in db.session.scalars(
                select(Post)
                .where(Post.id.in_(ids))
                .options(joinedload(Post.author), joinedload(Post.topic).joinedload(Topic.board))
            ).unique()
        }
        items = [posts[i] for i in ids if i in posts]
        results = SimplePage(items[:per_page], page, len(items) > per_page)
    return render_template("search.html", q=q, results=results)
