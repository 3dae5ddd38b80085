"""The agent's settings and its cameras: from the environment, or from a small config file for the box in
the building that has no database.

Config file (JSON, or TOML with ``[[cameras]]`` tables); every key but ``cameras`` is optional and
overrides the environment::

    {"segment_s": 60, "quick_s": 4, "recheck_s": 300, "quiet_segment_s": 300, "spool": "/var/lib/corb/spool",
     "spool_mb": 2048,
     "person_check": true,
     "cameras": [{"slug": "lobby", "stream": "rtsp://user:pass@10.0.0.5/main",
                  "substream": "rtsp://user:pass@10.0.0.5/sub"}]}
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.segmenter import SegmentSettings

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "file://")

# environment variable -> setting, with the type it is read as
ENV = {
    "CORB_SEGMENT_SECONDS": ("segment_s", float),
    "CORB_QUICK_SECONDS": ("quick_s", float),
    "CORB_RECHECK_SECONDS": ("recheck_s", float),
    "CORB_QUIET_SECONDS": ("quiet_segment_s", float),
    "CORB_AGENT_SPOOL": ("spool", str),
    "CORB_AGENT_SPOOL_MB": ("spool_mb", float),
    "CORB_AGENT_STALL_SECONDS": ("stall_s", float),
    "CORB_AGENT_JITTER_SECONDS": ("jitter_s", float),
    "CORB_AGENT_PERSON_CHECK": ("person_check", str),
}
FALSE, TRUE = ("0", "false", "no", "off"), ("1", "true", "yes", "on")


class ConfigError(ValueError):
    """A setting or camera entry that cannot work; the message says which and why."""


@dataclass(frozen=True)
class CameraSource:
    slug: str
    stream: str
    substream: str | None = None

    def __post_init__(self) -> None:
        if not SLUG.match(self.slug):
            raise ConfigError(f"camera {self.slug!r}: a slug is lower case letters, digits and dashes")
        for url in filter(None, (self.stream, self.substream)):
            check_stream_url(url)


@dataclass(frozen=True)
class AgentSettings:
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    spool: Path = Path("var/spool")
    spool_cap_bytes: int = 1024 * 1024 * 1024
    stall_s: float = 10.0  # no packet for this long: the stream has stalled, reconnect
    jitter_s: float = 0.0  # sources without RTCP: their buffering delay, subtracted from arrival times
    min_cut_s: float = 1.0  # all-intra streams (MJPEG): a cut at most this often
    backoff_s: tuple[float, float] = (1.0, 30.0)  # reconnect delays: first, most
    open_timeout_s: float = 10.0
    person_check: bool = True  # the detection model on changed keyframes (agent.people); off: change decides

    def with_values(self, values: Mapping[str, Any]) -> AgentSettings:
        """These settings with ``values`` (config-file / environment names) applied, checked."""
        try:
            seg = self.segment
            timing = {k: float(values[k]) for k in ("segment_s", "quick_s", "recheck_s", "quiet_segment_s")
                      if k in values}
            if timing:
                seg = replace(seg, **timing)
            out = replace(self, segment=seg)
            if "spool" in values:
                out = replace(out, spool=Path(str(values["spool"])))
            if "spool_mb" in values:
                out = replace(out, spool_cap_bytes=int(float(values["spool_mb"]) * 1024 * 1024))
            for name in ("stall_s", "jitter_s"):
                if name in values:
                    out = replace(out, **{name: float(values[name])})
            if "person_check" in values:
                out = replace(out, person_check=_flag(values["person_check"]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad setting: {exc}") from exc
        if out.spool_cap_bytes <= 0 or out.stall_s <= 0 or out.jitter_s < 0:
            raise ConfigError("spool_mb and stall_s must be positive, jitter_s not negative")
        return out


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in FALSE + TRUE:
        raise ValueError(f"person_check is on or off ({', '.join(TRUE)} / {', '.join(FALSE)}), got {value!r}")
    return text in TRUE


def check_stream_url(url: str) -> str:
    """``url`` if the agent can read it, else a ``ConfigError`` naming the schemes it reads."""
    if not url.startswith(SCHEMES):
        raise ConfigError(f"{url.split('://')[0]!r} streams are not supported: use one of "
                          f"{', '.join(s[:-3] for s in SCHEMES)} (file:// plays a file at its frame rate)")
    return url


def settings_from_env(env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> AgentSettings:
    env = os.environ if env is None else env
    base = AgentSettings(spool=(data_dir or Path(env.get("CORB_DATA_DIR", "./var"))) / "spool")
    values = {name: env[var] for var, (name, _type) in ENV.items() if env.get(var)}
    try:
        return base.with_values(values)
    except ConfigError as exc:
        names = ", ".join(var for var in ENV if env.get(var))
        raise ConfigError(f"{exc} (from {names})") from exc


def read_config_file(path: Path) -> tuple[dict[str, Any], list[CameraSource]]:
    """The settings and cameras of a JSON or TOML config file."""
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise ConfigError(f"{path}: needs a list of cameras, e.g. "
                          '{"cameras": [{"slug": "lobby", "stream": "rtsp://..."}]}')
    cameras = []
    for i, entry in enumerate(data["cameras"]):
        if not isinstance(entry, dict) or not entry.get("slug") or not entry.get("stream"):
            raise ConfigError(f"{path}: camera {i + 1} needs a slug and a stream")
        cameras.append(CameraSource(str(entry["slug"]), str(entry["stream"]),
                                    str(entry["substream"]) if entry.get("substream") else None))
    if len({c.slug for c in cameras}) != len(cameras):
        raise ConfigError(f"{path}: a camera slug is listed twice")
    return {k: v for k, v in data.items() if k != "cameras"}, cameras
