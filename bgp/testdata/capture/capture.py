#!/usr/bin/env python3
"""Minimal hand-written BGP peer used once to capture what BIRD 2 sends.

Listens on ADDR:PORT, accepts BIRD's connection, answers its OPEN with a fixed
OPEN/KEEPALIVE, then records every message BIRD sends (one hex line per message,
prefixed with a sequence number) into OUT until BIRD closes the connection.
Messages this script sends come from the SEND_AFTER_OPEN list (hex strings).
"""
import socket, sys, time

addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
send_after = [bytes.fromhex(h) for h in sys.argv[4:]]

def msg(typ, body):
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes([typ]) + body

# Our OPEN: version 4, AS 65001, hold 90, id 10.0.0.2, caps: MP ipv4/unicast, RR, 4-octet AS.
caps = bytes([1, 4, 0, 1, 0, 1]) + bytes([2, 0]) + bytes([65, 4]) + (65001).to_bytes(4, "big")
opt = bytes([2, len(caps)]) + caps
open_body = bytes([4]) + (65001).to_bytes(2, "big") + (90).to_bytes(2, "big") + bytes([10, 0, 0, 2]) + bytes([len(opt)]) + opt
OPEN = msg(1, open_body)
KEEPALIVE = msg(4, b"")

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, port))
srv.listen(1)
conn, _ = srv.accept()
conn.settimeout(0.5)
buf = b""
got = []
sent_open = False
deadline = time.time() + float(__import__("os").environ.get("CAPTURE_SECS", "20"))
with open(out, "w") as f:
    while time.time() < deadline:
        try:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
        except socket.timeout:
            pass
        while len(buf) >= 19:
            ln = int.from_bytes(buf[16:18], "big")
            if len(buf) < ln:
                break
            m, buf = buf[:ln], buf[ln:]
            f.write(m.hex() + "\n"); f.flush()
            if m[18] == 1 and not sent_open:
                conn.sendall(OPEN + KEEPALIVE)
                sent_open = True
                time.sleep(0.5)
                for s in send_after:
                    conn.sendall(s)
                    time.sleep(0.3)
conn.close()
