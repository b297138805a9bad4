"""The anonymous page cache: hits, per-user bypass, invalidation across workers."""
import os
import re

import pytest

from forum.pagecache import EXTENSION_KEY, PageCache

from .conftest import create_board, create_user, extract_csrf, login, make_app
from .test_pagination_queries import count_queries
from .test_posts import new_topic


@pytest.fixture
def cached_app(tmp_path):
    """make_app with the page cache on; removes the generation files afterwards."""
    apps = []

    def factory(db_url):
        app = make_app(tmp_path, db_url, PAGE_CACHE_SECONDS=60)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        path = app.extensions[EXTENSION_KEY].generation_file
        if os.path.exists(path):
            os.unlink(path)


def test_anonymous_pages_are_cached_and_invalidated_on_write(new_db_url, cached_app):
    url = new_db_url()
    # Two app objects on one database stand for two Gunicorn workers.
    worker1 = cached_app(url)
    worker2 = cached_app(url)
    create_board(worker1)
    create_user(worker1)
    writer = worker1.test_client()
    login(writer)
    topic_id = new_topic(writer, title="First topic")

    reader = worker2.test_client()
    for path in ("/", "/b/general", f"/t/{topic_id}"):
        first = reader.get(path)
        assert first.status_code == 200 and first.headers["X-Page-Cache"] == "miss"
        assert "Set-Cookie" not in first.headers
        with count_queries(worker2) as statements:
            second = reader.get(path)
        assert second.headers["X-Page-Cache"] == "hit" and statements == []
        assert second.get_data() == first.get_data()
        assert second.headers["Content-Type"].startswith("text/html")

    # A write in the other "worker" invalidates this worker's pages at once.
    writer.post(f"/t/{topic_id}/reply", data={"body": "fresh reply"})
    resp = reader.get(f"/t/{topic_id}")
    assert resp.headers["X-Page-Cache"] == "miss" and "fresh reply" in resp.get_data(as_text=True)
    new_topic(writer, title="Second topic")
    resp = reader.get("/b/general")
    assert resp.headers["X-Page-Cache"] == "miss" and "Second topic" in resp.get_data(as_text=True)

    # Logged-in users (any cookie) never get or fill cached pages.
    page = writer.get("/b/general")
    assert "X-Page-Cache" not in page.headers and "Log out" in page.get_data(as_text=True)
    assert "Log out" not in reader.get("/b/general").get_data(as_text=True)


def test_error_pages_and_other_pages_are_not_cached(new_db_url, cached_app):
    app = cached_app(new_db_url())
    client = app.test_client()
    assert client.get("/b/nope").status_code == 404
    assert client.get("/b/nope").headers.get("X-Page-Cache") != "hit"
    assert "X-Page-Cache" not in client.get("/login").headers


def test_cache_expires(tmp_path, monkeypatch):
    cache = PageCache(ttl=5, generation_file=str(tmp_path / "gen"))
    import time

    from forum.pagecache import _Entry

    cache.put("/x", _Entry(time.time_ns(), time.monotonic() + 5, b"body", []))
    assert cache.get("/x") is not None
    monkeypatch.setattr(time, "monotonic", lambda: 10**9)
    assert cache.get("/x") is None


def test_cache_is_bounded(tmp_path):
    import time

    from forum.pagecache import _Entry

    cache = PageCache(ttl=60, generation_file=str(tmp_path / "gen"), max_entries=10)
    for i in range(25):
        cache.put(f"/b/x?junk={i}", _Entry(time.time_ns(), time.monotonic() + 60, b"x" * 100, []))
    assert len(cache._entries) == 10
    assert cache.get("/b/x?junk=0") is None and cache.get("/b/x?junk=24") is not None
    cache.invalidate()  # clears this worker and bumps the shared generation
    assert len(cache._entries) == 0 and (tmp_path / "gen").exists()


