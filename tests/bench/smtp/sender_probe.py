#!/usr/bin/python3
"""tests/bench/smtp/sender_probe.py: what a new envelope sender per mail
costs the SMTP server, without postern.

    sender_probe.py fixed|new N HOST PORT FILE RCPT

One session, EHLO once, then N transactions of MAIL, RCPT, DATA and FILE
(LF or CRLF lines, sent as CRLF, dot-stuffed), each command waiting for its
reply as smtp-source does (no PIPELINING). "fixed": every mail from
bench-ref@practice.test, as smtp-source -f sends. "new": every mail from a
new bounce+<40 base32 characters>@practice.test, the shape of postern's VERP
bounce address. Prints "N SECONDS". Exits non-zero on any reply other than
the expected one, or after 30 s without a reply.
"""
import base64
import os
import socket
import sys
import time


def main():
    if len(sys.argv) != 7 or sys.argv[1] not in ("fixed", "new"):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    mode, n, host, port, path, rcpt = sys.argv[1:]
    n, port = int(n), int(port)
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    lines = data.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n")
    body = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rf = s.makefile("rb")

    def expect(code):
        while True:
            line = rf.readline(1000)
            if not line:
                sys.exit("sender_probe: the server closed the connection")
            if line[3:4] != b"-":
                break
        if not line.startswith(code):
            sys.exit("sender_probe: expected %s, got %r" % (code.decode(), line))

    expect(b"220")
    s.sendall(b"EHLO bench.practice.test\r\n")
    expect(b"250")
    t0 = time.monotonic()
    for _ in range(n):
        if mode == "fixed":
            sender = b"bench-ref@practice.test"
        else:
            tok = base64.b32encode(os.urandom(25)).lower()           # 40 characters
            sender = b"bounce+" + tok + b"@practice.test"
        s.sendall(b"MAIL FROM:<" + sender + b">\r\n")
        expect(b"250")
        s.sendall(b"RCPT TO:<" + rcpt.encode() + b">\r\n")
        expect(b"250")
        s.sendall(b"DATA\r\n")
        expect(b"354")
        s.sendall(body + b".\r\n")
        expect(b"250")
    secs = time.monotonic() - t0
    s.sendall(b"QUIT\r\n")
    expect(b"221")
    print("%d %.3f" % (n, secs))


if __name__ == "__main__":
    main()
