"""Alembic migrations, run through the real CLI, on SQLite and PostgreSQL."""
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, text

APP_DIR = Path(__file__).resolve().parent.parent
APP_TABLES = {"users", "boards", "topics", "posts"}


def run_flask(args, db_url, **extra_env):
    """In-process ``flask`` CLI (fast) against ``db_url``."""
    from forum import create_app

    for key, value in extra_env.items():
        os.environ[key] = value
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "FORUM_AUTO_SCHEMA": False,
                          "SECRET_KEY": "migration-test-key"})
        result = app.test_cli_runner().invoke(args=list(args))
    finally:
        for key in extra_env:
            os.environ.pop(key, None)
    from forum.extensions import db

    with app.app_context():
        db.engine.dispose()
    assert result.exit_code == 0, f"flask {' '.join(args)}:\n{result.output}\n{result.exception!r}"
    return result.output


def flask_process(args, db_url, **extra_env):
    """The real ``flask --app wsgi`` command line, as the deploy role runs it:
    the finished process, whatever its exit status."""
    extra_env.setdefault("FORUM_PAGE_CACHE_SECONDS", "0")
    extra_env.setdefault("FORUM_ENV", "development")  # explicit: no SECRET_KEY of its own
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORUM_", "DATABASE_URL", "SECRET_KEY"))}
    env["DATABASE_URL"] = db_url
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=300,
    )


