#!/usr/bin/env bash
# tests/integration/daemons.sh: postern-worker and postern-httpd start, log,
# serve, survive a database restart, refuse bad configs clearly and stop
# cleanly on SIGTERM.
. "$(dirname "$0")/lib.bash"

fresh_db daemons_t
"$ctl" -q -c "$CONF" migrate >/dev/null || { not_ok "migrate"; finish; }
worker=$POSTERN_BUILD/postern-worker
httpd=$POSTERN_BUILD/postern-httpd
logs=$POSTERN_TEST_TMP/daemons
mkdir -p "$logs"


# --- bad configurations: one clear line, exit 1, no crash -----------------
bad=$logs/bad.conf
(umask 077; printf '[database]\nurl = %s\n[worker]\nthreads = lots\n' "$DB_URL" >"$bad")
expect_exit 1 "worker: bad value exits 1" "$worker" -c "$bad"
contains "worker: message names file:line and key" "$last_out" "bad.conf:4: worker.threads: not a whole number"
expect_exit 1 "httpd: bad value exits 1" "$httpd" -c "$bad"
(umask 077; printf '[database]\nurl = %s\n' "$DB_URL" >"$bad")
expect_exit 1 "worker: no server key exits 1" env -u POSTERN_SERVER_KEY "$worker" -c "$bad"
contains "worker: says how to make a key" "$last_out" "no server key"
chmod 644 "$CONF"
expect_exit 1 "httpd: secrets in a world-readable file are refused" "$httpd" -c "$CONF"
contains "httpd: says chmod 600" "$last_out" "chmod 600"
chmod 600 "$CONF"
expect_exit 1 "worker: missing config file exits 1" "$worker" -c "$logs/none.conf"
contains "worker: names the missing file" "$last_out" "none.conf"
expect_exit 0 "worker --help exits 0" "$worker" --help
contains "worker --help documents signals" "$last_out" "SIGTERM"
expect_exit 0 "httpd --help exits 0" "$httpd" --help

# --- mail templates: checked at start, read again at SIGHUP ---------------
tpl=$logs/templates
mkdir -p "$tpl"
printf 'Subject: News from {{practice_name}}\n\nA message waits: {{link}}\n{{nope}}\n' >"$tpl/notify_phi_free.txt"
(umask 077; { cat "$CONF"; printf '[mail]\ntemplates_dir = %s\n' "$tpl"; } >"$logs/tpl.conf")
expect_exit 1 "worker: a broken template override stops the start (exit 1)" "$worker" -c "$logs/tpl.conf"
contains "worker: the error names the template's file:line" "$last_out" "notify_phi_free.txt:4"
printf 'Subject: News from {{practice_name}}\n\nA message waits: {{link}}\n' >"$tpl/notify_phi_free.txt"
"$worker" -c "$logs/tpl.conf" >"$logs/worker-tpl.log" 2>&1 &
wpid=$!
check "worker starts with a good template override" wait_for 10 grep -q "event=worker_started" "$logs/worker-tpl.log"
printf 'Subject: News from {{practice_name}}\n\n{{bad name}}\n' >"$tpl/notify_phi_free.txt"
kill -HUP "$wpid"
check "SIGHUP with a broken template logs templates_reload_failed" \
	wait_for 10 grep -q "event=templates_reload_failed" "$logs/worker-tpl.log"
check "the reload error names file:line" grep -q 'event=templates_reload_failed.*notify_phi_free.txt:3' "$logs/worker-tpl.log"
check "the worker keeps running with the old templates" kill -0 "$wpid"
printf 'Subject: News from {{practice_name}}\n\nRead it here: {{link}}\n' >"$tpl/notify_phi_free.txt"
kill -HUP "$wpid"
check "SIGHUP with good templates logs templates_loaded" \
	wait_for 10 grep -q "event=templates_loaded" "$logs/worker-tpl.log"
stop_and_wait "$wpid" 10; rc=$?
check "worker (templates) exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0

# --- worker: start, survive a database restart, stop ----------------------
"$worker" -c "$CONF" >"$logs/worker.log" 2>&1 &
wpid=$!
check "worker logs event=worker_started" wait_for 10 grep -q "event=worker_started" "$logs/worker.log"
check "worker logs its config with secrets masked" grep -q 'event=config .*security.server_key="\*\*\*"' "$logs/worker.log"
check "the config line carries no password" bash -c "! grep -q \"$(cat "$PG_DIR/password")\" '$logs/worker.log'"
bash "$top/tests/harness/pg.sh" restart "$PG_TEST_DIR" >/dev/null
check "worker notices the lost connection" wait_for 15 grep -q "event=db_lost" "$logs/worker.log"
check "worker reconnects after the restart" wait_for 30 grep -q "event=db_reconnected" "$logs/worker.log"
check "worker is still running" kill -0 "$wpid"
# SIGHUP: a good change applies at once, a bad file keeps the old settings.
printf '[worker]\npoll_ms = 700\nbatch = 7\n' >>"$CONF"
kill -HUP "$wpid"
check "SIGHUP applies worker.poll_ms" wait_for 10 grep -q "event=config_changed key=worker.poll_ms from=1000 to=700" "$logs/worker.log"
check "SIGHUP applies worker.batch" grep -q "event=config_changed key=worker.batch from=32 to=7" "$logs/worker.log"
cp "$CONF" "$logs/conf.good"
printf 'bogus = 1\n' >>"$CONF"
kill -HUP "$wpid"
check "SIGHUP with a bad file logs config_reload_failed" wait_for 10 grep -q "event=config_reload_failed" "$logs/worker.log"
check "the worker keeps running after a bad reload" kill -0 "$wpid"
cp "$logs/conf.good" "$CONF"
stop_and_wait "$wpid" 10; rc=$?
check "worker exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
check "worker logs event=worker_stopped" grep -q "event=worker_stopped" "$logs/worker.log"

# Unreachable database: the worker retries, and SIGTERM still stops it.
(umask 077; printf '[database]\nurl = postgresql://x@127.0.0.1:1/none\nconnect_timeout_s = 1\n[security]\nserver_key = %s\n' \
	"$(head -c32 /dev/urandom | base64)" >"$logs/unreach.conf")
"$worker" -c "$logs/unreach.conf" >"$logs/worker-unreach.log" 2>&1 &
wpid=$!
check "worker retries an unreachable database" wait_for 10 grep -q "event=db_connect_retry" "$logs/worker-unreach.log"
stop_and_wait "$wpid" 10; rc=$?
check "worker stops on SIGTERM while retrying (rc=$rc)" test "$rc" = 0

# --- httpd: serve, keep-alive, limits, stop --------------------------------
port=$(free_port 18180)
printf '[httpd]\nport = %s\n' "$port" >>"$CONF"
"$httpd" -c "$CONF" >"$logs/httpd.log" 2>&1 &
hpid=$!
check "httpd logs event=httpd_started" wait_for 10 grep -q "event=httpd_started" "$logs/httpd.log"
url=http://127.0.0.1:$port
check "GET /healthz answers 200 ok" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200
check "unknown page answers 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")" = 404
hdrs=$(curl -s -D - -o /dev/null "$url/")
contains "pages carry a Content-Security-Policy" "$hdrs" "Content-Security-Policy: default-src 'none'"
contains "pages are not cached" "$hdrs" "Cache-Control: no-store"
out=$(curl -sv "$url/healthz" "$url/healthz" 2>&1)
contains "keep-alive holds across two requests" "$out" "Re-using existing connection"
head -c 100000 /dev/zero | tr '\0' a >"$logs/big.body"
check "a body over the limit gets 413" test "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$logs/big.body" "$url/")" = 413
check "httpd still serves after the 413" test "$(curl -s "$url/healthz")" = ok
bash "$top/tests/harness/pg.sh" restart "$PG_TEST_DIR" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
code2=$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
check "healthz recovers after a database restart ($code then $code2)" test "$code2" = 200
stop_and_wait "$hpid" 10; rc=$?
check "httpd exits 0 on SIGTERM (rc=$rc)" test "$rc" = 0
check "httpd logs event=httpd_stopped" grep -q "event=httpd_stopped" "$logs/httpd.log"
finish
