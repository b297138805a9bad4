"""PostgreSQL-only behaviour, against the throwaway server of the test harness
(see tests/pg_harness.py; skipped with a reason when the server binaries are absent)."""
import pytest
from sqlalchemy import text

from forum import create_app
from forum.extensions import db

from .test_migrations import run_flask

pytestmark = pytest.mark.postgresql


@pytest.fixture
def migrated_url(pg_server):
    url = pg_server.create_database("e2e")
    run_flask(["db", "upgrade"], url)
    yield url
    pg_server.drop_database(url)


def test_full_text_search_uses_gin_indexes(migrated_url):
    run_flask(["forum", "ensure-board", "General", "--description", "d"], migrated_url)
    run_flask(["forum", "demo-data", "--topics", "300", "--replies", "3"], migrated_url)

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": migrated_url, "FORUM_AUTO_SCHEMA": False})
    client = app.test_client()
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
        db.session.execute(text("ANALYZE posts"))
        db.session.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(db.session.scalars(text(
            "EXPLAIN SELECT id FROM posts WHERE to_tsvector('english', body) "
            "@@ websearch_to_tsquery('english', 'quokka')")))
        assert "ix_posts_body_en_fts" in plan, plan
        plan = "\n".join(db.session.scalars(text(
            "EXPLAIN SELECT id FROM posts WHERE body ILIKE '%数据库%'")))
        assert "ix_posts_body_trgm" in plan, plan
        plan = "\n".join(db.session.scalars(text(
            "EXPLAIN SELECT id FROM topics WHERE title ILIKE '%quok%'")))
        assert "ix_topics_title_trgm" in plan, plan
        db.session.rollback()
        db.engine.dispose()


def test_survives_database_restart(pg_server, migrated_url):
    """Pool pre-ping: after PostgreSQL restarts, the next request succeeds without
    restarting the app; while it is down, users get a 503 page, /healthz a 503 JSON."""
    run_flask(["forum", "ensure-board", "General", "--description", "d"], migrated_url)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": migrated_url,
                      "FORUM_AUTO_SCHEMA": False, "PROPAGATE_EXCEPTIONS": False,
                      "PAGE_CACHE_SECONDS": 0})  # no cached anonymous page may hide the outage
    client = app.test_client()
    assert client.get("/b/general").status_code == 200
    assert client.get("/healthz").status_code == 200  # pooled connection now exists

    pg_server.stop("fast")
    try:
        resp = client.get("/b/general", headers={"Accept": "text/html"})
        assert resp.status_code == 503
        html = resp.get_data(as_text=True)
        assert "Service unavailable" in html and "Traceback" not in html
        resp = client.get("/healthz")
        assert resp.status_code == 503
        assert resp.get_json()["database"] == "error"
    finally:
        pg_server.start()

    # Same app object, same pool: stale connections are replaced transparently.
    assert client.get("/healthz").status_code == 200
    resp = client.get("/b/general")
    assert resp.status_code == 200 and "General" in resp.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()


def test_harness_creates_and_drops_databases(pg_server):
    import psycopg

    url = pg_server.create_database("h")
    name = url.split("@/", 1)[1].split("?", 1)[0]

    def exists():
        with psycopg.connect(pg_server.libpq_dsn(), autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]

    assert exists() == 1
    pg_server.drop_database(url)
    assert exists() == 0
    # The server listens on its own unix socket only: no TCP port of ours to clash with.
    with psycopg.connect(pg_server.libpq_dsn(), autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == ""
        assert conn.execute("SHOW unix_socket_directories").fetchone()[0] == pg_server.base


def test_migrations_as_the_non_superuser_database_owner(pg_server):
    """As deployed: the app's role owns its database and is not superuser
    (roles/postgresql). pg_trgm is a trusted extension, so the owner's migration may
    create it; a second database where an administrator created it first is left as is."""
    import psycopg

    admin = pg_server.libpq_dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE ROLE forum_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        conn.execute("CREATE DATABASE forum_owned OWNER forum_owner")
        conn.execute("CREATE DATABASE forum_pre OWNER forum_owner")
    try:
        with psycopg.connect(pg_server.libpq_dsn("forum_pre"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_trgm")
        for dbname in ("forum_owned", "forum_pre"):
            url = pg_server.url(dbname).replace(f"{pg_server.superuser}@", "forum_owner@", 1)
            run_flask(["db", "upgrade"], url)
            with psycopg.connect(pg_server.libpq_dsn(dbname), autocommit=True) as conn:
                owner = conn.execute(
                    "SELECT r.rolname FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner "
                    "WHERE e.extname = 'pg_trgm'").fetchone()[0]
                names = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes")}
            assert owner == ("forum_owner" if dbname == "forum_owned" else pg_server.superuser)
            assert {"ix_posts_body_trgm", "ix_posts_body_en_fts"} <= names
            run_flask(["db", "downgrade", "c6f8d0e2a4b3"], url)
            run_flask(["db", "upgrade"], url)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS forum_owned")
            conn.execute("DROP DATABASE IF EXISTS forum_pre")
            conn.execute("DROP ROLE IF EXISTS forum_owner")


def test_check_write_tells_a_writable_database_from_a_read_only_one(migrated_url):
    """`flask forum check-write` (failover.yml's last step) passes on a primary and
    fails, naming the refusal, on a server that takes no writes; it leaves nothing."""
    assert run_flask(["forum", "check-write"], migrated_url).strip() == "ok"
    separator = "&" if "?" in migrated_url else "?"
    read_only = migrated_url + separator + "options=-c%20default_transaction_read_only%3Don"
    app = create_app({"SQLALCHEMY_DATABASE_URI": read_only, "FORUM_AUTO_SCHEMA": False,
                      "SECRET_KEY": "check-write-test-key"})
    refused = app.test_cli_runner().invoke(args=["forum", "check-write"])
    assert refused.exit_code != 0
    assert "the database refuses writes" in refused.output
    assert "read-only transaction" in refused.output
    with app.app_context():
        db.engine.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": migrated_url, "FORUM_AUTO_SCHEMA": False,
                      "SECRET_KEY": "check-write-test-key"})
    with app.app_context():
        assert db.session.execute(text("SELECT to_regclass('forum_write_check')")).scalar() is None
        db.engine.dispose()
