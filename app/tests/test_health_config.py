import pytest

import forum
from forum import ConfigError, create_app
from forum.config import load_config

from .conftest import make_app

CLOSED_PORT_URL = "postgresql+psycopg://forum:pw@127.0.0.1:1/forum"


def test_healthz_ok(app, client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {
        "status": "ok",
        "version": forum.__version__,
        "release": "dev",
        "database": "ok",
    }


def test_healthz_reports_release_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FORUM_RELEASE", "20260101-abc")
    app = make_app(tmp_path)
    assert app.test_client().get("/healthz").get_json()["release"] == "20260101-abc"


def test_healthz_503_when_database_unreachable(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", CLOSED_PORT_URL)
    app = create_app({"TESTING": True})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "error"
    assert body["database"] == "error"


def test_pages_show_503_page_when_database_down(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", CLOSED_PORT_URL)
    app = create_app({"TESTING": True})
    resp = app.test_client().get("/", headers={"Accept": "text/html"})
    assert resp.status_code == 503
    html = resp.get_data(as_text=True)
    assert "Service unavailable" in html
    assert "Traceback" not in html


@pytest.mark.parametrize(
    "env, missing",
    [
        ({}, ["SECRET_KEY", "DATABASE_URL"]),
        ({"DATABASE_URL": "sqlite://"}, ["SECRET_KEY"]),
        ({"SECRET_KEY": "x" * 32}, ["DATABASE_URL"]),
    ],
)
def test_production_requires_secret_key_and_database_url(monkeypatch, env, missing):
    monkeypatch.setenv("FORUM_ENV", "production")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as excinfo:
        create_app()
    message = str(excinfo.value)
    for name in missing:
        assert name in message
    for name in {"SECRET_KEY", "DATABASE_URL"} - set(missing):
        assert name not in message


def test_production_config(monkeypatch, tmp_path):
    monkeypatch.setenv("FORUM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["FORUM_AUTO_SCHEMA"] is False
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "false")
    assert create_app().config["SESSION_COOKIE_SECURE"] is False


def test_config_defaults_and_validation():
    cfg = load_config({})
    assert cfg["FORUM_ENV"] == "development"
    assert cfg["DATABASE_URL"] is None
    assert cfg["SESSION_COOKIE_SECURE"] is False
    assert cfg["FORUM_RELEASE"] == "dev"
    assert cfg["SECRET_KEY"] is None  # no public key unless FORUM_ENV=development is explicit
    assert load_config({"DATABASE_URL": "postgresql://u:p@h/db"})["DATABASE_URL"] == "postgresql+psycopg://u:p@h/db"
    with pytest.raises(ConfigError, match="FORUM_ENV"):
        load_config({"FORUM_ENV": "staging"})
    with pytest.raises(ConfigError, match="SESSION_COOKIE_SECURE"):
        load_config({"SESSION_COOKIE_SECURE": "maybe"})


def test_error_pages(app, client):
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    assert b"Page not found" in resp.data
    assert b"<title>" in resp.data


def test_security_headers(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert "script-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "style-src 'self';" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert len(resp.headers.getlist(name)) == 1, name


def test_templates_have_no_inline_styles_or_scripts():
    # The CSP (style-src 'self', script-src 'none') would block them.
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parents[1] / "forum" / "templates"
    inline = re.compile(r"<style|<script|\sstyle\s*=|\son[a-z]+\s*=", re.IGNORECASE)
    found = [(path.name, m.group(0)) for path in templates.rglob("*.html") for m in inline.finditer(path.read_text())]
    assert found == []


def test_no_external_urls_in_templates_or_static():
    import re
    from pathlib import Path

    root = Path(forum.__file__).parent
    offenders = []
    for path in list((root / "templates").rglob("*.html")) + list((root / "static").rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I):
                offenders.append(str(path))
    assert offenders == []


def test_500_page_has_no_traceback(tmp_path):
    app = make_app(tmp_path, PROPAGATE_EXCEPTIONS=False)

    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom", "boom", boom)
    resp = app.test_client().get("/boom")
    assert resp.status_code == 500
    html = resp.get_data(as_text=True)
    assert "Internal server error" in html
    assert "secret internals" not in html and "Traceback" not in html
