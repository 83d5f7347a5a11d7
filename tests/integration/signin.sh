#!/usr/bin/env bash
# tests/integration/signin.sh: sign-in through the real stack: postern-httpd
# takes POST /login and enqueues magic_link, a real postern-worker mails the
# link and code through Postfix into Dovecot, the mail is read back over
# IMAPS, and the link and the code are used against postern-httpd with curl:
# GET /verify spends nothing, POST /verify spends once and sets the session
# cookie, the homes need the session, codes are capped at 5 tries, unknown
# addresses get the same page and no mail, rate limits per address and per
# IP (through a trusted proxy's X-Forwarded-For), logout with CSRF, expired
# links and sessions, and bad input (oversize, malformed, cross-origin).
#
# Needs the runner's MAILSTACK_* environment (fails, never skips, without).
# Addresses carry a per-run tag: the stack's mailboxes outlive one run.
. "$(dirname "$0")/lib.bash"
cd "$top" || exit 1
for v in MAILSTACK_HOST MAILSTACK_SMTP_PORT MAILSTACK_IMAPS_PORT MAILSTACK_PASSWORD MAILSTACK_CA; do
	[ -n "${!v:-}" ] || { not_ok "$v is set (run through tests/run.sh)"; finish; }
done

suite_start signin
httpd=$POSTERN_BUILD/postern-httpd
run=$(date +%s%N | tail -c 9)
server_key=$(sed -n 's/^server_key = //p' "$CONF")

# --- configs and daemons ----------------------------------------------------
port=$(free_port 18280)
mkconf() {  # mkconf NAME PORT EXTRA_HTTPD_LINES: prints the file name
	local f=$logs/$1.conf
	(umask 077
	 { cat "$CONF"
	   printf '[worker]\nthreads = 2\npoll_ms = 100\nretry_base_ms = 200\nretry_max_s = 1\ngrace_s = 2\n'
	   printf '[smtp]\nurl = smtp://%s:%s\ntls = required\nca_file = %s\ntimeout_s = 10\n' \
		"$MAILSTACK_HOST" "$MAILSTACK_SMTP_PORT" "$MAILSTACK_CA"
	   printf '[mail]\nfrom_address = postern@practice.test\nreply_domain = practice.test\nbounce_domain = practice.test\n'
	   printf '[httpd]\nbase_url = https://portal.test\nport = %s\n%b' "$2" "$3"
	 } >"$f")
	echo "$f"
}
main_conf=$(mkconf main "$port" 'login_per_address_hour = 20\nlogin_per_ip_hour = 1000\n')
port2=$(free_port $((port + 1)))
rl_conf=$(mkconf rl "$port2" 'login_per_address_hour = 3\nlogin_per_ip_hour = 4\ntrusted_proxy = 127.0.0.1\n')
url=http://127.0.0.1:$port
url2=http://127.0.0.1:$port2

start_httpd() {  # start_httpd NAME CONF: sets hpid
	"$httpd" -c "$2" >>"$logs/$1.log" 2>&1 &
	hpid=$!
	pids+=("$hpid")
}

# --- people -----------------------------------------------------------------
"$ctl" -q -c "$CONF" practice add --name "Riverside Clinic" --slug riverside \
	--from-address frontdesk@practice.test --reply-domain practice.test >/dev/null ||
	{ not_ok "practice add"; finish; }
staff=dana.$run@practice.test
pat=pat.$run@patients.test
rl=rl.$run@patients.test
ghost=ghost.$run@patients.test     # a mailbox, but nobody in postern
"$ctl" -q -c "$CONF" staff add --practice riverside --email "$staff" --name "Dana <b>Whitfield</b>" --role owner >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$pat" --name "Pat Lee" >/dev/null
"$ctl" -q -c "$CONF" patient add --practice riverside --email "$rl" --name "Rae Limit" >/dev/null
check "people are in place" sql_is "SELECT count(*) FROM patients" 2