def run_flask_subprocess(args, db_url, **extra_env):
    """flask_process that must succeed: its standard output."""
    result = flask_process(args, db_url, **extra_env)
    assert result.returncode == 0, f"flask {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def tables(db_url):
    engine = create_engine(db_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def scalar(db_url, sql):
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def test_upgrade_and_downgrade_on_empty_database(new_db_url, backend):
    db_url = new_db_url()
    run_flask_subprocess(["db", "upgrade"], db_url)
    assert APP_TABLES | {"alembic_version"} <= tables(db_url)
    # Models and migrations agree (autogenerate finds nothing to do).
    run_flask(["db", "check"], db_url)  # exits non-zero when autogenerate finds a difference
    if backend == "postgresql":
        engine = create_engine(db_url)
        names = {ix["name"] for ix in inspect(engine).get_indexes("posts")}
        engine.dispose()
        assert {"ix_posts_body_en_fts", "ix_posts_body_trgm"} <= names

    # The schema from the migrations is usable by the CLI.
    out = run_flask_subprocess(["forum", "ensure-board", "General", "--description", "x"], db_url)
    assert out.strip().splitlines()[-1] == "created"

    run_flask_subprocess(["db", "downgrade", "base"], db_url)
    assert tables(db_url) <= {"alembic_version"}
    run_flask(["db", "upgrade"], db_url)  # and up again from nothing
    assert APP_TABLES <= tables(db_url)


def test_upgrade_and_downgrade_on_populated_database(new_db_url, backend):
    db_url = new_db_url()
    run_flask(["db", "upgrade"], db_url)
    run_flask(["forum", "ensure-board", "General", "--description", "x"], db_url)
    run_flask(["forum", "create-admin", "root", "--email", "root@example.org"], db_url,
              FORUM_ADMIN_PASSWORD="admin-password")
    run_flask(["forum", "demo-data", "--topics", "40", "--replies", "4"], db_url)
    assert scalar(db_url, "SELECT count(*) FROM posts") == 200

    # Step down one revision and back up with data in place: rows survive.
    run_flask(["db", "downgrade", "768743c88bf0"], db_url)
    assert scalar(db_url, "SELECT count(*) FROM posts") == 200
    run_flask(["db", "upgrade"], db_url)
    assert scalar(db_url, "SELECT count(*) FROM topics") == 40
    assert scalar(db_url, "SELECT post_count FROM boards WHERE slug = 'general'") == 200
    run_flask(["db", "check"], db_url)  # exits non-zero when autogenerate finds a difference

    # All the way down with data present, then up again to a working schema.
    run_flask(["db", "downgrade", "base"], db_url)
    assert not (APP_TABLES & tables(db_url))
    run_flask(["db", "upgrade"], db_url)
    out = run_flask(["forum", "ensure-board", "General", "--description", "x"], db_url)
    assert out.strip().splitlines()[-1] == "created"


def test_models_match_migrations(tmp_path):
    """Autogenerate against an upgraded database must find nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    from forum import MIGRATIONS_DIR, create_app
    from forum.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'cmp.db'}", "FORUM_AUTO_SCHEMA": False,
                      "SECRET_KEY": "migration-test-key"})
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["boards"])) == 0
    assert diff == []


def test_skeleton_migration_with_look_alike_accounts(new_db_url):
    """Accounts that already look alike when the skeleton column arrives both keep
    working: the older gets the skeleton, the younger none, and a new look-alike is
    refused."""
    db_url = new_db_url()
    run_flask(["db", "upgrade", "c6f8d0e2a4b3"], db_url)
    from werkzeug.security import generate_password_hash

    engine = create_engine(db_url)
    with engine.begin() as conn:
        for i, name in enumerate(("paypal", "PayPal", "pаypal")):  # the last with a Cyrillic а
            conn.execute(text(
                "INSERT INTO users (username, email, password_hash, role, is_banned, post_count, "
                "created_at, session_generation) VALUES (:u, :e, :h, 'member', false, 0, "
                "CURRENT_TIMESTAMP, 0)"),
                {"u": name, "e": f"user{i}@example.org",
                 "h": generate_password_hash("long enough pw", method="scrypt")})
    engine.dispose()
    run_flask(["db", "upgrade"], db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT username, username_skeleton FROM users")).all())
    engine.dispose()
    assert rows["paypal"] == "paypal" and rows["PayPal"] is None and rows["pаypal"] is None

    from forum import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": db_url, "FORUM_AUTO_SCHEMA": False,
                      "SECRET_KEY": "migration-test-key"})
    for name in ("paypal", "PayPal", "pаypal"):
        client = app.test_client()
        resp = client.post("/login", data={"username": name, "password": "long enough pw"})
        assert resp.status_code == 302, name
        assert f"Logged in as {name}" in client.get("/").get_data(as_text=True)
    resp = app.test_client().post("/register", data={
        "username": "paypa1", "email": "new@example.org", "password": "long enough pw",
        "confirm": "long enough pw"})
    assert resp.status_code == 200 and "looks too much like" in resp.get_data(as_text=True)
    from forum.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_forum_upgrade_migrates_and_makes_the_boards_in_one_process(new_db_url, backend):
    """The deploy's one database step: the migrations, then the boards."""
    db_url = new_db_url()
    boards = json.dumps([{"name": "General", "description": "x"}, {"name": "公告", "slug": "news", "position": 9}])
    first = flask_process(["forum", "upgrade", "--boards", boards], db_url)
    assert first.returncode == 0, first.stderr
    assert "Running upgrade" in first.stderr  # what the role's changed_when reads
    assert first.stdout.splitlines() == ["created General", "created 公告"]
    assert APP_TABLES <= tables(db_url)
    assert scalar(db_url, "SELECT position FROM boards WHERE slug = 'news'") == 9

    again = flask_process(["forum", "upgrade", "--boards", boards], db_url)
    assert again.returncode == 0, again.stderr
    assert "Running upgrade" not in again.stderr
    assert again.stdout.splitlines() == ["exists General", "exists 公告"]
    assert scalar(db_url, "SELECT count(*) FROM boards") == 2

    # A board whose derived slug another board holds stops the command, naming it.
    clash = flask_process(["forum", "upgrade", "--boards", json.dumps([{"name": "NEWS"}])], db_url,
                          LANG="C.UTF-8")
    assert clash.returncode == 1 and "belongs to another board" in clash.stderr, clash.stderr


def test_forum_upgrade_refuses_wrong_boards_before_migrating(new_db_url):
    db_url = new_db_url()
    for boards, says in [
        ("{", "--boards is not JSON"),
        ('{"name": "General"}', "--boards must be a JSON list"),
        ('[{"description": "no name"}]', "--boards entry 0 must be an object"),
        ('[{"name": "General"}, {"name": "Two", "colour": "red"}]', "--boards entry 1 must be an object"),
        ('[{"name": "General", "position": "3"}]', "--boards entry 0"),
        ('[{"name": "General", "position": true}]', "--boards entry 0"),
        ('[{"name": ""}]', "NAME must not be empty"),
        ('[{"name": "General", "slug": "Not A Slug!"}]', "Lower-case letters"),
    ]:
        result = flask_process(["forum", "upgrade", "--boards", boards], db_url, LANG="C.UTF-8")
        assert result.returncode == 1, (boards, result.stdout, result.stderr)
        assert says in result.stderr, (boards, result.stderr)
        assert "Running upgrade" not in result.stderr, boards
    assert tables(db_url) <= {"alembic_version"}  # nothing migrated
