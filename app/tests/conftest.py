from __future__ import annotations

import os
import re

import pytest

from . import pg_harness

from forum import create_app
from forum.extensions import db as _db
from forum.models import Board, User

# Environment variables that must not leak from the developer's shell into tests.
FORUM_ENV_VARS = (
    "FORUM_ENV", "SECRET_KEY", "DATABASE_URL", "SESSION_COOKIE_SECURE", "FORUM_RELEASE",
    "RATELIMIT_ENABLED", "RATELIMIT_STORAGE_URI", "FORUM_AUTH_RATE_LIMIT", "FORUM_ADMIN_PASSWORD",
    "FORUM_LOGIN_RATE_LIMIT", "FORUM_LOGIN_ACCOUNT_RATE_LIMIT", "FORUM_REGISTER_RATE_LIMIT",
    "FORUM_POST_RATE_LIMIT", "FORUM_NEW_ACCOUNT_POST_RATE_LIMIT", "FORUM_NEW_ACCOUNT_SECONDS",
    "FORUM_RESET_RATE_LIMIT", "FORUM_RESET_ACCOUNT_RATE_LIMIT", "FORUM_MAIL_SERVER", "FORUM_MAIL_PORT",
    "FORUM_MAIL_SECURITY", "FORUM_MAIL_USERNAME", "FORUM_MAIL_PASSWORD", "FORUM_MAIL_FROM",
    "FORUM_PUBLIC_URL", "FORUM_PASSWORD_RESET_SECONDS", "FORUM_PREVIEW_RATE_LIMIT",
    "FORUM_REQUIRE_EMAIL_VERIFICATION",
    "FORUM_DEFAULT_TIMEZONE",
)


# The CLI's language comes from these (forum.i18n): English unless a test sets one.
LOCALE_ENV_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs():
    """The .mo files (not in git) from the .po files, as `make catalogs-compile` builds them."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from forum.i18n import TRANSLATIONS_DIR

    for lang in os.listdir(TRANSLATIONS_DIR):
        po = os.path.join(TRANSLATIONS_DIR, lang, "LC_MESSAGES", "messages.po")
        if not os.path.isfile(po):
            continue
        with open(po, "rb") as f:
            catalog = read_po(f, locale=lang)
        with open(po[:-3] + ".mo", "wb") as f:
            write_mo(f, catalog)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in FORUM_ENV_VARS + LOCALE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    # No page cache (and no generation file in /tmp) unless a test turns it on.
    monkeypatch.setenv("FORUM_PAGE_CACHE_SECONDS", "0")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "postgresql: runs against the throwaway PostgreSQL server the harness starts")


@pytest.fixture(scope="session")
def pg_server():
    """One private PostgreSQL cluster for the whole test session (see pg_harness)."""
    reason = pg_harness.unavailable_reason()
    if reason:
        if os.environ.get("FORUM_TEST_REQUIRE_POSTGRES", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"FORUM_TEST_REQUIRE_POSTGRES is set but {reason}", pytrace=False)
        pytest.skip(reason)
    server = pg_harness.TempPostgres()
    with server:
        yield server


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def new_db_url(backend, request, tmp_path):
    """Factory: each call returns the URL of a new, empty database on ``backend``."""
    created = []
    server = request.getfixturevalue("pg_server") if backend == "postgresql" else None

    def factory():
        if server is None:
            url = f"sqlite:///{tmp_path / f'test{len(created)}.db'}"
        else:
            url = server.create_database()
        created.append(url)
        return url

    yield factory
    if server is not None:
        for url in created:
            server.drop_database(url)


def make_app(tmp_path, db_url=None, **overrides):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": db_url or f"sqlite:///{tmp_path / 'test.db'}",
        "FORUM_AUTO_SCHEMA": False,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SECRET_KEY": "test-secret",
        "PAGE_CACHE_SECONDS": 0,  # tests/test_pagecache.py turns it on
    }
    config.update(overrides)
    app = create_app(config)
    with app.app_context():
        _db.create_all()
    return app


@pytest.fixture
def app(tmp_path, new_db_url):
    app = make_app(tmp_path, new_db_url())
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    with app.app_context():
        yield _db


def create_user(app, username="alice", password="correct horse", role="member", banned=False):
    with app.app_context():
        user = User(username=username, email=f"{username}@example.org", role=role, is_banned=banned)
        user.set_password(password)
        _db.session.add(user)
        _db.session.commit()
        return user.id


def create_board(app, name="General", slug="general", description="General talk"):
    with app.app_context():
        board = Board(name=name, slug=slug, description=description)
        _db.session.add(board)
        _db.session.commit()
        return board.id


def login(client, username="alice", password="correct horse"):
    return client.post("/login", data={"username": username, "password": password})


def extract_csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no csrf token in page"
    return match.group(1)
