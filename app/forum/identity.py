"""Usernames in any script, and the "skeleton" that tells look-alike names apart.

A username is NFKC-normalised, 2 to 30 characters long (characters, not bytes:
``张三丰`` is 3), made of letters, marks and digits of any script plus ``_``, ``-``
and ``.``, and starts with a letter or a digit.

Two names whose skeletons are equal look alike and cannot both be registered
(``users.username_skeleton`` is unique). The skeleton follows the shape of Unicode
TS #39 (``skeleton(X)``: NFD, map each character to its prototype, NFD again) with
case folding in front, but with a small table of the common Latin/Cyrillic/Greek
homoglyphs and digit look-alikes instead of the full ``confusables.txt``: no
maintained PyPI package computes the UTS #39 skeleton.  A name in another script
(CJK, Arabic, ...) is its own skeleton, case-folded.
"""
from __future__ import annotations

import unicodedata

from flask_babel import gettext as _

USERNAME_MIN = 2
USERNAME_MAX = 30
USERNAME_PUNCTUATION = "_-."

# Prototype (Latin) of each homoglyph, after case folding (so lower case only).
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "һ": "h", "і": "i", "ј": "j",
    "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ү": "y",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
    # Latin look-alikes and digits
    "ı": "i", "ȷ": "j", "ł": "l", "ℓ": "l", "0": "o", "1": "l",
}


def skeleton(name: str) -> str:
    """The look-alike key of ``name``: equal for ``paypal`` and ``pаypal`` (Cyrillic а),
    ``Alice`` and ``ALICE``, ``bob`` and ``b0b``."""
    folded = unicodedata.normalize("NFKC", name or "").strip().casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    mapped = "".join(_HOMOGLYPHS.get(ch, ch) for ch in decomposed)
    # "rn" reads as "m" in most fonts (UTS #39 maps it too).
    mapped = mapped.replace("rn", "m")
    return unicodedata.normalize("NFD", mapped)


def username_problem(name: str | None) -> str | None:
    """Why ``name`` (already NFKC-normalised) cannot be a username, or None."""
    name = name or ""
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        return _("Between %(min)d and %(max)d characters, please.", min=USERNAME_MIN, max=USERNAME_MAX)
    if unicodedata.category(name[0])[0] not in "LN":
        return _("Start with a letter or a digit.")
    for ch in name:
        category = unicodedata.category(ch)
        if category[0] in "LM" or category == "Nd" or ch in USERNAME_PUNCTUATION:
            continue
        if ch.isspace():
            return _("Letters, marks and digits of any script and '.', '_', '-' only; not a space.")
        what = f"U+{ord(ch):04X} ({unicodedata.name(ch, category)})"
        return _("Letters, marks and digits of any script and '.', '_', '-' only; not %(char)s.", char=what)
    return None


class ValidUsername:
    """WTForms validator for :func:`username_problem`."""

    def __call__(self, form, field):
        from wtforms.validators import ValidationError

        problem = username_problem(field.data)
        if problem:
            raise ValidationError(problem)


def find_user(name: str | None):
    """The account ``name`` names, ignoring case in any script (``ΣΟΦΊΑ`` is
    ``σοφία``), without confusing look-alikes: the skeleton finds the candidate
    through its unique index, the case-folded names must then be equal."""
    from sqlalchemy import func, select

    from .extensions import db
    from .models import User

    name = unicodedata.normalize("NFKC", name or "").strip()
    if not name:
        return None
    user = db.session.scalar(select(User).where(User.username == name))
    if user is not None:  # the exact name first (older look-alike accounts, see below)
        return user
    user = db.session.scalar(select(User).where(User.username_skeleton == skeleton(name)))
    if user is not None and user.username.casefold() == name.casefold():
        return user
    # Accounts whose skeleton collided with an older one when the column was added
    # have none: the old ASCII case-insensitive lookup still finds them.
    user = db.session.scalar(
        select(User).where(func.lower(User.username) == name.lower(), User.username_skeleton.is_(None)))
    return user


def username_taken(name: str) -> str | None:
    """Why ``name`` cannot be registered next to the existing accounts, or None."""
    from sqlalchemy import func, select

    from .extensions import db
    from .models import User

    existing = db.session.scalar(
        select(User.username).where(
            (User.username_skeleton == skeleton(name)) | (func.lower(User.username) == name.lower())))
    if existing is None:
        return None
    if existing.casefold() == name.casefold():
        return _("That username or email is already registered.")
    return _("That username looks too much like an existing one; choose another.")
