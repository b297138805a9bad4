"""The anonymous page cache: hits, per-user bypass, invalidation across workers."""
import os

import pytest

from forum.pagecache import EXTENSION_KEY, PageCache

from .conftest import create_board, create_user, login, make_app
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
