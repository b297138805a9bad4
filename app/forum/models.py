"""Database models (SQLAlchemy 2 style)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from flask_login import UserMixin
from sqlalchemy import (
    DDL, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, event, false, func, select, update,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db, login_manager
from .identity import skeleton

# The search (forum.search) uses pg_trgm's functions. The migrations create the
# extension; this does it for a schema made by create_all() (the tests).
event.listen(db.metadata, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))

ROLE_MEMBER = "member"
ROLE_MODERATOR = "moderator"
ROLE_ADMIN = "admin"
ROLES = (ROLE_MEMBER, ROLE_MODERATOR, ROLE_ADMIN)


def utcnow() -> datetime:
    """Naive UTC timestamp (stored without time zone on every backend)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class _AccountMixin:
    """What pages ask of an account: shared by the ORM row and the cached GET copy."""

    def get_id(self) -> str:
        return f"{self.id}:{self.session_generation}"

    @property
    def is_moderator(self) -> bool:
        return self.role in (ROLE_MODERATOR, ROLE_ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def can_post(self) -> bool:
        return not self.is_banned


class User(_AccountMixin, UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    # forum.identity.skeleton(username), kept in step by _set_skeleton: two names that
    # look alike ("paypal", "pаypal" with a Cyrillic а) cannot both exist. NULL only for
    # accounts that already collided when the column was added (see the migration).
    username_skeleton: Mapped[Optional[str]] = mapped_column(String(120), unique=True, nullable=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=ROLE_MEMBER, server_default=ROLE_MEMBER)
    is_banned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    post_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Part of every session and remember-me cookie (see get_id/load_user); bumping it
    # (password change, logout, "log out everywhere", ban) revokes all of them.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Unread rows of notifications (kept by forum.notifications): the header's count
    # without a query per page view.
    unread_notifications: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # "Mark all as read": every post before it counts as seen (forum.reading).
    read_all_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    # When the member opened the link mailed to their address (forum.recovery);
    # with FORUM_REQUIRE_EMAIL_VERIFICATION only verified accounts post.
    email_verified_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    # The member's language (forum.i18n.LANGUAGES) and time zone (an IANA name such as
    # "Asia/Shanghai"); NULL: the browser's language, the forum's default zone.
    locale: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    timezone: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)

    @validates("username")
    def _set_skeleton(self, key: str, value: str) -> str:
        self.username_skeleton = skeleton(value)
        return value

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:  # pragma: no cover
        return f"<User {self.username}>"


class Board(db.Model):
    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Denormalised counters, maintained in the same transaction as post writes.
    topic_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    post_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Plain integer (no FK constraint) to avoid a boards <-> posts FK cycle.
    last_post_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    last_post_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    last_post: Mapped[Optional["Post"]] = relationship(
        "Post", primaryjoin="foreign(Board.last_post_id) == Post.id", viewonly=True, uselist=False
    )
    topics: Mapped[list["Topic"]] = relationship(back_populates="board", passive_deletes=True)


class Topic(db.Model):
    __tablename__ = "topics"
    __table_args__ = (
        # Board page: WHERE board_id = ? AND is_deleted = false
        #             ORDER BY is_pinned DESC, last_post_at DESC
        Index("ix_topics_board_listing", "board_id", "is_deleted", "is_pinned", "last_post_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Soft delete: hidden from everybody but admins, who can restore it (moderation_log).
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    deleted_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    reply_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_post_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    last_post_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    board: Mapped[Board] = relationship(back_populates="topics")
    author: Mapped[User] = relationship()
    posts: Mapped[list["Post"]] = relationship(
        back_populates="topic", passive_deletes=True, order_by="Post.id"
    )
    last_post: Mapped[Optional["Post"]] = relationship(
        "Post", primaryjoin="foreign(Topic.last_post_id) == Post.id", viewonly=True, uselist=False
    )


class Post(db.Model):
    __tablename__ = "posts"
    __table_args__ = (
        # Topic page: WHERE topic_id = ? ORDER BY id
        Index("ix_posts_topic_id_id", "topic_id", "id"),
        # Profile page: WHERE user_id = ? ORDER BY id DESC
        Index("ix_posts_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    deleted_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)

    topic: Mapped[Topic] = relationship(back_populates="posts")
    author: Mapped[User] = relationship()


class ModerationLog(db.Model):
    """Who did what to which topic, post or user, when and (optionally) why."""

    __tablename__ = "moderation_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    target_type: Mapped[str] = mapped_column(String(20))  # "topic", "post" or "user"
    target_id: Mapped[int] = mapped_column(Integer)
    # What the target was called at the time (a topic title, a username).
    target_label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    reason: Mapped[Optional[str]] = mapped_column(String(500), nullable=True)

    actor: Mapped[User] = relationship()


class TopicRead(db.Model):
    """The newest post of a topic shown to a member (forum.reading)."""

    __tablename__ = "topic_reads"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    last_post_id: Mapped[int] = mapped_column(Integer)


class Notification(db.Model):
    """Something for one member to look at: ``actor`` mentioned them in a post
    (``mention``) or replied in their topic (``reply``)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_read_at", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    read_at: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)

    actor: Mapped[User] = relationship(foreign_keys=[actor_id])
    post: Mapped["Post"] = relationship()


@login_manager.user_loader
def load_user(user_id: str) -> Optional[User]:
    """Session and remember-me ids are "<id>:<generation>"; an id from a revoked
    generation (or the old bare "<id>" form) loads nobody: the request is anonymous."""
    try:
        uid, generation = (int(part) for part in str(user_id).split(":"))
    except (TypeError, ValueError):
        return None
    if not 0 < uid < 2**31:
        return None
    user = _load_member(uid)
    if user is None or user.session_generation != generation:
        return None
    return user


# What a page view needs of the visitor's own account (not the password hash, not
# the email).
_SESSION_COLUMNS = ("id", "username", "role", "is_banned", "post_count", "created_at", "session_generation",
                    "unread_notifications", "read_all_at", "locale", "timezone",
                    "email_verified_at")


class CachedAccount(_AccountMixin, UserMixin):
    """A read-only copy of a member's account for GET requests (``current_user`` on a
    page view): only the columns above. Views that write use the ORM row, which every
    POST loads from the database."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:  # pragma: no cover
        return f"<CachedAccount {self.username}>"


def _load_member(uid: int) -> "User | CachedAccount | None":
    """The account: for a GET a copy from the member cache (see forum.pagecache), else
    the database row."""
    from .pagecache import cached_user_row

    def row() -> Optional[dict]:
        user = db.session.get(User, uid)
        return None if user is None else {c: getattr(user, c) for c in _SESSION_COLUMNS}

    values = cached_user_row(str(uid), row, fallback=lambda: db.session.get(User, uid))
    if values is None or isinstance(values, User):
        return values
    return CachedAccount(values)


# --- counter maintenance -------------------------------------------------------


def recount_topic(topic_id: int) -> None:
    """Recompute a topic's denormalised fields from its posts (used after deletes)."""
    stats = db.session.execute(
        select(func.count(Post.id), func.max(Post.id), func.max(Post.created_at)).where(
            Post.topic_id == topic_id, Post.is_deleted == false()
        )
    ).one()
    count, last_id, last_at = stats
    db.session.execute(
        update(Topic)
        .where(Topic.id == topic_id)
        .values(reply_count=max((count or 0) - 1, 0), last_post_id=last_id, last_post_at=last_at)
    )


def recount_board(board_id: int) -> None:
    """Recompute a board's denormalised fields (used after deletes and bulk loads)."""
    topic_count = db.session.scalar(
        select(func.count(Topic.id)).where(Topic.board_id == board_id, Topic.is_deleted == false())
    )
    post_count, last_id = db.session.execute(
        select(func.count(Post.id), func.max(Post.id))
        .join(Topic, Post.topic_id == Topic.id)
        .where(Topic.board_id == board_id, Topic.is_deleted == false(), Post.is_deleted == false())
    ).one()
    last_at = db.session.scalar(select(Post.created_at).where(Post.id == last_id)) if last_id else None
    db.session.execute(
        update(Board)
        .where(Board.id == board_id)
        .values(
            topic_count=topic_count or 0,
            post_count=post_count or 0,
            last_post_id=last_id,
            last_post_at=last_at,
        )
    )


def recount_users(user_ids) -> None:
    """Recompute the post counts of ``user_ids`` (visible posts in visible topics)."""
    ids = sorted(set(user_ids))
    if ids:
        db.session.execute(
            update(User).where(User.id.in_(ids)).values(post_count=_visible_posts_of_user())
        )


def _visible_posts_of_user():
    return (
        select(func.count(Post.id))
        .join(Topic, Post.topic_id == Topic.id)
        .where(Post.user_id == User.id, Post.is_deleted == false(), Topic.is_deleted == false())
        .scalar_subquery()
    )


def recount_all() -> None:
    """Recompute every counter with set-based UPDATEs (fast; for bulk loads).
    Soft-deleted posts and topics count nowhere."""
    visible = (Post.topic_id == Topic.id, Post.is_deleted == false())
    post_stats = select(func.count(Post.id)).where(*visible).scalar_subquery()
    db.session.execute(
        update(Topic).values(
            reply_count=post_stats - 1,
            last_post_id=select(func.max(Post.id)).where(*visible).scalar_subquery(),
            last_post_at=select(func.max(Post.created_at)).where(*visible).scalar_subquery(),
        )
    )
    db.session.execute(update(Topic).where(Topic.reply_count < 0).values(reply_count=0))
    in_board = (Topic.board_id == Board.id, Topic.is_deleted == false())
    db.session.execute(
        update(Board).values(
            topic_count=select(func.count(Topic.id)).where(*in_board).scalar_subquery(),
            post_count=select(func.coalesce(func.sum(Topic.reply_count + 1), 0))
            .where(*in_board)
            .scalar_subquery(),
            last_post_id=select(func.max(Topic.last_post_id)).where(*in_board).scalar_subquery(),
            last_post_at=select(func.max(Topic.last_post_at)).where(*in_board).scalar_subquery(),
        )
    )
    db.session.execute(update(User).values(post_count=_visible_posts_of_user()))