"$worker" -c "$main_conf" >"$logs/worker.log" 2>&1 &
wpid=$!
pids+=("$wpid")
check "the worker starts" wait_for 20 grep -q "event=worker_started" "$logs/worker.log"
start_httpd httpd "$main_conf"
httpd_pid=$hpid
check "postern-httpd starts" wait_for 20 grep -q "event=httpd_started" "$logs/httpd.log"
start_httpd httpd-rl "$rl_conf"
rl_pid=$hpid
check "a second postern-httpd (strict limits, trusted proxy) starts" \
	wait_for 20 grep -q "event=httpd_started" "$logs/httpd-rl.log"

# --- helpers ------------------------------------------------------------------
# req NAME CURL_ARGS...: one request; status in $st, headers in $logs/NAME.h,
# body in $logs/NAME.b (and $body)
req() {
	local n=$1; shift
	st=$(curl -sS --max-time 10 -o "$logs/$n.b" -D "$logs/$n.h" -w '%{http_code}' "$@" 2>"$logs/$n.err")
	body=$(cat "$logs/$n.b")
}
hdr() {  # hdr NAME HEADER: the header's value(s) from $logs/NAME.h
	grep -i "^$2:" "$logs/$1.h" | sed 's/^[^:]*: *//' | tr -d '\r'
}
cookie_of() {  # cookie_of NAME: "postern_session=VALUE" from Set-Cookie
	hdr "$1" Set-Cookie | sed -n 's/^\(postern_session=[^;]*\).*/\1/p' | head -1
}
imap_count() {
	curl -sS --max-time 10 --cacert "$MAILSTACK_CA" --user "$1:$MAILSTACK_PASSWORD" \
		"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX" -X 'EXAMINE INBOX' 2>/dev/null |
		sed -n 's/^\* \([0-9]*\) EXISTS.*/\1/p' | tr -d '\r'
}
count_is_at_least() { [ "$(imap_count "$1")" -ge "$2" ] 2>/dev/null; }
fetch() {  # fetch ADDR N FILE: message N of ADDR's INBOX, raw
	curl -sS --max-time 10 --cacert "$MAILSTACK_CA" --user "$1:$MAILSTACK_PASSWORD" \
		"imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX;MAILINDEX=$2" >"$3"
}
cat >"$logs/mail.py" <<'PY'
import base64, email, email.policy, hashlib, struct, sys
cmd = sys.argv[1]
if cmd == "hash":      # hash B64_SERVER_KEY SUBKEY_ID TEXT: keyed hash, hex
    key = base64.b64decode(sys.argv[2])
    salt = struct.pack("<Q", int(sys.argv[3])) + bytes(8)
    sub = hashlib.blake2b(b"", digest_size=32, key=key, salt=salt,
                          person=b"postern1" + bytes(8)).digest()
    print(hashlib.blake2b(sys.argv[4].encode(), digest_size=32, key=sub).hexdigest())
    sys.exit(0)
m = email.message_from_bytes(open(sys.argv[2], "rb").read(), policy=email.policy.compat32)
for part in m.walk():
    if part.get_content_type() == "text/plain":
        sys.stdout.write(part.get_payload(decode=True).decode("utf-8"))
PY
# login_mail ADDR N: waits for ADDR's Nth mail; sets tok and code from it
login_mail() {
	tok= code=
	if ! wait_for 30 count_is_at_least "$1" "$2"; then
		not_ok "sign-in mail number $2 arrives for $1" "$(tail -5 "$logs/worker.log")"
		return 1
	fi
	fetch "$1" "$2" "$logs/mail-$1-$2.eml"
	local text
	text=$(python3 "$logs/mail.py" text "$logs/mail-$1-$2.eml")
	tok=$(grep -o 'https://portal.test/verify?t=[A-Za-z0-9_-]*' <<<"$text" | head -1 | sed 's/.*t=//')
	code=$(grep -Eo '\b[0-9]{8}\b' <<<"$text" | head -1)
	[ "${#tok}" = 43 ] && [ "${#code}" = 8 ]
}
login() {  # login NAME EMAIL [URL [CURL_ARGS...]]: POST /login
	local n=$1 e=$2 u=${3:-$url}
	shift 3 2>/dev/null || shift $#
	req "$n" "$@" --data-urlencode "email=$e" "$u/login"
}
queue_idle() {  # no magic_link job waits or runs
	sql_is "SELECT count(*) FROM jobs WHERE kind = 'magic_link' AND state IN ('queued', 'running')" 0
}

