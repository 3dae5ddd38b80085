"""Memory held while refusing oversized bodies: forged 100 MB POSTs to ``/sms`` and ``/admin/login``.

    python bench/oversized_bodies.py [--posts 4] [--megabytes 100]

The app runs on Werkzeug's threaded server in this process, on a fresh SQLite database in a temporary
folder; the bodies are sent from this process too, on 127.0.0.1, one after the other. Prints each answer's
status line and the peak of Python's allocations (``tracemalloc``) over all of them: a server that reads
such a body before refusing it allocates its size.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    size = args.megabytes * 1024 * 1024

    with tempfile.TemporaryDirectory(prefix="corb-bench-") as tmp:
        os.environ.update(CORB_DATA_DIR=tmp, TWILIO_AUTH_TOKEN="bench", CORB_SECRET_KEY="bench",
                          DATABASE_URL=f"sqlite:///{tmp}/corb.db")
        from werkzeug.serving import make_server

        from bot import create_app
        from cloud.migrate import upgrade

        upgrade(os.environ["DATABASE_URL"])
        server = make_server("127.0.0.1", 0, create_app(), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        chunk = b"Body=" + b"x" * (1024 * 1024)
        tracemalloc.start()
        for i in range(args.posts):
            path = "/sms" if i % 2 == 0 else "/admin/login"
            with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                             f"application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n".encode())
                sent = 0
                try:
                    while sent < size:
                        sock.sendall(chunk)
                        sent += len(chunk)
                except OSError:
                    pass  # refused and closed before the body was all sent
                answer = sock.recv(200).split(b"\r\n", 1)[0].decode()
            print(f"POST {path} ({args.megabytes} MB): {answer or 'connection closed'}, "
                  f"{sent / 1e6:.0f} MB sent")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        server.shutdown()
    print(f"peak Python allocations over {args.posts} posts: {peak / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
