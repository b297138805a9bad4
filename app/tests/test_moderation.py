"""Moderation and administration through the web UI (both database backends)."""
from forum.extensions import db
from forum.models import Board, ModerationLog, Post, Topic, User

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


# --- confirmation pages, explicit states, soft delete and the moderation log ----------


def _csrf_app(tmp_path, new_db_url):
    app = make_app(tmp_path, new_db_url(), WTF_CSRF_ENABLED=True)
    create_board(app)
    create_user(app, "alice")
    create_user(app, "mod", password="mod-password", role="moderator")
    return app


def _csrf_login(client, username, password):
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert resp.status_code == 302


def _csrf_topic(client):
    token = extract_csrf(client.get("/b/general/new").get_data(as_text=True))
    resp = client.post("/b/general/new", data={"title": "A topic", "body": "Body", "csrf_token": token})
    assert resp.status_code == 302
    topic_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    token = extract_csrf(client.get(f"/t/{topic_id}").get_data(as_text=True))
    assert client.post(f"/t/{topic_id}/reply", data={"body": "a reply", "csrf_token": token}).status_code == 302
    return topic_id


def test_destructive_actions_ask_for_confirmation_on_a_page_of_their_own(tmp_path, new_db_url):
    app = _csrf_app(tmp_path, new_db_url)
    client = app.test_client()
    _csrf_login(client, "alice", "correct horse")
    topic_id = _csrf_topic(client)
    with app.app_context():
        reply_id = db.session.scalar(db.select(db.func.max(Post.id)))
    client.post("/logout", data={"csrf_token": extract_csrf(client.get("/").get_data(as_text=True))})
    _csrf_login(client, "mod", "mod-password")

    # The topic and profile pages link to the confirmation pages; no button there deletes or bans.
    topic_page = client.get(f"/t/{topic_id}").get_data(as_text=True)
    assert f'href="/t/{topic_id}/delete"' in topic_page and f'href="/p/{reply_id}/delete"' in topic_page
    assert f'action="/t/{topic_id}/delete"' not in topic_page and f'action="/p/{reply_id}/delete"' not in topic_page
    profile = client.get("/u/alice").get_data(as_text=True)
    assert 'href="/u/alice/ban"' in profile and 'action="/u/alice/ban"' not in profile

    for url in (f"/t/{topic_id}/delete", f"/p/{reply_id}/delete", "/u/alice/ban"):
        resp = client.get(url)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 200, url
        assert f'<form method="post" action="{url}"' in page and 'name="reason"' in page, url
        assert "<script" not in page.lower()
        extract_csrf(page)
        # Without the page's token the POST is refused and nothing happens.
        assert client.post(url).status_code == 400, url
    with app.app_context():
        assert not db.session.get(Topic, topic_id).is_deleted
        assert not db.session.get(Post, reply_id).is_deleted
        assert db.session.scalar(db.select(User.is_banned).where(User.username == "alice")) is False

    # Confirmed with the token: done, with the reason in the log.
    url = f"/p/{reply_id}/delete"
    token = extract_csrf(client.get(url).get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token, "reason": "off topic"}).status_code == 302
    token = extract_csrf(client.get("/u/alice/ban").get_data(as_text=True))
    assert client.post("/u/alice/ban", data={"csrf_token": token, "reason": "spam"}).status_code == 302
    with app.app_context():
        assert db.session.get(Post, reply_id).is_deleted
        assert db.session.scalar(db.select(User.is_banned).where(User.username == "alice")) is True
        log = db.session.execute(db.select(ModerationLog.action, ModerationLog.reason)
                                 .order_by(ModerationLog.id)).all()
        assert [tuple(r) for r in log] == [("delete_post", "off topic"), ("ban", "spam")]


def test_double_submits_do_not_undo_themselves(app, client):
    create_board(app)
    create_user(app, "alice")
    create_user(app, "mod", password="mod-password", role="moderator")
    login(client)
    topic_id = new_topic(client)
    assert client.post(f"/t/{topic_id}/unlock").status_code == 403  # members cannot
    logout(client)
    login(client, "mod", "mod-password")

    def state():
        with app.app_context():
            t = db.session.get(Topic, topic_id)
            banned = db.session.scalar(db.select(User.is_banned).where(User.username == "alice"))
            return t.is_locked, t.is_pinned, banned

    for _ in range(2):
        assert client.post(f"/t/{topic_id}/lock").status_code == 302
        assert client.post(f"/t/{topic_id}/pin").status_code == 302
        assert client.post("/u/alice/ban").status_code == 302
    assert state() == (True, True, True)
    page = client.get(f"/t/{topic_id}").get_data(as_text=True)
    assert f'action="/t/{topic_id}/unlock"' in page and f'action="/t/{topic_id}/lock"' not in page
    for _ in range(2):
        assert client.post(f"/t/{topic_id}/unlock").status_code == 302
        assert client.post(f"/t/{topic_id}/unpin").status_code == 302
        assert client.post("/u/alice/unban").status_code == 302
    assert state() == (False, False, False)
    with app.app_context():  # the repeated submits left no trace either
        actions = db.session.scalars(db.select(ModerationLog.action).order_by(ModerationLog.id)).all()
    assert actions == ["lock", "pin", "ban", "unlock", "unpin", "unban"]