# --- GET /login ---------------------------------------------------------------
req login_get "$url/login"
check "GET /login: 200" test "$st" = 200
contains "GET /login: an email field with a label" "$body" '<label for="email">Email address</label><input id="email" name="email" type="email"'
contains "GET /login: posts to /login" "$body" '<form method="post" action="/login">'
contains "GET /login: links to the code form" "$body" 'href="/login/code"'
contains "GET /login: the page declares its language" "$body" '<html lang="en">'
req root "$url/"
check "GET /: 303 to /login" test "$st $(hdr root Location)" = "303 /login"

# --- POST /login for a staff user, link, verify ------------------------------
login login_staff "$staff"
check "POST /login (staff): 200" test "$st" = 200
contains "POST /login: says a link is on its way if registered" "$body" "If this address is registered, a link to sign in is on its way"
contains "POST /login: links to the code form" "$body" 'href="/login/code"'
known_body=$body
check "POST /login: one login_requests row, the client's ip" \
	sql_is "SELECT count(*), host(max(ip)) FROM login_requests WHERE email = '$staff'" "1|127.0.0.1"
check "POST /login: no session, no token made by httpd itself" \
	sql_is "SELECT count(*) FROM sessions" 0
grep -q "event=login_requested ip=127.0.0.1 domain=practice.test result=enqueued job=" "$logs/httpd.log" &&
	ok "POST /login: logged event=login_requested result=enqueued" ||
	not_ok "POST /login: logged event=login_requested result=enqueued" "$(tail -5 "$logs/httpd.log")"
login_mail "$staff" 1 && ok "sign-in mail 1 arrives with a link and a code" || not_ok "sign-in mail 1 arrives with a link and a code"
tok1=$tok
check "the mailed token is the stored one (keyed hash), requested_ip from httpd" \
	sql_is "SELECT encode(token_hash, 'hex') || ' ' || host(requested_ip) FROM login_tokens WHERE used_at IS NULL" \
	"$(python3 "$logs/mail.py" hash "$server_key" 1 "$tok1") 127.0.0.1"
for f in "$logs"/httpd.log; do
	grep -q -- "$tok1" "$f" && not_ok "the token is never logged ($f)"
done

req verify_get "$url/verify?t=$tok1"
check "GET /verify: 200" test "$st" = 200
contains "GET /verify: a Sign in button" "$body" '<button type="submit">Sign in</button>'
contains "GET /verify: a POST form carrying the token" "$body" "<form method=\"post\" action=\"/verify\"><input type=\"hidden\" name=\"t\" value=\"$tok1\">"
req verify_get2 "$url/verify?t=$tok1"
req verify_head -I "$url/verify?t=$tok1"
check "GET (twice) and HEAD /verify spend nothing" \
	sql_is "SELECT count(*) FROM login_tokens WHERE used_at IS NULL" 1
check "GET /verify: no referrer leaves the page" test "$(hdr verify_get Referrer-Policy)" = no-referrer

req verify_post -A "postern-test-agent/1.0" --data-urlencode "t=$tok1" "$url/verify"
check "POST /verify: 303 to /staff" test "$st $(hdr verify_post Location)" = "303 /staff"
sc=$(hdr verify_post Set-Cookie)
check "POST /verify: Set-Cookie postern_session with a 43-char token" \
	grep -Eq '^postern_session=[A-Za-z0-9_-]{43};' <<<"$sc"
