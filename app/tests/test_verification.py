"""Optional e-mail verification (FORUM_REQUIRE_EMAIL_VERIFICATION): a new
account reads at once but posts only after opening the mailed link."""
import re

import pytest

from forum.config import ConfigError, load_config
from forum.extensions import db as _db
from forum.models import Topic, User

from .conftest import create_board, create_user, make_app
from .test_recovery import PUBLIC, mail_config, sink  # noqa: F401  (fixture)

LINK_RE = re.compile(re.escape(PUBLIC) + r"(/account/verify/[A-Za-z0-9._-]+)")


@pytest.fixture
def verify_app(tmp_path, new_db_url, sink):  # noqa: F811
    app = make_app(tmp_path, new_db_url(), FORUM_REQUIRE_EMAIL_VERIFICATION=True, **mail_config(sink.port))
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def register(client, name="carol"):
    return client.post("/register", data={"username": name, "email": f"{name}@example.org",
                                          "password": "long enough", "confirm": "long enough"})


def topics(app):
    with app.app_context():
        return _db.session.scalar(_db.select(_db.func.count(Topic.id)))


def test_a_new_account_posts_only_after_opening_the_link(verify_app, sink):  # noqa: F811
    create_board(verify_app)
    client = verify_app.test_client()
    assert register(client).status_code == 302
    [message] = sink.wait_for(1)
    assert message.rcpt_tos == ["carol@example.org"]
    path = LINK_RE.search(message.content.decode()).group(1)

    board = client.get("/b/general").get_data(as_text=True)
    assert "Confirm your e-mail address to post" in board and "/b/general/new" not in board
    assert client.post("/b/general/new", data={"title": "Too soon", "body": "x"}).status_code == 403
    assert topics(verify_app) == 0

    assert client.get(path).status_code == 302
    assert "Confirm your e-mail address" not in client.get("/b/general").get_data(as_text=True)
    assert client.post("/b/general/new", data={"title": "Now it works", "body": "x"}).status_code == 302
    assert topics(verify_app) == 1


def test_a_link_for_another_address_or_tampered_is_refused(verify_app, sink):  # noqa: F811
    client = verify_app.test_client()
    register(client)
    path = LINK_RE.search(sink.wait_for(1)[0].content.decode()).group(1)
    assert client.get(path[:-3] + "abc").status_code == 400
    with verify_app.app_context():  # the address changed since the link was sent
        user = _db.session.scalar(_db.select(User).where(User.username == "carol"))
        user.email = "other@example.org"
        _db.session.commit()
    assert client.get(path).status_code == 400
    with verify_app.app_context():
        assert _db.session.scalar(_db.select(User.email_verified_at).where(User.username == "carol")) is None


def test_the_link_can_be_sent_again(verify_app, sink):  # noqa: F811
    client = verify_app.test_client()
    register(client)
    sink.wait_for(1)
    assert client.post("/account/verify").status_code == 302
    assert len(sink.wait_for(2)) == 2


def test_accounts_that_existed_and_cli_admins_are_not_held_back(verify_app):
    create_board(verify_app)
    create_user(verify_app)  # as the migration leaves older accounts: verified
    with verify_app.app_context():
        _db.session.execute(_db.update(User).values(email_verified_at=User.created_at))
        _db.session.commit()
    client = verify_app.test_client()
    client.post("/login", data={"username": "alice", "password": "correct horse"})
    assert client.post("/b/general/new", data={"title": "Old member", "body": "x"}).status_code == 302
    runner = verify_app.test_cli_runner()
    result = runner.invoke(args=["forum", "create-admin", "root", "--email", "root@example.org"],
                           env={"FORUM_ADMIN_PASSWORD": "admin password"})
    assert result.exit_code == 0, result.output
    with verify_app.app_context():
        assert _db.session.scalar(_db.select(User.email_verified_at).where(User.username == "root"))


def test_without_the_setting_nobody_is_asked(app, client):
    create_board(app)
    register(client)
    assert client.post("/b/general/new", data={"title": "Straight away", "body": "x"}).status_code == 302


def test_verification_needs_a_mail_server():
    with pytest.raises(ConfigError, match="FORUM_REQUIRE_EMAIL_VERIFICATION"):
        load_config({"FORUM_ENV": "development", "FORUM_REQUIRE_EMAIL_VERIFICATION": "true"})
