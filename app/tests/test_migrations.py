import os
import sqlite3
import subprocess
import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent


def run_flask(args, env):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=120,
    )


def tables(path):
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_upgrade_and_downgrade_on_empty_sqlite(tmp_path):
    db_path = tmp_path / "mig.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORUM_", "DATABASE_URL", "SECRET_KEY"))}
    env["DATABASE_URL"] = f"sqlite:///{db_path}"
    result = run_flask(["db", "upgrade"], env)
    assert result.returncode == 0, result.stderr
    assert {"users", "boards", "topics", "posts", "alembic_version"} <= tables(db_path)

    # The schema from the migrations is usable by the CLI.
    result = run_flask(["forum", "ensure-board", "General", "--description", "x"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "created"

    result = run_flask(["db", "downgrade", "base"], env)
    assert result.returncode == 0, result.stderr
    assert tables(db_path) == {"alembic_version"}


def test_models_match_migrations(tmp_path):
    """Autogenerate against an upgraded database must find nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    from forum import MIGRATIONS_DIR, create_app
    from forum.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'cmp.db'}", "FORUM_AUTO_SCHEMA": False})
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []
