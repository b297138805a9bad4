"""``flask forum ...`` management commands (used by the Ansible deploy role).

Messages for people (errors, warnings, summaries) are in the language of the
environment (``LANG``/``LC_ALL``/``LANGUAGE``, see forum.i18n); the one-word results
that scripts read (``created``, ``exists``, ``ok``) stay English in every language."""
from __future__ import annotations

import json
import os
import random
import sys
import time

import click
from flask import Blueprint
from flask_babel import gettext
from sqlalchemy import func, insert, select, text

from . import services
from .extensions import db
from .markup import render_markdown
from .models import ROLE_ADMIN, Board, Post, Topic, User, recount_all, utcnow
from .hygiene import CONTROL_RE, nfkc, spoofing_char
from .identity import find_user, username_problem, username_taken
from .utils import slug_problem, slugify

bp = Blueprint("cli", __name__, cli_group="forum")


@bp.cli.command("ensure-board")
@click.argument("name")
@click.option("--description", default="", help="Board description.")
@click.option("--slug", default=None, help="URL slug (default: derived from NAME).")
@click.option("--position", default=None, type=int, help="Sort position on the front page.")
def ensure_board(name: str, description: str, slug: str | None, position: int | None) -> None:
    """Make sure board NAME exists (with SLUG when given).

    Prints 'exists' when that board is already there (by NAME, or by SLUG and NAME),
    'created' when it was added. Fails (exit status 1, the reason on stderr, nothing
    created) when it cannot be done: another board holds SLUG (given, or derived from
    NAME: a board renamed in the admin page is not silently doubled), or board NAME
    exists under another slug than the one given."""
    name, slug = _board_key(name, slug)
    click.echo(_ensure_board(name, description, slug, position))


@bp.cli.command("upgrade")
@click.option("--boards", "boards_json", default="[]", show_default=True,
              help='Boards to make sure of, as JSON: [{"name": ..., "description": ..., "slug": ..., '
                   '"position": ...}, ...] (name required).')
def upgrade(boards_json: str) -> None:
    """Bring the schema to the latest migration, then make sure each board of --boards exists.

    One process for what a deploy does to the database: the migrations (as
    ``flask db upgrade``, which logs each step it runs on stderr), then each board
    as ``ensure-board`` makes it, printing 'created NAME' or 'exists NAME'. The
    boards are checked before anything runs: a wrong entry fails (exit status 1,
    the reason on stderr) with the schema untouched; a board that clashes with
    the database's (see ensure-board) fails after the boards before it."""
    from flask_migrate import upgrade as upgrade_schema

    boards = []
    try:
        entries = json.loads(boards_json)
    except ValueError as exc:
        raise click.ClickException(gettext("--boards is not JSON: %(error)s", error=str(exc)))
    if not isinstance(entries, list):
        raise click.ClickException(gettext("--boards must be a JSON list of boards"))
    for index, entry in enumerate(entries):
        fields = {"name": str, "description": str, "slug": str, "position": int}
        wrong = (not isinstance(entry, dict) or "name" not in entry
                 or any(key not in fields or not isinstance(value, fields[key]) or isinstance(value, bool)
                        for key, value in entry.items()))
        if wrong:
            raise click.ClickException(gettext(
                "--boards entry %(index)d must be an object with a name and at most a description, "
                "a slug (text) and a position (a number): %(entry)s", index=index, entry=json.dumps(entry)))
        name, slug = _board_key(entry["name"], entry.get("slug"))
        boards.append((name, entry.get("description", ""), slug, entry.get("position")))
    upgrade_schema()
    for name, description, slug, position in boards:
        click.echo(f"{_ensure_board(name, description, slug, position)} {name}")


def _board_key(name: str, slug: str | None) -> tuple[str, str | None]:
    """NAME and SLUG as stored, or a ClickException naming what is wrong with them."""
    name = nfkc(name).strip()
    problem = _board_name_problem(name)
    if slug is not None:
        slug = nfkc(slug).strip()
        problem = problem or slug_problem(slug) or (None if slug else gettext("--slug must not be empty"))
    if problem:
        raise click.ClickException(problem)
    return name, slug


