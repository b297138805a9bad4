"""Languages (English, Simplified Chinese) and time zones: Flask-Babel (forum.i18n)."""
import os
from datetime import datetime

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from sqlalchemy import select, update

from forum.extensions import db
from forum.i18n import TRANSLATIONS_DIR, locale_from_environment
from forum.models import Post, User

from .conftest import create_board, create_user, extract_csrf, login, make_app
from .test_pagecache import cached_app  # noqa: F401  (fixture)
from .test_posts import new_topic

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def _text(response) -> str:
    return response.get_data(as_text=True)


def _set_user(app, username="alice", **values):
    with app.app_context():
        db.session.execute(update(User).where(User.username == username).values(**values))
        db.session.commit()


def test_accept_language_zh_cn_gives_chinese_pages(app, client):
    create_board(app)
    page = client.get("/", headers=ZH)
    html = _text(page)
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in html and "<h1>版块</h1>" in html and ">登录</a>" in html
    assert "Log in" not in html
    assert "Accept-Language" in page.headers.get("Vary", "")
    login_page = _text(client.get("/login", headers={"Accept-Language": "zh"}))
    assert ">用户名</label>" in login_page and ">记住我</label>" in login_page
    # No header, or a language the forum does not have: English.
    for headers in ({}, {"Accept-Language": "fr-FR,de;q=0.8"}, EN):
        html = _text(client.get("/", headers=headers))
        assert '<html lang="en">' in html and "<h1>Boards</h1>" in html and "版块" not in html
    # Traditional Chinese is not served the Simplified catalog.
    assert "<h1>Boards</h1>" in _text(client.get("/", headers={"Accept-Language": "zh-TW"}))


def test_chinese_error_pages_flashes_and_validation_messages(app, client):
    page = client.get("/b/nope", headers=ZH)
    assert page.status_code == 404 and "页面不存在" in _text(page) and "返回论坛" in _text(page)
    create_user(app)
    failed = client.post("/login", data={"username": "alice", "password": "wrong"}, headers=ZH)
    assert failed.status_code == 401 and "用户名或密码错误。" in _text(failed)
    register = _text(client.post("/register", headers=ZH, data={
        "username": "a b", "email": "nope", "password": "short", "confirm": "other"}))
    assert "不能使用空格" in register and "电子邮箱地址无效。" in register
    assert "两次输入的密码必须一致。" in register
    # WTForms' own messages come from its Chinese catalog (Flask-WTF's i18n).
    assert "字段长度必须介于 8 到 200 个字符之间" in register


def test_a_members_setting_wins_over_the_header(app, client):
    create_board(app)
    create_user(app)
    login(client)
    assert "<h1>Boards</h1>" in _text(client.get("/", headers=EN))
    # The settings page stores the choice (read back from the database) ...
    form = client.get("/account/settings", headers=EN)
    assert form.status_code == 200 and "Language and time zone" in _text(form)
    saved = client.post("/account/settings", headers=EN, follow_redirects=True,
                        data={"locale": "zh_CN", "timezone": "Asia/Shanghai"})
    assert "您的设置已保存。" in _text(saved)  # already in the new language
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "alice"))
        assert (user.locale, user.timezone) == ("zh_CN", "Asia/Shanghai")
    # ... and it wins over the browser's English.
    assert "<h1>版块</h1>" in _text(client.get("/", headers=EN))
    # English chosen: a Chinese browser still gets English.
    _set_user(app, locale="en")
    assert "<h1>Boards</h1>" in _text(client.get("/", headers=ZH))
    # No choice: the browser decides again.
    _set_user(app, locale=None)
    assert "<h1>版块</h1>" in _text(client.get("/", headers=ZH))
    # Values the page does not offer are refused.
    bad = client.post("/account/settings", data={"locale": "xx", "timezone": "Mars/Base"})
    assert bad.status_code == 200 and "has-error" in _text(bad)
    with app.app_context():
        assert db.session.scalar(select(User.timezone).where(User.username == "alice")) == "Asia/Shanghai"


