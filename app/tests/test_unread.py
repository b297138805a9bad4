"""Unread markers on boards and topics, "Mark all as read", and that keeping
them costs the page caches nothing."""
import re

from .conftest import create_board, create_user, login
from .test_pagecache import cached_app, count_queries  # noqa: F401  (fixture)
from .test_posts import new_topic

NEW = '<span class="badge badge-new">new</span>'


def member(app, name):
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def new_count(client, url) -> int:
    return client.get(url).get_data(as_text=True).count(NEW)


def test_a_new_topic_is_unread_until_seen_and_a_reply_makes_it_unread_again(app):
    create_board(app)
    create_user(app, "alice")
    create_user(app, "bob")
    bob = member(app, "bob")
    topic_id = new_topic(bob, title="Fresh news")
    alice = member(app, "alice")
    assert new_count(alice, "/") == 1
    board = alice.get("/b/general").get_data(as_text=True)
    assert re.search(re.escape(NEW) + r'\s*<a class="title" href="/t/%d">Fresh news' % topic_id, board)
    assert new_count(bob, "/b/general") == 0  # bob saw his own topic (he was sent to it)

    alice.get(f"/t/{topic_id}")
    assert new_count(alice, "/b/general") == 0 and new_count(alice, "/") == 0

    bob.post(f"/t/{topic_id}/reply", data={"body": "more news"})
    assert new_count(alice, "/b/general") == 1 and new_count(alice, "/") == 1
    assert new_count(bob, "/b/general") == 0
    alice.get(f"/t/{topic_id}")
    assert new_count(alice, "/b/general") == 0


def test_posts_from_before_joining_count_as_read_and_anonymous_sees_no_marker(app, client):
    create_board(app)
    create_user(app, "bob")
    new_topic(member(app, "bob"))
    create_user(app, "carol")
    assert new_count(member(app, "carol"), "/b/general") == 0
    assert new_count(client, "/b/general") == 0 and new_count(client, "/") == 0


def test_mark_all_as_read(app):
    create_board(app)
    create_user(app, "alice")
    create_user(app, "bob")
    bob = member(app, "bob")
    first = new_topic(bob, title="One")
    new_topic(bob, title="Two")
    alice = member(app, "alice")
    assert new_count(alice, "/b/general") == 2
    assert 'action="/read-all"' in alice.get("/").get_data(as_text=True)
    assert alice.post("/read-all").status_code == 302
    assert new_count(alice, "/b/general") == 0 and new_count(alice, "/") == 0
    bob.post(f"/t/{first}/reply", data={"body": "later"})
    assert new_count(alice, "/b/general") == 1
    assert app.test_client().post("/read-all").status_code == 302  # anonymous: to the login page


def test_recording_a_view_keeps_the_caches_and_repeat_views_run_no_query(new_db_url, cached_app):  # noqa: F811
    app = cached_app(new_db_url())
    create_board(app)
    create_user(app, "alice")
    create_user(app, "bob")
    topic_id = new_topic(member(app, "bob"))
    anonymous = app.test_client()
    assert anonymous.get("/b/general").headers["X-Page-Cache"] == "miss"
    assert anonymous.get("/b/general").headers["X-Page-Cache"] == "hit"
    alice = member(app, "alice")
    alice.get(f"/t/{topic_id}")  # records the view: a commit that must not invalidate
    assert anonymous.get("/b/general").headers["X-Page-Cache"] == "hit"
    with count_queries(app) as statements:
        assert alice.get(f"/t/{topic_id}").status_code == 200
    assert statements == [], statements
    assert new_count(alice, "/b/general") == 0
