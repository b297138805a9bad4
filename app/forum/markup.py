"""Markdown rendering followed by HTML sanitising with nh3.

Fenced code blocks that name a language (```python) are highlighted on the
server by Pygments, as spans with CSS classes: the stylesheet colours them, so
the strict CSP (no inline styles, no scripts) holds. The sanitiser lets
through exactly those classes and nothing else.
"""
from __future__ import annotations

import unicodedata
from html import escape
from typing import Iterable, Mapping
from urllib.parse import quote

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


# --- @mentions ---------------------------------------------------------------
# A mention is "@" and a username (forum.identity: letters and marks of any
# script, digits, _ - .; 2 to 30 characters), not inside code and not the
# middle of an e-mail address or word: the character before "@" must not be an
# ASCII letter or digit or one of _ - . @ ("bob@example.org" mentions nobody,
# "你好@张三" does). Chinese is written without spaces, so the longest run of
# name characters after "@" is cut back to the longest existing username.
MENTION_MAX = 30
_NAME_PUNCTUATION = "_-."


def _name_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LM" or category == "Nd" or ch in _NAME_PUNCTUATION


def _mention_run(src: str, pos: int) -> str:
    """The name characters after the "@" at ``pos`` (at most MENTION_MAX), or ""."""
    if pos > 0:
        before = src[pos - 1]
        if (before.isascii() and before.isalnum()) or before in _NAME_PUNCTUATION + "@":
            return ""
    end = pos + 1
    while end < len(src) and end - pos - 1 < MENTION_MAX and _name_char(src[end]):
        end += 1
    return src[pos + 1:end]


def mention_candidates(text: str) -> set[str]:
    """Every name a mention in ``text`` could stand for (each prefix of each run,
    2 characters or more), to look up in one query. A superset: code is not
    excluded here, the renderer skips it."""
    found: set[str] = set()
    start = text.find("@")
    while start != -1:
        run = _mention_run(text, start).rstrip(_NAME_PUNCTUATION)
        found.update(run[:n] for n in range(2, len(run) + 1))
        start = text.find("@", start + 1)
    return found


def _mention_rule(state, silent: bool) -> bool:
    names: Mapping[str, str] = state.env.get("mention_names") or {}
    if state.src[state.pos] != "@" or not names:
        return False
    run = _mention_run(state.src, state.pos)
    for length in range(len(run), 1, -1):
        username = names.get(run[:length]) or names.get(run[:length].casefold())
        if username:
            break
    else:
        return False
    if not silent:
        token = state.push("link_open", "a", 1)
        token.attrs = {"href": "/u/" + quote(username, safe=""), "class": "mention"}
        state.push("text", "", 0).content = "@" + run[:length]
        state.push("link_close", "a", -1)
        state.env.setdefault("mentioned", []).append(username)
    state.pos += 1 + length
    return True


_md = MarkdownIt(
    "commonmark",
    {"html": False, "linkify": False, "typographer": False, "highlight": highlight_code},
).enable(["table", "strikethrough"]).disable("image")  # no remote images in user content
_md.inline.ruler.before("link", "mention", _mention_rule)

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
ALLOWED_CLASSES = {"span": TOKEN_CLASSES, "pre": {"highlight"}, "a": {"mention"}}
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


def render_markdown(text: str, mention_names: Mapping[str, str] | None = None) -> str:
    """Render user Markdown to safe HTML; ``mention_names`` maps the names a
    mention may be written as (exactly, or case-folded) to existing usernames."""
    return render_with_mentions(text, mention_names)[0]


def render_with_mentions(text: str, mention_names: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """The safe HTML and the usernames mentioned in it (in order, repeats kept)."""
    env: dict = {"mention_names": mention_names or {}}
    html = sanitize_html(_md.render(text or "", env))
    return html, env.get("mentioned", [])


def names_lookup(rows: Iterable[str]) -> dict[str, str]:
    """``mention_names`` for these usernames: each as spelled and case-folded."""
    lookup: dict[str, str] = {}
    for username in rows:
        lookup.setdefault(username.casefold(), username)
        lookup[username] = username
    return lookup
