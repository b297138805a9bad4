"""Revocable sessions: a captured session cookie or remember-me cookie stops working
after a password change, a logout, "log out everywhere" and a ban (both backends)."""
import pytest

from forum.extensions import db
from forum.models import User

from .conftest import create_user, login

SESSION = "session"
REMEMBER = "remember_token"
PROTECTED = "/account/password"  # 200 when logged in, a redirect to the login page when not


def captured(client):
    """The cookies a thief copies from ``client``'s browser."""
    cookies = {name: client.get_cookie(name) for name in (SESSION, REMEMBER)}
    assert all(cookies.values()), cookies
    return {name: c.value for name, c in cookies.items()}


def replay(app, name, value):
    """A fresh browser holding only the stolen cookie ``name``."""
    thief = app.test_client()
    thief.set_cookie(name, value)
    return thief.get(PROTECTED)


def assert_works(app, cookies):
    for name, value in cookies.items():
        resp = replay(app, name, value)
        assert resp.status_code == 200, (name, resp.status_code)


def assert_refused(app, cookies):
    for name, value in cookies.items():
        resp = replay(app, name, value)
        assert resp.status_code == 302, (name, resp.status_code)
        assert "/login" in resp.headers["Location"], name


def logged_in_with_remember(app, username="alice", password="correct horse"):
    client = app.test_client()
    resp = client.post("/login", data={"username": username, "password": password, "remember": "y"})
    assert resp.status_code == 302
    return client


def test_password_change_revokes_other_sessions_but_keeps_this_one(app):
    create_user(app, "alice", password="old-password")
    victim = logged_in_with_remember(app, password="old-password")
    stolen = captured(victim)
    assert_works(app, stolen)  # the replay really logs in while the cookies are current

    resp = victim.post("/account/password", data={"current": "old-password", "password": "new-password",
                                                  "confirm": "new-password"})
    assert resp.status_code == 302
    assert_refused(app, stolen)
    # The browser that changed the password is still logged in, and its new cookies work.
    assert victim.get(PROTECTED).status_code == 200
    assert_works(app, captured(victim))


def test_logout_revokes_the_captured_cookies(app):
    create_user(app)
    victim = logged_in_with_remember(app)
    stolen = captured(victim)
    assert_works(app, stolen)
    victim.post("/logout")
    assert_refused(app, stolen)
    assert victim.get(PROTECTED).status_code == 302


def test_log_out_everywhere_from_the_profile_page(app):
    create_user(app)
    laptop = logged_in_with_remember(app)
    phone = logged_in_with_remember(app)
    stolen = captured(phone)
    page = laptop.get("/u/alice").get_data(as_text=True)
    assert 'action="/account/logout-everywhere"' in page
    assert "/account/logout-everywhere" not in app.test_client().get("/u/alice").get_data(as_text=True)
    assert laptop.post("/account/logout-everywhere").status_code == 302
    assert_refused(app, stolen)
    assert phone.get(PROTECTED).status_code == 302
    assert laptop.get(PROTECTED).status_code == 302
    # A new login works as before.
    assert logged_in_with_remember(app).get(PROTECTED).status_code == 200


def test_ban_revokes_the_banned_users_sessions(app):
    create_user(app, "alice")
    create_user(app, "mod", password="mod-password", role="moderator")
    victim = logged_in_with_remember(app)
    stolen = captured(victim)
    mod = app.test_client()
    login(mod, "mod", "mod-password")
    assert mod.post("/u/alice/ban").status_code == 302
    assert_refused(app, stolen)
    assert victim.get(PROTECTED).status_code == 302
    # The moderator's own session is untouched.
    assert mod.get(PROTECTED).status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(User.is_banned).where(User.username == "alice")) is True


@pytest.mark.parametrize("user_id, works", [("1:0", True), ("1", False), ("1:1", False), ("1:x", False),
                                            ("99999999999999999999:0", False)])
def test_session_id_must_carry_the_current_generation(app, user_id, works):
    """A session signed with the app's key but with a stale, missing or junk generation
    is anonymous (cookies from before the generation existed held a bare id)."""
    uid = create_user(app)
    assert uid == 1
    serializer = app.session_interface.get_signing_serializer(app)
    client = app.test_client()
    client.set_cookie(SESSION, serializer.dumps({"_user_id": user_id, "_fresh": True}))
    assert client.get(PROTECTED).status_code == (200 if works else 302)
