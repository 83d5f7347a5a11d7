#!/usr/bin/env bash
# tests/integration/mail_inspect.sh: `posternctl mail inspect` on the
# fixture messages in tests/fixtures/mail/ (replies with a valid, an
# expired and a forged reply token, an auto-reply, a DSN bounce) and on
# generated MIME bombs: the JSON fields of DESIGN.md "Interfaces", the
# exit codes (0 parsed, 1 refused, 2 usage), JSON escaping. Needs no
# database: only $POSTERN_BUILD/posternctl and python3 to read the JSON.
# The server key below is a test key; the fixtures' tokens were made
# with it (key id 1, thread 4242; one good until 2128, one expired in
# 2024).
source "$(dirname "$0")/lib.bash"

fx=$top/tests/fixtures/mail
tmp=$POSTERN_TEST_TMP/mail_inspect
mkdir -p "$tmp"
conf=$tmp/postern.conf
(umask 077; printf '[security]\nserver_key = %s\n[mail]\nreply_domain = oak.test\nbounce_domain = bounce.oak.test\nfrom_address = clinic@oak.test\n' \
	'AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=' >"$conf")
nokey=$tmp/nokey.conf
(umask 077; printf '[mail]\nreply_domain = oak.test\n' >"$nokey")

# inspect CONF FILE: runs it; sets out (stdout), errout (stderr), rc.
inspect() {
	out=$(env -u POSTERN_SERVER_KEY "$ctl" --config "$1" mail inspect "$2" 2>"$tmp/err"); rc=$?
	errout=$(cat "$tmp/err")
}
# jcheck DESCRIPTION PYTHON-EXPR: the expression over j (the parsed JSON
# of $out) is true.
jcheck() {
	local r
	if r=$(printf '%s' "$out" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
ok = eval(sys.argv[1])
print(json.dumps(j, ensure_ascii=False)[:600])
sys.exit(0 if ok else 1)' "$2" 2>&1); then ok "$1"; else not_ok "$1" "$r"; fi
}

fields='["classification","reason","from","to","subject","message_id","reply","elided","confidence","token","bounce","attachments"]'

inspect "$conf" "$fx/reply_plain.eml"
[ "$rc" -eq 0 ] && ok "reply_plain: exit 0" || not_ok "reply_plain: exit 0" "exit $rc: $errout"
jcheck "reply_plain: exactly DESIGN.md's fields, in order" "list(j) == $fields"
jcheck "reply_plain: a reply with a valid token" "j['classification'] == 'reply' and j['token'] == 'valid'"
jcheck "reply_plain: RFC 2047 subject and name decoded" "j['subject'] == 'Re: New message – Übersicht' and j['from'] == 'Sam Pärk <sam@example.test>'"
jcheck "reply_plain: reply cut at the quote header, QP decoded" "j['reply'] == 'Thanks, Thursday at 10 works for me. Café \"downstairs\"?' and j['elided'].startswith('On Wed') and j['confidence'] == 'high'"
jcheck "reply_plain: message_id, bounce null, no attachments" "j['message_id'] == '<CAB1234@mail.example.test>' and j['bounce'] is None and j['attachments'] == []"

inspect "$conf" "$fx/reply_html_latin1.eml"
jcheck "html latin1: expired token" "j['token'] == 'expired' and j['classification'] == 'reply'"
jcheck "html latin1: text from HTML, Latin-1 decoded, no script/style" "'à mardi & jeudi' in j['reply'] and 'alert' not in j['reply'] and 'color' not in j['reply'] and j['confidence'] == 'low'"

inspect "$conf" "$fx/reply_mixed_attachment.eml"
jcheck "mixed: forged token is invalid" "j['token'] == 'invalid'"
jcheck "mixed: Windows-1252 text part chosen" "j['reply'].startswith('Here are the forms “signed”.')"
jcheck "mixed: attachment name, type, decoded size" "j['attachments'] == [{'filename': 'intake förm.pdf', 'content_type': 'application/pdf', 'size': 19}]"

inspect "$conf" "$fx/autoreply.eml"
jcheck "autoreply: auto_reply, token missing, reply still filled" "j['classification'] == 'auto_reply' and j['token'] == 'missing' and 'out of the office' in j['reply']"

inspect "$conf" "$fx/dsn.eml"
jcheck "dsn: bounce with status, hard, recipient" "j['classification'] == 'bounce' and j['bounce'] == {'status': '5.1.1', 'hard': True, 'recipient': 'nobody@example.test'}"

out=$(env -u POSTERN_SERVER_KEY "$ctl" --config "$conf" mail inspect - <"$fx/reply_plain.eml" 2>&1); rc=$?
[ "$rc" -eq 0 ] && jcheck "stdin (-) gives the same answer" "j['token'] == 'valid' and j['confidence'] == 'high'" ||
	not_ok "stdin (-) gives the same answer" "exit $rc: $out"

inspect "$nokey" "$fx/reply_plain.eml"
jcheck "no server key: a token is reported invalid" "j['token'] == 'invalid'"
contains "no server key: a note on stderr" "$errout" "no server key"
inspect "$nokey" "$fx/autoreply.eml"
jcheck "no server key, no token: missing" "j['token'] == 'missing'"

# JSON escaping: quotes, backslashes, controls; valid UTF-8 passes through.
printf 'From: "Q \\"x\\" \\\\ y" <q@x.test>\nSubject: a "b" \\ c\nContent-Type: text/plain; charset=utf-8\n\nline\x01one\ttab \xe2\x80\xa8 sep "q" \\ back\n' >"$tmp/esc.eml"
inspect "$conf" "$tmp/esc.eml"
jcheck "escaping: JSON parses, values round-trip" "j['subject'] == 'a \"b\" \\\\ c' and j['reply'] == 'line\x01one\ttab \u2028 sep \"q\" \\\\ back'"
case $out in *'\u0001'*) ok "escaping: control characters as \\u00XX" ;; *) not_ok "escaping: control characters as \\u00XX" "$out" ;; esac

