"""Concurrent HTTP client for bench/crash/run.sh.

THREADS threads send POSTs with unique paths through the proxy on keep-alive
connections until killed or until the proxy goes away, and append the path
of every response received in full (status 200, its whole Content-Length)
to OUT, one line each, flushed at once: what the client side saw completed.
"""
import http.client
import sys
import threading

host, port, out_path, tag, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
lock = threading.Lock()
out = open(out_path, "a", buffering=1)


def worker(w):
    n = 0
    conn = None
    failures = 0
    while failures < 20:
        path = f"/r/{tag}/{w}-{n}"
        n += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            body = "x" * (100 + n % 900)
            conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
            resp = conn.getresponse()
            data = resp.read()  # raises IncompleteRead when cut short
            length = resp.getheader("Content-Length")
            if resp.status == 200 and length is not None and int(length) == len(data):
                with lock:
                    out.write(path + "\n")
            failures = 0
        except Exception:
            failures += 1
            try:
                if conn is not None:
                    conn.close()
            except Exception:
                pass
            conn = None


for t in [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]:
    t.start()
threading.Event().wait()
