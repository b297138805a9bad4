"""Small helpers shared by blueprints."""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import wraps
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from flask import abort, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_sqlalchemy.pagination import Pagination


def is_safe_next(target: Optional[str]) -> bool:
    """Only allow relative, same-site paths such as ``/b/general?page=2``."""
    if not target or not isinstance(target, str):
        return False
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: Optional[str], default_endpoint: str = "boards.index") -> str:
    return target if is_safe_next(target) else url_for(default_endpoint)


SLUG_MAX = 80


def slugify(value: str, fallback: str = "board") -> str:
    """URL slug of a board name: NFKC, lower case, runs of anything but letters, marks
    and digits (of any script) become one "-". CJK and other scripts are kept, not
    transliterated (``数据库 讨论`` -> ``数据库-讨论``): browsers show them in the
    address bar and percent-encode them on the wire."""
    value = unicodedata.normalize("NFKC", value or "").lower()
    kept = "".join(ch if _slug_char(ch) else "-" for ch in value)
    return re.sub(r"-{2,}", "-", kept).strip("-")[:SLUG_MAX].strip("-") or fallback


def _slug_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LM" or category == "Nd"


def slug_problem(value: Optional[str]) -> Optional[str]:
    """Why ``value`` cannot be a slug as typed (empty is fine: derived from the name)."""
    if value and slugify(value, fallback="") != value:
        return _("Lower-case letters and digits (of any script) and single '-' between them "
                 "only, e.g. %(example)s.", example=repr(slugify(value)))
    return None


def unique_slug(base: str, taken: Callable[[str], bool]) -> str:
    """``base``, or ``base-2``, ``base-3``... the first one ``taken`` says is free."""
    candidate, n = base, 1
    while taken(candidate):
        n += 1
        suffix = f"-{n}"
        candidate = base[:SLUG_MAX - len(suffix)].rstrip("-") + suffix
    return candidate


def format_dt(value: Optional[datetime]) -> str:
    """The visitor's zone and language (see forum.i18n)."""
    from .i18n import format_dt as localised

    return localised(value)


def page_url(page: int) -> str:
    """URL of the current page with a different ``page`` query argument."""
    args: dict[str, Any] = dict(request.view_args or {})
    args.update(request.args.to_dict())
    args["page"] = page
    return url_for(request.endpoint or "boards.index", **args)


def moderator_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            abort(401)
        if not current_user.is_moderator:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


MAX_PAGE = 100_000


def get_page() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)  # an absurd page number is not a database error


class RowPagination(Pagination):
    """Flask-SQLAlchemy's pagination API over a ``fetch(offset, limit)`` callable and a
    known total (a denormalised counter), so templates share one pagination macro."""

    def __init__(self, fetch: Callable[[int, int], list], page: int, per_page: int, total: int) -> None:
        self._fetch = fetch
        super().__init__(page=page, per_page=per_page, max_per_page=None, error_out=False, count=False)
        self.total = max(total, 0)

    def _query_items(self) -> list[Any]:
        return list(self._fetch(self._query_offset, self.per_page))

    def _query_count(self) -> int:  # pragma: no cover - count=False
        return self.total


def url_prefixes() -> dict[str, str]:
    """Path prefixes for links repeated on list pages (``prefix ~ id`` is much cheaper
    than one ``url_for`` per row, and still honours SCRIPT_NAME)."""
    root = request.script_root
    return {"topic": root + "/t/", "post": root + "/p/", "user": root + "/u/", "board": root + "/b/",
            "avatar": root + "/avatar/"}
