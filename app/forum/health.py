"""Health check endpoint for load balancers and the deploy role."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from . import __version__
from .extensions import db, limiter

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz():
    body = {
        "status": "ok",
        "version": __version__,
        "release": current_app.config["FORUM_RELEASE"],
        "database": "ok",
    }
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except Exception as exc:  # any DB failure means "not healthy"
        db.session.rollback()
        current_app.logger.warning("healthz: database check failed: %s", exc)
        body.update(status="error", database="error")
        response = jsonify(body)
        response.status_code = 503
    else:
        response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/ping")
@limiter.exempt
def ping():
    """Liveness only (no database): the "trivial endpoint" of the benchmark."""
    return Response("pong\n", mimetype="text/plain", headers={"Cache-Control": "no-store"})
