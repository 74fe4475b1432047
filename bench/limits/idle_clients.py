"""Idle keep-alive connections against `recplay record`.

    idle_clients.py upstream PORT
        a minimal keep-alive HTTP/1.1 upstream (asyncio), answering every
        request with a small JSON body.
    idle_clients.py clients HOST:PORT COUNT RECPLAY_PID [HOLD_SECS]
        opens COUNT connections, sends one keep-alive request on each,
        keeps the ones answered 200 open and idle for HOLD_SECS, then
        closes them; prints how many were held and how many got 503, and
        the proxy's open descriptors before, during and after.
"""

import asyncio
import os
import sys
import time

BODY = b'{"ok":true}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


async def upstream(port):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


async def one(host, port, held, outcomes):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        outcomes["connect_failed"] += 1
        outcomes.setdefault("connect_error", str(e))
        return
    try:
        writer.write(b"GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        status = head.split(b" ", 2)[1].decode()
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError, IndexError):
        outcomes["closed_without_answer"] += 1
        writer.close()
        return
    outcomes[status] = outcomes.get(status, 0) + 1
    if status == "200":
        held.append((reader, writer))
    else:
        writer.close()


async def clients(target, count, pid, hold):
    host, port = target.rsplit(":", 1)
    port = int(port)
    outcomes = {"connect_failed": 0, "closed_without_answer": 0}
    held = []
    before = fds(pid)
    started = time.monotonic()
    batch = 500
    for first in range(0, count, batch):
        await asyncio.gather(
            *(one(host, port, held, outcomes) for _ in range(first, min(count, first + batch)))
        )
    opened = time.monotonic() - started
    during = fds(pid)
    await asyncio.sleep(hold)
    # Still open after the hold: a held connection answers a second request.
    alive = 0
    for reader, writer in held:
        try:
            writer.write(b"GET /idle HTTP/1.1\r\nHost: bench\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if b" 200 " in head.split(b"\r\n")[0] + b" ":
                alive += 1
            await reader.readexactly(len(BODY))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            pass
    during_after_hold = fds(pid)
    for _, writer in held:
        writer.close()
    await asyncio.sleep(3)
    after = fds(pid)
    print(f"connections attempted: {count} (opened in {opened:.1f} s)")
    print(f"held (answered 200, kept open): {len(held)}")
    print(f"still answering after {hold} s idle: {alive}")
    print(f"refused with 503: {outcomes.get('503', 0)}")
    others = {k: v for k, v in outcomes.items() if k not in ("200", "503") and v}
    print(f"other outcomes: {others or 'none'}")
    print(f"proxy fds before: {before}")
    print(f"proxy fds with the connections open: {during} (after the hold: {during_after_hold})")
    print(f"proxy fds 3 s after the clients closed: {after}")


def main():
    if sys.argv[1] == "upstream":
        asyncio.run(upstream(int(sys.argv[2])))
    elif sys.argv[1] == "clients":
        hold = int(sys.argv[5]) if len(sys.argv) > 5 else 5
        asyncio.run(clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), hold))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