def test_members_get_the_shared_listing_without_its_queries_and_see_writes(new_db_url, cached_app):
    """The board listing is a shared fragment: a member's second view of a board runs
    no topic query, yet a new topic shows up at once (invalidation on commit)."""
    app = cached_app(new_db_url())
    create_board(app)
    create_user(app)
    create_user(app, username="bob")
    alice = app.test_client()
    login(alice)
    new_topic(alice, title="First topic")
    bob = app.test_client()
    login(bob, username="bob")
    first = bob.get("/b/general")
    assert first.status_code == 200 and b"First topic" in first.data
    assert b"bob" in first.data  # the member's own page around the shared part
    with count_queries(app) as statements:
        again = bob.get("/b/general")
    assert again.status_code == 200 and b"First topic" in again.data
    assert not [s for s in statements if "topics" in s.lower()], statements
    new_topic(alice, title="Second topic")
    assert b"Second topic" in bob.get("/b/general").data
    # The index's board table is shared the same way.
    assert b"Second topic" in bob.get("/").data


def test_an_unknown_board_is_a_404_for_members_every_time(new_db_url, cached_app):
    app = cached_app(new_db_url())
    create_user(app)
    member = app.test_client()
    login(member)
    assert member.get("/b/nowhere").status_code == 404
    assert member.get("/b/nowhere").status_code == 404


def test_members_see_every_write_at_once_across_workers(new_db_url, cached_app):
    """Topic pages, board pages and the index are built from shared fragments and the
    member's account is cached for GETs: a reply, an edit, a delete, a lock, a role
    change and a ban made through one app ("worker") show on the next page the member
    gets from another app on the same database."""
    url = new_db_url()
    worker1, worker2 = cached_app(url), cached_app(url)
    create_board(worker1)
    create_user(worker1)  # alice: the writer
    create_user(worker1, username="bob")  # bob: the reader, on the other worker
    create_user(worker1, username="admin", role="admin")
    alice, admin, bob = worker1.test_client(), worker1.test_client(), worker2.test_client()
    login(alice)
    login(admin, username="admin")
    login(bob, username="bob")
    topic_id = new_topic(alice, title="Cached topic", body="opening words")

    def seen(path: str) -> str:
        # Twice: the second view comes from the fragment and account caches.
        bob.get(path)
        with count_queries(worker2) as statements:
            page = bob.get(path)
        assert page.status_code == 200
        return page.get_data(as_text=True)

    topic_page = f"/t/{topic_id}"
    assert "opening words" in seen(topic_page)
    with count_queries(worker2) as statements:
        bob.get(topic_page)
    assert statements == []  # the whole member page from the caches: no query at all

    # bob sees his own buttons only on his own posts: per-viewer parts are not shared.
    assert bob.post(f"/t/{topic_id}/reply", data={"body": "bob was here"}).status_code == 302
    page = seen(topic_page)
    assert "bob was here" in page and page.count(">Edit</a>") == 1
    alice_view = alice.get(topic_page).get_data(as_text=True)
    assert "bob was here" in alice_view and alice_view.count(">Edit</a>") == 1

    # A reply, an edit, a delete.
    assert alice.post(f"/t/{topic_id}/reply", data={"body": "second reply"}).status_code == 302
    assert "second reply" in seen(topic_page)
    with worker1.app_context():
        from forum.extensions import db
        from forum.models import Post
        from sqlalchemy import select

        reply_id = db.session.scalar(select(Post.id).where(Post.body == "second reply"))
    assert alice.post(f"/p/{reply_id}/edit", data={"body": "edited reply"}).status_code == 302
    page = seen(topic_page)
    assert "edited reply" in page and "second reply" not in page and "(edited " in page
    assert alice.post(f"/p/{reply_id}/delete", data={"reason": ""}).status_code == 302
    assert "edited reply" not in seen(topic_page)

    # A lock: bob's reply form goes away at once.
    assert "reply-form" in seen(topic_page)
    assert admin.post(f"/t/{topic_id}/lock").status_code == 302
    page = seen(topic_page)
    assert "reply-form" not in page and "This topic is locked" in page and "Locked" in page

    # A role change: bob gets the moderator tools on his next page.
    assert "mod-tools" not in seen(topic_page)
    assert admin.post("/u/bob/role", data={"role": "moderator"}).status_code == 302
    assert "mod-tools" in seen(topic_page)
    assert admin.post("/u/bob/role", data={"role": "member"}).status_code == 302
    assert "mod-tools" not in seen(topic_page)

    # A ban ends bob's sessions: his very next page is an anonymous one.
    assert "Log out" in seen(topic_page)
    assert admin.post("/u/bob/ban", data={"reason": ""}).status_code == 302
    page = seen(topic_page)
    assert "Log out" not in page and "Log in</a> to reply" in page

    # A deleted topic is gone for members at once (404), kept for the admin.
    alice2 = worker2.test_client()
    login(alice2)
    assert alice2.get(topic_page).status_code == 200
    assert admin.post(f"/t/{topic_id}/delete", data={"reason": ""}).status_code == 302
    assert alice2.get(topic_page).status_code == 404
    assert admin.get(topic_page).status_code == 200


