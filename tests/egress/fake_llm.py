# An external service the app calls: an OpenAI-compatible chat endpoint
# that streams its answer as Server-Sent Events, and plain JSON endpoints
# (rates; an order's status).
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions" or not body.get("stream"):
            self.send_error(404)
            return
        if self.headers.get("Authorization") != "Bearer sk-test-secret":
            self.send_error(401)
            return
        words = body["messages"][-1]["content"].upper().split()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, word in enumerate(words):
            chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": {"content": word + " "}}]}
            self.chunk("data: %s\n\n" % json.dumps(chunk))
        self.chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        url = urlparse(self.path)
        if url.path.startswith("/v1/orders/") and url.path.endswith("/status"):
            data = json.dumps({"status": "shipped"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if url.path != "/v1/rates":
            self.send_error(404)
            return
        q = parse_qs(url.query)
        n = int(q["id"][0])
        data = json.dumps({"cur": q["cur"][0], "id": n, "rate": round(1 + n / 100, 2)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
