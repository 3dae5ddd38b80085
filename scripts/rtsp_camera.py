#!/usr/bin/python3
"""A real RTSP camera on this machine: GStreamer's RTSP server serving an H.264 Matroska file in real time.

Used by the live-video tests, ``bench/latency.py`` and the demo. It runs on Debian's own Python, which has
GStreamer's bindings (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``); start it as a subprocess:

    /usr/bin/python3 scripts/rtsp_camera.py FEED.mkv [--port 0] [--path /lobby] [--user U --password P]
        [--sub-feed SUB.mkv [--sub-path /lobby_sub]] [--clock-offset S]

The file (H.264 or H.265) is served by stream copy (no re-encoding), paced at its own frame rate, and every
client sees the same instant (a shared media, as a real camera). Make feeds with ``scripts/camera_feed.py``:
H.264 or H.265 without B-frames and with a fixed GOP, as IP cameras send it. When the feed ends, its clients
see the stream end (as after a camera reboot) and the next connection starts it from the beginning.
``--sub-feed`` adds a second mount with a camera's low-resolution sub-stream; ``--clock-offset`` sets the
camera's clock (its RTCP sender reports) that far from this machine's, as a camera without a time server. It
prints one line per mount when ready, then one line each time a feed starts playing:

    serving rtsp://127.0.0.1:PORT/PATH
    playing /PATH 1764478800.123456    (wall-clock time of the feed's first frame, Unix seconds)

SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def _codec(feed: Path) -> str:
    """``h264`` or ``h265``: the Matroska CodecID near the start of the file says which."""
    with feed.open("rb") as f:
        return "h265" if b"V_MPEGH/ISO/HEVC" in f.read(1 << 16) else "h264"


def _launch_line(feed: Path) -> str:
    location = str(feed.resolve()).replace('"', '\\"')
    codec = _codec(feed)
    return (f'( filesrc location="{location}" ! matroskademux ! {codec}parse config-interval=-1 '
            f'! rtp{codec}pay name=pay0 pt=96 config-interval=-1 )')


NTP_EPOCH_S = 2208988800  # 1900-01-01 to 1970-01-01: RTCP's clock starts in 1900


def _camera_clock(offset_s: float) -> Gst.Clock:
    """This machine's wall clock, shifted by ``offset_s``, on RTCP's 1900 epoch: a camera's own clock."""
    clock = Gst.SystemClock()
    clock.set_property("clock-type", Gst.ClockType.REALTIME)
    internal = clock.get_internal_time()
    clock.set_calibration(internal, internal + int((NTP_EPOCH_S + offset_s) * Gst.SECOND), 1, 1)
    return clock


def _factory(path: str, feed: Path, clock_offset_s: float | None = None) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(_launch_line(feed))
    factory.set_shared(True)  # every client sees the same instant, as with a real camera

    def on_media_configure(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
        def on_new_state(_media: object, state: int) -> None:
            if state == Gst.State.PLAYING:
                print(f"playing {path} {time.time():.6f}", flush=True)
        media.connect("new-state", on_new_state)
        if clock_offset_s is not None:
            # The sender reports carry the camera's clock (the pipeline's), not this machine's.
            media.set_clock(_camera_clock(clock_offset_s))

            def on_prepared(_media: GstRtspServer.RTSPMedia) -> None:
                def set_source(element: Gst.Element) -> None:
                    if element.get_factory() and element.get_factory().get_name() == "rtpbin":
                        element.set_property("ntp-time-source", "clock-time")
                media.get_element().get_parent().iterate_elements().foreach(set_source)
            media.connect("prepared", on_prepared)

    factory.connect("media-configure", on_media_configure)
    return factory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("feed", type=Path, help="an H.264 .mkv (scripts/camera_feed.py makes them)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--path", default="/camera")
    parser.add_argument("--user", help="require this user (with --password), as cameras do")
    parser.add_argument("--password")
    parser.add_argument("--sub-feed", type=Path, help="a sub-stream feed, served at --sub-path")
    parser.add_argument("--sub-path", help="default: PATH_sub")
    parser.add_argument("--clock-offset", type=float, metavar="S",
                        help="the camera's clock is S seconds ahead of this machine's (negative: behind)")
    args = parser.parse_args()
    mounts = {args.path: args.feed}
    if args.sub_feed:
        mounts[args.sub_path or f"{args.path}_sub"] = args.sub_feed
    for feed in mounts.values():
        if not feed.is_file():
            parser.error(f"no such feed: {feed}")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factories = {path: _factory(path, feed, args.clock_offset) for path, feed in mounts.items()}

    if args.user:
        if not args.password:
            parser.error("--user needs --password")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role("user")
        permissions.add_permission_for_role("user", "media.factory.access", True)
        permissions.add_permission_for_role("user", "media.factory.construct", True)
        for factory in factories.values():
            factory.set_permissions(permissions)

    for path, factory in factories.items():
        server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"could not listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    for path in factories:
        print(f"serving rtsp://{args.host}:{server.get_bound_port()}{path}", flush=True)

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
