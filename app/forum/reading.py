"""Unread markers: the topics and boards with posts a member has not seen.

A member has seen everything before their *baseline*: when they last chose
"Mark all as read", else when they joined. After it, ``topic_reads`` keeps,
per member and topic, the newest post shown to them on the topic's pages. A
topic is unread when its last post is after the baseline and newer than that;
a board when one of its topics is.

Recording a view is a small upsert that skips the page caches' invalidation
(it changes nothing any page shows to anybody else) and is skipped entirely
when this worker already recorded that much, so repeated views of a topic
run no query. The shared, cached list fragments carry an empty marker per row
(``<!--unread:ID-->``) that is filled in for the member looking.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Iterable

from flask import current_app
from flask_babel import gettext
from markupsafe import Markup
from sqlalchemy import and_, delete, false, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from .extensions import db
from .models import Topic, TopicRead, User, utcnow
from .pagecache import KEEP_CACHE

def _badge() -> Markup:
    return Markup('<span class="badge badge-new">%s</span> ') % gettext("new")


_MEMO_SIZE = 10000
_MEMO_KEY = "forum_read_memo"
_memo_lock = threading.Lock()


def _memo() -> "OrderedDict[tuple[int, int], int]":
    """This worker's record of what it wrote to topic_reads (per app: per database)."""
    return current_app.extensions.setdefault(_MEMO_KEY, OrderedDict())


def baseline(viewer) -> datetime:
    return viewer.read_all_at or viewer.created_at


def record_read(viewer, topic_id: int, last_post_at: datetime | None, upto_post_id: int | None) -> None:
    """``viewer`` has seen ``topic_id`` up to post ``upto_post_id``."""
    if not viewer.is_authenticated or upto_post_id is None or last_post_at is None:
        return
    if last_post_at <= baseline(viewer):
        return
    key = (viewer.id, topic_id)
    memo = _memo()
    with _memo_lock:
        if memo.get(key, 0) >= upto_post_id:
            return
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(TopicRead).values(user_id=viewer.id, topic_id=topic_id, last_post_id=upto_post_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=[TopicRead.user_id, TopicRead.topic_id],
        set_={"last_post_id": stmt.excluded.last_post_id},
        where=TopicRead.last_post_id < stmt.excluded.last_post_id,
    )
    try:
        db.session.execute(stmt)
        db.session.info[KEEP_CACHE] = True
        db.session.commit()
    except OperationalError:  # a busy SQLite file: the marker is best effort
        db.session.info.pop(KEEP_CACHE, None)
        db.session.rollback()
        current_app.logger.info("topic read not recorded (database busy)")
        return
    with _memo_lock:
        memo[key] = upto_post_id
        memo.move_to_end(key)
        while len(memo) > _MEMO_SIZE:
            memo.popitem(last=False)


def unread_topics(viewer, rows: Iterable[tuple[int, int | None, datetime | None]]) -> set[int]:
    """Of (topic id, last post id, last post time) rows, the ids unread for ``viewer``."""
    if not viewer.is_authenticated:
        return set()
    since = baseline(viewer)
    candidates = {tid: last_id for tid, last_id, last_at in rows if last_at is not None and last_at > since}
    if not candidates:
        return set()
    seen = dict(db.session.execute(select(TopicRead.topic_id, TopicRead.last_post_id).where(
        TopicRead.user_id == viewer.id, TopicRead.topic_id.in_(candidates))).all())
    return {tid for tid, last_id in candidates.items() if seen.get(tid, 0) < (last_id or 0)}


def unread_boards(viewer, boards: Iterable[tuple[int, datetime | None]]) -> set[int]:
    """Of (board id, last post time) pairs, the boards with a topic unread for ``viewer``."""
    if not viewer.is_authenticated:
        return set()
    since = baseline(viewer)
    candidates = [bid for bid, last_at in boards if last_at is not None and last_at > since]
    if not candidates:
        return set()
    stmt = (
        select(Topic.board_id).distinct()
        .outerjoin(TopicRead, and_(TopicRead.topic_id == Topic.id, TopicRead.user_id == viewer.id))
        .where(Topic.board_id.in_(candidates), Topic.is_deleted == false(), Topic.last_post_at > since,
               or_(TopicRead.last_post_id.is_(None), TopicRead.last_post_id < Topic.last_post_id))
    )
    return set(db.session.scalars(stmt))


def mark(html: Markup, ids: set[int]) -> Markup:
    """Fill the markers of the unread rows (of a cached list fragment, or of a member
    page built from one)."""
    badge = _badge() if ids else ""
    for row_id in ids:
        html = Markup(html.replace(f"<!--unread:{row_id}-->", badge, 1))
    return html


def mark_all_read(user_id: int) -> None:
    """Everything up to now counts as seen; the per-topic rows are no longer needed."""
    db.session.execute(delete(TopicRead).where(TopicRead.user_id == user_id))
    db.session.execute(User.__table__.update().where(User.id == user_id).values(read_all_at=utcnow()))
    memo = _memo()
    with _memo_lock:
        for key in [k for k in memo if k[0] == user_id]:
            del memo[key]
