"""Write operations that keep the denormalised counters consistent.

Every function here only adds to the current session/transaction; callers commit.
"""
from __future__ import annotations

from sqlalchemy import false, func, or_, select, update

from .extensions import db
from .markup import mention_candidates, names_lookup, render_with_mentions
from .models import (
    Board,
    ModerationLog,
    Notification,
    Post,
    Topic,
    User,
    recount_board,
    recount_topic,
    recount_users,
    utcnow,
)


def revoke_sessions(user: User) -> None:
    """End every session and remember-me cookie of ``user`` (they carry the old generation)."""
    db.session.execute(
        update(User).where(User.id == user.id)
        .values(session_generation=User.session_generation + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(user, ["session_generation"])


# At most this many members are notified by one post (mentions past it stay links).
MAX_NOTIFIED_MENTIONS = 20


def render_post(body: str) -> tuple[str, list[str]]:
    """A post's HTML with its @mentions of existing members linked (one query),
    and the usernames it mentions."""
    candidates = mention_candidates(body)
    names: dict[str, str] = {}
    if candidates:
        folded = {c.casefold() for c in candidates}
        names = names_lookup(db.session.scalars(select(User.username).where(
            or_(User.username.in_(candidates), func.lower(User.username).in_(folded)))))
    return render_with_mentions(body, names)


def notify(post: Post, author: User, mentioned: list[str], topic_author_id: int | None = None) -> None:
    """Notifications for ``post``: each member it mentions (not the author, not
    banned ones), and the topic's author (``topic_author_id``) for a reply."""
    recipients: dict[int, str] = {}
    names = list(dict.fromkeys(mentioned))[:MAX_NOTIFIED_MENTIONS]
    if names:
        for uid in db.session.scalars(select(User.id).where(User.username.in_(names),
                                                            User.is_banned == false())):
            recipients[uid] = "mention"
    if topic_author_id is not None:
        recipients.setdefault(topic_author_id, "reply")
    recipients.pop(author.id, None)
    if not recipients:
        return
    for uid, kind in recipients.items():
        db.session.add(Notification(user_id=uid, actor_id=author.id, kind=kind, post_id=post.id))
    db.session.execute(update(User).where(User.id.in_(recipients))
                       .values(unread_notifications=User.unread_notifications + 1)
                       .execution_options(synchronize_session=False))


def create_topic(board: Board, author: User, title: str, body: str) -> Topic:
    now = utcnow()
    topic = Topic(board_id=board.id, user_id=author.id, title=title.strip(), created_at=now,
                  last_post_at=now, reply_count=0)
    db.session.add(topic)
    db.session.flush()
    html, mentioned = render_post(body)
    post = Post(topic_id=topic.id, user_id=author.id, body=body, body_html=html, created_at=now)
    db.session.add(post)
    db.session.flush()
    notify(post, author, mentioned)
    topic.last_post_id = post.id
    db.session.execute(
        update(Board)
        .where(Board.id == board.id)
        .values(
            topic_count=Board.topic_count + 1,
            post_count=Board.post_count + 1,
            last_post_id=post.id,
            last_post_at=now,
        )
    )
    db.session.execute(
        update(User).where(User.id == author.id).values(post_count=User.post_count + 1)
    )
    return topic


def create_reply(topic: Topic, author: User, body: str) -> Post:
    now = utcnow()
    html, mentioned = render_post(body)
    post = Post(topic_id=topic.id, user_id=author.id, body=body, body_html=html, created_at=now)
    db.session.add(post)
    db.session.flush()
    notify(post, author, mentioned, topic_author_id=topic.user_id)
    db.session.execute(
        update(Topic)
        .where(Topic.id == topic.id)
        .values(reply_count=Topic.reply_count + 1, last_post_id=post.id, last_post_at=now)
    )
    db.session.execute(
        update(Board)
        .where(Board.id == topic.board_id)
        .values(post_count=Board.post_count + 1, last_post_id=post.id, last_post_at=now)
    )
    db.session.execute(
        update(User).where(User.id == author.id).values(post_count=User.post_count + 1)
    )
    return post


def edit_post(post: Post, body: str) -> None:
    """Change a post; members it newly mentions are notified (once: the ones it
    mentioned before are not again)."""
    before = set(render_post(post.body)[1])
    post.body = body
    post.body_html, mentioned = render_post(body)
    post.updated_at = utcnow()
    notify(post, post.author, [name for name in mentioned if name not in before])


def log_action(actor: User, action: str, target: Topic | Post | User, reason: str | None = None) -> None:
    """One moderation_log row: ``actor`` did ``action`` to ``target``."""
    if isinstance(target, Topic):
        target_type, label = "topic", target.title
    elif isinstance(target, Post):
        target_type, label = "post", target.topic.title
    else:
        target_type, label = "user", target.username
    db.session.add(ModerationLog(actor_id=actor.id, action=action, target_type=target_type,
                                 target_id=target.id, target_label=label[:200],
                                 reason=(reason or "").strip()[:500] or None))


def delete_post(post: Post) -> None:
    """Soft-delete a reply (not the first post of a topic) and fix counters."""
    _set_post_deleted(post, True)


def restore_post(post: Post) -> None:
    _set_post_deleted(post, False)


def _set_post_deleted(post: Post, deleted: bool) -> None:
    post.is_deleted = deleted
    post.deleted_at = utcnow() if deleted else None
    db.session.flush()
    recount_topic(post.topic_id)
    recount_board(post.topic.board_id)
    recount_users([post.user_id])


def delete_topic(topic: Topic) -> None:
    """Soft-delete a topic (its posts go with it) and fix counters."""
    _set_topic_deleted(topic, True)


def restore_topic(topic: Topic) -> None:
    _set_topic_deleted(topic, False)


def _set_topic_deleted(topic: Topic, deleted: bool) -> None:
    topic.is_deleted = deleted
    topic.deleted_at = utcnow() if deleted else None
    db.session.flush()
    authors = db.session.scalars(select(Post.user_id).where(Post.topic_id == topic.id).distinct())
    recount_users(authors)
    recount_board(topic.board_id)


def move_topic(topic: Topic, target: Board) -> None:
    """Move a topic (with its posts) to another board and fix both boards' counters."""
    source_id = topic.board_id
    if source_id == target.id:
        return
    topic.board_id = target.id
    db.session.flush()
    recount_board(source_id)
    recount_board(target.id)
