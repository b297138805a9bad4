"""The Preview button: the server renders the draft (Markdown, code, mentions)
above the form that still holds it, and stores nothing; no JavaScript."""
from forum.extensions import db as _db
from forum.models import Notification, Post, Topic

from .conftest import create_board, create_user, login, make_app
from .test_posts import new_topic

DRAFT = "**bold** and @alice\n\n```python\nprint(1)\n```"


def counts(app):
    with app.app_context():
        return tuple(_db.session.scalar(_db.select(_db.func.count(m.id))) for m in (Topic, Post, Notification))


def member(app, name="bob"):
    client = app.test_client()
    login(client, name)
    return client


def setup(app):
    create_board(app)
    create_user(app, "alice")
    create_user(app, "bob")


def test_preview_of_a_new_topic_renders_the_draft_and_stores_nothing(app):
    setup(app)
    bob = member(app)
    before = counts(app)
    resp = bob.post("/b/general/new", data={"title": "Draft title", "body": DRAFT, "preview": "Preview"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'aria-label="Preview"' in html and "<strong>bold</strong>" in html
    assert 'class="mention"' in html and '<span class="nb">print</span>' in html
    assert 'value="Draft title"' in html and "**bold** and @alice" in html  # the form still holds it
    assert counts(app) == before  # no topic, no post, no notification
    # Sending it for real works from the same form.
    assert bob.post("/b/general/new", data={"title": "Draft title", "body": DRAFT}).status_code == 302
    assert counts(app) == (before[0] + 1, before[1] + 1, before[2] + 1)


def test_preview_of_a_reply_keeps_the_text_in_the_form(app):
    setup(app)
    bob = member(app)
    topic_id = new_topic(bob)
    before = counts(app)
    resp = bob.post(f"/t/{topic_id}/reply", data={"body": "a *draft* reply", "preview": "Preview"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<em>draft</em>" in html
    assert "a *draft* reply</textarea>" in html
    assert counts(app) == before


def test_preview_of_an_edit_changes_nothing(app):
    setup(app)
    bob = member(app)
    topic_id = new_topic(bob, body="original")
    with app.app_context():
        post_id = _db.session.scalar(_db.select(Post.id).where(Post.topic_id == topic_id))
    resp = bob.post(f"/p/{post_id}/edit", data={"body": "changed *text*", "preview": "Preview"})
    assert resp.status_code == 200 and "<em>text</em>" in resp.get_data(as_text=True)
    with app.app_context():
        assert _db.session.get(Post, post_id).body == "original"


def test_an_invalid_draft_is_not_previewed(app):
    setup(app)
    resp = member(app).post("/b/general/new", data={"title": "x", "body": "", "preview": "Preview"})
    assert 'aria-label="Preview"' not in resp.get_data(as_text=True)


def test_previews_do_not_use_up_the_posting_limit_but_have_their_own(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, FORUM_NEW_ACCOUNT_POST_RATE_LIMIT="2 per hour",
                   FORUM_POST_RATE_LIMIT="2 per hour", FORUM_PREVIEW_RATE_LIMIT="5 per hour")
    setup(app)
    bob = member(app)
    previews = [bob.post("/b/general/new", data={"title": "Title", "body": "b", "preview": "Preview"}).status_code
                for _ in range(6)]
    assert previews == [200] * 5 + [429]
    posts = [bob.post("/b/general/new", data={"title": "Title", "body": "b"}).status_code for _ in range(3)]
    assert posts == [302, 302, 429]


def test_every_post_form_has_a_preview_button(app):
    setup(app)
    bob = member(app)
    topic_id = new_topic(bob)
    with app.app_context():
        post_id = _db.session.scalar(_db.select(Post.id).where(Post.topic_id == topic_id))
    for url in ("/b/general/new", f"/t/{topic_id}", f"/p/{post_id}/edit"):
        assert 'name="preview"' in bob.get(url).get_data(as_text=True), url
