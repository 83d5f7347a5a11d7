#!/usr/bin/env bash
# tests/harness/pg.sh: a private PostgreSQL cluster under one directory.
#
#   pg.sh start DIR [--fast]   initdb (first time) and start; --fast turns
#                              fsync and synchronous_commit off (tests only)
#   pg.sh stop DIR             stop it (fast shutdown); safe if not running
#   pg.sh restart DIR          restart (fast), same port: a database outage
#   pg.sh status DIR           exit 0 iff it runs
#   pg.sh env DIR              shell lines: PG_DIR PG_PORT PG_URL (superuser
#                              "postern" with a password, database "postern")
#   pg.sh createdb DIR NAME    a fresh empty database NAME; prints its URL
#
# Loopback only (127.0.0.1 and a socket in DIR/pg/sock), a free port from
# 55432 up, scram-sha-256 on TCP with a random password kept in
# DIR/pg/password (0600). As root the cluster runs as the "postgres" user.
set -euo pipefail

die() { echo "pg: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: pg.sh start|stop|status|env|createdb DIR [ARGS]"
cmd=$1; dir=$2; shift 2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pgd=$dir/pg
data=$pgd/data

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/initdb" ] && { bindir=$d; break; }
	done
fi
[ -n "$bindir" ] || die "no PostgreSQL server binaries (apt-get install postgresql; or run make deps)"

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# The probe connects in a subshell: an exec in a { } group would leave fd 3
# open in this shell (and in the server it starts) when it connects.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running() {
	[ -f "$data/postmaster.pid" ] || return 1
	local pid; pid=$(head -1 "$data/postmaster.pid")
	[ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q postgres "/proc/$pid/comm" 2>/dev/null &&
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

psql_super() {
	local port; port=$(cat "$pgd/port")
	PGOPTIONS="-c client_min_messages=warning" PGPASSWORD=$(cat "$pgd/password") "$bindir/psql" -X -q -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$port" -U postern "$@"
}

case $cmd in
start)
	fast=
	[ "${1:-}" = --fast ] && fast=1
	if running; then
		echo "pg: already running in $pgd (port $(cat "$pgd/port"))"
		exit 0
	fi
	if [ ! -f "$data/PG_VERSION" ]; then
		mkdir -p "$pgd/sock"
		if [ "$(id -u)" = 0 ]; then
			id postgres >/dev/null 2>&1 || die "no 'postgres' user to run the cluster as"
			chmod 755 "$dir" "$pgd"
			chown postgres "$pgd" "$pgd/sock"
			# the postgres user must be able to reach DIR
			as_owner test -x "$pgd" || die "user postgres cannot reach $pgd (a parent directory is private?)"
		fi
		head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pgd/password"
		chmod 600 "$pgd/password"
		pwtmp=$(mktemp)
		cp "$pgd/password" "$pwtmp"
		[ "$(id -u)" = 0 ] && chown postgres "$pwtmp"
		as_owner "$bindir/initdb" -D "$data" -U postern --pwfile="$pwtmp" \
			--auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
			--locale=C.UTF-8 >"$pgd/initdb.log" 2>&1 ||
			{ rm -f "$pwtmp"; tail -5 "$pgd/initdb.log" >&2; die "initdb failed"; }
		rm -f "$pwtmp"
	fi
	# One start at a time on this machine picks a port and binds it, so
	# two test runs starting together cannot pick the same free port (as
	# tests/harness/mailstack.sh does). fd 8 is closed for the server, so
	# the lock ends with this script. A port taken by anything else
	# between the probe and the bind: the next one, up to 5 times.
	lock=/tmp/postern-pg.lock
	(umask 0; : >>"$lock") 2>/dev/null || true
	exec 8<"$lock" || die "cannot open $lock"
	flock -w 120 8 || die "could not lock $lock (another start hangs?)"
	port=55432
	for attempt in 1 2 3 4 5; do
		while ! port_free $port; do port=$((port + 1)); done
		echo $port >"$pgd/port"
		opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pgd/sock"
		opts="$opts -c max_connections=200 -c shared_buffers=128MB"
		[ -n "$fast" ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		if as_owner "$bindir/pg_ctl" -D "$data" -o "$opts" -l "$pgd/server.log" -w -t 30 start \
			>/dev/null 2>&1 8<&-; then
			break
		fi
		if [ $attempt = 5 ] || ! tail -20 "$pgd/server.log" | grep -q 'could not bind\|already in use'; then
			tail -5 "$pgd/server.log" >&2
			die "server did not start"
		fi
		port=$((port + 1))
	done
	exec 8<&-
	psql_super -d postgres -c "SELECT 1" >/dev/null 2>&1 || die "server started but login failed"
	if ! psql_super -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='postern'" | grep -q 1; then
		psql_super -d postgres -c "CREATE DATABASE postern" >/dev/null
	fi
	echo "pg: started PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $data)"
	;;
stop)
	if running; then
		as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			die "pg_ctl stop failed (see $pgd/server.log)"
		echo "pg: stopped ($pgd)"
	fi
	;;
restart)
	# Same data, port and options (pg_ctl keeps them in postmaster.opts).
	running || die "not running"
	as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 restart >/dev/null 2>&1 ||
		die "pg_ctl restart failed (see $pgd/server.log)"
	echo "pg: restarted ($pgd)"
	;;
status)
	running
	;;
env)
	[ -f "$pgd/port" ] || die "no cluster in $dir (run start first)"
	port=$(cat "$pgd/port")
	echo "PG_DIR=$pgd"
	echo "PG_PORT=$port"
	echo "PG_BINDIR=$bindir"
	echo "PG_URL=postgresql://postern:$(cat "$pgd/password")@127.0.0.1:$port/postern"
	;;
createdb)
	name=${1:?database name}
	[[ $name =~ ^[a-z_][a-z0-9_]*$ ]] || die "bad database name: $name"
	psql_super -d postgres -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
	echo "postgresql://postern:$(cat "$pgd/password")@127.0.0.1:$(cat "$pgd/port")/$name"
	;;
*)
	die "unknown command: $cmd"
	;;
esac
