#!/usr/bin/env bash
# tests/harness/demo.sh: the whole system on this machine, under ./var.
#
#   demo.sh start          PostgreSQL + Postfix/Dovecot (private, loopback),
#                          migrations, demo data, postern-worker and
#                          postern-httpd; prints where to look. Re-running it
#                          keeps the data and restarts the two daemons.
#   demo.sh stop           stops all of it (the data stays in ./var)
#   demo.sh mail ADDRESS   lists the mail in ADDRESS's mailbox (N to read one:
#                          demo.sh mail ADDRESS N)
#
# `make demo` builds first and calls `demo.sh start`; `make demo-stop` calls
# stop. Remove ./var (after stopping) to start again from nothing.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
var=$top/var
build=${POSTERN_BUILD:-$top/build}
cmd=${1:-start}

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }

# The daemon users (postgres, postfix, dovecot, mail) must reach ./var. In a
# private home (0700) they cannot: keep the state in /var/tmp instead, and
# ./var points there.
prepare_var() {
	if [ ! -e "$var" ]; then
		mkdir -p "$var"
		chmod 755 "$var"
	fi
	if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$var" 2>/dev/null; then
		[ -L "$var" ] || {
			rmdir "$var" 2>/dev/null || die "$var is not reachable by the daemon users and not empty; move the checkout or remove $var"
			local alt
			alt=/var/tmp/postern-demo-$(echo "$top" | md5sum | cut -c1-8)
			mkdir -p "$alt"; chmod 755 "$alt"
			ln -s "$alt" "$var"
			say "state lives in $alt (the checkout is private to root); ./var links to it"
		}
	fi
	mkdir -p "$var/log" "$var/run"
}

