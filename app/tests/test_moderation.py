"""Moderation and administration through the web UI (both database backends)."""
from forum.extensions import db
from forum.models import Board, Post, Topic, User

from .conftest import create_board, create_user, extract_csrf, login, make_app
from .test_posts import new_topic


def logout(client):
    client.post("/logout")


def test_moderator_moves_topic_and_counters_follow(app, client):
    general = create_board(app)
    other = create_board(app, name="Other", slug="other")
    create_user(app, "alice")
    create_user(app, "mod", password="mod-password", role="moderator")
    login(client)
    topic_id = new_topic(client)
    client.post(f"/t/{topic_id}/reply", data={"body": "a reply"})
    # Members cannot move topics.
    assert client.post(f"/t/{topic_id}/move", data={"board_id": other}).status_code == 403
    logout(client)

    login(client, "mod", "mod-password")
    page = client.get(f"/t/{topic_id}").get_data(as_text=True)
    assert 'name="board_id"' in page and ">Other</option>" in page
    # An unknown board is refused.
    assert client.post(f"/t/{topic_id}/move", data={"board_id": 9999}).status_code == 400
    resp = client.post(f"/t/{topic_id}/move", data={"board_id": other})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(Topic, topic_id).board_id == other
        g, o = db.session.get(Board, general), db.session.get(Board, other)
        assert (g.topic_count, g.post_count, g.last_post_id) == (0, 0, None)
        last = db.session.scalar(db.select(db.func.max(Post.id)))
        assert (o.topic_count, o.post_count, o.last_post_id) == (1, 2, last)
    assert "A topic" in client.get("/b/other").get_data(as_text=True)
    assert "A topic" not in client.get("/b/general").get_data(as_text=True)


