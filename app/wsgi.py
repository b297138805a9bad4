"""WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi ...``.

A ``.env`` file next to this module is loaded (without overriding variables that
are already set), so gunicorn sees the same configuration as the ``flask`` CLI.
"""
import os

from dotenv import load_dotenv

load_dotenv(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env"), override=False)

from forum import create_app  # noqa: E402

app = create_app()
