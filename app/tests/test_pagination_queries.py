import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import event

from forum.extensions import db
from forum.models import Board, Post, Topic, User, recount_all, utcnow

from .conftest import make_app


def populate(app, topics, replies, boards=1):
    with app.app_context():
        user = User(username="writer", email="w@example.org")
        user.set_password("whatever-pass")
        db.session.add(user)
        # Distinct authors per topic/reply so lazy loading would cost one query per row.
        authors = [User(username=f"author{i}", email=f"a{i}@example.org", password_hash="x")
                   for i in range(max(topics, replies + 1))]
        db.session.add_all(authors)
        board_objs = [Board(name=f"Board {i}", slug=f"board-{i}", description="d") for i in range(boards)]
        db.session.add_all(board_objs)
        db.session.flush()
        now = utcnow()
        for t in range(topics):
            topic = Topic(board_id=board_objs[t % boards].id, user_id=authors[t].id, title=f"Topic {t:03d}",
                          created_at=now + timedelta(seconds=t))
            db.session.add(topic)
            db.session.flush()
            for r in range(replies + 1):
                post_author = user if (t == 0 and r == 0) or r % 2 else authors[(t + r) % len(authors)]
                db.session.add(Post(topic_id=topic.id, user_id=post_author.id, body=f"post {t}-{r}",
                                    body_html=f"<p>post {t}-{r}</p>",
                                    created_at=now + timedelta(seconds=t, milliseconds=r)))
        db.session.flush()
        recount_all()
        db.session.commit()


@contextlib.contextmanager
def count_queries(app):
    statements = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


def test_topic_pagination(tmp_path, new_db_url):
    app = make_app(tmp_path, new_db_url(), POSTS_PER_PAGE=10, TOPICS_PER_PAGE=5)
    populate(app, topics=12, replies=24)  # 25 posts per topic
    client = app.test_client()
    with app.app_context():
        topic_id = db.session.scalar(db.select(Topic.id).where(Topic.title == "Topic 000"))
    page1 = client.get(f"/t/{topic_id}").get_data(as_text=True)
    page3 = client.get(f"/t/{topic_id}?page=3").get_data(as_text=True)
    assert page1.count('class="post"') == 10
    assert page3.count('class="post"') == 5
    assert "post 0-0<" in page1 and "post 0-24<" not in page1
    assert "post 0-24<" in page3 and "post 0-0<" not in page3
    assert 'rel="next"' in page1 and 'rel="next"' not in page3

    board1 = client.get("/b/board-0").get_data(as_text=True)
    board3 = client.get("/b/board-0?page=3").get_data(as_text=True)
    assert board1.count('class="title"') == 5
    assert board3.count('class="title"') == 2
    # newest activity first
    assert "Topic 011" in board1 and "Topic 000" in board3
    assert client.get("/b/board-0?page=99").status_code == 200
    assert client.get("/b/board-0?page=abc").status_code == 200
    assert client.get("/b/board-0?page=99999999999999999999999").status_code == 200
    assert client.get(f"/t/{topic_id}?page=99999999999999999999999").status_code == 200


def test_post_permalink_redirects_to_right_page(tmp_path, new_db_url):
    app = make_app(tmp_path, new_db_url(), POSTS_PER_PAGE=10)
    populate(app, topics=1, replies=24)
    with app.app_context():
        last = db.session.scalar(db.select(db.func.max(Post.id)))
        topic_id = db.session.scalar(db.select(Topic.id))
    resp = app.test_client().get(f"/p/{last}")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/t/{topic_id}?page=3#p{last}")


def queries_for(tmp_path, db_url, topics, replies, boards, path_for):
    app = make_app(tmp_path, db_url, POSTS_PER_PAGE=50, TOPICS_PER_PAGE=50)
    populate(app, topics=topics, replies=replies, boards=boards)
    client = app.test_client()
    with app.app_context():
        topic_id = db.session.scalar(db.select(Topic.id).order_by(Topic.id))
    path = path_for(topic_id)
    client.get(path)  # warm up
    with count_queries(app) as statements:
        resp = client.get(path)
    assert resp.status_code == 200
    return len(statements), resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "path_for, rows_marker",
    [
        (lambda tid: "/", 'class="board-row"'),
        (lambda tid: "/b/board-0", 'class="title"'),
        (lambda tid: f"/t/{tid}", 'class="post"'),
        (lambda tid: "/u/writer", 'class="post compact"'),
    ],
    ids=["index", "board", "topic", "profile"],
)
def test_query_count_does_not_grow_with_rows(tmp_path, new_db_url, path_for, rows_marker):
    small, small_html = queries_for(tmp_path, new_db_url(), topics=2, replies=1, boards=1, path_for=path_for)
    large, large_html = queries_for(tmp_path, new_db_url(), topics=40, replies=30, boards=6, path_for=path_for)
    # More rows were really rendered on the large database.
    assert large_html.count(rows_marker) > small_html.count(rows_marker) >= 1
    print(f"queries small={small} large={large}")
    assert small == large, (small, large)
    assert large <= 5
