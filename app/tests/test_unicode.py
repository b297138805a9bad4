"""Issue 21: identities in any script, CJK slugs, a loud ensure-board, search that
finds what people type. Every test runs on SQLite and PostgreSQL (see conftest)."""
from urllib.parse import quote

import pytest

from forum.extensions import db
from forum.identity import skeleton, username_problem
from forum.models import Board, User
from forum.utils import slugify, unique_slug

from .conftest import create_board, create_user, login
from .test_posts import new_topic


def register(client, username, email=None, password="long enough pw"):
    return client.post("/register", data={
        "username": username, "email": email or f"{abs(hash(username))}@example.org",
        "password": password, "confirm": password})


def usernames(app):
    with app.app_context():
        return set(db.session.scalars(db.select(User.username)))


# --- identities ------------------------------------------------------------------


def test_chinese_username_registers_and_logs_in(app, client):
    resp = register(client, "张三丰")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    client.post("/logout")
    other = app.test_client()
    resp = login(other, "张三丰", "long enough pw")
    assert resp.status_code == 302
    html = other.get("/").get_data(as_text=True)
    assert "张三丰" in html
    assert other.get("/u/" + quote("张三丰")).status_code == 200
    assert login(app.test_client(), "张三丰", "wrong password").status_code == 401


@pytest.mark.parametrize("name", ["Ὀδυσσεύς", "Владимир", "محمد", "देवनागरी", "José.M_1-x", "李明"])
def test_usernames_in_any_script(app, client, name):
    assert register(client, name).status_code == 302
    assert name in usernames(app)


def test_look_alike_of_existing_name_refused(app, client):
    create_user(app, "paypal")
    for look_alike in ("pаypal",  # Cyrillic а
                       "PAYPAL", "pаypаl", "paypa1", "ρaypal"):  # Greek ρ
        resp = register(client, look_alike)
        assert resp.status_code == 200, look_alike
        html = resp.get_data(as_text=True)
        assert "already registered" in html or "looks too much like" in html
    assert usernames(app) == {"paypal"}
    # The look-alike cannot log in to the real account either.
    assert login(client, "pаypal", "correct horse").status_code == 401
    assert login(client, "PayPal", "correct horse").status_code == 302


def test_case_insensitive_login_in_any_script(app, client):
    assert register(client, "Σοφία").status_code == 302
    client.post("/logout")
    assert login(client, "σοφία", "long enough pw").status_code == 302


@pytest.mark.parametrize("name, error", [
    ("a b", "not a space"),
    ("x" * 31, "Between 2 and 30"),
    ("-abc", "Start with a letter"),
    ("ab@c", "U+0040"),
    ("a\u200bb", "U+200B"),
])
def test_bad_usernames_refused(app, client, name, error):
    resp = register(client, name)
    assert resp.status_code in (200, 400)
    assert error in resp.get_data(as_text=True)
    assert usernames(app) == set()


def test_length_counts_characters_not_bytes():
    assert username_problem("三" * 30) is None  # 90 bytes of UTF-8
    assert username_problem("三" * 31) is not None
    assert skeleton("pаypal") == skeleton("PayPal") != skeleton("paypals")
    assert skeleton("张三丰") == "张三丰"


# --- slugs -----------------------------------------------------------------------


def test_slugify_keeps_scripts():
    assert slugify("数据库 讨论") == "数据库-讨论"
    assert slugify("General Chat!") == "general-chat"
    assert slugify("Ｃａｆé") == "café"
    assert slugify("!!!") == "board"
    assert unique_slug("x", {"x", "x-2"}.__contains__) == "x-3"


def admin_client(app):
    create_user(app, "root", role="admin")
    client = app.test_client()
    login(client, "root")
    return client


def test_two_chinese_boards_from_the_admin_page(app):
    client = admin_client(app)
    for name in ("数据库", "运维", "数据库"):
        resp = client.post("/admin/boards", data={"name": name, "description": "d"})
        assert resp.status_code == 302, resp.get_data(as_text=True)
    with app.app_context():
        slugs = db.session.scalars(db.select(Board.slug).order_by(Board.id)).all()
    assert slugs == ["数据库", "运维", "数据库-2"]
    for slug, name in zip(slugs, ("数据库", "运维", "数据库")):
        resp = client.get("/b/" + quote(slug))
        assert resp.status_code == 200 and name in resp.get_data(as_text=True)
    # The front page links to each of them.
    html = app.test_client().get("/").get_data(as_text=True)
    assert all(f"/b/{slug}" in html or f"/b/{quote(slug)}" in html for slug in slugs)


def test_renaming_a_board_keeps_its_slug(app):
    client = admin_client(app)
    client.post("/admin/boards", data={"name": "数据库"})
    with app.app_context():
        board = db.session.scalar(db.select(Board))
        board_id = board.id
    resp = client.post(f"/admin/boards/{board_id}/edit", data={"name": "数据库与存储", "slug": "数据库"})
    assert resp.status_code == 302
    assert client.get("/b/" + quote("数据库")).status_code == 200
    # A taken slug typed by hand is an error, not a silent suffix.
    client.post("/admin/boards", data={"name": "Other", "slug": "other"})
    resp = client.post(f"/admin/boards/{board_id}/edit", data={"name": "x", "slug": "other"})
    assert resp.status_code == 200 and "already used" in resp.get_data(as_text=True)
    resp = client.post("/admin/boards", data={"name": "y", "slug": "Bad Slug"})
    assert "Lower-case letters" in resp.get_data(as_text=True)


