"""Identicons: each account's avatar is drawn from its id, on request.

Why generated, not uploaded: nothing to store, so every web host serves the
same picture without shared storage; no image parser meets user files; and
look-alike names ("paypal" and "pаypal") still get different pictures,
because the picture comes from the account, not from the name. The SVG is
the same forever for an id, so browsers keep it for a week.
"""
from __future__ import annotations

import colorsys
import hashlib

from flask import Blueprint, Response

bp = Blueprint("avatars", __name__)

GRID = 5  # cells per side; the left half is mirrored onto the right


def identicon_svg(user_id: int) -> str:
    digest = hashlib.sha256(f"forum-identicon:{user_id}".encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360 / 360
    red, green, blue = colorsys.hls_to_rgb(hue, (42 + digest[3] % 14) / 100, (45 + digest[2] % 20) / 100)
    colour = f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"
    bits = int.from_bytes(digest[4:8], "big")
    half = (GRID + 1) // 2
    cells = []
    for col in range(half):
        for row in range(GRID):
            if bits >> (col * GRID + row) & 1:
                cells.extend({(col, row), (GRID - 1 - col, row)})
    rects = "".join(f'<rect x="{x + 0.5}" y="{y + 0.5}" width="1" height="1"/>' for x, y in sorted(cells))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {GRID + 1} {GRID + 1}" '
            f'shape-rendering="crispEdges"><rect width="{GRID + 1}" height="{GRID + 1}" fill="#eef0f3"/>'
            f'<g fill="{colour}">{rects}</g></svg>')


@bp.get("/avatar/<int:user_id>.svg")
def avatar(user_id: int):
    response = Response(identicon_svg(user_id), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=604800, immutable"
    return response
