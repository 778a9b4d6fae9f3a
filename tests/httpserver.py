"""A real HTTP server on 127.0.0.1 for tests that play a remote service (arXiv's API, its OAI-PMH interface)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """Answers each GET with ``answer(path) -> (status, body)``; records the paths asked for in ``requests``.
    ``url`` is the server's address plus ``path``. Stop it with :meth:`close`."""

    def __init__(self, answer: Callable[[str], tuple[int, str]], path: str, content_type: str):
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 -- http.server's name
                outer.requests.append(self.path)
                status, body = answer(self.path)
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