def _ensure_board(name: str, description: str, slug: str | None, position: int | None) -> str:
    """'exists' or 'created' for board NAME (already checked by _board_key), as ensure-board says."""
    same_name = db.session.scalars(select(Board).where(Board.name == name).order_by(Board.id)).all()
    if slug is None and same_name:
        return "exists"
    explicit = slug is not None
    slug = slug if explicit else slugify(name)
    holder = db.session.scalar(select(Board).where(Board.slug == slug))
    if holder is not None:
        if holder.name == name:
            return "exists"
        if explicit:
            raise click.ClickException(gettext(
                "the slug %(slug)s belongs to another board, %(other)s (id %(id)d), so board %(name)s "
                "was not created", slug=repr(slug), other=repr(holder.name), id=holder.id, name=repr(name)))
        raise click.ClickException(gettext(
            "the slug %(slug)s belongs to another board, %(other)s (id %(id)d), so board %(name)s "
            "was not created; pass --slug to give the new board another one",
            slug=repr(slug), other=repr(holder.name), id=holder.id, name=repr(name)))
    if explicit and same_name:
        raise click.ClickException(gettext(
            "board %(name)s already exists with the slug %(existing)s, not %(slug)s; "
            "change the slug in the admin page or pass that one",
            name=repr(name), existing=repr(same_name[0].slug), slug=repr(slug)))
    if position is None:
        position = (db.session.scalar(select(func.max(Board.position))) or 0) + 1
    db.session.add(Board(name=name, slug=slug, description=description, position=position))
    db.session.commit()
    return "created"


def _board_name_problem(name: str) -> str | None:
    if not name:
        return gettext("NAME must not be empty")
    if len(name) > 120:
        return gettext("NAME is longer than 120 characters")
    found = spoofing_char(name) or (
        f"U+{ord(c):04X}" if (c := next((c for c in name if CONTROL_RE.match(c)), None)) else None)
    return gettext("NAME contains an invisible or control character %(char)s", char=found) if found else None


@bp.cli.command("create-admin")
@click.argument("username")
@click.option("--email", required=True, help="Email address of the admin.")
def create_admin(username: str, email: str) -> None:
    """Create admin USERNAME with password from $FORUM_ADMIN_PASSWORD. Prints 'created' or 'exists'.

    USERNAME is NFKC-normalised and checked like the registration form's (any script,
    no look-alike of an existing account)."""
    username = nfkc(username).strip()
    existing = find_user(username)
    if existing is not None:
        if existing.role != ROLE_ADMIN:
            click.echo(gettext("warning: user %(name)s exists but is not an admin", name=repr(existing.username)),
                       err=True)
        click.echo("exists")
        return
    problem = username_problem(username) or (
        gettext("contains an invisible formatting character %(char)s", char=found)
        if (found := spoofing_char(username)) else None
    ) or username_taken(username)
    if problem:
        raise click.ClickException(gettext("USERNAME %(name)s: %(problem)s", name=repr(username), problem=problem))
    password = os.environ.get("FORUM_ADMIN_PASSWORD", "")
    if len(password) < 8:
        raise click.ClickException(gettext("FORUM_ADMIN_PASSWORD must be set to at least 8 characters"))
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email.strip().lower())):
        raise click.ClickException(gettext("email %(email)s is already used by another account", email=repr(email)))
    # The operator gave the address: it needs no verification link.
    user = User(username=username, email=email.strip().lower(), role=ROLE_ADMIN, email_verified_at=utcnow())
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo("created")


@bp.cli.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(["member", "moderator", "admin"]))
def set_role(username: str, role: str) -> None:
    """Set the role of USERNAME."""
    user = find_user(username)
    if user is None:
        raise click.ClickException(gettext("no such user: %(name)s", name=username))
    user.role = role
    db.session.commit()
    click.echo(f"{user.username}: {role}")


@bp.cli.command("reset-link")
@click.argument("username")
@click.option("--base-url", help="The forum's address (default: $FORUM_PUBLIC_URL).")
def reset_link(username: str, base_url: str | None) -> None:
    """Print a password reset link for USERNAME, for forums that send no mail.

    Hand it to the member over a channel you trust: it works once, for
    FORUM_PASSWORD_RESET_SECONDS, and only until the password changes."""
    from flask import current_app

    from .recovery import reset_url

    user = find_user(username)
    if user is None:
        raise click.ClickException(gettext("no such user: %(name)s", name=username))
    base = (base_url or current_app.config.get("FORUM_PUBLIC_URL") or "").rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise click.ClickException(gettext(
            "the forum's address is unknown: set FORUM_PUBLIC_URL or pass --base-url https://..."))
    click.echo(reset_url(user, base))


