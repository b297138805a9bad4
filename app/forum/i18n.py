"""Languages and time zones (Flask-Babel).

The language of a page: the member's own setting (``users.locale``), else the best
match of the browser's ``Accept-Language`` among :data:`LANGUAGES`, else English.
Outside a request (the ``flask forum`` commands) it comes from the environment the
way gettext reads it: ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, then ``LANG``
(``LANG=zh_CN.UTF-8 flask forum recount`` answers in Chinese; ``C``/``POSIX`` or
nothing set: English).

Dates: in the member's time zone (``users.timezone``), else in
``FORUM_DEFAULT_TIMEZONE`` (default ``UTC``), formatted by Flask-Babel for the
page's language.

Catalogs live in ``forum/translations/<lang>/LC_MESSAGES/messages.po`` (in git), the
directory named as Babel names the locale (``zh_CN`` is ``zh_Hans_CN``);
the ``.mo`` files are compiled from them (``make -C app catalogs-compile``, and by
the forum role when it builds a release). ``make -C app catalogs`` extracts the
strings again and updates the ``.po`` files.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Mapping

from flask import Flask, has_request_context, request
from flask_babel import Babel, format_date, format_time, get_locale, get_timezone, get_translations, gettext
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from markupsafe import Markup

# Locale identifiers (Babel's spelling) and the name each language has in itself.
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LOCALE = "en"
TRANSLATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translations")

babel = Babel()


def common_timezones() -> list[str]:
    import pytz

    return list(pytz.common_timezones)


def valid_timezone(name: str | None) -> bool:
    import pytz

    return bool(name) and name in pytz.all_timezones_set


def _from_tag(tag: str | None) -> str | None:
    """The supported locale a language tag (``zh-CN``, ``zh_CN.UTF-8``, ``en_GB``) asks
    for, or None. Every Chinese tag but the Traditional ones gets Simplified Chinese."""
    tag = (tag or "").split(".")[0].split("@")[0].replace("-", "_").strip()
    if not tag or tag in ("C", "POSIX"):
        return None
    if tag in LANGUAGES:
        return tag
    parts = tag.split("_")
    primary = parts[0].lower()
    if primary == "zh":
        rest = {p.lower() for p in parts[1:]}
        if rest & {"tw", "hk", "mo", "hant"}:
            return None
        return "zh_CN"
    if primary == "en":
        return "en"
    return None


def locale_from_environment(env: Mapping[str, str] | None = None) -> str:
    """The CLI's language, read like gettext does (LANGUAGE may list several)."""
    env = os.environ if env is None else env
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = (env.get(name) or "").strip()
        if not value:
            continue
        for tag in value.split(":") if name == "LANGUAGE" else [value]:
            found = _from_tag(tag)
            if found:
                return found
        if name != "LANGUAGE":
            # The first variable that is set decides (as in gettext), even "C".
            return DEFAULT_LOCALE
    return DEFAULT_LOCALE


def locale_from_header() -> str | None:
    """The best supported match of ``Accept-Language``, by the client's q order."""
    for tag, quality in request.accept_languages:
        if quality <= 0:
            continue
        found = _from_tag(tag)
        if found:
            return found
    return None


def select_locale() -> str:
    if not has_request_context():
        return locale_from_environment()
    from flask_login import current_user

    chosen = getattr(current_user, "locale", None) if current_user.is_authenticated else None
    if chosen in LANGUAGES:
        return chosen
    return locale_from_header() or DEFAULT_LOCALE


def select_timezone() -> str | None:
    if has_request_context():
        from flask_login import current_user

        zone = getattr(current_user, "timezone", None) if current_user.is_authenticated else None
        if valid_timezone(zone):
            return zone
    return None  # Flask-Babel's default: BABEL_DEFAULT_TIMEZONE (FORUM_DEFAULT_TIMEZONE)


def current_locale() -> str:
    """The page's language as a key of LANGUAGES (``zh_CN``; Babel's own name for it,
    ``zh_Hans_CN``, is the catalog directory's)."""
    locale = get_locale()
    if locale is None:
        return DEFAULT_LOCALE
    return "zh_CN" if locale.language == "zh" else locale.language


def current_zone() -> str:
    return str(get_timezone() or "UTC")


def format_dt(value: datetime | None) -> str:
    """A stored (naive UTC) timestamp in the visitor's zone and language, with the zone."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    # The date medium (``Dec 7, 2026`` / ``2026年12月7日``), the time to the minute.
    return f"{format_date(value, 'medium')} {format_time(value, 'short')} {_zone_label(value)}"


def _zone_label(value: datetime) -> str:
    zone = get_timezone()
    if zone is None:
        return "UTC"
    return value.astimezone(zone).tzname() or str(zone)


def role_name(role: str) -> str:
    names = {"member": _l("member"), "moderator": _l("moderator"), "admin": _l("admin")}
    return str(names.get(role, role))


def action_name(action: str) -> str:
    """A moderation log action as the page shows it."""
    names = {
        "ban": _l("ban"), "unban": _l("unban"), "role": _l("role change"),
        "delete_topic": _l("topic deleted"), "delete_post": _l("post deleted"),
        "restore_topic": _l("topic restored"), "restore_post": _l("post restored"),
        "lock": _l("lock"), "unlock": _l("unlock"), "pin": _l("pin"), "unpin": _l("unpin"),
        "move": _l("move"),
    }
    return str(names.get(action, action))


def target_name(target_type: str) -> str:
    names = {"topic": _l("topic"), "post": _l("post"), "user": _l("user")}
    return str(names.get(target_type, target_type))


def log_reason(action: str, reason: str | None) -> str:
    """The reason column; the ones the forum writes itself ("now moderator", "to Board")
    are shown in the page's language."""
    reason = reason or ""
    if action == "role" and reason.startswith("now "):
        return gettext("now %(role)s", role=role_name(reason[4:]))
    if action == "move" and reason.startswith("to "):
        return gettext("to %(board)s", board=reason[3:])
    return reason


def html_lang() -> str:
    """The page's language as an HTML ``lang`` attribute (``zh-CN``)."""
    return current_locale().replace("_", "-")


def bound_gettext() -> dict:
    """``gettext`` and ``ngettext`` for one template render, bound to the request's
    catalog. Flask-Babel's own template callables look the catalog up again (request
    context, domain, locale, cache) for every string, which on a member's page cost
    more than rendering it; these behave the same (Jinja's "newstyle" gettext: the
    result is Markup-escaped under autoescape and %-formatted with the keywords, and
    ``num`` defaults to the count)."""
    translations = get_translations()
    translate, translate_plural = translations.ugettext, translations.ungettext

    @pass_context
    def _gettext(context, string, **variables):
        value = translate(string)
        if context.eval_ctx.autoescape:
            value = Markup(value)
        return value % variables

    @pass_context
    def _ngettext(context, singular, plural, num, **variables):
        variables.setdefault("num", num)
        value = translate_plural(singular, plural, num)
        if context.eval_ctx.autoescape:
            value = Markup(value)
        return value % variables

    return {"gettext": _gettext, "ngettext": _ngettext}


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", TRANSLATIONS_DIR)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    # Jinja's ``_()`` and ``{% trans %}`` resolve ``gettext`` in the template's context
    # first: one catalog lookup per render instead of one per string.
    app.context_processor(bound_gettext)

    @app.after_request
    def _vary_on_language(response):
        # Pages differ by Accept-Language: no shared cache may mix them up.
        response.vary.add("Accept-Language")
        return response
