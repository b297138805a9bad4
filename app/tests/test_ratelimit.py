"""Rate limits in one process (memory:// store): which requests count, keys, the 429 page.

The same limits across gunicorn workers through Redis: tests/test_ratelimit_shared.py.
"""
import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.middleware.proxy_fix import ProxyFix

from forum import ConfigError
from forum.config import load_config
from forum.extensions import db as _db
from forum.models import Post, User, utcnow

from .conftest import create_board, create_user, login, make_app


def limited_app(tmp_path, db_url=None, **overrides):
    return make_app(tmp_path, db_url, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                    **overrides)


def guess(client, username="x", address="203.0.113.7", password="wrong password"):
    return client.post("/login", data={"username": username, "password": password},
                       headers={"X-Forwarded-For": address})


def retry_after_in_page(resp) -> int:
    """The seconds the 429 page states, checked against the Retry-After header."""
    assert resp.status_code == 429
    text = resp.get_data(as_text=True)
    match = re.search(r"try again in (\d+) seconds?", text)
    assert match, text
    seconds = int(match.group(1))
    assert resp.headers["Retry-After"] == str(seconds)
    return seconds


def test_login_per_address_429_page_and_exemptions(tmp_path):
    app = limited_app(tmp_path, FORUM_LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    # Three different accounts from one address: the address limit, not the account's.
    codes = [guess(client, f"user{i}").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    resp = guess(client, "user9")
    assert b"Too many requests" in resp.data
    assert 1 <= retry_after_in_page(resp) <= 60
    # GET of the form is not limited, nor is /healthz.
    assert client.get("/login", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    for _ in range(10):
        assert client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    # ProxyFix: another client address (as set by nginx) has its own bucket.
    assert guess(client, "user0", address="198.51.100.9").status_code == 401


def test_429_as_json_has_retry_after(tmp_path):
    app = limited_app(tmp_path, FORUM_LOGIN_RATE_LIMIT="1 per hour")
    client = app.test_client()
    assert guess(client).status_code == 401
    resp = client.post("/login", data={"username": "x", "password": "y"},
                       headers={"Accept": "application/json", "X-Forwarded-For": "203.0.113.7"})
    assert resp.status_code == 429
    body = resp.get_json()
    assert body["code"] == 429
    assert 3500 <= body["retry_after"] <= 3600
    assert resp.headers["Retry-After"] == str(body["retry_after"])


def test_login_per_account_counts_failures_from_any_address(tmp_path, new_db_url):
    app = limited_app(tmp_path, new_db_url(), FORUM_LOGIN_RATE_LIMIT="100 per minute",
                      FORUM_LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")
    create_user(app, "alice", "correct horse")
    client = app.test_client()
    # One account, spelled differently, from a new address each time: one count.
    spellings = ["alice", " Alice ", "ALICE", "\uff41\uff4c\uff49\uff43\uff45"]  # last: fullwidth
    codes = [guess(client, name, address=f"192.0.2.{i}").status_code for i, name in enumerate(spellings)]
    assert codes == [401, 401, 401, 429]
    # Even the right password is refused now: the account is locked for the window.
    resp = guess(client, "alice", address="192.0.2.50", password="correct horse")
    assert 3500 <= retry_after_in_page(resp) <= 3600
    with client.session_transaction() as session:
        assert "_user_id" not in session
    # Other accounts are not affected.
    assert guess(client, "bob", address="192.0.2.1").status_code == 401
    # A nonexistent account is limited the same way (no hint that it does not exist).
    for i in range(3):
        assert guess(client, "nobody", address=f"192.0.2.{60 + i}").status_code == 401
    assert guess(client, "nobody", address="192.0.2.70").status_code == 429


def test_successful_login_clears_the_account_count(tmp_path, new_db_url):
    app = limited_app(tmp_path, new_db_url(), FORUM_LOGIN_RATE_LIMIT="100 per minute",
                      FORUM_LOGIN_ACCOUNT_RATE_LIMIT="3 per hour")
    create_user(app, "alice", "correct horse")
    client = app.test_client()
    assert [guess(client, "alice").status_code for _ in range(2)] == [401, 401]
    assert guess(client, "alice", password="correct horse").status_code == 302
    client.post("/logout")  # CSRF is off in these tests
    client.delete_cookie("session")
    # The two failures and the success no longer count: three more failures, then 429.
    assert [guess(client, "alice").status_code for _ in range(4)] == [401, 401, 401, 429]


def test_registration_per_address(tmp_path, new_db_url):
    app = limited_app(tmp_path, new_db_url(), FORUM_REGISTER_RATE_LIMIT="2 per hour")
    client = app.test_client()

    def register(name, address="203.0.113.7"):
        client.delete_cookie("session")
        return client.post("/register", headers={"X-Forwarded-For": address}, data={
            "username": name, "email": f"{name}@example.org",
            "password": "long enough pw", "confirm": "long enough pw"})

    assert [register(f"spam{i}").status_code for i in range(4)] == [302, 302, 429, 429]
    assert 3500 <= retry_after_in_page(register("spam10")) <= 3600
    with app.app_context():
        assert _db.session.scalar(select(func.count(User.id))) == 2
    # Another address may still register.
    assert register("someone", address="198.51.100.9").status_code == 302


def _post_app(tmp_path, db_url):
    app = limited_app(tmp_path, db_url, FORUM_POST_RATE_LIMIT="4 per minute",
                      FORUM_NEW_ACCOUNT_POST_RATE_LIMIT="2 per minute",
                      FORUM_NEW_ACCOUNT_SECONDS=3600, FORUM_LOGIN_RATE_LIMIT="100 per minute")
    create_board(app)
    return app


def _age_account(app, username, seconds):
    with app.app_context():
        user = _db.session.scalar(select(User).where(User.username == username))
        user.created_at = utcnow() - timedelta(seconds=seconds)
        _db.session.commit()


def _count_posts(app, username):
    with app.app_context():
        return _db.session.scalar(
            select(func.count(Post.id)).join(User, Post.user_id == User.id).where(User.username == username))


def test_posting_limit_shared_by_topics_and_replies(tmp_path, new_db_url):
    app = _post_app(tmp_path, new_db_url())
    create_user(app, "old")
    _age_account(app, "old", 7200)
    client = app.test_client()
    assert login(client, "old").status_code == 302
    resp = client.post("/b/general/new", data={"title": "First topic", "body": "hello"})
    assert resp.status_code == 302
    topic_url = resp.headers["Location"]
    topic_id = int(re.search(r"/t/(\d+)", topic_url).group(1))
    codes = [client.post(f"/t/{topic_id}/reply", data={"body": f"reply {i}"}).status_code for i in range(3)]
    assert codes == [302, 302, 302]
    # The fifth post, topic or reply, is refused and not stored.
    assert client.post(f"/t/{topic_id}/reply", data={"body": "one too many"}).status_code == 429
    resp = client.post("/b/general/new", data={"title": "Second topic", "body": "hello"})
    assert 1 <= retry_after_in_page(resp) <= 60
    assert _count_posts(app, "old") == 4
    # Reading is not limited.
    assert client.get(f"/t/{topic_id}").status_code == 200
    # Another account has its own count.
    create_user(app, "other")
    _age_account(app, "other", 7200)
    other = app.test_client()
    login(other, "other")
    assert other.post(f"/t/{topic_id}/reply", data={"body": "mine"}).status_code == 302


def test_new_accounts_have_the_stricter_posting_limit(tmp_path, new_db_url):
    app = _post_app(tmp_path, new_db_url())
    create_user(app, "newbie")  # created now: younger than FORUM_NEW_ACCOUNT_SECONDS
    create_user(app, "mod", role="moderator")
    client = app.test_client()
    login(client, "newbie")
    codes = [client.post("/b/general/new", data={"title": f"Topic {i}", "body": "x"}).status_code
             for i in range(3)]
    assert codes == [302, 302, 429]
    assert _count_posts(app, "newbie") == 2
    # Moderators (new or not) are not limited.
    mod = app.test_client()
    login(mod, "mod")
    codes = [mod.post("/b/general/new", data={"title": f"Notice {i}", "body": "x"}).status_code
             for i in range(6)]
    assert codes == [302] * 6


def test_memory_store_warns_once_that_limits_are_per_worker(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        limited_app(tmp_path)
    warnings = [r for r in caplog.records if "per worker" in r.getMessage()]
    assert len(warnings) == 1
    assert "RATELIMIT_STORAGE_URI" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    assert not [r for r in caplog.records if "per worker" in r.getMessage()]


def test_config_defaults_and_bad_values_name_the_variable():
    config = load_config({})
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["RATELIMIT_STRATEGY"] == "moving-window"
    assert config["FORUM_LOGIN_ACCOUNT_RATE_LIMIT"] == "10 per hour"
    config = load_config({"RATELIMIT_STORAGE_URI": "redis://:pw@10.0.0.5:6379/0",
                          "FORUM_POST_RATE_LIMIT": "5/minute;50/day"})
    assert config["RATELIMIT_STORAGE_URI"] == "redis://:pw@10.0.0.5:6379/0"
    assert config["FORUM_POST_RATE_LIMIT"] == "5/minute;50/day"
    for name in ("FORUM_LOGIN_RATE_LIMIT", "FORUM_LOGIN_ACCOUNT_RATE_LIMIT", "FORUM_REGISTER_RATE_LIMIT",
                 "FORUM_POST_RATE_LIMIT", "FORUM_NEW_ACCOUNT_POST_RATE_LIMIT"):
        with pytest.raises(ConfigError, match=name):
            load_config({name: "ten a minute"})
    with pytest.raises(ConfigError, match="FORUM_NEW_ACCOUNT_SECONDS"):
        load_config({"FORUM_NEW_ACCOUNT_SECONDS": "-5"})


def test_proxy_fix_configured(app):
    assert isinstance(app.wsgi_app, ProxyFix)
    assert (app.wsgi_app.x_for, app.wsgi_app.x_proto, app.wsgi_app.x_host) == (1, 1, 1)


def test_unreachable_redis_falls_back_to_counting_in_memory(tmp_path, caplog):
    dead = tmp_path / "no-redis.sock"  # nothing listens here
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=f"redis+unix://{dead}",
                   FORUM_LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        codes = [guess(client, f"user{i}").status_code for i in range(4)]
    # Requests are served (no 500), and still limited, in this worker's memory.
    assert codes == [401, 401, 401, 429]
    assert any("falling back to in-memory" in r.getMessage() for r in caplog.records)
