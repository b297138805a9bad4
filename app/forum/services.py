"""Write operations that keep the denormalised counters consistent.

Every function here only adds to the current session/transaction; callers commit.
"""
from __future__ import annotations

from sqlalchemy import update

from .extensions import db
from .markup import render_markdown
from .models import Board, Post, Topic, User, recount_board, recount_topic, utcnow


def create_topic(board: Board, author: User, title: str, body: str) -> Topic:
    now = utcnow()
    topic = Topic(board_id=board.id, user_id=author.id, title=title.strip(), created_at=now,
                  last_post_at=now, reply_count=0)
    db.session.add(topic)
    db.session.flush()
    post = Post(topic_id=topic.id, user_id=author.id, body=body, body_html=render_markdown(body),
                created_at=now)
    db.session.add(post)
    db.session.flush()
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
    post = Post(topic_id=topic.id, user_id=author.id, body=body, body_html=render_markdown(body),
                created_at=now)
    db.session.add(post)
    db.session.flush()
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
    post.body = body
    post.body_html = render_markdown(body)
    post.updated_at = utcnow()


def delete_post(post: Post) -> None:
    """Delete a reply (not the first post of a topic) and fix counters."""
    topic_id, board_id, user_id = post.topic_id, post.topic.board_id, post.user_id
    db.session.delete(post)
    db.session.flush()
    db.session.execute(
        update(User).where(User.id == user_id).values(post_count=User.post_count - 1)
    )
    recount_topic(topic_id)
    recount_board(board_id)


def delete_topic(topic: Topic) -> None:
    """Delete a topic with all its posts and fix counters."""
    board_id = topic.board_id
    # Per-user post counts for the authors involved.
    from sqlalchemy import func, select

    per_user = db.session.execute(
        select(Post.user_id, func.count(Post.id)).where(Post.topic_id == topic.id).group_by(Post.user_id)
    ).all()
    db.session.execute(Post.__table__.delete().where(Post.topic_id == topic.id))
    db.session.delete(topic)
    db.session.flush()
    for user_id, n in per_user:
        db.session.execute(
            update(User).where(User.id == user_id).values(post_count=User.post_count - n)
        )
    recount_board(board_id)


def move_topic(topic: Topic, target: Board) -> None:
    """Move a topic (with its posts) to another board and fix both boards' counters."""
    source_id = topic.board_id
    if source_id == target.id:
        return
    topic.board_id = target.id
    db.session.flush()
    recount_board(source_id)
    recount_board(target.id)
