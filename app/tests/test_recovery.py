"""Password reset by a signed, expiring, single-use link sent through SMTP,
with a local SMTP sink (aiosmtpd) standing in for the operator's relay."""
from __future__ import annotations

import asyncio
import re
import socket
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from forum.config import ConfigError, load_config
from forum.extensions import db as _db
from forum.models import User

from .conftest import create_user, login, make_app

PUBLIC = "https://forum.example.org"
LINK_RE = re.compile(re.escape(PUBLIC) + r"(/password/reset/[A-Za-z0-9._-]+)")


class Sink:
    """Accepts every message; holds each one until ``gate`` is set."""

    def __init__(self) -> None:
        self.messages: list = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 20)
        with self.arrived:
            self.messages.append(envelope)
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 15) -> list:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), self.messages
            return list(self.messages)


@pytest.fixture
def sink():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    yield handler
    handler.gate.set()
    controller.stop()


def mail_config(port: int) -> dict:
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_USE_TLS": False,
            "MAIL_DEFAULT_SENDER": "forum@example.org", "FORUM_PUBLIC_URL": PUBLIC}


@pytest.fixture
def mail_app(tmp_path, new_db_url, sink):
    app = make_app(tmp_path, new_db_url(), **mail_config(sink.port))
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def ask_for_link(client, account="alice@example.org", **kwargs):
    return client.post("/password/forgot", data={"account": account}, **kwargs)


def link_path(message) -> str:
    body = message.content.decode()
    match = LINK_RE.search(body)
    assert match, body
    return match.group(1)


def test_reset_by_mail_changes_the_password_once_and_ends_old_sessions(mail_app, sink):
    create_user(mail_app)
    thief = mail_app.test_client()
    login(thief)
    assert thief.get("/account/password").status_code == 200

    client = mail_app.test_client()
    resp = ask_for_link(client, follow_redirects=True)
    assert "on its way" in resp.get_data(as_text=True)
    [message] = sink.wait_for(1)
    assert message.rcpt_tos == ["alice@example.org"]
    assert message.mail_from == "forum@example.org"
    assert b"Subject: Reset your password on forum.example.org" in message.content
    path = link_path(message)

    page = client.get(path)
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    resp = client.post(path, data={"password": "brand new pass", "confirm": "brand new pass"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")

    assert login(mail_app.test_client()).status_code == 401  # the old password
    assert login(mail_app.test_client(), password="brand new pass").status_code == 302
    # The session captured before the reset is over.
    assert thief.get("/account/password").status_code == 302
    # The link worked once.
    assert client.get(path).status_code == 400
    again = client.post(path, data={"password": "third password", "confirm": "third password"})
    assert again.status_code == 400
    assert login(mail_app.test_client(), password="brand new pass").status_code == 302


def test_unknown_accounts_get_the_same_answer_and_no_mail(mail_app, sink):
    create_user(mail_app)
    client = mail_app.test_client()
    unknown = ask_for_link(client, "nobody@example.org")
    known = ask_for_link(client, "alice")  # by username works too
    assert unknown.status_code == known.status_code == 302
    assert unknown.headers["Location"] == known.headers["Location"]
    # One sender thread, in order: a message for the unknown address would be here first.
    [message] = sink.wait_for(1)
    time.sleep(0.3)
    assert len(sink.messages) == 1 and message.rcpt_tos == ["alice@example.org"]


def test_the_request_does_not_wait_for_the_relay(mail_app, sink):
    create_user(mail_app)
    sink.gate.clear()  # the relay accepts nothing for now
    resp = ask_for_link(mail_app.test_client())
    assert resp.status_code == 302
    assert sink.messages == []  # answered before the relay took the message
    sink.gate.set()
    assert len(sink.wait_for(1)) == 1


def test_the_link_points_at_the_public_url_not_the_host_header(mail_app, sink):
    create_user(mail_app)
    ask_for_link(mail_app.test_client(), headers={"Host": "evil.example"})
    body = sink.wait_for(1)[0].content.decode()
    assert PUBLIC + "/password/reset/" in body and "evil.example" not in body


def test_expired_tampered_and_superseded_links_are_refused(mail_app, monkeypatch):
    from forum import recovery

    create_user(mail_app)
    with mail_app.test_request_context():
        user = _db.session.scalar(_db.select(User).where(User.username == "alice"))
        real = time.time
        monkeypatch.setattr("itsdangerous.timed.time.time", lambda: real() - 3601)
        expired = recovery.reset_url(user)
        monkeypatch.setattr("itsdangerous.timed.time.time", real)
        fresh = recovery.reset_url(user)
    client = mail_app.test_client()
    path = lambda url: url[len(PUBLIC):]  # noqa: E731
    assert client.get(path(expired)).status_code == 400
    assert "does not work" in client.get(path(expired)).get_data(as_text=True)
    assert client.get(path(fresh)[:-2] + "xx").status_code == 400
    assert client.get(path(fresh)).status_code == 200
    # Logging out everywhere retires every link made before.
    login(client)
    client.post("/account/logout-everywhere")
    assert client.get(path(fresh)).status_code == 400


def test_without_a_mail_server_members_are_sent_to_an_admin(app, client):
    create_user(app)
    page = client.get("/password/forgot").get_data(as_text=True)
    assert "sends no e-mail" in page and 'name="account"' not in page
    assert "Forgot your password?" in client.get("/login").get_data(as_text=True)


def test_admin_cli_reset_link_and_set_password(app):
    create_user(app)
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["forum", "reset-link", "alice"])
    assert refused.exit_code != 0 and "FORUM_PUBLIC_URL" in refused.output
    result = runner.invoke(args=["forum", "reset-link", "alice", "--base-url", PUBLIC])
    assert result.exit_code == 0, result.output
    path = LINK_RE.search(result.output).group(1)
    client = app.test_client()
    client.post(path, data={"password": "from the link", "confirm": "from the link"})
    assert login(app.test_client(), password="from the link").status_code == 302

    member = app.test_client()
    login(member, password="from the link")
    result = runner.invoke(args=["forum", "set-password", "alice"], input="set by admin\n")
    assert result.exit_code == 0 and "every session ended" in result.output
    assert member.get("/account/password").status_code == 302
    assert login(app.test_client(), password="set by admin").status_code == 302
    short = runner.invoke(args=["forum", "set-password", "alice"], input="short\n")
    assert short.exit_code != 0 and "8 to 200" in short.output
    assert runner.invoke(args=["forum", "set-password", "nobody"], input="whatever pass\n").exit_code != 0


def test_reset_requests_are_limited_per_account(tmp_path, sink):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, FORUM_RESET_RATE_LIMIT="100 per hour",
                   FORUM_RESET_ACCOUNT_RATE_LIMIT="2 per hour", **mail_config(sink.port))
    create_user(app)
    codes = [ask_for_link(app.test_client(), "Alice").status_code for _ in range(3)]
    assert codes == [302, 302, 429]
    assert ask_for_link(app.test_client(), "bob@example.org").status_code == 302
    assert len(sink.wait_for(2)) == 2


