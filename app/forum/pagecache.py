"""Short-lived caches of rendered pages (anonymous visitors) and of the parts of
pages that are the same for every visitor (members too).

Only GET requests *without any cookie of ours* (no session, no remember-me) are
served from or stored in the cache, and only 200 responses that did not touch the
session. Logged-in users, flashed messages and forms with CSRF tokens therefore
never meet a cached page.

Invalidation: every database commit in this app (all writes go through one)
clears the worker's own cache and touches a *generation file*; every worker checks
that file's mtime (one ``stat``) before serving a hit, so a write in one Gunicorn
worker invalidates the pages of all workers on the host at once. The file lives in
the temp dir (private to the service under systemd's ``PrivateTmp``) and is named
after the database URL. Writes the app cannot see (another web host, the CLI under
a different /tmp) are picked up after at most ``PAGE_CACHE_SECONDS``
(``FORUM_PAGE_CACHE_SECONDS``, default 10; 0 disables the cache). Each worker keeps at
most 256 pages (least recently used first out), so odd query strings cannot grow it.

Members get no whole cached page (it carries their name and a CSRF token), but the
expensive middle of list pages -- the rows of a board, the board index -- holds
nothing personal: ``cached_fragment`` keeps that part, under the same invalidation
and the same TTL, so a member's request renders only the page around it. The posts of
a topic page are such a part too (each post's header and body; its Edit/Delete buttons,
which depend on who is looking, are added around them per request).

Pages and fragments are kept per language and time zone (``_variant_key``): the same
address in Chinese or with dates in another zone is another entry.

Around those parts, a member's page is the same for every member of the same kind
(not banned or banned, and on a topic page the posts they may edit): ``member_page``
keeps that whole page once per kind, with two holes -- the header's user menu
(``USER_NAV_MARK``) and the CSRF token of its forms (``CSRF_MARK``) -- that are
filled in for the member looking (the menu itself is kept once per kind of member,
with holes for the name and the unread count), and the unread markers (``<!--unread:ID-->``)
left for the view to fill. Moderators and admins (forms with tokens of their own),
members asked to confirm their address (the notice names it) and requests with a
flashed message pending always get a page rendered for them alone.

Members' own account rows (``cached_user_row``) are kept the same way, for GET requests
only: a member's page view then runs no query at all once the shared parts are cached.
A ban, a role change, a password change or a "log out everywhere" is a commit, so it
reaches every worker at once; every POST (anything that writes) still loads the account
from the database.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections import OrderedDict
from functools import wraps
from types import SimpleNamespace
from typing import Any, Callable, NamedTuple

from flask import (Flask, Response, current_app, g, has_request_context, make_response, render_template, request,
                   session, url_for)
from sqlalchemy import event

EXTENSION_KEY = "forum_page_cache"
# A session.info flag: the next commit changes nothing any cached page shows
# (forum.reading's read markers), so it does not invalidate the caches.
KEEP_CACHE = "forum_keep_cache"
USER_CACHE_KEY = "forum_user_cache"
# Each invalidation appends one byte to the generation file; past this size it starts
# again from one byte (its mtime has moved on by then, so the state is still new).
GENERATION_FILE_MAX = 1 << 20


class _Entry(NamedTuple):
    created_ns: int
    expires: float
    body: Any  # bytes for pages; whatever the render function returned for fragments
    headers: list[tuple[str, str]]
    # The generation file's state when the render started. File timestamps come from
    # the kernel's coarse clock (milliseconds behind time_ns()), so "created after the
    # last write" alone could keep a render that read the rows just before a commit;
    # the exact state (mtime, size: every write appends a byte) cannot miss one.
    generation: Any = None


class PageCache:
    def __init__(self, ttl: float, generation_file: str, max_entries: int = 256) -> None:
        self.ttl = ttl
        self.generation_file = generation_file
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def generation(self) -> tuple[int, int]:
        """The generation file's (mtime, size): changes with every invalidation."""
        try:
            st = os.stat(self.generation_file)
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def get(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        generation = self.generation()
        if (entry.expires < time.monotonic() or entry.created_ns <= generation[0]
                or (entry.generation is not None and entry.generation != generation)):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return entry

    def put(self, key: str, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
        try:
            with open(self.generation_file, "ab") as f:
                if f.tell() >= GENERATION_FILE_MAX:
                    f.truncate(0)
                f.write(b".")
            os.utime(self.generation_file)
        except OSError:  # pragma: no cover - read-only temp dir: the TTL still bounds staleness
            pass


def init_page_cache(app: Flask) -> None:
    ttl = float(app.config.get("PAGE_CACHE_SECONDS") or 0)
    if ttl <= 0:
        return
    digest = hashlib.sha256(app.config["SQLALCHEMY_DATABASE_URI"].encode()).hexdigest()[:16]
    cache = PageCache(ttl, os.path.join(tempfile.gettempdir(), f"forum-pagecache-{digest}"))
    app.extensions[EXTENSION_KEY] = cache
    # Account rows in their own store (one per active member), so that many members
    # cannot push the shared pages out; same generation file, same TTL.
    app.extensions[USER_CACHE_KEY] = PageCache(ttl, cache.generation_file, max_entries=4096)
    _listen_for_commits()


_listening = False


def _listen_for_commits() -> None:
    """After (not before) every committed ORM transaction, invalidate that app's cache."""
    global _listening
    if _listening:
        return
    from flask import has_app_context
    from flask_sqlalchemy.session import Session

    @event.listens_for(Session, "after_commit")
    def _after_commit(session) -> None:
        if session.info.pop(KEEP_CACHE, False):
            return
        # Flask-SQLAlchemy sessions are scoped to the app context they run in.
        if has_app_context():
            cache = current_app.extensions.get(EXTENSION_KEY)
            if cache is not None:
                cache.invalidate()

    _listening = True


def _cacheable_request() -> bool:
    if request.method != "GET" or request.cookies:
        # Any cookie (session, remember-me, ...) may mean per-user content.
        return False
    return True


def cached_page(view: Callable) -> Callable:
    """Serve ``view`` from the page cache for anonymous GET requests."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        cache: PageCache | None = current_app.extensions.get(EXTENSION_KEY)
        if cache is None or not _cacheable_request():
            return view(*args, **kwargs)
        key = _variant_key(request.full_path)
        entry = cache.get(key)
        if entry is not None:
            response = Response(entry.body, headers=entry.headers)
            response.headers["X-Page-Cache"] = "hit"
            return response
        started_ns, generation = time.time_ns(), cache.generation()
        response = make_response(view(*args, **kwargs))
        if (response.status_code == 200 and not session.modified
                and "Set-Cookie" not in response.headers and not response.is_streamed):
            headers = [(k, v) for k, v in response.headers.items()
                       if k.lower() in ("content-type", "cache-control")]
            cache.put(key, _Entry(started_ns, time.monotonic() + cache.ttl, response.get_data(), headers,
                                  generation))
        response.headers["X-Page-Cache"] = "miss"
        return response

    return wrapped


def cached_fragment(name: str, render: Callable[[], Any]) -> Any:
    """``render()``'s result for this request path, shared by every visitor of this worker.

    Only for page parts that are the same for everybody (no user name, no CSRF token,
    no per-user state). ``None`` (e.g. "not found") is never stored. Without a page
    cache (``FORUM_PAGE_CACHE_SECONDS=0``) it simply calls ``render``.
    """
    cache: PageCache | None = current_app.extensions.get(EXTENSION_KEY)
    if cache is None:
        return render()
    return _cached(cache, f"fragment:{name}:" + _variant_key(request.full_path), render)


# The holes of a member page skeleton (see the module docstring). Each holds a NUL,
# which no stored text can (forum.hygiene refuses control characters), so no post or
# name can pose as a hole and receive another member's token.
USER_NAV_MARK = "\x00user-nav\x00"
CSRF_MARK = "\x00csrf-token\x00"
NAV_NAME_MARK = "\x00username\x00"
NAV_COUNT_MARK = "\x00unread\x00"


def rendering_skeleton() -> bool:
    """True while ``member_page`` renders the shared skeleton of a member page:
    templates then leave the holes instead of the member's own parts."""
    return bool(g.get("forum_skeleton"))


def csrf_token() -> str:
    """The templates' ``csrf_token()``: the request's token, or its hole in a skeleton."""
    from flask_wtf.csrf import generate_csrf

    return CSRF_MARK if rendering_skeleton() else generate_csrf()


def member_page(render: Callable[[], str], *kind: Any) -> str:
    """``render()``'s page for the member looking, built from the skeleton shared by
    the members of the same ``kind`` (whatever besides the user menu and the CSRF
    token makes the page differ between two members; the view passes it)."""
    from flask_login import current_user
    from flask_wtf.csrf import generate_csrf

    from .recovery import email_unverified

    cache: PageCache | None = current_app.extensions.get(EXTENSION_KEY)
    user = current_user._get_current_object()
    if (cache is None or request.method != "GET" or not user.is_authenticated or user.is_moderator
            or email_unverified(user) or session.get("_flashes")):
        return render()

    page = _cached(cache, f"member:{(user.is_banned, *kind)!r}:" + _variant_key(request.full_path),
                   lambda: _as_skeleton(lambda: str(render())))
    page = page.replace(USER_NAV_MARK, _user_nav(cache, user), 1)
    return page.replace(CSRF_MARK, generate_csrf())


def _as_skeleton(render: Callable[[], str]) -> str:
    """``render()`` with the templates leaving their holes (``rendering_skeleton``)."""
    g.forum_skeleton = True
    try:
        return render()
    finally:
        g.forum_skeleton = False


def _user_nav(cache: PageCache, user: Any) -> str:
    """The header's user menu for ``user``, from the menu of their kind (admin or
    not, with unread notifications or not) with holes for the name and the count."""
    from markupsafe import escape

    unread = user.unread_notifications or 0

    def skeleton() -> tuple[str, str]:
        stand_in = SimpleNamespace(is_authenticated=True, is_admin=user.is_admin, username=NAV_NAME_MARK,
                                   unread_notifications=NAV_COUNT_MARK if unread else 0)
        nav = _as_skeleton(lambda: render_template("_user_nav.html", current_user=stand_in))
        return nav, url_for("users.profile", username=NAV_NAME_MARK)  # the profile link's hole

    nav, profile_hole = _cached(cache, f"nav:{user.is_admin}:{bool(unread)}:" + _variant_key(""), skeleton)
    return (nav.replace(profile_hole, escape(url_for("users.profile", username=user.username)), 1)
            .replace(NAV_NAME_MARK, escape(user.username), 1)
            .replace(NAV_COUNT_MARK, str(unread), 1))


def _variant_key(path: str) -> str:
    """``path`` in the visitor's language and time zone: the same address is a
    different page in Chinese, or with dates in another zone (forum.i18n), so one
    visitor's language never reaches the next one."""
    variant = g.get("forum_variant")
    if variant is None:  # once per request: asking Flask-Babel costs more than the lookup
        from .i18n import current_locale, current_zone

        variant = g.forum_variant = f"{current_locale()}|{current_zone()}|"
    return variant + path


def _cached(cache: PageCache, key: str, render: Callable[[], Any]) -> Any:
    entry = cache.get(key)
    if entry is not None:
        return entry.body
    started_ns, generation = time.time_ns(), cache.generation()
    value = render()
    if value is not None:
        cache.put(key, _Entry(started_ns, time.monotonic() + cache.ttl, value, [], generation))
    return value


def cached_user_row(key: str, load: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
    """``load()``'s result (an account's column values) for GET/HEAD requests, kept under
    the page cache's invalidation; ``fallback()`` for any other request or without a
    cache. ``None`` (no such account) is never stored."""
    cache: PageCache | None = current_app.extensions.get(USER_CACHE_KEY)
    if cache is None or not has_request_context() or request.method not in ("GET", "HEAD"):
        return fallback()
    return _cached(cache, f"user:{key}", load)