def _login_with_token(client, username):
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": username, "password": "correct horse", "csrf_token": token})
    assert resp.status_code == 302
    client.get("/notifications")  # shows (and so clears) the welcome message


def test_member_pages_share_a_skeleton_but_never_a_name_a_token_or_a_button(new_db_url, tmp_path):
    """Members of the same kind get the same page around their own user menu and CSRF
    token (forum.pagecache.member_page): the second member's page names them, carries
    their own working token, and shows the buttons they may use, not the first one's."""
    app = make_app(tmp_path, new_db_url(), PAGE_CACHE_SECONDS=60, WTF_CSRF_ENABLED=True)
    create_board(app)
    for name in ("alice", "bob", "carol"):
        create_user(app, username=name)
    create_user(app, username="dave", banned=True)
    alice = app.test_client()
    _login_with_token(alice, "alice")
    token = extract_csrf(alice.get("/b/general/new").get_data(as_text=True))
    resp = alice.post("/b/general/new", data={"title": "Alice's topic", "body": "hello", "csrf_token": token})
    topic_path = "/t/" + resp.headers["Location"].rsplit("/", 1)[1]

    clients = {}
    for name in ("bob", "carol", "dave"):
        clients[name] = app.test_client()
        _login_with_token(clients[name], name)
    pages = {}
    for name in ("bob", "carol", "dave", "alice"):  # bob fills the skeletons first
        client = clients.get(name, alice)
        pages[name] = {path: client.get(path).get_data(as_text=True) for path in ("/", "/b/general", topic_path)}
    for name, by_path in pages.items():
        for path, html in by_path.items():
            assert f'href="/u/{name}">{name}</a>' in html, (name, path)
            others = {"alice", "bob", "carol", "dave"} - {name}
            assert not [o for o in others if f'href="/u/{o}">' in html and o != "alice"], (name, path)
            assert "\x00" not in html  # no hole of the skeleton is left
            # Every form of the page (the user menu's and the skeleton's) has the same token.
            tokens = re.findall(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', html)
            assert tokens and len(set(tokens)) == 1, (name, path, tokens)
            assert path != "/" or len(tokens) == 2
    # Carol's token in the shared skeleton of the index (its "Mark all as read" form)
    # is her own: it works.
    form = pages["carol"]["/"].split('class="inline mark-read"', 1)[1]
    resp = clients["carol"].post("/read-all", data={"csrf_token": extract_csrf(form)})
    assert resp.status_code == 302
    # ... and a flashed message reaches her page (rendered for her alone).
    assert "Everything is marked as read." in clients["carol"].get("/").get_data(as_text=True)
    # Bob's token is not Carol's.
    resp = clients["carol"].post("/read-all", data={"csrf_token": extract_csrf(pages["bob"]["/"])})
    assert resp.status_code == 400
    # Buttons: the author may edit her post, bob may not; the banned member gets no
    # "New topic" though bob's page (with it) was cached first.
    assert "/edit" in pages["alice"][topic_path] and "/edit" not in pages["bob"][topic_path]
    assert "/b/general/new" in pages["bob"]["/b/general"]
    assert "/b/general/new" not in pages["dave"]["/b/general"]
    assert "Your account is banned from posting." in pages["dave"][topic_path]
    # The menu's unread count is the member's own, though the menu is shared too.
    token = extract_csrf(pages["bob"][topic_path])
    assert clients["bob"].post(f"{topic_path}/reply", data={"body": "a reply", "csrf_token": token}).status_code == 302
    for _ in range(2):  # the second view comes from the menu and page skeletons
        assert 'title="unread">1</span>' in alice.get("/b/general").get_data(as_text=True)
        assert 'title="unread"' not in clients["carol"].get("/b/general").get_data(as_text=True)
