"""Optional tests against a real PostgreSQL server.

Set FORUM_TEST_POSTGRES_URL to a *throwaway* database, e.g.
postgresql+psycopg://forum:pw@127.0.0.1:5432/forum_test (it is migrated up and
down to base). Skipped otherwise.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

PG_URL = os.environ.get("FORUM_TEST_POSTGRES_URL")
APP_DIR = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not PG_URL, reason="FORUM_TEST_POSTGRES_URL not set")


@pytest.fixture
def pg_env(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_ENV")}
    env["DATABASE_URL"] = PG_URL

    def flask(*args):
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                                cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout

    flask("db", "downgrade", "base")
    flask("db", "upgrade")
    assert "No new upgrade operations detected" in flask("db", "check")  # models == migrations
    yield flask
    flask("db", "downgrade", "base")


def test_postgresql_end_to_end(pg_env):
    flask = pg_env
    indexes = {ix["name"] for ix in inspect(create_engine(PG_URL)).get_indexes("posts")}
    assert "ix_posts_body_fts" in indexes
    assert flask("forum", "ensure-board", "General", "--description", "d").strip() == "created"
    assert flask("forum", "ensure-board", "General", "--description", "d").strip() == "exists"
    flask("forum", "demo-data", "--topics", "30", "--replies", "3")

    from forum import create_app
    from forum.extensions import db

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    client = app.test_client()
    assert client.get("/healthz").get_json()["database"] == "ok"
    assert client.get("/").status_code == 200
    assert client.get("/b/general").status_code == 200
    client.post("/register", data={"username": "pguser", "email": "pg@example.org",
                                   "password": "pg-password", "confirm": "pg-password"})
    resp = client.post("/b/general/new", data={"title": "Zebra crossing", "body": "quokka habitat"})
    assert resp.status_code == 302
    html = client.get("/search?q=quokka").get_data(as_text=True)
    assert "Zebra crossing" in html
    html = client.get("/search?q=zebra").get_data(as_text=True)  # title match
    assert "quokka habitat" in html
    assert "Zebra" not in client.get("/search?q=nonexistentword").get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()
