"""Forum: a small Flask discussion board."""
from __future__ import annotations

import os
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import DEV_SECRET_KEY, ConfigError, load_config

__version__ = "0.1.0"
__all__ = ["create_app", "ConfigError", "__version__"]

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def create_app(config_overrides: Mapping[str, Any] | None = None) -> Flask:
    """Application factory.

    Configuration comes from environment variables (see ``forum.config``);
    ``config_overrides`` (used by tests) is applied on top.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(load_config())

    database_url = app.config.pop("DATABASE_URL")
    auto_schema = False
    if database_url is None:
        # Zero-setup development: SQLite in the instance folder, schema created on start.
        os.makedirs(app.instance_path, exist_ok=True)
        database_url = "sqlite:///" + os.path.join(app.instance_path, "forum.db")
        auto_schema = True
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    app.config["FORUM_AUTO_SCHEMA"] = auto_schema

    if config_overrides:
        app.config.update(config_overrides)

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if uri.startswith("postgresql"):
        engine_options["connect_args"] = {"connect_timeout": 5}
    engine_options.update(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options

    if not app.config.get("SECRET_KEY"):
        if not app.config.get("TESTING"):
            raise ConfigError(
                "No SECRET_KEY: set SECRET_KEY to a long random value of your own "
                "(production: FORUM_ENV=production with SECRET_KEY and DATABASE_URL), or set "
                "FORUM_ENV=development explicitly to run with the public development key")
        app.config["SECRET_KEY"] = DEV_SECRET_KEY
    if app.config.get("FORUM_ENV") == "production" and app.config["SECRET_KEY"] == DEV_SECRET_KEY:
        raise ConfigError("FORUM_ENV=production but SECRET_KEY is the public development key: "
                          "set SECRET_KEY to a random value of your own")

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    from . import hygiene

    hygiene.init_url_converters(app)
    hygiene.init_app(app)
    _init_extensions(app)
    _register_blueprints(app)
    _register_template_helpers(app)

    if app.config["FORUM_AUTO_SCHEMA"]:
        _auto_create_schema(app)

    return app


def _init_extensions(app: Flask) -> None:
    from . import models  # noqa: F401  (register models with the metadata)
    from .extensions import csrf, db, limiter, login_manager, migrate, warn_if_limits_per_worker

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=MIGRATIONS_DIR,
        render_as_batch=True,
        compare_type=True,
        include_object=_include_in_autogenerate,
    )
    csrf.init_app(app)
    from markupsafe import Markup

    from .pagecache import USER_NAV_MARK, csrf_token, rendering_skeleton

    # After Flask-WTF's own (a global and a context processor): member page
    # skeletons leave a hole for the token, never another member's token.
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(lambda: {"csrf_token": csrf_token})
    app.jinja_env.globals["rendering_skeleton"] = rendering_skeleton
    app.jinja_env.globals["user_nav_hole"] = Markup(USER_NAV_MARK)
    from . import i18n

    i18n.init_app(app)
    limiter.init_app(app)
    warn_if_limits_per_worker(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    # Flask-Login flashes this (a lazy string: str() gives the visitor's language, and
    # the session stores the plain text).
    from flask_babel import lazy_gettext

    login_manager.login_message = lazy_gettext("Please log in to access this page.")
    login_manager.localize_callback = str
    login_manager.session_protection = "basic"

    from .mail import init_mail
    from .pagecache import init_page_cache

    init_mail(app)
    init_page_cache(app)


def _include_in_autogenerate(obj, name, type_, reflected, compare_to) -> bool:
    """Hide the PostgreSQL-only search indexes (full-text ``*_fts`` and trigram
    ``*_trgm``, created by hand-written migrations) from ``flask db migrate`` so it
    never proposes dropping them."""
    return not (type_ == "index" and name and name.endswith(("_fts", "_trgm")))


def _register_blueprints(app: Flask) -> None:
    from .admin import bp as admin_bp
    from .auth import bp as auth_bp
    from .avatars import bp as avatars_bp
    from .boards import bp as boards_bp
    from .cli import bp as cli_bp
    from .errors import register_error_handlers
    from .health import bp as health_bp
    from .notifications import bp as notifications_bp
    from .recovery import bp as recovery_bp
    from .topics import bp as topics_bp
    from .users import bp as users_bp

    app.register_blueprint(boards_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(recovery_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(avatars_bp)
    app.register_blueprint(topics_bp)
    app.register_blueprint(users_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(cli_bp)
    register_error_handlers(app)


def _register_template_helpers(app: Flask) -> None:
    from urllib.parse import quote

    from .i18n import LANGUAGES, action_name, format_dt, html_lang, log_reason, role_name, target_name
    from .utils import page_url, url_prefixes

    app.jinja_env.filters["dt"] = format_dt
    app.jinja_env.filters["segment"] = lambda value: quote(str(value), safe="")
    app.jinja_env.globals["page_url"] = page_url
    app.jinja_env.globals["url_prefixes"] = url_prefixes
    from .recovery import email_unverified

    app.jinja_env.globals["email_unverified"] = email_unverified
    app.jinja_env.globals["html_lang"] = html_lang
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.filters["role_name"] = role_name
    app.jinja_env.filters["action_name"] = action_name
    app.jinja_env.filters["target_name"] = target_name
    app.jinja_env.globals["log_reason"] = log_reason

    # The app owns these four on its pages (nginx adds them only where no
    # app answered: static files, its error pages). No inline styles or
    # scripts in the templates: style-src 'self' without 'unsafe-inline'.
    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'none'; style-src 'self'; "
            "img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'",
        )
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.context_processor
    def _inject() -> dict[str, Any]:
        from flask_babel import gettext

        return {
            "site_title": gettext("Forum"),
            "forum_version": __version__,
            "forum_release": app.config["FORUM_RELEASE"],
        }


def _auto_create_schema(app: Flask) -> None:
    """Bring the development SQLite database to the latest migration."""
    from flask_migrate import upgrade

    from sqlalchemy import func, select

    from .extensions import db
    from .models import Board

    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        # A fresh development forum gets one board so it is usable at once.
        if not db.session.scalar(select(func.count(Board.id))):
            db.session.add(
                Board(name="General", slug="general", description="Anything goes.", position=1)
            )
            db.session.commit()
