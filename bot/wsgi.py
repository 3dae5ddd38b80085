"""The WSGI entry point: ``gunicorn bot.wsgi:app`` and Zappa's ``app_function`` ("bot.wsgi.app").

Imported on every cold start, so it builds only the Flask app: no detection, PyAV, numpy or LiteRT.
"""

from __future__ import annotations

from bot import create_app

app = create_app()
