"""A receiver on loopback for the run's notifications: a webhook (HTTP) and Slack's incoming-webhook endpoint
(HTTPS with the sandbox's CA, as community.general.slack posts to https://<domain>/services/hooks/...).

Every POST is kept as (path, JSON body); answers 200. Bounded: it serves until stopped.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import ssl
import threading

from conftest import ROOT

TLS = ROOT / ".sandbox" / "tls"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.received.append((self.path, json.loads(body or b"null")))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def receiving(tls: bool = False, cert=None, key=None):
    """A server on 127.0.0.1 (an ephemeral port); yields it: .port, .received. With tls, HTTPS with the
    certificate given, else the sandbox's (signed by .sandbox/tls/ca.crt for 127.0.0.1)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.received = []
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert or TLS / "server.crt", key or TLS / "server.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def notify_args(webhook, slack) -> tuple[str, ...]:
    """migrate.yml's extra vars sending its notifications to the two receivers."""
    return ("-e", json.dumps({
        "notify_webhook_url": f"http://127.0.0.1:{webhook.port}/hooks/migrations",
        "notify_slack_token": "sandbox-token", "notify_slack_domain": f"127.0.0.1:{slack.port}",
        "notify_slack_channel": "#deploys", "notify_ca_file": str(TLS / "ca.crt"),
    }))  # fmt: skip
