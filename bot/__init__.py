"""Corb's chat-ops backend: the Flask app (webhook, media, admin, API) and the bot's handlers.

Importing this package must stay cheap: it is the webhook's cold start. Nothing here imports
detection, PyAV, numpy, Pillow, LiteRT or TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(services: Any = None, **overrides: Any) -> Flask:
    """The Flask app factory. ``services`` (a ``bot.services.Services``) defaults to the process's own.

    Flask is imported here, not with the package: ``corb``'s commands live in this package too, and a
    command-line phone should not pay for a web framework it does not run."""
    from flask import Flask

    from bot.services import services as current_services
    from bot.services import use_services

    if services is not None:
        use_services(services)
    svc = services or current_services()

    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(TEMPLATES / "static"),
                static_url_path="/static")
    app.config.update(SECRET_KEY=svc.config.secret_key, CORB_SERVICES=svc, **overrides)

    for name in BLUEPRINTS:
        module = __import__(name, fromlist=["bp"])
        app.register_blueprint(module.bp)
    return app


# Each part of the web app is one blueprint module exposing ``bp``.
BLUEPRINTS: list[str] = [
    "bot.admin.security",  # no routes: CSRF, session cookie flags, security headers, JSON errors under /api/
    "bot.webhook",  # POST /sms, POST /sms/status (Twilio status callbacks)
    "bot.home",  # GET /: to the admin pages (sign-in first)
    "bot.media",  # GET /media/<token>: signed, expiring picture links
    "bot.admin.views",  # /admin: dashboard, people, cameras, cleaning, messages, events, settings
    "bot.admin.simulator",  # /simulator: the phone simulator (outbox messenger only)
    "bot.api.views",  # /api/: token-auth REST API and /api/openapi.json
]