for a in HttpOnly Secure SameSite=Lax Path=/ Max-Age=43200; do
	contains "  ... cookie attribute $a" "$sc" "; $a"
done
staff_cookie=$(cookie_of verify_post)
stok=${staff_cookie#postern_session=}
check "the token is spent" sql_is "SELECT count(*) FROM login_tokens WHERE used_at IS NULL" 0
check "one session: keyed hash of the cookie (SUBKEY_SESSION), ip, agent, 12 h" \
	sql_is "SELECT encode(token_hash, 'hex'), host(ip), user_agent,
		expires_at - created_at = interval '12 hours', revoked_at IS NULL
		FROM sessions" \
	"$(python3 "$logs/mail.py" hash "$server_key" 2 "$stok")|127.0.0.1|postern-test-agent/1.0|t|t"
check "staff last_login_at is set" \
	sql_is "SELECT last_login_at IS NOT NULL FROM staff_users WHERE email = '$staff'" t
grep -q "event=login_ok via=link session=[0-9]* staff=[0-9]* ip=127.0.0.1" "$logs/httpd.log" &&
	ok "logged event=login_ok via=link" || not_ok "logged event=login_ok via=link" "$(tail -5 "$logs/httpd.log")"

req staff_home -H "Cookie: a=b; $staff_cookie" "$url/staff"
check "GET /staff with the cookie: 200" test "$st" = 200
contains "GET /staff: shows the name (escaped) and practice" "$body" \
	"Signed in as <strong>Dana &lt;b&gt;Whitfield&lt;/b&gt;</strong> (Riverside Clinic)"
contains "GET /staff: a sign-out form with a CSRF value" "$body" '<form method="post" action="/logout"><input type="hidden" name="csrf" value="'
csrf=$(grep -o 'name="csrf" value="[0-9a-f]*"' <<<"$body" | sed 's/.*value="//; s/"//')
req staff_me -H "Cookie: $staff_cookie" "$url/me"
check "GET /me as staff: 303 to /staff" test "$st $(hdr staff_me Location)" = "303 /staff"
req nocookie "$url/staff"
check "GET /staff without a cookie: 303 to /login" test "$st $(hdr nocookie Location)" = "303 /login"
req badcookie -H "Cookie: postern_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "$url/staff"
check "GET /staff with an unknown session: 303 to /login" test "$st $(hdr badcookie Location)" = "303 /login"
req junkcookie -H "Cookie: postern_session=../../etc; x" "$url/me"
check "GET /me with a malformed cookie: 303 to /login" test "$st $(hdr junkcookie Location)" = "303 /login"

req verify_again --data-urlencode "t=$tok1" "$url/verify"
check "the same link again: 410" test "$st" = 410
contains "  ... says expired or already used, and how to get a new one" "$body" "This link has expired or was already used"
contains "  ... links to /login" "$body" 'href="/login">Request a new one'
grep -q "event=login_failed via=link reason=unknown_used_or_expired ip=127.0.0.1" "$logs/httpd.log" &&
	ok "  ... logged event=login_failed" || not_ok "  ... logged event=login_failed"
check "  ... and no second session" sql_is "SELECT count(*) FROM sessions" 1

# --- a patient ---------------------------------------------------------------
login login_pat "$pat"
check "POST /login (patient): the same page as for staff" test "$body" = "$known_body"
login_mail "$pat" 1 && ok "sign-in mail arrives for the patient" || not_ok "sign-in mail arrives for the patient"
req verify_pat --data-urlencode "t=$tok" "$url/verify"
check "POST /verify (patient): 303 to /me" test "$st $(hdr verify_pat Location)" = "303 /me"
pat_cookie=$(cookie_of verify_pat)
req pat_home -H "Cookie: $pat_cookie" "$url/me"
check "GET /me: 200" test "$st" = 200
contains "GET /me: signed in as the patient" "$body" "Signed in as <strong>Pat Lee</strong> (Riverside Clinic)"
req pat_staff -H "Cookie: $pat_cookie" "$url/staff"
check "GET /staff as a patient: 303 to /me" test "$st $(hdr pat_staff Location)" = "303 /me"
check "patient last_portal_login is set" \
	sql_is "SELECT last_portal_login IS NOT NULL FROM patients WHERE email = '$pat'" t

# --- the code ------------------------------------------------------------------
req code_get "$url/login/code"
check "GET /login/code: 200" test "$st" = 200
contains "GET /login/code: email and code fields" "$body" 'name="email"'
contains "GET /login/code: a one-time-code field" "$body" 'autocomplete="one-time-code"'
login login_staff2 "$staff"
login_mail "$staff" 2 && ok "sign-in mail 2 arrives" || not_ok "sign-in mail 2 arrives"
spaced="${code:0:4} ${code:4:4}"
req code_ok --data-urlencode "email=${staff^^}" --data-urlencode "code=$spaced" "$url/login/code"
check "POST /login/code (address in capitals, code with a space): 303 to /staff" \
	test "$st $(hdr code_ok Location)" = "303 /staff"
check "  ... with a session cookie" grep -Eq '^postern_session=[A-Za-z0-9_-]{43}$' <<<"$(cookie_of code_ok)"
check "  ... one attempt counted, the token spent" \
	sql_is "SELECT code_attempts, used_at IS NOT NULL FROM login_tokens ORDER BY id DESC LIMIT 1" "1|t"
req code_ok_again --data-urlencode "email=$staff" --data-urlencode "code=$code" "$url/login/code"
check "the same code again: 400" test "$st" = 400
contains "  ... with the one vague message" "$body" "That code did not work"
vague=$body

login login_staff3 "$staff"
login_mail "$staff" 3 && ok "sign-in mail 3 arrives" || not_ok "sign-in mail 3 arrives"
good=$code
wrong=$(printf '%08d' $(( (10#$good + 1) % 100000000 )))
n400=0
for i in 1 2 3 4 5; do
	req "code_wrong$i" --data-urlencode "email=$staff" --data-urlencode "code=$wrong" "$url/login/code"
	[ "$st" = 400 ] && [ "$body" = "$vague" ] && n400=$((n400 + 1))
done
check "5 wrong codes: 400 each, the same page" test "$n400" = 5
check "  ... 5 attempts counted" \
	sql_is "SELECT code_attempts FROM login_tokens ORDER BY id DESC LIMIT 1" 5
req code_locked --data-urlencode "email=$staff" --data-urlencode "code=$good" "$url/login/code"
check "then the right code fails too (locked): 400, the same page" test "$st:$body" = "400:$vague"
check "  ... no sixth attempt counted, the token not spent" \
	sql_is "SELECT code_attempts, used_at IS NULL FROM login_tokens ORDER BY id DESC LIMIT 1" "5|t"
grep -q "event=login_failed via=code reason=attempts_used_up" "$logs/httpd.log" &&
	ok "  ... logged reason=attempts_used_up" || not_ok "  ... logged reason=attempts_used_up"
req code_unknown --data-urlencode "email=$ghost" --data-urlencode "code=12345678" "$url/login/code"
check "a code for an unknown address: the same 400 page" test "$st:$body" = "400:$vague"
req code_bad --data-urlencode "email=$staff" --data-urlencode "code=12ab5678" "$url/login/code"
check "a code that is not 8 digits: the same 400 page" test "$st:$body" = "400:$vague"

# --- unknown address: same page, no mail --------------------------------------
login login_ghost "$ghost"
check "POST /login (unknown address): 200" test "$st" = 200
check "  ... byte for byte the page a known address gets" test "$body" = "$known_body"
check "  ... the magic_link job runs and ends" wait_for 30 queue_idle
check "  ... no token, no delivery" \
	sql_is "SELECT count(*) FROM deliveries WHERE recipient = '$ghost'" 0
check "  ... and no mail" test "$(imap_count "$ghost")" = 0
login login_bad "not an address"
check "POST /login with a malformed address: 400" test "$st" = 400
contains "  ... says so" "$body" "does not look like an email address"

# --- rate limits (second httpd: 3 per address, 4 per IP, proxy trusted) -------
rlok=0
for i in 1 2 3; do
	login "rl$i" "$rl" "$url2" -H "X-Forwarded-For: 198.51.100.$i"
	[ "$st" = 200 ] && [ "$body" = "$known_body" ] && rlok=$((rlok + 1))
done
login rl4 "$rl" "$url2" -H "X-Forwarded-For: 198.51.100.4"
check "rate limit per address: the 4th request gets the same page" \
	test "$rlok:$st:$body" = "3:200:$known_body"
check "  ... only 3 were recorded" sql_is "SELECT count(*) FROM login_requests WHERE email = '$rl'" 3
grep -q "event=login_requested ip=198.51.100.4 domain=patients.test result=rate_limited_address" "$logs/httpd-rl.log" &&
	ok "  ... logged result=rate_limited_address" || not_ok "  ... logged result=rate_limited_address" "$(tail -3 "$logs/httpd-rl.log")"
check "  ... the client IP came from X-Forwarded-For (trusted proxy)" \
	sql_is "SELECT string_agg(host(ip), ',' ORDER BY id) FROM login_requests WHERE email = '$rl'" \
	"198.51.100.1,198.51.100.2,198.51.100.3"
check "  ... 3 mails arrive" wait_for 30 count_is_at_least "$rl" 3
wait_for 30 queue_idle
check "  ... and not a 4th" test "$(imap_count "$rl")" = 3
for i in 1 2 3 4 5; do
	login "ip$i" "nobody$i.$run@patients.test" "$url2" -H "X-Forwarded-For: 10.9.8.7, 203.0.113.9"
done
check "rate limit per IP: the 5th request from one IP gets the same page" \
	test "$st:$body" = "200:$known_body"
check "  ... 4 recorded for that IP (the proxy's last X-Forwarded-For entry)" \
	sql_is "SELECT count(*) FROM login_requests WHERE ip = '203.0.113.9'" 4
grep -q "event=login_requested ip=203.0.113.9 domain=patients.test result=rate_limited_ip" "$logs/httpd-rl.log" &&
	ok "  ... logged result=rate_limited_ip" || not_ok "  ... logged result=rate_limited_ip"
login xff_untrusted "nobody9.$run@patients.test" "$url" -H "X-Forwarded-For: 203.0.113.77"
check "X-Forwarded-For from an untrusted peer is ignored" \
	sql_is "SELECT host(ip) FROM login_requests WHERE email = 'nobody9.$run@patients.test'" 127.0.0.1

# --- logout -------------------------------------------------------------------
req logout_nocsrf -H "Cookie: $staff_cookie" --data "x=1" "$url/logout"
check "POST /logout without the CSRF value: 403" test "$st" = 403
req logout_badcsrf -H "Cookie: $staff_cookie" --data "csrf=$(printf '%064d' 0)" "$url/logout"
check "POST /logout with a wrong CSRF value: 403" test "$st" = 403
req logout_other -H "Cookie: $pat_cookie" --data "csrf=$csrf" "$url/logout"
check "POST /logout with another session's CSRF value: 403" test "$st" = 403
req still -H "Cookie: $staff_cookie" "$url/staff"
check "  ... the session still works" test "$st" = 200
req logout -H "Cookie: $staff_cookie" --data "csrf=$csrf" "$url/logout"
check "POST /logout: 303 to /login" test "$st $(hdr logout Location)" = "303 /login"
contains "  ... clears the cookie" "$(hdr logout Set-Cookie)" "postern_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0"
check "  ... the session is revoked" \
	sql_is "SELECT revoked_at IS NOT NULL FROM sessions WHERE token_hash = decode('$(python3 "$logs/mail.py" hash "$server_key" 2 "$stok")', 'hex')" t
req after_logout -H "Cookie: $staff_cookie" "$url/staff"
check "  ... the old cookie no longer signs in: 303 to /login" test "$st $(hdr after_logout Location)" = "303 /login"
grep -q "event=logout session=[0-9]* staff=[0-9]*" "$logs/httpd.log" &&
	ok "  ... logged event=logout" || not_ok "  ... logged event=logout"
check "the audit log has the 3 sign-ins and the sign-out, with their ip" \
	sql_is "SELECT string_agg(action || ':' || actor_kind || ':' || host(ip) || ':' || coalesce(details::text, '-'), ' ' ORDER BY id)
		FROM audit_log WHERE action IN ('login', 'logout')" \
	'login:staff:127.0.0.1:{"via": "link"} login:patient:127.0.0.1:{"via": "link"} login:staff:127.0.0.1:{"via": "code"} logout:staff:127.0.0.1:-'
check "  ... each login row names its session" \
	sql_is "SELECT count(*) FROM audit_log a JOIN sessions s ON s.id = a.object_id
		WHERE a.action = 'login' AND a.object_type = 'session'
		AND a.actor_id = coalesce(s.staff_user_id, s.patient_id)" 3
req logout_get "$url/logout"
check "GET /logout: 405" test "$st" = 405

# --- expiry ---------------------------------------------------------------------
login login_pat2 "$pat"
login_mail "$pat" 2 && ok "sign-in mail 2 arrives for the patient" || not_ok "sign-in mail 2 arrives for the patient"
psql_db "UPDATE login_tokens SET created_at = now() - interval '20 minutes', expires_at = now() - interval '1 minute'
	WHERE used_at IS NULL AND patient_id IS NOT NULL" >/dev/null
req verify_expired --data-urlencode "t=$tok" "$url/verify"
check "an expired link: 410 with the expired page" test "$st" = 410
contains "  ... says so" "$body" "This link has expired or was already used"
req code_expired --data-urlencode "email=$pat" --data-urlencode "code=$code" "$url/login/code"
check "an expired code: 400, the vague page" test "$st:$body" = "400:$vague"
psql_db "UPDATE sessions SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second'
	WHERE patient_id IS NOT NULL" >/dev/null
req pat_expired -H "Cookie: $pat_cookie" "$url/me"
check "an expired session: 303 to /login" test "$st $(hdr pat_expired Location)" = "303 /login"

# --- races: one link, many clicks; many wrong codes at once ---------------------
login login_pat3 "$pat"
login_mail "$pat" 3 && ok "sign-in mail 3 arrives for the patient" || not_ok "sign-in mail 3 arrives for the patient"
for i in $(seq 8); do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 --data-urlencode "t=$tok" "$url/verify" >"$logs/race$i" &
done
wait_for 15 bash -c 'test "$(cat "$1"/race* | wc -l)" = 8' _ "$logs"
check "8 POST /verify at once with one token: exactly one 303, seven 410" \
	test "$(cat "$logs"/race* | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')" = "303:1 410:7 "
login login_staff4 "$staff"
login_mail "$staff" 4 && ok "sign-in mail 4 arrives" || not_ok "sign-in mail 4 arrives"
wrong=$(printf '%08d' $(( (10#$code + 1) % 100000000 )))
for i in $(seq 10); do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 --data-urlencode "email=$staff" \
		--data-urlencode "code=$wrong" "$url/login/code" >"$logs/crace$i" &
done
wait_for 15 bash -c 'test "$(cat "$1"/crace* | wc -l)" = 10' _ "$logs"
check "10 wrong codes at once: all 400" test "$(sort -u "$logs"/crace*)" = 400
check "  ... exactly 5 attempts counted (the cap holds under concurrency)" \
	sql_is "SELECT code_attempts FROM login_tokens ORDER BY id DESC LIMIT 1" 5

# --- bad input ------------------------------------------------------------------
req v_short --data "t=abc" "$url/verify"
check "POST /verify with a short token: 400" test "$st" = 400
contains "  ... the same expired page" "$body" "This link has expired or was already used"
req v_chars --data-urlencode "t=$(printf '%043d' 0 | tr 0 '+')" "$url/verify"
check "POST /verify with non-base64url characters: 400" test "$st" = 400
req v_none --data "x=1" "$url/verify"
check "POST /verify without a token: 400" test "$st" = 400
req v_twice --data "t=$tok&t=$tok" "$url/verify"
check "POST /verify with the token twice: 400" test "$st" = 400
req v_badesc --data "t=%zz" "$url/verify"
check "POST /verify with a bad %-escape: 400" test "$st" = 400
req vg_short "$url/verify?t=abc"
check "GET /verify with a short token: 400" test "$st" = 400
req vg_none "$url/verify"
check "GET /verify without a token: 400" test "$st" = 400
req vg_long "$url/verify?t=$(head -c 6000 /dev/zero | tr '\0' A)"
check "GET /verify with a 6000-char token: 400" test "$st" = 400
head -c 100000 /dev/zero | tr '\0' a >"$logs/big.body"
req big --data-binary "@$logs/big.body" "$url/login"
check "POST /login with a 100 kB body: 413" test "$st" = 413
req big2 --data-binary "@$logs/big.body" "$url/verify"
check "POST /verify with a 100 kB body: 413" test "$st" = 413
req manyf --data "$(for i in $(seq 40); do printf 'f%d=1&' "$i"; done)email=$staff" "$url/login"
check "POST /login with 41 fields: 400" test "$st" = 400
req longemail --data-urlencode "email=$(head -c 2000 /dev/zero | tr '\0' a)@x.test" "$url/login"
check "POST /login with a 2000-byte address: 400" test "$st" = 400
req nul --data "email=a%00b@x.test" "$url/login"
check "POST /login with a NUL byte: 400" test "$st" = 400
req json -H "Content-Type: application/json" --data "{\"email\":\"$staff\"}" "$url/login"
check "POST /login as JSON: 400" test "$st" = 400
req xorigin -H "Origin: https://evil.test" --data-urlencode "email=$staff" "$url/login"
check "POST /login from another origin: 403" test "$st" = 403
req xsite -H "Sec-Fetch-Site: cross-site" --data-urlencode "t=$tok" "$url/verify"
check "POST /verify with Sec-Fetch-Site: cross-site: 403" test "$st" = 403
req sameorigin -H "Origin: https://portal.test" --data-urlencode "email=$ghost" "$url/login"
check "POST /login from our own origin: 200" test "$st" = 200
req put -X PUT --data "email=$staff" "$url/login"
check "PUT /login: 405" test "$st" = 405
req hugecookie -H "Cookie: postern_session=$(head -c 5000 /dev/zero | tr '\0' A)" "$url/staff"
check "a 5000-byte cookie: 303 to /login" test "$st $(hdr hugecookie Location)" = "303 /login"
req health "$url/healthz"
check "postern-httpd still serves after all that" test "$st:$body" = "200:ok"

# --- the end --------------------------------------------------------------------
stop_and_wait "$httpd_pid" 10; rc=$?
check "postern-httpd exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
stop_and_wait "$rl_pid" 10; rc=$?
check "the second postern-httpd exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
stop_and_wait "$wpid" 10; rc=$?
check "the worker exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
check "no token or code in any httpd log" \
	bash -c '! grep -qF -e "$1" -e "$2" "$3"/httpd*.log' _ "$tok1" "$good" "$logs"
check "no sanitizer report in the logs" \
	bash -c '! grep -q "Sanitizer\|runtime error" "$@"' _ "$logs"/*.log
finish