@bp.cli.command("set-password")
@click.argument("username")
def set_password(username: str) -> None:
    """Set USERNAME's password, read from standard input (prompted on a terminal).

    Every session and remember-me cookie of the account ends."""
    user = find_user(username)
    if user is None:
        raise click.ClickException(gettext("no such user: %(name)s", name=username))
    if sys.stdin.isatty():
        password = click.prompt(gettext("New password"), hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not 8 <= len(password) <= 200:
        raise click.ClickException(gettext("the password must be 8 to 200 characters long"))
    user.set_password(password)
    services.revoke_sessions(user)
    db.session.commit()
    click.echo(gettext("%(name)s: password set, every session ended", name=user.username))


@bp.cli.command("recount")
def recount() -> None:
    """Recompute all denormalised counters."""
    if db.engine.dialect.name == "postgresql":
        # Fresh statistics so the set-based recount uses the indexes.
        db.session.execute(text("ANALYZE topics"))
        db.session.execute(text("ANALYZE posts"))
    recount_all()
    db.session.commit()
    click.echo("ok")


@bp.cli.command("check-write")
def check_write() -> None:
    """Check the database takes writes (after a failover: a standby refuses them).

    Creates a temporary table and writes a row in one transaction, then rolls
    it back: nothing is left behind, and a read-only server fails the command."""
    try:
        with db.engine.connect() as connection, connection.begin() as transaction:
            connection.execute(text("CREATE TEMPORARY TABLE forum_write_check (n integer)"))
            connection.execute(text("INSERT INTO forum_write_check (n) VALUES (1)"))
            transaction.rollback()
    except Exception as exc:  # noqa: BLE001  any refusal is the answer
        message = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise click.ClickException(gettext("the database refuses writes: %(error)s", error=message))
    click.echo("ok")


@bp.cli.command("rerender")
def rerender() -> None:
    """Re-render every post's HTML from its Markdown (after sanitiser changes)."""
    count = 0
    for post in db.session.scalars(select(Post).execution_options(yield_per=500)):
        post.body_html = services.render_post(post.body)[0]
        count += 1
    db.session.commit()
    click.echo(gettext("re-rendered %(count)d posts", count=count))


DEMO_WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua server deploy ansible nginx postgres backup restore"
).split()


@bp.cli.command("demo-data")
@click.option("--topics", "n_topics", default=50, show_default=True, type=click.IntRange(0))
@click.option("--replies", "n_replies", default=10, show_default=True, type=click.IntRange(0),
              help="Replies per topic.")
@click.option("--board", "board_slug", default=None, help="Board slug (default: spread over all boards).")
@click.option("--seed", default=1, show_default=True, type=int)
def demo_data(n_topics: int, n_replies: int, board_slug: str | None, seed: int) -> None:
    """Bulk-insert N topics with M replies each (fast; for benchmarks)."""
    started = time.monotonic()
    rng = random.Random(seed)
    if board_slug:
        boards = db.session.scalars(select(Board).where(Board.slug == board_slug)).all()
        if not boards:
            raise click.ClickException(gettext("no such board: %(slug)s", slug=board_slug))
    else:
        boards = db.session.scalars(select(Board).order_by(Board.position)).all()
    if not boards:
        board = Board(name="General", slug="general", description="Demo board", position=1)
        db.session.add(board)
        db.session.flush()
        boards = [board]

    users = []
    for i in range(1, 6):
        name = f"demo{i}"
        user = db.session.scalar(select(User).where(User.username == name))
        if user is None:
            user = User(username=name, email=f"{name}@example.invalid")
            user.set_password(os.urandom(16).hex())
            db.session.add(user)
        users.append(user)
    db.session.flush()
    user_ids = [u.id for u in users]

    def random_text() -> str:
        return " ".join(rng.choice(DEMO_WORDS) for _ in range(rng.randint(8, 40))).capitalize() + "."

    bodies = [random_text() for _ in range(50)]
    rendered = {b: render_markdown(b) for b in bodies}
    now = utcnow()
    chunk = 500
    created_posts = 0
    for start in range(0, n_topics, chunk):
        count = min(chunk, n_topics - start)
        topic_rows = [
            {
                "board_id": boards[(start + i) % len(boards)].id,
                "user_id": rng.choice(user_ids),
                "title": f"Demo topic {start + i + 1}: " + " ".join(rng.sample(DEMO_WORDS, 4)),
                "created_at": now,
                "last_post_at": now,
                "reply_count": n_replies,
                "is_locked": False,
                "is_pinned": False,
            }
            for i in range(count)
        ]
        topic_ids = list(
            db.session.scalars(
                insert(Topic).returning(Topic.id, sort_by_parameter_order=True), topic_rows
            )
        )
        post_rows = []
        for topic_id in topic_ids:
            for _ in range(n_replies + 1):
                body = rng.choice(bodies)
                post_rows.append(
                    {
                        "topic_id": topic_id,
                        "user_id": rng.choice(user_ids),
                        "body": body,
                        "body_html": rendered[body],
                        "created_at": now,
                    }
                )
            if len(post_rows) >= 5000:
                db.session.execute(insert(Post), post_rows)
                created_posts += len(post_rows)
                post_rows = []
        if post_rows:
            db.session.execute(insert(Post), post_rows)
            created_posts += len(post_rows)
    if db.engine.dialect.name == "postgresql":
        # Fresh statistics so the set-based recount uses the indexes.
        db.session.execute(text("ANALYZE topics"))
        db.session.execute(text("ANALYZE posts"))
    recount_all()
    db.session.commit()
    click.echo(
        gettext("inserted %(topics)d topics and %(posts)d posts in %(seconds).1fs",
          topics=n_topics, posts=created_posts, seconds=time.monotonic() - started),
        err=False,
    )
    sys.stdout.flush()
