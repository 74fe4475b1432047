# An app whose outgoing call differs on every run: it asks the shop (the
# named route RECPLAY_EGRESS_SHOP_URL) for an order's status, the order id
# made when the app starts and a timestamp in the query.
import json, os, sys, time, urllib.request, uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

RUN = uuid.uuid4().hex
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = "%s/v1/orders/%s/status?ts=%d&cur=EUR" % (
            os.environ["RECPLAY_EGRESS_SHOP_URL"], RUN, time.time_ns())
        try:
            with direct.open(url, timeout=10) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            answer = {"status": e.code}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
