"""An app whose handler calls an HTTPS service through HTTPS_PROXY with
urllib's default, verifying TLS context: it trusts what SSL_CERT_FILE
names, as recplay sets it."""
import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

UPSTREAM = os.environ["UPSTREAM"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        n = self.path.rsplit("/", 1)[-1]
        try:
            with urllib.request.urlopen(f"{UPSTREAM}/echo/item?n={n}", timeout=10) as r:
                echoed = json.load(r)
            body = {"n": n, "path": echoed["path"], "query": echoed["query"]}
            status = 200
        except Exception as e:  # the test reads what went wrong
            body = {"error": f"{type(e).__name__}: {e}"}
            status = 502
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
