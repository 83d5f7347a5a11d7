#!/usr/bin/env python3
"""tests/integration/imap_peer.py: a scripted IMAP server for what the
test Dovecot cannot do: AUTHENTICATE XOAUTH2 (no OAuth2 passdb there).

  imap_peer.py PORT_FILE LOG_FILE TOKEN

Listens on a free loopback port (written to PORT_FILE), plaintext (the
client runs with [imap] tls = none). Speaks just enough IMAP4rev1 for
postern's client: CAPABILITY, AUTHENTICATE XOAUTH2 (initial response, or
after a continuation), LOGIN (always refused: only the token is
accepted), SELECT of an empty mailbox, UID SEARCH, IDLE/DONE, NOOP,
LOGOUT. A token other than TOKEN gets the Gmail-style error continuation
and then NO [AUTHENTICATIONFAILED]. Each command is logged as one line
(the XOAUTH2 string decoded, \\x01 shown as ^A) ending in " [sN]", N the
connection's number (1, 2, … in the order they came).
"""
import asyncio, base64, sys

PORT_FILE, LOG_FILE, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]
CAPS = "IMAP4rev1 SASL-IR AUTH=XOAUTH2 IDLE"


sessions = 0


async def session(reader, writer):
    global sessions
    sessions += 1
    sid = sessions

    def log(line):
        with open(LOG_FILE, "a") as f:
            f.write("%s [s%d]\n" % (line, sid))

    def send(s):
        writer.write((s + "\r\n").encode())

    send("* OK [CAPABILITY %s] imap_peer ready" % CAPS)
    authed = False
    while True:
        line = await reader.readline()
        if not line:
            break
        text = line.decode(errors="replace").rstrip("\r\n")
        parts = text.split(" ", 2)
        tag = parts[0]
        cmd = parts[1].upper() if len(parts) > 1 else ""
        arg = parts[2] if len(parts) > 2 else ""
        if cmd == "AUTHENTICATE":
            mech, _, ir = arg.partition(" ")
            if not ir:
                send("+ ")
                ir = (await reader.readline()).decode().strip()
            try:
                s = base64.b64decode(ir).decode()
            except Exception:
                s = "(undecodable)"
            log("AUTHENTICATE %s %s" % (mech, s.replace("\x01", "^A")))
            if mech.upper() == "XOAUTH2" and s.endswith("auth=Bearer %s\x01\x01" % TOKEN):
                authed = True
                send("%s OK [CAPABILITY %s] authenticated" % (tag, CAPS))
            else:
                send("+ " + base64.b64encode(b'{"status":"401"}').decode())
                await reader.readline()          # the client's empty answer
                send("%s NO [AUTHENTICATIONFAILED] invalid credentials" % tag)
            continue
        log(text if cmd != "LOGIN" else "LOGIN (refused)")
        if cmd == "CAPABILITY":
            send("* CAPABILITY " + CAPS)
            send(tag + " OK done")
        elif cmd == "LOGIN":
            send(tag + " NO [AUTHENTICATIONFAILED] use XOAUTH2")
        elif not authed and cmd not in ("LOGOUT", "NOOP"):
            send(tag + " BAD not authenticated")
        elif cmd in ("SELECT", "EXAMINE"):
            send("* 0 EXISTS")
            send("* 0 RECENT")
            send("* OK [UIDVALIDITY 7] ok")
            send("* OK [UIDNEXT 1] ok")
            send("* FLAGS (\\Seen \\Deleted)")
            send(tag + " OK [READ-WRITE] selected")
        elif cmd == "UID" and arg.upper().startswith("SEARCH"):
            send("* SEARCH")
            send(tag + " OK done")
        elif cmd == "IDLE":
            send("+ idling")
            await reader.readline()              # DONE
            send(tag + " OK idle done")
        elif cmd == "NOOP":
            send(tag + " OK")
        elif cmd == "LOGOUT":
            send("* BYE bye")
            send(tag + " OK")
            await writer.drain()
            break
        else:
            send(tag + " BAD unknown")
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    async with server:
        await server.serve_forever()


asyncio.run(main())
