"""App-wide web security, installed when this (route-less) blueprint is registered.

``create_app`` registers blueprints and nothing else, so the hooks every response needs live here:
session cookie flags, CSRF protection scoped away from Twilio's signed posts and the token-auth API,
security headers, JSON errors under ``/api/``, request body limits, and the admin login check the other
blueprints call.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from bot.admin.auth import SESSION_LIFETIME, LoginThrottle, close_session, open_session, session_account

if TYPE_CHECKING:
    from bot.models import AdminAccount
    from bot.services import Services

bp = Blueprint("corb_security", __name__)

# Twilio posts here, signed with X-Twilio-Signature (validated by the webhook): no cookie, no CSRF token.
CSRF_EXEMPT_PATHS = frozenset({"/sms", "/sms/status"})
# The API authenticates with bearer tokens only, never cookies, so a forged cross-site request has no power.
CSRF_EXEMPT_PREFIXES = ("/api/",)
# Pages with private data must not be kept by a shared cache or the browser's back button after logout.
NO_STORE_PREFIXES = ("/admin", "/simulator", "/api/")
HTML_ERROR_PREFIXES = ("/admin", "/simulator")
# The most a request body may hold, by path prefix (first match wins), checked before anything reads it:
# anyone can POST before authenticating, and a form parsed in full is held in memory. Twilio's webhooks
# are a few kB (a 1,600-character Body percent-encoded, ten media URLs); the admin's forms and the
# simulator are smaller still; nothing accepts uploads.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/sms", 64 * 1024),
    ("/admin/login", 8 * 1024),
)
DEFAULT_BODY_LIMIT = 256 * 1024

csrf = CSRFProtect()


def services() -> Services:
    return current_app.config["CORB_SERVICES"]


def throttle() -> LoginThrottle:
    return current_app.extensions["corb_login_throttle"]


def _content_security_policy(svc: Services) -> str:
    img = ["'self'", "data:"]
    media_origin = urlsplit(svc.config.base_url)
    img.append(f"{media_origin.scheme}://{media_origin.netloc}")  # signed /media links use base_url
    if svc.config.bucket != "folder":
        img.append("https:")  # S3 presigned URLs
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {' '.join(img)}",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


@bp.record_once
def _install(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    svc: Services = app.config["CORB_SERVICES"]
    https = svc.config.base_url.startswith("https://")
    # First of all hooks: the CSRF check below already reads the form.
    app.before_request(_limit_body)
    # Set, not defaulted: Flask has its own (weaker) defaults for these keys.
    app.config.update(
        MAX_CONTENT_LENGTH=DEFAULT_BODY_LIMIT,
        SESSION_COOKIE_NAME="corb_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # Checked by our own hook below (scoped by path) instead of Flask-WTF's app-wide one.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the signed session
    )
    csrf.init_app(app)
    app.extensions["corb_login_throttle"] = LoginThrottle(svc.engine)

    policy = _content_security_policy(svc)

    @app.before_request
    def _csrf_guard() -> None:
        if request.path in CSRF_EXEMPT_PATHS or request.path.startswith(CSRF_EXEMPT_PREFIXES):
            return
        csrf.protect()  # no-op for safe methods; 400 (CSRFError) without a valid token

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.path.startswith(NO_STORE_PREFIXES) and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"  # views that may be cached privately say so themselves
        return response

    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _http_error)


def body_limit(path: str) -> int:
    return next((limit for prefix, limit in BODY_LIMITS if path.startswith(prefix)), DEFAULT_BODY_LIMIT)


def _limit_body() -> None:
    """Refuse a body over this route's limit from its Content-Length, before a byte of it is read.

    A chunked body has no length to check, and Werkzeug would silently cut it at the limit (a form
    parsed from half a body). So it is read here, at most one byte past the limit: over it is a 413
    too, within it the route reads it from memory as usual."""
    limit = body_limit(request.path)
    request.max_content_length = limit
    request.max_form_memory_size = limit
    too_large = RequestEntityTooLarge(f"The request body is over this address's limit of {limit} bytes.")
    if request.content_length is not None:
        if request.content_length > limit:
            raise too_large
        return
    environ = request.environ
    if environ.get("wsgi.input_terminated"):
        stream, data = environ["wsgi.input"], bytearray()
        while len(data) <= limit and (chunk := stream.read(limit + 1 - len(data))):
            data += chunk
        if len(data) > limit:
            raise too_large
        environ["wsgi.input"] = io.BytesIO(bytes(data))


def _http_error(error: HTTPException) -> Response:
    """JSON under ``/api/`` (also for 404, 405 and 500); a styled page for the admin; else Flask's own."""
    code = error.code or 500
    if request.path.startswith("/api/"):
        message = error.description if code < 500 else "internal server error"
        response = jsonify(status=code, message=message)
        response.status_code = code
        original = dict(error.get_headers())
        for name in ("Allow", "WWW-Authenticate", "Retry-After"):
            if name in original:
                response.headers[name] = original[name]
    elif request.path.startswith(HTML_ERROR_PREFIXES):
        response = make_response(render_template("error.html", code=code, name=error.name,
                                                 description=error.description), code)
    else:
        response = error.get_response()
    if code == 413:
        response.headers["Connection"] = "close"  # the unread body must not be taken for the next request
    return response


# -- the admin login, shared by the admin and simulator blueprints -------------------------------------

def _account_key(account: AdminAccount) -> str:
    """Ties a session to the password it was opened with: a new password ends every older session."""
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]


def current_admin() -> AdminAccount | None:
    """The logged-in admin, loaded once per request; ``None`` for anyone else.

    The signed cookie names a server-side session (``bot.admin.auth``): a session that was signed out
    or has expired opens nothing, whoever kept a copy of the cookie."""
    if "corb_admin" in g:
        return g.corb_admin
    admin = None
    token = session.get("admin_session")
    if isinstance(token, str):
        with services().session() as db:
            account = session_account(db, token)
            if account is not None and session.get("admin_key") == _account_key(account):
                admin = account
    g.corb_admin = admin
    return admin


def log_in(account: AdminAccount) -> None:
    session.clear()  # a fresh session (and CSRF token) at login: no fixation
    session.permanent = True
    with services().session() as db:
        session["admin_session"] = open_session(db, account.id)
    session["admin_key"] = _account_key(account)
    g.corb_admin = account


def log_out() -> None:
    """End the session on the server too: a cookie copied before this is refused afterwards."""
    token = session.get("admin_session")
    if isinstance(token, str):
        with services().session() as db:
            close_session(db, token)
    session.clear()
    g.corb_admin = None


def safe_next(target: str | None) -> str | None:
    """Only a path on this site may follow login, as a browser will read it: browsers drop tabs and
    newlines from URLs and read ``\\`` as ``/``, so ``/\\t/evil`` and ``/\\evil`` are ``//evil``, another
    site. Control characters (a CR/LF would split the Location header) and backslashes are refused;
    anything else outside URL syntax is percent-encoded."""
    if not target or len(target) > 2048 or not target.startswith("/"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    if target.startswith("//") or parts.scheme or parts.netloc:
        return None
    return quote(target, safe="/?&=%#+:@;,~!$'()*[]")


def require_admin(public_endpoints: frozenset[str] = frozenset()) -> Response | None:
    """A ``before_request`` body: anonymous users go to the login page (JSON endpoints get 401)."""
    if request.endpoint in public_endpoints or current_admin() is not None:
        return None
    if request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
        response = jsonify(status=401, message="login required")
        response.status_code = 401
        return response
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("admin.login", next=target))
