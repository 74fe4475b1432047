"""Concurrent PostgreSQL client for bench/crash/run_pg.sh.

THREADS threads, each on its own connection through the proxy, send simple
queries that each carry a unique tag, and append the tag of every query
whose whole answer arrived (CommandComplete, then ReadyForQuery, no error)
to OUT, one line each, flushed at once: what the client side saw
completed. Speaks the protocol itself (trust authentication only), so it
needs nothing beyond python3.
"""
import socket
import struct
import sys
import threading

host, port, out_path, tag, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
lock = threading.Lock()
out = open(out_path, "a", buffering=1)


class Closed(Exception):
    pass


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Closed()
        buf += chunk
    return buf


def read_message(sock):
    head = read_exact(sock, 5)
    length = struct.unpack("!I", head[1:])[0]
    return head[:1], read_exact(sock, length - 4)


def until_ready(sock):
    """The message types up to and including ReadyForQuery."""
    seen = []
    while True:
        kind, _ = read_message(sock)
        seen.append(kind)
        if kind == b"Z":
            return seen


def connect():
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    params = b"user\0postgres\0database\0postgres\0\0"
    sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
    seen = until_ready(sock)
    if b"E" in seen:
        raise Closed()
    return sock


def worker(w):
    n = 0
    sock = None
    failures = 0
    while failures < 20:
        query_tag = f"{tag}-{w}-{n}"
        n += 1
        try:
            if sock is None:
                sock = connect()
            text = f"SELECT '{query_tag}' AS tag, repeat('x', {n % 500})".encode()
            sock.sendall(b"Q" + struct.pack("!I", len(text) + 5) + text + b"\0")
            seen = until_ready(sock)
            if b"C" in seen and b"E" not in seen:
                with lock:
                    out.write(query_tag + "\n")
            failures = 0
        except Exception:
            failures += 1
            try:
                if sock is not None:
                    sock.close()
            except Exception:
                pass
            sock = None


for t in [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]:
    t.start()
threading.Event().wait()
