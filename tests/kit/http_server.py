"""A threaded HTTP server on 127.0.0.1 for the loopback venues and nodes written on ``http.server``."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalHttpServer:
    """Serve ``handler`` on an ephemeral 127.0.0.1 port in a daemon thread until ``close``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        """Stop serving, close the socket and wait for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