@pytest.mark.parametrize("env, named", [
    ({"FORUM_MAIL_SERVER": "smtp.example.org", "FORUM_PUBLIC_URL": PUBLIC}, "FORUM_MAIL_FROM"),
    ({"FORUM_MAIL_SERVER": "smtp.example.org", "FORUM_MAIL_FROM": "f@example.org"}, "FORUM_PUBLIC_URL"),
    ({"FORUM_MAIL_SECURITY": "tls"}, "FORUM_MAIL_SECURITY"),
    ({"FORUM_MAIL_PORT": "70000"}, "FORUM_MAIL_PORT"),
    ({"FORUM_PUBLIC_URL": "forum.example.org"}, "FORUM_PUBLIC_URL"),
    ({"FORUM_PASSWORD_RESET_SECONDS": "10"}, "FORUM_PASSWORD_RESET_SECONDS"),
    ({"FORUM_RESET_ACCOUNT_RATE_LIMIT": "often"}, "FORUM_RESET_ACCOUNT_RATE_LIMIT"),
])
def test_bad_mail_settings_are_named(env, named):
    with pytest.raises(ConfigError, match=named):
        load_config({"FORUM_ENV": "development", **env})


def test_mail_settings_map_to_flask_mail():
    config = load_config({"FORUM_ENV": "development", "FORUM_MAIL_SERVER": "smtp.example.org",
                          "FORUM_MAIL_SECURITY": "ssl", "FORUM_MAIL_FROM": "f@example.org",
                          "FORUM_PUBLIC_URL": PUBLIC + "/", "FORUM_MAIL_PASSWORD": "s3cret"})
    assert (config["MAIL_PORT"], config["MAIL_USE_SSL"], config["MAIL_USE_TLS"]) == (465, True, False)
    assert config["FORUM_PUBLIC_URL"] == PUBLIC and config["MAIL_PASSWORD"] == "s3cret"
