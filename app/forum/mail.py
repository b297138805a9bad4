"""Outgoing e-mail through the operator's SMTP relay (Flask-Mail), off the request.

A request only hands the message to a background thread of its worker and
returns: a slow or unreachable relay never holds a page. A message still
queued when the worker stops is lost (a reset link can be asked for again);
a failed send is logged with the recipient's domain only.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask, current_app
from flask_mail import Mail, Message

mail = Mail()
# One sender thread per worker process, started on the first message (after
# gunicorn forks, so no thread is lost in the fork).
_sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forum-mail")


def init_mail(app: Flask) -> None:
    mail.init_app(app)


def mail_enabled() -> bool:
    return bool(current_app.config.get("MAIL_SERVER"))


def send_mail(subject: str, recipient: str, body: str) -> Future:
    """Queue a plain-text message; the returned future is done once it is sent."""
    app = current_app._get_current_object()
    message = Message(subject=subject, recipients=[recipient], body=body)

    def deliver() -> None:
        with app.app_context():
            try:
                mail.send(message)
            except Exception as exc:  # the relay refused or is down: say so, keep serving
                app.logger.warning("mail to a recipient at %s not sent: %s: %s",
                                   recipient.rpartition("@")[2], type(exc).__name__, exc)
                raise

    return _sender.submit(deliver)