def test_settings_need_a_login(client):
    response = client.get("/account/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    # Flask-Login's message, in the visitor's language.
    page = client.get("/account/settings", headers=ZH, follow_redirects=True)
    assert "请先登录再访问此页面。" in _text(page)


def test_the_page_cache_keeps_languages_apart(new_db_url, cached_app):  # noqa: F811
    app = cached_app(new_db_url())
    create_board(app)
    anonymous = app.test_client()
    chinese = anonymous.get("/", headers=ZH)
    assert chinese.headers["X-Page-Cache"] == "miss" and "<h1>版块</h1>" in _text(chinese)
    english = anonymous.get("/", headers=EN)
    # Not the Chinese page from the cache: its own entry.
    assert english.headers["X-Page-Cache"] == "miss" and "<h1>Boards</h1>" in _text(english)
    assert "版块" not in _text(english)
    again = anonymous.get("/", headers=ZH)
    assert again.headers["X-Page-Cache"] == "hit" and "<h1>版块</h1>" in _text(again)
    again = anonymous.get("/", headers=EN)
    assert again.headers["X-Page-Cache"] == "hit" and "版块" not in _text(again)

    # Members: the shared fragments (topic rows, posts, the reply form) per language too.
    create_user(app)
    create_user(app, username="bob")
    _set_user(app, "alice", locale="zh_CN")
    _set_user(app, "bob", locale="en")
    alice, bob = app.test_client(), app.test_client()
    login(alice)
    login(bob, username="bob")
    topic_url = f"/t/{new_topic(alice, title='Shared topic')}"
    for first, second, mine, theirs in ((alice, bob, "回复", "Replies"), (bob, alice, "Replies", "回复")):
        board = _text(first.get("/b/general"))
        assert mine in board and theirs not in board
        board = _text(second.get("/b/general"))
        assert theirs in board and mine not in board
    alice_topic, bob_topic = _text(alice.get(topic_url)), _text(bob.get(topic_url))
    assert "发表回复" in alice_topic and "Post reply" not in alice_topic
    assert "Post reply" in bob_topic and "发表回复" not in bob_topic


def test_dates_in_the_members_zone_and_language(app, client):
    app.config["BABEL_DEFAULT_TIMEZONE"] = "UTC"
    create_board(app)
    create_user(app)
    login(client)
    new_topic(client, title="Dated topic")
    with app.app_context():
        db.session.execute(update(Post).values(created_at=datetime(2026, 1, 15, 12, 30)))
        db.session.commit()
    # Anonymous visitors: the forum's default zone (UTC).
    anonymous = app.test_client()
    assert "Jan 15, 2026 12:30\u202fPM UTC" in _text(anonymous.get("/u/alice", headers=EN))
    # The member's own zone, in the member's language: 12:30 UTC is 20:30 in Shanghai.
    _set_user(app, timezone="Asia/Shanghai")
    assert "Jan 15, 2026 8:30\u202fPM CST" in _text(client.get("/u/alice", headers=EN))
    _set_user(app, timezone="Asia/Shanghai", locale="zh_CN")
    assert "2026年1月15日 20:30 CST" in _text(client.get("/u/alice"))
    _set_user(app, timezone="America/New_York", locale="en")
    assert "Jan 15, 2026 7:30\u202fAM EST" in _text(client.get("/u/alice"))


def test_the_forums_default_zone_is_configurable(tmp_path, monkeypatch):
    from forum.config import ConfigError, load_config

    assert load_config({"FORUM_DEFAULT_TIMEZONE": "Asia/Shanghai"})["BABEL_DEFAULT_TIMEZONE"] == "Asia/Shanghai"
    assert load_config({})["BABEL_DEFAULT_TIMEZONE"] == "UTC"
    with pytest.raises(ConfigError, match="FORUM_DEFAULT_TIMEZONE"):
        load_config({"FORUM_DEFAULT_TIMEZONE": "Mars/Base"})


@pytest.mark.parametrize("env, expected", [
    ({}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_ALL": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANGUAGE": "fr:zh_CN", "LANG": "fr_FR.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_TW.UTF-8"}, "en"),
])
def test_the_cli_language_comes_from_the_environment(env, expected):
    assert locale_from_environment(env) == expected


def test_cli_messages_in_chinese(app, monkeypatch):
    runner = app.test_cli_runner()
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    result = runner.invoke(args=["forum", "set-role", "nobody", "admin"])
    assert result.exit_code == 1 and "没有这个用户：nobody" in result.output
    # The one-word results scripts read stay English.
    result = runner.invoke(args=["forum", "ensure-board", "新闻"])
    assert result.exit_code == 0 and result.output.strip() == "created"
    monkeypatch.setenv("LANG", "C.UTF-8")
    result = runner.invoke(args=["forum", "set-role", "nobody", "admin"])
    assert result.exit_code == 1 and "no such user: nobody" in result.output


def _extract(tmp_path) -> str:
    pot = str(tmp_path / "messages.pot")
    CommandLineInterface().run([
        "pybabel", "--quiet", "extract", "--no-location", "-F", os.path.join(APP_DIR, "babel.cfg"),
        "-k", "lazy_gettext", "-k", "_l", "-o", pot, APP_DIR])
    return pot


def test_every_string_in_the_source_has_a_chinese_translation(tmp_path):
    """Fails when a msgid in the code or templates has no (or a fuzzy, or a
    placeholder-breaking) zh_CN translation: run `make -C app catalogs`, translate."""
    with open(_extract(tmp_path), "rb") as f:
        template = read_po(f)
    with open(os.path.join(TRANSLATIONS_DIR, "zh_Hans_CN", "LC_MESSAGES", "messages.po"), "rb") as f:
        chinese = read_po(f, locale="zh_Hans_CN")
    ids = [m.id for m in template if m.id]
    assert len(ids) > 150  # the extraction found the source (not an empty template)
    problems = []
    for msgid in ids:
        message = chinese.get(msgid)
        strings = [] if message is None else (
            list(message.string) if isinstance(message.string, (list, tuple)) else [message.string])
        if message is None or message.fuzzy or not all(strings):
            problems.append(f"untranslated: {msgid!r}")
            continue
        problems += [f"{msgid!r}: {error}" for error in (message.check(chinese) or [])]
    assert not problems, "\n".join(problems)
    # And no translation is left over for a string the source no longer has.
    stale = [m.id for m in chinese if m.id and m.id not in template]
    assert not stale, stale


def test_the_catalog_test_can_fail(tmp_path, monkeypatch):
    """A new string in a template is reported by the extraction the test above uses."""
    with open(_extract(tmp_path), "rb") as f:
        assert "Boards" in read_po(f)
    extra = tmp_path / "app"
    (extra / "forum" / "templates").mkdir(parents=True)
    (extra / "forum" / "templates" / "x.html").write_text("{{ _('A string nobody translated') }}")
    pot = str(tmp_path / "extra.pot")
    CommandLineInterface().run([
        "pybabel", "--quiet", "extract", "-F", os.path.join(APP_DIR, "babel.cfg"), "-o", pot, str(extra)])
    with open(pot, "rb") as f:
        assert "A string nobody translated" in read_po(f)
