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
#   okquote      250 with quotes, a backslash, braces, a comma and NULL in
#                its text (the reply must be stored as it came)
# LOGFILE gets one line per event: "connect", "rcpt ADDR",
# "accepted ADDR <MESSAGE-ID>" (the whole message was read) followed by
# "subject ADDR SUBJECT", "auth …".
#
# AUTH XOAUTH2 (offered without TLS; nobody has to authenticate): the
# bearer token must equal $SMTP_PEER_TOKEN. A user name starting "tmpfail"
# gets "454 4.7.0" (temporary). A wrong token gets, as Gmail does, the
# XOAUTH2 error challenge (334 + base64 JSON with status 401) and, should
# the client answer it, "535 5.7.8"; for a user name starting "direct" a
# plain "535 5.7.8" at once (as other servers do). Logged as "auth xoauth2
# ok USER", "auth xoauth2 bad-token USER", "auth xoauth2 tmpfail USER" or
# "auth xoauth2 malformed" (the token is never logged).
import asyncio, base64, json, os, sys
from email.parser import BytesHeaderParser
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

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
    async def auth_XOAUTH2(self, server, args):
        if len(args) == 2:
            blob = args[1].encode()
            try:
                raw = base64.b64decode(blob, validate=True)
            except ValueError:
                log("auth xoauth2 malformed")
                return AuthResult(success=False, handled=False,
                                  message="501 5.5.2 Can't decode base64")
        else:
            raw = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(raw, bytes):
                log("auth xoauth2 malformed")
                return AuthResult(success=False, handled=True)
        # "user=USER\x01auth=Bearer TOKEN\x01\x01"
        fields = dict(f.split("=", 1) for f in raw.decode("utf-8", "replace").split("\x01")
                      if "=" in f)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        if not user or not auth.startswith("Bearer "):
            log("auth xoauth2 malformed")
            return AuthResult(success=False, handled=False,
                              message="501 5.5.2 malformed XOAUTH2 response")
        if user.startswith("tmpfail"):
            log("auth xoauth2 tmpfail " + user)
            return AuthResult(success=False, handled=False,
                              message="454 4.7.0 Temporary authentication failure")
        if auth[len("Bearer "):] != os.environ.get("SMTP_PEER_TOKEN", "\x00"):
            log("auth xoauth2 bad-token " + user)
            if not user.startswith("direct"):
                err = json.dumps({"status": "401", "schemes": "bearer",
                                  "scope": "https://mail.example/"})
                await server.challenge_auth(err)   # the client answers empty
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Username and Password not accepted")
        log("auth xoauth2 ok " + user)
        return AuthResult(success=True, auth_data=user)

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
        hdrs = BytesHeaderParser().parsebytes(envelope.original_content or
                                              envelope.content)
        mid = hdrs.get("Message-ID", "-")
        log("accepted %s %s" % (envelope.rcpt_tos[0], mid.strip()))
        log("subject %s %s" % (envelope.rcpt_tos[0],
                               " ".join(str(hdrs.get("Subject", "-")).split())))
        if local == "okquote":
            return '250 2.0.0 Ok "queued" as {A,B} back\\slash NULL'
        return "250 2.0.0 OK scripted"


class PeerController(Controller):
    def factory(self):
        return Peer(self.handler, **self.SMTP_kwargs)


import socket
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
c = PeerController(Handler(), hostname="127.0.0.1", port=port,
                   auth_require_tls=False)
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
