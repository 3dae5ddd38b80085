"""The admin web pages, the phone simulator and the web app's security (CSRF, headers, login).

Each module with a blueprint is listed in ``bot.BLUEPRINTS``: ``security`` (app-wide hooks, no routes),
``views`` (``/admin``) and ``simulator`` (``/simulator``). This package itself imports nothing heavy, so
``bot.admin.auth`` stays cheap for the CLI.
"""