# --- the CLI ---------------------------------------------------------------------


def test_ensure_board_chinese_names_and_exit_codes(app):
    runner = app.test_cli_runner()
    for name in ("数据库", "运维"):
        result = runner.invoke(args=["forum", "ensure-board", name])
        assert (result.exit_code, result.output) == (0, "created\n")
    result = runner.invoke(args=["forum", "ensure-board", "数据库"])
    assert (result.exit_code, result.output) == (0, "exists\n")
    with app.app_context():
        assert sorted(db.session.scalars(db.select(Board.slug))) == sorted(["数据库", "运维"])

    # Another board holds the slug: nothing created, non-zero exit, a message.
    result = runner.invoke(args=["forum", "ensure-board", "Databases", "--slug", "数据库"])
    assert result.exit_code == 1
    assert "belongs to another board" in result.output and "'数据库'" in result.output
    # The same board under another slug is not "exists" either.
    result = runner.invoke(args=["forum", "ensure-board", "运维", "--slug", "ops"])
    assert result.exit_code == 1 and "already exists with the slug" in result.output
    result = runner.invoke(args=["forum", "ensure-board", "x", "--slug", "Not A Slug"])
    assert result.exit_code == 1
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Board.id))) == 2

    # NFKC like the web forms: fullwidth letters are the same board.
    assert runner.invoke(args=["forum", "ensure-board", "News", "--slug", "news"]).output == "created\n"
    result = runner.invoke(args=["forum", "ensure-board", "Ｎｅｗｓ", "--slug", "ｎｅｗｓ"])
    assert (result.exit_code, result.output) == (0, "exists\n")
    # A name whose derived slug another board holds (here: renamed in the admin page)
    # fails too, instead of doubling the board; --slug resolves it.
    assert runner.invoke(args=["forum", "ensure-board", "C++"]).output == "created\n"
    result = runner.invoke(args=["forum", "ensure-board", "C#"])
    assert result.exit_code == 1 and "pass --slug" in result.output
    result = runner.invoke(args=["forum", "ensure-board", "C#", "--slug", "c-sharp"])
    assert (result.exit_code, result.output) == (0, "created\n")
    assert runner.invoke(args=["forum", "ensure-board", "C#"]).output == "exists\n"


def test_create_admin_normalises_and_refuses_look_alikes(app, monkeypatch):
    monkeypatch.setenv("FORUM_ADMIN_PASSWORD", "a-long-admin-password")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["forum", "create-admin", "ｒｏｏｔ", "--email", "r@example.org"])
    assert (result.exit_code, result.output) == (0, "created\n")
    assert usernames(app) == {"root"}
    result = runner.invoke(args=["forum", "create-admin", "ROOT", "--email", "r@example.org"])
    assert (result.exit_code, result.output) == (0, "exists\n")
    result = runner.invoke(args=["forum", "create-admin", "rооt", "--email", "r2@example.org"])  # Cyrillic о
    assert result.exit_code == 1 and "looks too much like" in result.output
    result = runner.invoke(args=["forum", "create-admin", "bad name", "--email", "r3@example.org"])
    assert result.exit_code == 1 and "not a space" in result.output
    result = runner.invoke(args=["forum", "create-admin", "管理员", "--email", "r4@example.org"])
    assert (result.exit_code, result.output) == (0, "created\n")
    assert usernames(app) == {"root", "管理员"}


# --- search ----------------------------------------------------------------------


def search(client, q):
    return client.get("/search?q=" + quote(q)).get_data(as_text=True)


def test_search_finds_cjk_inside_a_sentence(app, client):
    create_board(app)
    create_user(app)
    login(client)
    new_topic(client, title="性能问题", body="我们的数据库很慢，怎么办？")
    new_topic(client, title="Other", body="nothing to see")
    html = search(client, "数据库")
    assert "性能问题" in html and "Other" not in html
    assert "性能问题" in search(client, "性能")  # part of a title
    assert "性能问题" not in search(client, "网络")


def test_search_stems_english(app, client):
    create_board(app)
    create_user(app)
    login(client)
    new_topic(client, title="Release notes", body="Deploying the new release went fine.")
    new_topic(client, title="Other", body="nothing to see")
    for q in ("deploy", "deployments", "DEPLOYED", "releases"):
        html = search(client, q)
        assert "Release notes" in html and "Other" not in html, q


def test_search_ranks_title_match_first(app, client):
    create_board(app)
    create_user(app)
    login(client)
    first = new_topic(client, title="Backup strategy", body="How we keep copies.")
    # Newer posts that only mention the word in their body.
    new_topic(client, title="Misc one", body="we also talked about backup tools")
    client.post(f"/t/{first}/reply", data={"body": "a reply that says backup twice: backup"})
    new_topic(client, title="Misc two", body="backup again")
    html = search(client, "backup")
    positions = [html.find(s) for s in ("How we keep copies.", "Misc one", "Misc two", "says backup twice")]
    assert all(p > 0 for p in positions), positions
    assert positions[0] == min(positions), positions