def test_soft_delete_hides_from_members_shows_admins_and_restores(app, client, backend):
    board_id = create_board(app)
    create_user(app, "alice")
    create_user(app, "mod", password="mod-password", role="moderator")
    create_user(app, "root", password="root-password", role="admin")
    login(client)
    keep_id = new_topic(client, title="Kept topic", body="kept body")
    topic_id = new_topic(client, title="Doomed topic", body="doomed quokka")
    client.post(f"/t/{topic_id}/reply", data={"body": "reply quokka"})
    client.post(f"/t/{keep_id}/reply", data={"body": "second wombat"})
    with app.app_context():
        doomed_reply = db.session.scalar(db.select(db.func.max(Post.id)).where(Post.topic_id == topic_id))
        kept_reply = db.session.scalar(db.select(db.func.max(Post.id)).where(Post.topic_id == keep_id))
        before = db.session.get(Board, board_id)
        counters_before = (before.topic_count, before.post_count, before.last_post_id)
    assert counters_before == (2, 4, kept_reply)
    logout(client)

    login(client, "mod", "mod-password")
    assert client.post(f"/t/{topic_id}/delete", data={"reason": "duplicate"}).status_code == 302
    assert client.post(f"/p/{kept_reply}/delete").status_code == 302
    # Moderators delete but do not see deleted content, read the log or restore.
    assert client.get(f"/t/{topic_id}").status_code == 404
    assert client.get("/admin/log").status_code == 403
    assert client.post(f"/t/{topic_id}/restore").status_code == 403
    logout(client)

    with app.app_context():
        assert db.session.get(Topic, topic_id) is not None  # soft: the rows stay
        board = db.session.get(Board, board_id)
        kept = db.session.get(Topic, keep_id)
        assert (board.topic_count, board.post_count) == (1, 1)
        assert kept.reply_count == 0 and kept.last_post_id == board.last_post_id != kept_reply
        assert db.session.scalar(db.select(User.post_count).where(User.username == "alice")) == 1

    for who in (None, ("alice", "correct horse")):
        if who:
            login(client, *who)
        assert client.get(f"/t/{topic_id}").status_code == 404
        assert client.get(f"/p/{doomed_reply}").status_code == 404
        assert client.get(f"/p/{kept_reply}").status_code == 404
        assert client.post(f"/t/{topic_id}/reply", data={"body": "x"}).status_code in (302, 404)
        assert "Doomed topic" not in client.get("/b/general").get_data(as_text=True)
        assert "second wombat" not in client.get(f"/t/{keep_id}").get_data(as_text=True)
        found = client.get("/search?q=quokka").get_data(as_text=True)
        assert "doomed quokka" not in found and "reply quokka" not in found and "Doomed topic" not in found
        assert "second wombat" not in client.get("/search?q=wombat").get_data(as_text=True)
        assert "kept body" in client.get("/search?q=kept").get_data(as_text=True)  # search works
        assert "wombat" not in client.get("/u/alice").get_data(as_text=True)
        if who:
            assert client.get(f"/p/{kept_reply}/edit").status_code == 404
            assert client.post(f"/t/{topic_id}/reply", data={"body": "x"}).status_code == 404
            logout(client)

    login(client, "root", "root-password")
    page = client.get(f"/t/{topic_id}").get_data(as_text=True)
    assert "This topic was deleted" in page and "doomed quokka" in page
    assert f'action="/t/{topic_id}/restore"' in page
    page = client.get(f"/t/{keep_id}").get_data(as_text=True)
    assert "second wombat" in page and f'action="/p/{kept_reply}/restore"' in page
    log = client.get("/admin/log").get_data(as_text=True)
    assert log.count('class="log-entry"') == 2
    assert "delete_topic" in log and "Doomed topic" in log and "duplicate" in log and "mod" in log
    assert f'action="/t/{topic_id}/restore"' in log and f'action="/p/{kept_reply}/restore"' in log

    assert client.post(f"/t/{topic_id}/restore").status_code == 302
    assert client.post(f"/p/{kept_reply}/restore").status_code == 302
    assert client.post(f"/p/{kept_reply}/restore").status_code == 302  # again: nothing to do
    log = client.get("/admin/log").get_data(as_text=True)
    assert log.count('class="log-entry"') == 4 and "restore_topic" in log and "restore_post" in log
    assert "/restore" not in log  # nothing left to undo
    logout(client)

    assert client.get(f"/t/{topic_id}").status_code == 200
    assert "second wombat" in client.get(f"/t/{keep_id}").get_data(as_text=True)
    assert "Doomed topic" in client.get("/b/general").get_data(as_text=True)
    with app.app_context():
        board = db.session.get(Board, board_id)
        assert (board.topic_count, board.post_count, board.last_post_id) == counters_before
        assert db.session.scalar(db.select(User.post_count).where(User.username == "alice")) == 4
        actors = db.session.scalars(db.select(User.username).join(ModerationLog.actor)
                                    .order_by(ModerationLog.id)).all()
        assert actors == ["mod", "mod", "root", "root"]


