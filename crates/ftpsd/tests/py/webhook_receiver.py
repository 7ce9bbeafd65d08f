#!/usr/bin/env python3
"""A webhook receiver for the hooks tests (crates/ftpsd/tests/hooks.rs).

    webhook_receiver.py RECORD [--secret-file FILE] [--statuses 500,429,...]
                               [--hold-until FILE]

Listens on a free port of 127.0.0.1 and prints "listening PORT". Each POST is appended to
RECORD as one JSON line (its headers, its body as text, the status answered, and whether
its X-Ftpsd-Signature is valid for the key in FILE, checked the way docs/operations.md
shows) before it is answered. The Nth request is answered with the Nth of --statuses, and
200 once they are used up. With --hold-until, each answer waits until FILE exists: a
receiver that blocks.
"""

import argparse
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def signature_ok(secret: bytes, body: bytes, header: str) -> bool:
    """The check of docs/operations.md: the HMAC-SHA256 of the exact body."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("--secret-file")
    parser.add_argument("--statuses", default="")
    parser.add_argument("--hold-until")
    args = parser.parse_args()
    statuses = [int(s) for s in args.statuses.split(",") if s]
    secret = None
    if args.secret_file:
        with open(args.secret_file, "rb") as f:
            secret = f.read().rstrip()
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                index = count[0]
                count[0] += 1
                status = statuses[index] if index < len(statuses) else 200
                record = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8"),
                    "status": status,
                    "signature_ok": secret is not None
                    and signature_ok(
                        secret, body, self.headers.get("X-Ftpsd-Signature", "")
                    ),
                }
                with open(args.record, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            while args.hold_until and not os.path.exists(args.hold_until):
                time.sleep(0.05)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
