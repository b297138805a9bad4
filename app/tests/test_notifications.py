"""@mentions link to profiles and notify; replies notify the topic's author;
a notifications page with an unread count in the header."""
import re

from forum.extensions import db as _db
from forum.models import Notification, Post, User

from .conftest import create_board, create_user, login
from .test_pagecache import cached_app  # noqa: F401  (fixture)
from .test_posts import new_topic


def as_member(app, name):
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def badge(client) -> str | None:
    html = client.get("/").get_data(as_text=True)
    match = re.search(r'class="notifications-link">Notifications(?: <span class="badge" title="unread">(\d+)</span>)?</a>', html)
    assert match, "no notifications link in the header"
    return match.group(1)


def setup_members(app, *names):
    create_board(app)
    for name in ("bob", *names):
        create_user(app, name)


def test_mentions_link_to_profiles_and_notify_in_any_script(app):
    setup_members(app, "alice", "张三丰")
    bob = as_member(app, "bob")
    topic_id = new_topic(bob, body="hi @Alice, 你好@张三丰请看. Not `@alice` in code, "
                                   "not bob@example.org, not @nobody.")
    html = bob.get(f"/t/{topic_id}").get_data(as_text=True)
    assert '<a href="/u/alice" class="mention"' in html and ">@Alice</a>" in html
    assert '<a href="/u/%E5%BC%A0%E4%B8%89%E4%B8%B0" class="mention"' in html and ">@张三丰</a>请看" in html
    assert "<code>@alice</code>" in html and "bob@example.org" in html and "@nobody" in html
    assert html.count('class="mention"') == 2

    alice = as_member(app, "alice")
    assert badge(alice) == "1"
    page = alice.get("/notifications").get_data(as_text=True)
    assert "<strong>bob</strong>" in page and "mentioned you in" in page and "A topic" in page
    assert badge(as_member(app, "张三丰")) == "1"
    assert badge(bob) is None  # the author is not notified of their own post


def test_opening_a_notification_marks_it_read_and_goes_to_the_post(app):
    setup_members(app, "alice")
    topic_id = new_topic(as_member(app, "bob"), body="@alice look")
    alice = as_member(app, "alice")
    with app.app_context():
        nid, post_id = _db.session.execute(_db.select(Notification.id, Notification.post_id)).one()
    # Nobody else can open it.
    assert as_member(app, "bob").get(f"/notifications/{nid}").status_code == 404
    resp = alice.get(f"/notifications/{nid}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/p/{post_id}")
    assert badge(alice) is None
    assert 'class="notification unread"' not in alice.get("/notifications").get_data(as_text=True)
    assert topic_id


def test_a_reply_notifies_the_topic_author_once_and_mark_all_read_clears(app):
    setup_members(app, "alice", "carol")
    alice = as_member(app, "alice")
    topic_id = new_topic(alice, body="my topic")
    bob = as_member(app, "bob")
    bob.post(f"/t/{topic_id}/reply", data={"body": "a reply"})
    bob.post(f"/t/{topic_id}/reply", data={"body": "@alice and @carol, again"})
    alice.post(f"/t/{topic_id}/reply", data={"body": "thanks @alice (myself)"})
    assert badge(alice) == "2"  # one reply, one mention (a mention wins over "reply"); none for her own post
    page = alice.get("/notifications").get_data(as_text=True)
    assert page.count("replied in your topic") == 1 and page.count("mentioned you in") == 1
    assert badge(as_member(app, "carol")) == "1"
    assert alice.post("/notifications/read").status_code == 302
    assert badge(alice) is None


def test_an_edit_notifies_only_the_newly_mentioned(app):
    setup_members(app, "alice", "carol")
    bob = as_member(app, "bob")
    topic_id = new_topic(bob, body="hello @alice")
    with app.app_context():
        post_id = _db.session.scalar(_db.select(Post.id).where(Post.topic_id == topic_id))
    resp = bob.post(f"/p/{post_id}/edit", data={"body": "hello @alice and @carol"})
    assert resp.status_code == 302
    assert badge(as_member(app, "alice")) == "1" and badge(as_member(app, "carol")) == "1"


def test_banned_members_are_not_notified_and_deleted_posts_drop_out(app):
    setup_members(app, "alice")
    create_user(app, "mallory", banned=True)
    create_user(app, "mod", role="moderator")
    bob = as_member(app, "bob")
    topic_id = new_topic(bob, body="@mallory @alice")
    with app.app_context():
        assert _db.session.scalar(_db.select(_db.func.count(Notification.id))) == 1
        post_id = _db.session.scalar(_db.select(Post.id).where(Post.topic_id == topic_id))
    alice = as_member(app, "alice")
    assert badge(alice) == "1"
    mod = as_member(app, "mod")
    assert mod.post(f"/t/{topic_id}/delete", data={"reason": "spam"}).status_code == 302
    page = alice.get("/notifications").get_data(as_text=True)
    assert "mentioned you" not in page and "Nothing yet" in page
    assert badge(alice) is None
    with app.app_context():
        assert _db.session.scalar(_db.select(User.unread_notifications).where(User.username == "alice")) == 0
    assert post_id


def test_the_header_count_is_fresh_with_the_member_cache_on(new_db_url, cached_app):  # noqa: F811
    app = cached_app(new_db_url())
    setup_members(app, "alice")
    alice = as_member(app, "alice")
    assert badge(alice) is None and badge(alice) is None  # the account row is cached now
    new_topic(as_member(app, "bob"), body="@alice ping")
    assert badge(alice) == "1"


def test_notifications_need_a_login(client):
    assert client.get("/notifications").status_code == 302
    assert client.post("/notifications/read").status_code == 302
