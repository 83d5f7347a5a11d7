#!/usr/bin/python3
# tests/integration/smtp_peer.py: a scripted SMTP server (Debian's
# python3-aiosmtpd) for faults a real server will not produce on demand.
#
#   smtp_peer.py PORTFILE LOGFILE
#
# Listens on 127.0.0.1, an ephemeral port written to PORTFILE. Plaintext
# (the worker runs with [smtp] tls = none against it). What it does to a
# mail is chosen by the recipient's local part:
#   ok…          250 (accepted)
#   r421 r450 r451 r452 r550
#                that reply to RCPT TO (r451x: 451 too)
#   d552 d554    that reply after the final dot
#   drop354      closes the connection right after "354"
#   dropdot      reads the whole message, closes without a reply
#   stall        reads the whole message, never answers
# LOGFILE gets one line per event: "connect", "rcpt ADDR",
# "accepted ADDR <MESSAGE-ID>" (the whole message was read).
import asyncio, sys
from email.parser import BytesHeaderParser
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

port_file, log_file = sys.argv[1], sys.argv[2]


def log(line):
    with open(log_file, "a") as f:
        f.write(line + "\n")


def behaviour(envelope):
    local = envelope.rcpt_tos[0].split("@")[0].lower() if envelope.rcpt_tos else ""
    return local


class Peer(SMTP):
    def connection_made(self, transport):
        log("connect")
        super().connection_made(transport)

    async def smtp_DATA(self, arg):
        if behaviour(self.envelope) == "drop354":
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, options):
        log("rcpt " + address)
        local = address.split("@")[0].lower()
        if local == "r451x":          # the same, for a second case
            local = "r451"
        if local in ("r421", "r450", "r451", "r452", "r550"):
            return "%s %s.0.0 scripted reply to RCPT" % (local[1:], local[1])
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        local = behaviour(envelope)
        if local in ("d552", "d554"):
            return "%s 5.3.4 scripted reply after the dot" % local[1:]
        if local == "dropdot":
            server.transport.close()
            return "250 never seen"
        if local == "stall":
            await asyncio.sleep(3600)
        mid = BytesHeaderParser().parsebytes(envelope.original_content or
                                             envelope.content).get("Message-ID", "-")
        log("accepted %s %s" % (envelope.rcpt_tos[0], mid.strip()))
        return "250 2.0.0 OK scripted"


class PeerController(Controller):
    def factory(self):
        return Peer(self.handler, **self.SMTP_kwargs)


import socket
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
c = PeerController(Handler(), hostname="127.0.0.1", port=port)
c.start()
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % port)
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
os.rename(port_file + ".tmp", port_file)
try:
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
except KeyboardInterrupt:
    pass
finally:
    c.stop()