# Refusals: exit 1, a clear message, no JSON.
python3 - "$tmp/deep.eml" <<'PY'
import sys
n = 12
s = "From: a@x.test\nSubject: deep\n"
for i in range(n):
    s += 'Content-Type: multipart/mixed; boundary="n%d"\n\n--n%d\n' % (i, i)
s += "Content-Type: text/plain\n\ncore\n"
for i in reversed(range(n)):
    s += "--n%d--\n" % i
open(sys.argv[1], "w").write(s)
PY
inspect "$conf" "$tmp/deep.eml"
[ "$rc" -eq 1 ] && [ -z "$out" ] && ok "nesting over the cap: exit 1, no JSON" || not_ok "nesting over the cap: exit 1, no JSON" "exit $rc: $out"
contains "nesting over the cap: says why" "$errout" "nesting deeper than 10"

python3 - "$tmp/bomb.eml" <<'PY'
import sys
s = "From: a@x.test\nSubject: parts\nContent-Type: multipart/mixed; boundary=p\n\n"
s += "--p\n\nx\n" * 100000 + "--p--\n"
open(sys.argv[1], "w").write(s)
PY
t0=$(now_s)
inspect "$conf" "$tmp/bomb.eml"
[ "$rc" -eq 1 ] && ok "100,000 parts: refused in $(elapsed "$t0")s" || not_ok "100,000 parts: refused" "exit $rc: $errout"
contains "100,000 parts: says why" "$errout" "MIME parts"
contains "100,000 parts: what its header alone shows (a person wrote)" "$errout" "its header alone: reply from a@x.test"
{ printf 'From: robot@x.test\nAuto-Submitted: auto-replied\nSubject: parts\nContent-Type: multipart/mixed; boundary=p\n\n'
  for _ in $(seq 1000); do printf -- '--p\n\nx\n'; done; printf -- '--p--\n'; } >"$tmp/autobomb.eml"
inspect "$conf" "$tmp/autobomb.eml"
contains "unreadable automatic mail: refused, its header says automatic" "$errout" "its header alone: auto_reply from robot@x.test"
rm -f "$tmp/autobomb.eml"

{ printf 'From: a@x.test\nSubject: big\n\n'; head -c $((26 * 1024 * 1024)) /dev/zero | tr '\0' 'a'; } >"$tmp/big.eml"
inspect "$conf" "$tmp/big.eml"
[ "$rc" -eq 1 ] && ok "over 25 MiB: exit 1" || not_ok "over 25 MiB: exit 1" "exit $rc"
contains "over 25 MiB: says why" "$errout" "refused"
rm -f "$tmp/big.eml" "$tmp/bomb.eml"

inspect "$conf" "$tmp/no-such.eml"
[ "$rc" -eq 1 ] && ok "missing file: exit 1" || not_ok "missing file: exit 1" "exit $rc"

expect_exit 2 "no FILE: usage, exit 2" env -u POSTERN_SERVER_KEY "$ctl" --config "$conf" mail inspect
expect_exit 2 "two FILEs: usage, exit 2" env -u POSTERN_SERVER_KEY "$ctl" --config "$conf" mail inspect a b
expect_exit 0 "--help: exit 0" "$ctl" mail inspect --help
contains "--help documents inspect and its fields" "$last_out" "attachments     [{filename, content_type, size}]"

finish
