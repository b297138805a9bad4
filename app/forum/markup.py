"""Markdown rendering followed by HTML sanitising with nh3.

Fenced code blocks that name a language (```python) are highlighted on the
server by Pygments, as spans with CSS classes: the stylesheet colours them, so
the strict CSP (no inline styles, no scripts) holds. The sanitiser lets
through exactly those classes and nothing else.
"""
from __future__ import annotations

from html import escape

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# Pygments' short class names ("k" keyword, "s2" string, ...): the only classes
# user content may carry.
TOKEN_CLASSES = {name for name in STANDARD_TYPES.values() if name}
_formatter = HtmlFormatter(nowrap=True)


def highlight_code(code: str, lang: str, _attrs: str = "") -> str:
    """A fenced block in the named language as highlighted HTML, or "" (plain)."""
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang.strip().lower(), stripnl=False, ensurenl=False)
    except ClassNotFound:
        return ""
    body = highlight(code, lexer, _formatter)
    # The language stays readable for people (a title), not as a class.
    return f'<pre class="highlight" title="{escape(lexer.name)}"><code>{body}</code></pre>'


_md = MarkdownIt(
    "commonmark",
    {"html": False, "linkify": False, "typographer": False, "highlight": highlight_code},
).enable(["table", "strikethrough"]).disable("image")  # no remote images in user content

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "th": {"align", "style"},
    "td": {"align", "style"},
    "ol": {"start"},
    "pre": {"title"},
}
ALLOWED_CLASSES = {"span": TOKEN_CLASSES, "pre": {"highlight"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="nofollow noopener noreferrer ugc",
        strip_comments=True,
        filter_style_properties={"text-align"},
    )


def render_markdown(text: str) -> str:
    """Render user Markdown to safe HTML."""
    return sanitize_html(_md.render(text or ""))
