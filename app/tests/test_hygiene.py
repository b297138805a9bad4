"""Input hygiene: control characters, id ranges, spoofing characters, safe default key."""
import pytest

from forum import ConfigError, create_app
from forum.config import DEV_SECRET_KEY
from forum.extensions import db
from forum.models import Post, Topic, User

from .conftest import create_board, create_user, login


@pytest.mark.parametrize("url", ["/search?q=a%00b", "/u/a%00b", "/b/a%00b", "/t/1?page=%01",
                                 "/b/a%00b/new", "/search?q%00=x"])
def test_control_chars_in_url_give_400(app, client, url):
    create_board(app)
    resp = client.get(url)
    assert resp.status_code == 400
    assert "control character" in resp.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/t/2147483648", "/t/99999999999999999999", "/p/2147483648",
                                 "/p/99999999999999999999/edit", "/t/2147483648/reply"])
def test_out_of_range_ids_give_404(app, client, url):
    create_user(app)
    login(client)
    resp = client.post(url) if url.endswith("reply") else client.get(url)
    assert resp.status_code == 404


def test_login_username_with_nul_is_a_form_error(app, client):
    create_user(app)
    resp = client.post("/login", data={"username": "ali\x00ce", "password": "x"})
    assert resp.status_code == 400
    assert "control characters" in resp.get_data(as_text=True)


def test_topic_with_nul_is_kept_in_the_form(app, client):
    create_board(app)
    create_user(app)
    login(client)
    resp = client.post("/b/general/new", data={"title": "Hello\x00 world", "body": "my long\x00 text"})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "control characters" in html
    assert "my long text" in html and 'value="Hello world"' in html
    with app.app_context():
        assert db.session.query(Topic).count() == 0


def test_reply_body_with_tab_and_newline_is_fine(app, client):
    create_board(app)
    create_user(app)
    login(client)
    resp = client.post("/b/general/new", data={"title": "Tabs", "body": "a\tb\r\nc"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(Post.body)) == "a\tb\r\nc"


@pytest.mark.parametrize("title", ["invoice \u202egnp.exe", "invisible\u200b", "\u2066x\u2069yz", "a\ufeffbc"])
def test_spoofing_characters_refused_in_titles(app, client, title):
    create_board(app)
    create_user(app)
    login(client)
    resp = client.post("/b/general/new", data={"title": title, "body": "body"})
    assert resp.status_code == 200
    assert "invisible or text-direction control character U+" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Topic).count() == 0


def test_usernames_are_nfkc_normalised(app, client):
    resp = client.post("/register", data={"username": "\uff42ob", "email": "b@example.org",
                                          "password": "password1", "confirm": "password1"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(User.username)) == "bob"
    assert client.get("/u/\uff42ob").status_code == 200


def test_413_page_names_the_limit_and_back_button(app, client):
    create_board(app)
    create_user(app)
    login(client)
    resp = client.post("/b/general/new", data={"title": "Big", "body": "x" * (2 * 1024 * 1024)})
    assert resp.status_code == 413
    html = resp.get_data(as_text=True)
    assert "1024 KiB" in html and "Back button" in html


def test_no_secret_key_refuses_to_start(monkeypatch):
    with pytest.raises(ConfigError) as excinfo:
        create_app()
    assert "SECRET_KEY" in str(excinfo.value) and "FORUM_ENV" in str(excinfo.value)


def test_explicit_development_uses_dev_key(monkeypatch, tmp_path):
    monkeypatch.setenv("FORUM_ENV", "development")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.db'}", "FORUM_AUTO_SCHEMA": False})
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY


def test_own_key_without_forum_env_starts(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.db'}", "FORUM_AUTO_SCHEMA": False})
    assert app.config["SECRET_KEY"] == "k" * 40


def test_production_refuses_public_key(monkeypatch, tmp_path):
    monkeypatch.setenv("FORUM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", DEV_SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_too_long_reply_keeps_the_text(app, client):
    create_board(app)
    create_user(app)
    login(client)
    resp = client.post("/b/general/new", data={"title": "Long", "body": "first"})
    topic_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    text = "keep me " + "y" * 50001
    resp = client.post(f"/t/{topic_id}/reply", data={"body": text})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert text in html and "50000" in html
    resp = client.post(f"/t/{topic_id}/reply", data={"body": "nul\x00 reply"})
    assert resp.status_code == 400 and "nul reply" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Post).count() == 1
