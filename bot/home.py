"""``GET /``: the address ``corb serve`` prints leads somewhere useful, not to a 404.

The admin pages are where a person starts (sign-in first, then the dashboard and the simulator);
``/admin/`` sends a visitor who is not signed in to the sign-in page.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, url_for

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> Response:
    return redirect(url_for("admin.dashboard"))
