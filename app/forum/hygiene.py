"""Input hygiene at the edge: control characters, id ranges, spoofing characters.

- URLs: a C0/C1 control character (NUL, ...) in the path or in a query argument gives
  a 400 page before any view or query runs.
- Forms: every form (``HygienicForm``) reports a field holding a control character as a
  form error (bodies may hold tab/newline/CR) and shows the text again with those
  characters removed, so nothing typed is lost; the response is then a 400.
- ``<int:...>`` route arguments are bounded to PostgreSQL's ``integer`` range: a larger
  id is a 404, never a database error.
"""
from __future__ import annotations

import re
import unicodedata

from flask import Flask, abort, g, request
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter
from wtforms import TextAreaField

DB_INT_MAX = 2**31 - 1
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
BODY_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class BoundedIntConverter(IntegerConverter):
    """``int`` converter that does not match ids outside the database's int range."""

    def __init__(self, map, fixed_digits=0, min=None, max=DB_INT_MAX, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def nfkc(value):
    """NFKC-normalise identity fields (usernames, board names and slugs)."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def spoofing_char(value: str | None) -> str | None:
    """The first invisible formatting character (Unicode category Cf: bidi overrides and
    isolates, LRM/RLM, zero-width space/joiners, word joiner, BOM...) in ``value``."""
    for ch in value or "":
        if unicodedata.category(ch) == "Cf":
            return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'format character')})"
    return None


class NoSpoofing:
    """WTForms validator: refuse bidi controls and zero-width characters."""

    def __call__(self, form, field):
        from wtforms.validators import ValidationError

        found = spoofing_char(field.data)
        if found:
            raise ValidationError(
                _("Contains an invisible or text-direction control character %(char)s; remove it.", char=found))


class HygienicForm(FlaskForm):
    """FlaskForm that turns control characters into a form error instead of a 500."""

    def validate(self, extra_validators=None):
        dirty = []
        for field in self:
            if not isinstance(field.data, str):
                continue
            pattern = BODY_CONTROL_RE if isinstance(field, TextAreaField) else CONTROL_RE
            if pattern.search(field.data):
                field.data = pattern.sub("", field.data)
                dirty.append(field)
        ok = super().validate(extra_validators=extra_validators)
        for field in dirty:
            field.errors = list(field.errors) + [
                _("Contained control characters (such as a NUL byte); they were removed. "
                  "Check the text and submit again.")]
        if dirty:
            g.forum_control_chars = True
        return ok and not dirty


def _reject_control_chars_in_url():
    values = [request.path]
    for key, value in request.args.items(multi=True):
        values += [key, value]
    if any(CONTROL_RE.search(v) for v in values):
        abort(400, description=_("The address contains a control character (such as a NUL byte), "
                                 "which is never valid here."))


def _status_for_dirty_forms(response):
    if g.get("forum_control_chars") and response.status_code == 200:
        response.status_code = 400
    return response


def init_url_converters(app: Flask) -> None:
    """Before any blueprint is registered."""
    app.url_map.converters["int"] = BoundedIntConverter


def init_app(app: Flask) -> None:
    app.before_request(_reject_control_chars_in_url)
    app.after_request(_status_for_dirty_forms)
