"""Hide the secrets in camera URLs: the one function used wherever a stream URL is shown, logged or stored
outside the database (CLI, admin pages, the agent's log and status object).

Cameras take their password in the URL's user-info (``rtsp://admin:secret@host/...``) and, on some HTTP
models, in the query (``?user=admin&password=secret``). Both are replaced by ``***``; the rest stays, so a
person can still tell which camera and host a message is about. It also works on any text that holds
URLs (error messages from FFmpeg quote the URL they failed on).
"""

from __future__ import annotations

import re

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s'\"]*):(?P<secret>[^\s'\"/]*)@")
_QUERY = re.compile(r"(?P<name>[?&;](?:password|passwd|pwd|pass|token|key|secret|auth)=)"
                    r"(?P<secret>[^&#\s'\"]*)", re.IGNORECASE)


def redact_url(text: str | None) -> str:
    """``text`` (a URL, or a message holding URLs) with every password and token replaced by ``***``."""
    if not text:
        return ""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m['name']}{MASK}", text)