def test_recount_leaves_deleted_content_out(app, client):
    """`flask forum recount` (recount_all) agrees with the counters kept on delete."""
    from forum.models import recount_all

    board_id = create_board(app)
    create_user(app, "alice")
    login(client)
    gone = new_topic(client, title="Gone")
    kept = new_topic(client, title="Kept")
    client.post(f"/t/{kept}/reply", data={"body": "r1"})
    client.post(f"/t/{kept}/reply", data={"body": "r2"})
    with app.app_context():
        last_reply = db.session.scalar(db.select(db.func.max(Post.id)))
    client.post(f"/p/{last_reply}/delete")
    with app.app_context():
        first_of_gone = db.session.scalar(db.select(db.func.min(Post.id)).where(Post.topic_id == gone))
    client.post(f"/p/{first_of_gone}/delete")  # the opening post of a topic without replies

    def counters():
        with app.app_context():
            db.session.expire_all()
            b, t = db.session.get(Board, board_id), db.session.get(Topic, kept)
            u = db.session.scalar(db.select(User).where(User.username == "alice"))
            return (b.topic_count, b.post_count, b.last_post_id, t.reply_count, t.last_post_id, u.post_count)

    kept_counters = counters()
    assert kept_counters[:2] == (1, 2) and kept_counters[3] == 1 and kept_counters[5] == 2
    with app.app_context():
        recount_all()
        db.session.commit()
    assert counters() == kept_counters


def test_board_listing_still_walks_its_index_without_deleted_topics(new_db_url, backend):
    """Hiding deleted topics costs the board page no sort: is_deleted sits in the index."""
    from sqlalchemy import create_engine, text

    from .test_migrations import run_flask

    url = new_db_url()
    run_flask(["db", "upgrade"], url)
    run_flask(["forum", "ensure-board", "General", "--description", "d"], url)
    run_flask(["forum", "demo-data", "--topics", "300", "--replies", "1"], url)
    listing = ("SELECT id FROM topics WHERE board_id = 1 AND is_deleted = {false} "
               "ORDER BY is_pinned DESC, last_post_at DESC, id DESC LIMIT 50 OFFSET 100")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(text("ANALYZE topics"))
                plan = "\n".join(conn.scalars(text("EXPLAIN " + listing.format(false="false"))))
                assert "Index Only Scan" in plan and "ix_topics_board_listing" in plan, plan
                assert "Sort" not in plan and "Filter" not in plan, plan
            else:
                rows = conn.execute(text("EXPLAIN QUERY PLAN " + listing.format(false="0"))).all()
                plan = "\n".join(str(r[-1]) for r in rows)
                assert "COVERING INDEX ix_topics_board_listing (board_id=? AND is_deleted=?)" in plan, plan
                assert "B-TREE" not in plan, plan
    finally:
        engine.dispose()


def test_a_too_long_reason_deletes_nothing_and_says_why(app, client):
    create_board(app)
    create_user(app, "mod", password="mod-password", role="moderator")
    login(client, "mod", "mod-password")
    topic_id = new_topic(client)
    resp = client.post(f"/t/{topic_id}/delete", data={"reason": "x" * 501})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "longer than 500 characters" in page and 'name="reason"' in page
    resp = client.post("/u/mod/ban", data={"reason": "x"})  # not yourself, whatever the reason
    assert resp.status_code == 403
    with app.app_context():
        assert not db.session.get(Topic, topic_id).is_deleted
        assert db.session.scalar(db.select(db.func.count(ModerationLog.id))) == 0