def test_ban_and_unban(app, client):
    create_board(app)
    create_user(app, "alice")
    create_user(app, "mod", password="mod-password", role="moderator")
    create_user(app, "mod2", password="mod2-password", role="moderator")
    create_user(app, "root", password="root-password", role="admin")
    login(client)
    topic_id = new_topic(client)
    # Members cannot ban.
    assert client.post("/u/mod/ban").status_code == 403
    logout(client)

    login(client, "mod", "mod-password")
    assert client.post("/u/alice/ban").status_code == 302
    # Moderators cannot ban admins, other moderators or themselves.
    assert client.post("/u/root/ban").status_code == 403
    assert client.post("/u/mod2/ban").status_code == 403
    assert client.post("/u/mod/ban").status_code == 403
    logout(client)

    login(client)  # banned users can log in and read, but not post
    assert client.post(f"/t/{topic_id}/reply", data={"body": "while banned"}).status_code == 403
    assert client.post("/b/general/new", data={"title": "while banned", "body": "x"}).status_code == 403
    page = client.get(f"/t/{topic_id}").get_data(as_text=True)
    assert "banned from posting" in page and 'class="reply-form"' not in page
    logout(client)

    login(client, "mod", "mod-password")
    assert client.post("/u/alice/ban").status_code == 302  # a second ban is no unban
    with app.app_context():
        assert db.session.scalar(db.select(User.is_banned).where(User.username == "alice")) is True
    assert client.post("/u/alice/unban").status_code == 302
    logout(client)
    login(client)
    assert client.post(f"/t/{topic_id}/reply", data={"body": "after unban"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(User.is_banned).where(User.username == "alice")) is False
        assert db.session.get(Topic, topic_id).reply_count == 1


def test_locked_topic_refuses_replies_but_moderators_may_reply(app, client):
    create_board(app)
    create_user(app, "alice")
    create_user(app, "mod", password="mod-password", role="moderator")
    login(client)
    topic_id = new_topic(client)
    logout(client)
    login(client, "mod", "mod-password")
    client.post(f"/t/{topic_id}/lock")
    assert client.post(f"/t/{topic_id}/reply", data={"body": "mod note"}).status_code == 302
    logout(client)
    login(client)
    assert client.post(f"/t/{topic_id}/reply", data={"body": "late"}).status_code == 403
    page = client.get(f"/t/{topic_id}").get_data(as_text=True)
    assert "This topic is locked" in page and 'class="reply-form"' not in page
    with app.app_context():
        assert db.session.get(Topic, topic_id).reply_count == 1


def test_admin_creates_and_edits_boards_in_web_ui(app, client):
    create_user(app, "root", password="root-password", role="admin")
    create_user(app, "mod", password="mod-password", role="moderator")
    create_user(app, "alice")

    # Anonymous users are sent to the login page; members and moderators are refused.
    assert client.get("/admin/boards").status_code == 302
    login(client)
    assert client.get("/admin/boards").status_code == 403
    assert client.post("/admin/boards", data={"name": "Nope"}).status_code == 403
    logout(client)
    login(client, "mod", "mod-password")
    assert client.get("/admin/boards").status_code == 403
    assert client.post("/admin/boards", data={"name": "Nope"}).status_code == 403
    logout(client)

    login(client, "root", "root-password")
    assert ">Admin</a>" in client.get("/").get_data(as_text=True)
    resp = client.post("/admin/boards", data={"name": "Help & Support", "description": "Ask here"})
    assert resp.status_code == 302
    resp = client.post("/admin/boards", data={"name": "Help", "slug": "help-support"})
    assert resp.status_code == 200 and "already used" in resp.get_data(as_text=True)
    with app.app_context():
        board = db.session.scalar(db.select(Board).where(Board.slug == "help-support"))
        assert board is not None and board.name == "Help & Support" and board.description == "Ask here"
        board_id = board.id
    assert "Help &amp; Support" in client.get("/").get_data(as_text=True)

    resp = client.post(f"/admin/boards/{board_id}/edit",
                       data={"name": "Support", "slug": "support", "description": "Questions", "position": "7"})
    assert resp.status_code == 302
    assert client.get("/b/support").status_code == 200
    assert client.get("/b/help-support").status_code == 404
    with app.app_context():
        board = db.session.get(Board, board_id)
        assert (board.name, board.description, board.position) == ("Support", "Questions", 7)

    # Boards with topics cannot be deleted; empty ones can.
    new_topic(client, slug="support")
    client.post(f"/admin/boards/{board_id}/delete")
    with app.app_context():
        assert db.session.get(Board, board_id) is not None
    empty = create_board(app, name="Empty", slug="empty")
    assert client.post(f"/admin/boards/{empty}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Board, empty) is None


def test_admin_sets_roles_in_web_ui(app, client):
    create_user(app, "root", password="root-password", role="admin")
    create_user(app, "mod", password="mod-password", role="moderator")
    create_user(app, "alice")
    login(client, "mod", "mod-password")
    assert client.post("/u/alice/role", data={"role": "admin"}).status_code == 403
    assert client.get("/admin/users").status_code == 403
    logout(client)

    login(client, "root", "root-password")
    users_page = client.get("/admin/users").get_data(as_text=True)
    assert "alice" in users_page and "mod" in users_page
    assert client.post("/u/alice/role", data={"role": "moderator"}).status_code == 302
    assert client.post("/u/alice/role", data={"role": "emperor"}).status_code == 400
    assert client.post("/u/root/role", data={"role": "member"}).status_code == 403  # not yourself
    with app.app_context():
        assert db.session.scalar(db.select(User.role).where(User.username == "alice")) == "moderator"
    logout(client)
    login(client)  # alice now has moderator tools
    assert client.post("/u/root/ban").status_code == 403
    create_user(app, "bob", password="bob-password")
    assert client.post("/u/bob/ban").status_code == 302


def test_change_password(app, client):
    create_user(app, "alice", password="old-password")
    assert client.get("/account/password").status_code == 302  # login required
    login(client, "alice", "old-password")
    resp = client.post("/account/password",
                       data={"current": "wrong-password", "password": "new-password", "confirm": "new-password"})
    assert resp.status_code == 200 and "not your current password" in resp.get_data(as_text=True)
    resp = client.post("/account/password",
                       data={"current": "old-password", "password": "new-password", "confirm": "new-password"})
    assert resp.status_code == 302
    logout(client)
    assert login(client, "alice", "old-password").status_code == 401
    assert login(client, "alice", "new-password").status_code == 302


def test_admin_and_moderation_forms_need_csrf(tmp_path, new_db_url):
    app = make_app(tmp_path, new_db_url(), WTF_CSRF_ENABLED=True)
    create_user(app, "root", password="root-password", role="admin")
    board_id = create_board(app)
    client = app.test_client()
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "root", "password": "root-password", "csrf_token": token})
    assert client.post("/admin/boards", data={"name": "Sneaky"}).status_code == 400
    assert client.post(f"/admin/boards/{board_id}/delete").status_code == 400
    assert client.post("/u/root/role", data={"role": "member"}).status_code == 400
    assert client.post("/account/password", data={"current": "root-password", "password": "x" * 10,
                                                   "confirm": "x" * 10}).status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Board.id))) == 1
    # With the token from the page the same request works.
    token = extract_csrf(client.get("/admin/boards").get_data(as_text=True))
    assert client.post("/admin/boards", data={"name": "Legit", "csrf_token": token}).status_code == 302
