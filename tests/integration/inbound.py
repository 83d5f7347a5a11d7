#!/usr/bin/env python3
"""tests/integration/inbound.py: test helpers for inbound mail.

  token KEY_B64 KIND ID DAYS      a reply (KIND 1) or bounce (2) token for ID,
                                  expiring DAYS days from today (may be < 0)
  fill FILE VAR=VALUE...          a fixture with {{VAR}} filled, CRLF lines,
                                  to stdout
  smtp PORT CA FROM TO FILE       sends FILE through the stack's Postfix
                                  (STARTTLS, CA checked)
  append PORT CA USER PASS FOLDER FILE...
                                  IMAP APPEND of each FILE into FOLDER
                                  (created if missing)
  bulk PORT CA USER PASS FOLDER N TO FROM SIZE
                                  APPENDs N replies of ~SIZE bytes, one
                                  session, Message-IDs bulk.<i>.<folder>
  recreate PORT CA USER PASS FOLDER
                                  DELETE + CREATE: a new UIDVALIDITY
  status PORT CA USER PASS FOLDER prints "messages seen uidvalidity"
  clear PORT CA USER PASS FOLDER  deletes every message of FOLDER
The token layout is mailer/token.h's; the subkey is libsodium's
crypto_kdf_derive_from_key (BLAKE2b, salt = id, person = "postern1").
"""
import base64, datetime, hashlib, imaplib, re, smtplib, ssl, struct, sys, time


def subkey(key, ident):
    return hashlib.blake2b(b"", digest_size=32, key=key,
                           salt=struct.pack("<Q", ident) + bytes(8),
                           person=b"postern1" + bytes(8)).digest()


def token(key_b64, kind, ident, days):
    key = base64.b64decode(key_b64)
    sub = subkey(key, 3 if kind == 1 else 4)
    day = (datetime.date.today() - datetime.date(1970, 1, 1)).days + days
    body = bytes([(1 << 4) | kind, 1]) + struct.pack(">q", ident) + struct.pack(">H", day)
    mac = hashlib.blake2b(body, digest_size=16, key=sub).digest()[:13]
    return base64.b32encode(body + mac).decode().lower().rstrip("=")


def fill(path, pairs):
    text = open(path, encoding="utf-8").read()
    for p in pairs:
        k, v = p.split("=", 1)
        text = text.replace("{{" + k + "}}", v)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def imap(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    return imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx)


def ensure(m, folder):
    if folder.upper() != "INBOX":
        m.create(folder)   # "already exists" is fine


def main(a):
    cmd = a[0]
    if cmd == "token":
        print(token(a[1], int(a[2]), int(a[3]), int(a[4])))
    elif cmd == "fill":
        sys.stdout.buffer.write(fill(a[1], a[2:]))
    elif cmd == "smtp":
        port, ca, frm, to, path = a[1:6]
        ctx = ssl.create_default_context(cafile=ca)
        with smtplib.SMTP("localhost", int(port), timeout=20) as s:
            s.starttls(context=ctx)
            s.sendmail(frm, [to], open(path, "rb").read())
    elif cmd == "append":
        port, ca, user, pw, folder = a[1:6]
        m = imap(port, ca)
        m.login(user, pw)
        ensure(m, folder)
        for path in a[6:]:
            typ, _ = m.append(folder, None, None, open(path, "rb").read())
            if typ != "OK":
                sys.exit("APPEND failed")
        m.logout()
    elif cmd == "bulk":
        port, ca, user, pw, folder, n, to, frm, size = a[1:10]
        m = imap(port, ca)
        m.login(user, pw)
        ensure(m, folder)
        filler = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 80)
        for i in range(int(n)):
            body = ("Reply number %d: thanks, see you on Tuesday.\r\n\r\n"
                    "On Sat, Nov 21, 2026 at 9:58 AM Clinic wrote:\r\n" % i)
            quote = "".join("> " + filler[j:j + 70] + "\r\n"
                            for j in range(0, max(0, int(size) - 600), 70))
            msg = ("From: Patient <%s>\r\nTo: %s\r\nSubject: Re: your message %d\r\n"
                   "Message-ID: <bulk.%d.%s@patients.test>\r\n"
                   "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n%s%s"
                   % (frm, to, i, i, folder, body, quote))
            typ, _ = m.append(folder, None, None, msg.encode())
            if typ != "OK":
                sys.exit("APPEND failed at %d" % i)
        m.logout()
    elif cmd == "recreate":
        port, ca, user, pw, folder = a[1:6]
        m = imap(port, ca)
        m.login(user, pw)
        m.delete(folder)
        m.create(folder)
        m.logout()
    elif cmd == "status":
        port, ca, user, pw, folder = a[1:6]
        m = imap(port, ca)
        m.login(user, pw)
        typ, data = m.status(folder, "(MESSAGES UNSEEN UIDVALIDITY)")
        s = data[0].decode()
        g = lambda k: re.search(k + r" (\d+)", s).group(1)
        print(g("MESSAGES"), int(g("MESSAGES")) - int(g("UNSEEN")), g("UIDVALIDITY"))
        m.logout()
    elif cmd == "clear":
        port, ca, user, pw, folder = a[1:6]
        m = imap(port, ca)
        m.login(user, pw)
        ensure(m, folder)
        typ, data = m.select(folder)
        if int(data[0]) > 0:
            m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
            m.expunge()
        m.logout()
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
