# The app under test: per request it reads a quote from PostgreSQL
# (psycopg2, literals inlined: simple Queries), has it summarised by the
# LLM through the named route RECPLAY_EGRESS_LLM_URL (streamed, SSE), and
# fetches a rate from RATES_URL through HTTP_PROXY.
import json, os, sys, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
import psycopg2

conn = None
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
proxied = urllib.request.build_opener()


def db():
    global conn
    if conn is None:
        conn = psycopg2.connect(host="127.0.0.1", port=int(os.environ["APP_PG_PORT"]),
                                user="postgres", dbname="postgres", connect_timeout=10)
        conn.autocommit = True
    return conn.cursor()


def summarise(text):
    req = urllib.request.Request(
        os.environ["RECPLAY_EGRESS_LLM_URL"] + "/v1/chat/completions",
        data=json.dumps({"model": "fake", "stream": True,
                         "messages": [{"role": "user", "content": text}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test-secret"})
    words, events = [], 0
    with direct.open(req, timeout=10) as resp:
        for line in resp:
            line = line.decode().strip()
            if not line.startswith("data: "):
                continue
            events += 1
            payload = line[len("data: "):]
            if payload == "[DONE]":
                # Read on to the stream's end: a call whose client leaves
                # before the final chunk is not recorded.
                resp.read()
                break
            words.append(json.loads(payload)["choices"][0]["delta"]["content"])
    return "".join(words).strip(), events


def rate(n):
    url = "%s/v1/rates?id=%d&cur=EUR" % (os.environ["RATES_URL"], n)
    try:
        with proxied.open(url, timeout=10) as resp:
            return json.loads(resp.read())["rate"]
    except urllib.error.HTTPError as e:
        return {"status": e.code, "miss": e.headers.get("X-Recplay-Miss")}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(self.path.rsplit("/", 1)[1])
        cur = db()
        cur.execute("SELECT text FROM quotes WHERE id = %s", (n,))
        text = cur.fetchone()[0]
        summary, events = summarise(text)
        data = json.dumps({"id": n, "text": text, "summary": summary, "events": events,
                           "rate": rate(n)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
