from forum.extensions import db
from forum.models import Post, User

from .conftest import create_board, create_user, login


def test_register_login_post_round_trip(app, client):
    create_board(app)
    resp = client.post(
        "/register",
        data={"username": "bob", "email": "bob@example.org", "password": "s3cret-pass", "confirm": "s3cret-pass"},
    )
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.username == "bob"))
        assert user is not None
        assert user.password_hash.startswith("scrypt:")
        assert "s3cret-pass" not in user.password_hash

    client.post("/logout")
    assert client.get("/b/general/new").status_code == 302  # logged out -> redirect to login

    resp = login(client, "bob", "s3cret-pass")
    assert resp.status_code == 302
    resp = client.post("/b/general/new", data={"title": "Hello world", "body": "First **post**"})
    assert resp.status_code == 302
    topic_url = resp.headers["Location"]
    page = client.get(topic_url)
    assert page.status_code == 200
    assert b"<strong>post</strong>" in page.data

    resp = client.post(topic_url + "/reply", data={"body": "a reply"})
    assert resp.status_code == 302
    assert b"a reply" in client.get(topic_url).data
    index = client.get("/").get_data(as_text=True)
    assert "General" in index
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Post.id))) == 2


def test_wrong_password_refused(app, client):
    create_user(app, "alice", "correct horse")
    resp = login(client, "alice", "wrong horse")
    assert resp.status_code == 401
    assert b"Invalid username or password" in resp.data
    # not logged in: posting requires login
    assert client.get("/b/whatever/new").status_code == 302
    resp = login(client, "nobody", "correct horse")
    assert resp.status_code == 401


def test_duplicate_registration_refused(app, client):
    create_user(app, "alice")
    resp = client.post(
        "/register",
        data={"username": "Alice", "email": "new@example.org", "password": "longenough", "confirm": "longenough"},
    )
    assert resp.status_code == 200
    assert b"already registered" in resp.data


def test_safe_next_redirects(app, client):
    create_user(app)
    resp = client.post("/login", data={"username": "alice", "password": "correct horse", "next": "/u/alice"})
    assert resp.headers["Location"] == "/u/alice"
    client.post("/logout")
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        resp = client.post("/login", data={"username": "alice", "password": "correct horse", "next": evil})
        assert resp.status_code == 302
        assert resp.headers["Location"] == "/", evil
        client.post("/logout")


def test_logout_requires_post(app, client):
    create_user(app)
    login(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302


def test_cookie_flags(tmp_path):
    from .conftest import make_app

    app = make_app(tmp_path, SESSION_COOKIE_SECURE=True)
    create_user(app)
    client = app.test_client()
    resp = login(client)
    cookie = resp.headers.get("Set-Cookie")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