pid_alive() {  # pid_alive FILE NAME
	[ -f "$1" ] || return 1
	local pid; pid=$(cat "$1")
	[ -d "/proc/$pid" ] && grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null &&
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

stop_daemon() {  # stop_daemon NAME
	local pf=$var/run/$1.pid
	if pid_alive "$pf" "$1"; then
		local pid; pid=$(cat "$pf")
		kill -TERM "$pid"
		for _ in $(seq 1 300); do
			pid_alive "$pf" "$1" || break
			sleep 0.1
		done
		pid_alive "$pf" "$1" && { kill -9 "$pid"; say "$1 did not stop in 30 s; killed"; }
		say "stopped $1"
	fi
	rm -f "$pf"
}

port_free() { ! { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }

start_daemon() {  # start_daemon NAME
	local log=$var/log/$1.log
	setsid "$build/$1" -c "$var/postern.conf" >>"$log" 2>&1 </dev/null &
	echo $! >"$var/run/$1.pid"
}

case $cmd in
start)
	[ -x "$build/posternctl" ] || die "build first: make"
	prepare_var
	bash "$top/tests/harness/pg.sh" start "$var/db"
	bash "$top/tests/harness/mailstack.sh" start "$var/mail"
	eval "$(bash "$top/tests/harness/pg.sh" env "$var/db")"
	eval "$(bash "$top/tests/harness/mailstack.sh" env "$var/mail")"

	if [ ! -s "$var/server_key" ]; then
		(umask 077; head -c32 /dev/urandom | base64 >"$var/server_key")
	fi
	stop_daemon postern-httpd
	stop_daemon postern-worker
	port=$(cat "$var/httpd_port" 2>/dev/null || echo 8080)
	port_free "$port" || { port=8080; while ! port_free $port; do port=$((port + 1)); done; }
	echo "$port" >"$var/httpd_port"
	(umask 077; cat >"$var/postern.conf" <<CONF
# Written by tests/harness/demo.sh for the demo: do not edit, it is rewritten.
[database]
url = $PG_URL
[security]
server_key = $(cat "$var/server_key")
[log]
level = info
[httpd]
listen = 127.0.0.1
port = $port
base_url = http://127.0.0.1:$port
[worker]
threads = 2
[smtp]
url = smtp://127.0.0.1:$MAILSTACK_SMTP_PORT
tls = required
ca_file = $MAILSTACK_CA
[imap]
host = 127.0.0.1
port = $MAILSTACK_IMAPS_PORT
tls = implicit
ca_file = $MAILSTACK_CA
username = reply@practice.test
password = $MAILSTACK_PASSWORD
[mail]
from_address = frontdesk@practice.test
reply_domain = practice.test
bounce_domain = practice.test
CONF
)
	"$build/posternctl" -c "$var/postern.conf" migrate
	"$build/posternctl" -c "$var/postern.conf" demo seed
	start_daemon postern-worker
	start_daemon postern-httpd
	for _ in $(seq 1 100); do
		curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 ||
		{ tail -5 "$var/log/postern-httpd.log" >&2; die "postern-httpd did not come up (log: $var/log/postern-httpd.log)"; }
	pid_alive "$var/run/postern-worker.pid" postern-worker ||
		{ tail -5 "$var/log/postern-worker.log" >&2; die "postern-worker did not stay up (log: $var/log/postern-worker.log)"; }
	# Show the mail path working: the worker mails a sign-in link to the
	# demo owner (the same job POST /login enqueues).
	"$build/posternctl" -q -c "$var/postern.conf" jobs enqueue magic_link \
		'{"email": "owner@practice.test"}' >/dev/null ||
		say "could not enqueue the demo sign-in mail (see above)"
	cat <<EOT

postern is running.

  Web:        http://127.0.0.1:$port/login   (health: /healthz)
  Practice:   Riverside Family Practice (slug riverside)
  Staff:      owner@practice.test (owner), see 'posternctl staff list --practice riverside'
  Patients:   'posternctl patient list --practice riverside' (all @patients.test)
  posternctl: $build/posternctl -c $var/postern.conf --help

  Mail:       the worker just mailed a sign-in link to owner@practice.test:
                         bash tests/harness/demo.sh mail owner@practice.test
              Every @practice.test and @patients.test address has a mailbox.
              Or any IMAP client: 127.0.0.1 port $MAILSTACK_IMAP_PORT (STARTTLS) or
              $MAILSTACK_IMAPS_PORT (TLS), user = the address, password $MAILSTACK_PASSWORD,
              CA certificate $MAILSTACK_CA
              SMTP in: 127.0.0.1 port $MAILSTACK_SMTP_PORT

  Logs:       $var/log/postern-worker.log, $var/log/postern-httpd.log
  Stop:       make demo-stop   (data stays in ./var; remove it to start afresh)
EOT
	;;
stop)
	[ -d "$var" ] || { say "nothing to stop (no $var)"; exit 0; }
	stop_daemon postern-httpd
	stop_daemon postern-worker
	[ -d "$var/mail" ] && bash "$top/tests/harness/mailstack.sh" stop "$var/mail"
	[ -d "$var/db" ] && bash "$top/tests/harness/pg.sh" stop "$var/db"
	say "stopped; data kept in $var"
	;;
mail)
	addr=${2:?usage: demo.sh mail ADDRESS [N]}
	eval "$(bash "$top/tests/harness/mailstack.sh" env "$var/mail")"
	base="imaps://localhost:$MAILSTACK_IMAPS_PORT/INBOX"
	if [ -n "${3:-}" ]; then
		curl -sS --cacert "$MAILSTACK_CA" --user "$addr:$MAILSTACK_PASSWORD" "$base;MAILINDEX=$3"
	else
		n=$(curl -sS --cacert "$MAILSTACK_CA" --user "$addr:$MAILSTACK_PASSWORD" "$base" -X 'EXAMINE INBOX' |
			sed -n 's/^\* \([0-9]*\) EXISTS.*/\1/p' | tr -d '\r')
		echo "$addr: ${n:-0} message(s)"
		for i in $(seq 1 "${n:-0}"); do
			curl -sS --cacert "$MAILSTACK_CA" --user "$addr:$MAILSTACK_PASSWORD" "$base;MAILINDEX=$i;SECTION=HEADER.FIELDS%20(DATE%20FROM%20SUBJECT)" |
				tr -d '\r' | grep -v '^$' | sed "s/^/  [$i] /"
		done
		[ "${n:-0}" -gt 0 ] && echo "read one: bash tests/harness/demo.sh mail $addr N"
	fi
	;;
*)
	die "usage: demo.sh start|stop|mail ADDRESS [N]"
	;;
esac
