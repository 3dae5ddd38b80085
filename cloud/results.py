"""A segment's result travels inside its snapshot: one object per segment, not a picture and a JSON beside it.

Each stored object costs a PUT (the largest request line of a camera's bill, see docs/deploy.md), so the
detection function writes the annotated JPEG once, with the result JSON in JPEG comment (``COM``) segments
before the image data. Any JPEG reader ignores them; :func:`extract` reads them back. The object is written
in one PUT, so it is also the commit marker: it exists iff the segment version was analysed.

Both the detection package and the bot's read this module (the bot's Lambda has no detection code), so it
holds only byte handling: no numpy, no imaging library.
"""

from __future__ import annotations

import json
from typing import Any

MAGIC = b"corb-result:"  # starts each of our COM segments: other comments are left alone
_SOI, _SOS, _COM, _APP0 = b"\xff\xd8", 0xDA, 0xFE, 0xE0
_MAX_SEGMENT = 65_533  # a JPEG segment's payload (its length field counts itself: 2 bytes)
_CHUNK = _MAX_SEGMENT - len(MAGIC)
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length


def embed(jpeg: bytes, result: dict[str, Any]) -> bytes:
    """``jpeg`` with ``result`` (JSON) in COM segments after SOI (and after a JFIF APP0, which must come
    first). Results over 64 KB span several segments."""
    if not jpeg.startswith(_SOI):
        raise ValueError("not a JPEG (no SOI marker)")
    data = json.dumps(result, separators=(",", ":")).encode()
    comments = b"".join(
        b"\xff\xfe" + (len(MAGIC) + len(chunk) + 2).to_bytes(2, "big") + MAGIC + chunk
        for chunk in (data[i:i + _CHUNK] for i in range(0, max(len(data), 1), _CHUNK)))
    at = 2
    if jpeg[2:4] == b"\xff\xe0" and len(jpeg) >= 6:  # JFIF's APP0 stays right after SOI
        at = 4 + int.from_bytes(jpeg[4:6], "big")
    return jpeg[:at] + comments + jpeg[at:]


def extract(jpeg: bytes) -> dict[str, Any] | None:
    """The result :func:`embed` put in ``jpeg``, or None (no result, or not a JPEG). Reads the headers
    only: it stops at the image data."""
    if not jpeg.startswith(_SOI):
        return None
    parts: list[bytes] = []
    i = 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            return None  # not at a marker: a damaged header
        marker = jpeg[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == _SOS:
            break
        length = int.from_bytes(jpeg[i + 2:i + 4], "big")
        body = jpeg[i + 4:i + 2 + length]
        if marker == _COM and body.startswith(MAGIC):
            parts.append(body[len(MAGIC):])
        i += 2 + length
    if not parts:
        return None
    try:
        result = json.loads(b"".join(parts))
    except ValueError:
        return None
    return result if isinstance(result, dict) else None

