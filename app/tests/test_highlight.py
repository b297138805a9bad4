"""Fenced code blocks are highlighted on the server, with classes the CSP allows."""
import re

from forum.markup import TOKEN_CLASSES, render_markdown, sanitize_html

from .conftest import create_board, create_user, login
from .test_posts import new_topic

PYTHON = "```python\ndef greet(name):\n    return f\"hi {name}\"  # say hi\n```\n"


def test_named_language_is_highlighted_with_token_classes():
    html = render_markdown(PYTHON)
    assert html.startswith('<pre class="highlight" title="Python"><code>')
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">greet</span>' in html
    assert re.search(r'<span class="c1"># say hi</span>', html)
    assert "style=" not in html


def test_code_in_a_highlighted_block_stays_text():
    html = render_markdown("```html\n<script>alert(1)</script>\n```")
    assert "<script" not in html
    assert "&lt;" in html and "alert" in html


def test_unknown_or_missing_language_is_plain_code():
    for fence in ("```nosuchlang\nx = 1\n```", "```\nx = 1\n```"):
        html = render_markdown(fence)
        assert "<span" not in html
        assert "<pre><code" in html and "x = 1" in html


def test_users_cannot_borrow_classes_or_styles():
    # Raw HTML is off in Markdown; even HTML that reached the sanitiser keeps
    # only Pygments' token classes.
    assert "<span" not in render_markdown('<span class="k">x</span>')
    clean = sanitize_html('<span class="k flash-error" style="color:red">x</span><pre class="site-header">y</pre>')
    assert '<span class="k">x</span>' in clean
    assert "flash-error" not in clean and "style" not in clean and "site-header" not in clean
    assert "" not in TOKEN_CLASSES and {"k", "s2", "c1", "nf"} <= TOKEN_CLASSES


def test_topic_page_shows_highlighted_code_and_styles_it(app, client):
    create_board(app)
    create_user(app)
    login(client)
    topic_id = new_topic(client, body="Try this:\n\n" + PYTHON)
    page = client.get(f"/t/{topic_id}")
    html = page.get_data(as_text=True)
    assert '<pre class="highlight" title="Python"><code><span class="k">def</span>' in html
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    css = client.get("/static/style.css").get_data(as_text=True)
    assert '.highlight [class^="k"]' in css
