"""``GET /media/<token>``: the folder bucket's stand-in for an S3 presigned URL.

The token (made by ``FolderBucket.presigned_url``) names one object and an expiry, signed with the
app's secret: pictures of people leave only through such links. S3 hands out its own presigned URLs,
so with S3 this route answers 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app

from cloud.bucket import NoSuchKey, guess_type

bp = Blueprint("media", __name__)


@bp.get("/media/<path:token>")
def media(token: str) -> Response:
    bucket = current_app.config["CORB_SERVICES"].bucket
    resolve = getattr(bucket, "resolve_token", None)
    if resolve is None:
        abort(404)
    try:
        key = resolve(token)
        data = bucket.get(key)
    except PermissionError:
        abort(403)
    except (NoSuchKey, ValueError):
        abort(404)
    resp = Response(data, mimetype=guess_type(key))
    # The link is someone's private copy: no shared caches, no guessing types, no referrers.
    resp.headers["Cache-Control"] = "private, max-age=300"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp
