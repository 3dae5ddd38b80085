"""A tiny HTTP proxy in front of the moto server: every request still crosses the wire, and tests can
make EventBridge answer ``PutEvents`` with per-entry failures the way AWS does (HTTP 200,
``FailedEntryCount`` > 0, ``ErrorCode`` on the failed entries) and record what clients sent.

Failed entries are removed from the request before it reaches moto, so a "failed" entry really was not
put: a client that drops it instead of resending loses the event, and the test sees that.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "server", "date"}
# (request number among PutEvents calls, position in the request, entry) -> ErrorCode to inject, or None
FailurePlan = Callable[[int, int, dict], "str | None"]


@dataclass
class Recorded:
    target: str  # X-Amz-Target for JSON APIs, else "METHOD path"
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


@dataclass
class WireProxy:
    upstream: str
    plan: FailurePlan | None = None
    recorded: list[Recorded] = field(default_factory=list)
    put_events_calls: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> WireProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = proxy.forward(self.command, self.path, dict(self.headers.items()),
                                                      body)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in HOP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def records(self, target_suffix: str) -> list[Recorded]:
        return [r for r in self.recorded if r.target.endswith(target_suffix)]

    # -- the proxying ----------------------------------------------------------------------------------
    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes
                ) -> tuple[int, list[tuple[str, str]], bytes]:
        target = headers.get("X-Amz-Target") or f"{method} {path.split('?')[0]}"
        with self._lock:
            self.recorded.append(Recorded(target, headers, body))
        injected: dict[int, str] = {}
        if target == "AWSEvents.PutEvents" and self.plan is not None:
            with self._lock:
                call = self.put_events_calls
                self.put_events_calls += 1
            request = json.loads(body)
            kept = []
            for pos, entry in enumerate(request["Entries"]):
                code = self.plan(call, pos, entry)
                if code:
                    injected[pos] = code
                else:
                    kept.append(entry)
            request["Entries"] = kept
            body = json.dumps(request).encode()
        if injected and not request["Entries"]:
            status, resp_headers = 200, [("Content-Type", "application/x-amz-json-1.1")]
            data = b'{"Entries": []}'
        else:
            status, resp_headers, data = self._upstream(method, path, headers, body)
        if injected and status == 200:
            data = self._merge_failures(json.loads(data), injected)
        return status, resp_headers, data

    def _upstream(self, method: str, path: str, headers: dict[str, str], body: bytes
                  ) -> tuple[int, list[tuple[str, str]], bytes]:
        up = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            send = {k: v for k, v in headers.items()
                    if k.lower() not in {"host", "content-length", "connection"}}
            send["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=send)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    @staticmethod
    def _merge_failures(response: dict, injected: dict[int, str]) -> bytes:
        real = iter(response.get("Entries", []))
        total = len(response.get("Entries", [])) + len(injected)
        entries = []
        for pos in range(total):
            if pos in injected:
                entries.append({"ErrorCode": injected[pos], "ErrorMessage": "injected by the test proxy"})
            else:
                entries.append(next(real))
        failed = sum(1 for e in entries if e.get("ErrorCode"))
        return json.dumps({"FailedEntryCount": failed, "Entries": entries}).encode()
