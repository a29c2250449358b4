#!/usr/bin/python3
"""HTTP sink for bench/kannel_compare.sh: Kannel smsbox's sms-service get-url points here.

Answers every MO request with 200 and a short text/plain body (Kannel sends that body back as the
reply SMS, as donagated sends its thank-you) and X-Kannel-DLR-Mask/-Url headers (the reply asks
for a delivery receipt, as donagated's do, and Kannel hands the receipt on to /dlr here).
Keeps connections alive (HTTP/1.1, as Kannel's client does), counts the MO hits and the /dlr
hits and writes {"hits", "first", "last", "dlr_hits"} (time.time() seconds) to --stats-file
every 0.2 s and at exit. Loopback only; exits by itself after --max-s seconds.
Python standard library only (asyncio), so it needs nothing beyond Debian's python3.
"""
import argparse
import asyncio
import json
import os
import signal
import time

BODY = b"Cam on Quy khach da ung ho 100.000 dong cho chuong trinh bench. Ma GD: 1"
RESPONSE = b""  # set in main(): the DLR URL names our port
DLR_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
MAX_HEADER = 64 * 1024


class Stats:
    hits = 0
    dlr_hits = 0
    first = None
    last = None


def write_stats(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"hits": Stats.hits, "first": Stats.first, "last": Stats.last,
                   "dlr_hits": Stats.dlr_hits}, f)
    os.replace(tmp, path)


async def serve(reader, writer):
    buf = b""
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER:
                    break
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buf += chunk
                continue
            head, buf = buf[:end], buf[end + 4:]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            while len(buf) < length:  # a POST body (Kannel's get-url sends none)
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf[length:]
            if head.split(b" ", 2)[1].startswith(b"/dlr"):
                Stats.dlr_hits += 1
                writer.write(DLR_RESPONSE)
            else:
                now = time.time()
                Stats.hits += 1
                if Stats.first is None:
                    Stats.first = now
                Stats.last = now
                writer.write(RESPONSE)
            if head[:4] != b"GET " and head[:5] != b"POST ":
                break
            if b"connection: close" in head.lower():
                break
            await writer.drain()
    except (ConnectionError, ValueError, IndexError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats-file", required=True)
    p.add_argument("--max-s", type=float, default=900)
    p.add_argument("--no-dlr", action="store_true", help="replies ask for no delivery receipt")
    a = p.parse_args()
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    global RESPONSE
    dlr = b"" if a.no_dlr else (
        b"X-Kannel-DLR-Mask: 3\r\nX-Kannel-DLR-Url: http://127.0.0.1:%d/dlr?type=%%d\r\n" % port)
    RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                % len(BODY)) + dlr + b"\r\n" + BODY
    write_stats(a.stats_file)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.replace(a.port_file + ".tmp", a.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    deadline = time.monotonic() + a.max_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except asyncio.TimeoutError:
            pass
        write_stats(a.stats_file)
    server.close()
    write_stats(a.stats_file)


if __name__ == "__main__":
    asyncio.run(main())
