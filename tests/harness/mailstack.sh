#!/usr/bin/env bash
# tests/harness/mailstack.sh: a private mail stack on loopback for tests and
# the demo. Postfix (SMTP, STARTTLS + AUTH, SMTPS) delivers over LMTP into
# Dovecot (IMAP, STARTTLS, IMAPS). Every file, socket, queue, log and mailbox
# lives under DIR; nothing reads or writes /etc/postfix/main.cf, syslog or a
# system service. Several DIRs can run at once (free ports are picked).
#
#   mailstack.sh start DIR     start (idempotent), write DIR/env
#   mailstack.sh stop DIR      stop; safe when nothing runs
#   mailstack.sh status DIR    exit 0 iff Postfix and Dovecot both run
#   mailstack.sh env DIR       print MAILSTACK_* shell lines to eval
#   mailstack.sh install-check exit 1 listing missing binaries/users
#
# Environment read by start: MAILSTACK_PASSWORD (default postern-test),
# MAILSTACK_DOMAINS (extra mail domains, space separated),
# MAILSTACK_AUTH_PENALTY=1 (keep Dovecot's auth penalty; see below).
#
# Mail: every address at practice.test, patients.test and MAILSTACK_DOMAINS
# has a mailbox (catch-all), except local parts starting with "unknown" or
# "nobody", which get 550 5.1.1 at RCPT. "+" is the recipient delimiter, so
# reply+TOKEN@practice.test lands in reply@practice.test's INBOX. Every user
# logs in (IMAP, SMTP AUTH) with the one shared password. Unauthenticated
# clients may send to the test domains only; nothing leaves the machine.
#
# The facts behind the choices are in shared/notes/mail-stack.md (gotchas
# are cited as "note N"). The script never installs packages.
set -euo pipefail
export PATH="/usr/sbin:/sbin:/usr/bin:/bin:${PATH:-}"
umask 022

readonly DEFAULT_DOMAINS="practice.test patients.test"
readonly DEFAULT_PASSWORD="postern-test"
readonly DEF_SMTP=2525 DEF_SMTPS=2465 DEF_IMAP=1143 DEF_IMAPS=1993
readonly LOCK_FILE=/tmp/mailstack.lock     # serialises port choice + startup
readonly READY_TIMEOUT_S=${MAILSTACK_READY_TIMEOUT_S:-15}
readonly STOP_TIMEOUT_S=10
readonly MAIL_UID=8                         # Debian's "mail" user stores mail

say() { printf 'mailstack: %s\n' "$*"; }
warn() { printf 'mailstack: %s\n' "$*" >&2; }
die() {
	printf 'mailstack: error: %s\n' "$*" >&2
	exit 1
}

# Log sizes when this start began: die_logs shows only what came after.
declare -A LOG_MARK=()
mark_logs() {
	local f
	for f in "$@"; do
		LOG_MARK[$f]=$(stat -c %s -- "$f" 2>/dev/null || echo 0)
	done
}

# die with the tail of the given logs (whichever exist) on stderr.
die_logs() {
	local msg=$1 f
	shift
	printf 'mailstack: error: %s\n' "$msg" >&2
	for f in "$@"; do
		[[ -s $f ]] || continue
		printf -- '--- last lines of %s ---\n' "$f" >&2
		tail -c +"$((${LOG_MARK[$f]:-0} + 1))" -- "$f" | tail -n 12 >&2
	done
	exit 1
}

usage() {
	cat >&2 <<'EOF'
usage: mailstack.sh start|stop|status|env DIR
       mailstack.sh install-check
EOF
	exit 2
}

# ---------------------------------------------------------------- checks

install_check() {
	local missing=() b u
	for b in postfix postconf postsuper dovecot doveconf openssl flock md5sum; do
		command -v "$b" >/dev/null 2>&1 || missing+=("$b")
	done
	for b in /usr/lib/dovecot/imap /usr/lib/dovecot/lmtp \
	    /usr/lib/postfix/sbin/smtpd /usr/lib/postfix/sbin/lmtp; do
		[[ -x $b ]] || missing+=("$b")
	done
	for u in postfix dovecot dovenull mail; do
		getent passwd "$u" >/dev/null || missing+=("user:$u")
	done
	getent group postdrop >/dev/null || missing+=("group:postdrop")
	if ((${#missing[@]})); then
		printf 'mailstack: missing: %s (Debian: postfix dovecot-core dovecot-imapd dovecot-lmtpd openssl util-linux)\n' \
		    "${missing[*]}" >&2
		return 1
	fi
	return 0
}

# Absolute, symlink-free DIR made of characters that are safe unquoted in
# Postfix and Dovecot configs.
resolve_dir() {
	local d=$1 create=$2
	[[ -n $d ]] || usage
	if [[ ! -d $d ]]; then
		[[ $create == yes ]] || return 1
		mkdir -p -- "$d" || die "cannot create $d"
	fi
	DIR=$(cd -- "$d" && pwd -P)
	[[ $DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] ||
	    die "DIR must be made of [A-Za-z0-9._/+-] (got '$DIR')"
	[[ $DIR != / ]] || die "DIR must not be /"
	return 0
}

# The postfix, dovecot, dovenull and mail users must traverse every component
# of the path (note 8: mktemp -d and /root are 0700).
check_path_perms() {
	local p=$DIR mode
	while [[ -n $p ]]; do
		mode=$(stat -c '%a' -- "$p")
		if (((8#$mode & 8#001) == 0)); then
			die "$p is mode $mode: the postfix/dovecot/mail users cannot traverse it (chmod o+x it, or use a DIR under /tmp)"
		fi
		p=${p%/*}
	done
}

# Dovecot and Postfix sockets must fit sun_path (108 bytes, note 7): with a
# long DIR the run directory is a symlink to a short one under /tmp.
setup_run() {
	if [[ -L $DIR/run ]]; then
		RUN=$(readlink -f -- "$DIR/run" || true)
		if [[ -n $RUN && -d $RUN ]]; then
			return 0
		fi
		rm -f -- "$DIR/run"
	fi
	if ((${#DIR} > 60)); then
		RUN=$(mktemp -d /tmp/mailstack-run.XXXXXX)
		chmod 755 "$RUN"
		ln -s -- "$RUN" "$DIR/run"
	else
		mkdir -p -- "$DIR/run"
		RUN=$DIR/run
	fi
}

find_run() {
	if [[ -e $DIR/run ]]; then
		RUN=$(readlink -f -- "$DIR/run")
	else
		RUN=$DIR/run
	fi
}

# ---------------------------------------------------------------- processes

# alive PID COMM: the process exists, is not a zombie (note 4: PID 1 here
# reaps late) and is the program we expect (a recycled PID is never ours).
alive() {
	local pid=$1 comm=$2 stat rest name
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	{ IFS= read -r stat </proc/"$pid"/stat; } 2>/dev/null || return 1
	rest=${stat##*) }
	[[ ${rest%% *} != Z ]] || return 1
	[[ -z $comm ]] && return 0
	{ IFS= read -r name </proc/"$pid"/comm; } 2>/dev/null || return 1
	[[ $name == "$comm" ]]
}

read_pid() {
	local f=$1 pid=
	if [[ -r $f ]]; then
		read -r pid <"$f" 2>/dev/null || true
	fi
	pid=${pid//[[:space:]]/}
	printf '%s' "$pid"
}

postfix_pid() { read_pid "$RUN/postfix/pid/master.pid"; }
dovecot_pid() { read_pid "$RUN/dovecot/master.pid"; }

postfix_alive() { alive "$(postfix_pid)" master; }
dovecot_alive() { alive "$(dovecot_pid)" dovecot; }

# PIDs of processes left over from this DIR after the masters are gone:
# Postfix daemons chdir to the queue directory; Dovecot's carry the instance
# name in their process title.
leftovers() {
	local p pid arg0 inst
	inst=$(instance_name)
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		if [[ -d $RUN/postfix && $p/cwd -ef $RUN/postfix ]]; then
			alive "$pid" "" && echo "$pid"
			continue
		fi
		arg0=
		{ IFS= read -r -d '' arg0 <"$p/cmdline"; } 2>/dev/null || true
		if [[ $arg0 == "$inst/"* || $arg0 == "dovecot-$inst/"* ]]; then
			alive "$pid" "" && echo "$pid"
		fi
	done
	return 0
}

instance_name() {
	printf 'mailstack-%s' "$(printf '%s' "$DIR" | md5sum | cut -c1-12)"
}

# ---------------------------------------------------------------- ports

# Ports with a listening TCP socket on any address.
listening_ports() {
	local _sl local_addr _rem st _rest
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
	    while read -r _sl local_addr _rem st _rest; do
		[[ $st == 0A ]] && echo $((16#${local_addr##*:}))
	    done | sort -un
}

port_listening() {
	local all
	all=" $(listening_ports | tr '\n' ' ') "   # no grep -q: SIGPIPE + pipefail
	[[ $all == *" $1 "* ]]
}

# pick_port PREFERRED...: the first free port from the candidates, else the
# next free one above the last candidate. Ports already handed out in this
# run (CHOSEN) are skipped.
pick_port() {
	local busy p i
	busy=" $(listening_ports | tr '\n' ' ') ${CHOSEN:-} "
	for p in "$@"; do
		[[ -n $p && $busy != *" $p "* ]] && {
			echo "$p"
			return 0
		}
	done
	p=${*: -1}
	for ((i = 0; i < 500; i++)); do
		p=$((p + 1))
		[[ $busy != *" $p "* ]] && {
			echo "$p"
			return 0
		}
	done
	die "no free port near $*"
}

# ---------------------------------------------------------------- env file

env_get() {
	local key=$1 line
	[[ -r $DIR/env ]] || return 0
	line=$(grep -m1 "^$key=" "$DIR/env" || true)
	line=${line#*=}
	line=${line#\'}
	printf '%s' "${line%\'}"
}

write_env() {
	local tmp=$DIR/env.tmp.$$
	{
		# shellcheck disable=SC2016 # a literal $(...) for people to copy
		printf '# written by mailstack.sh start; eval "$(mailstack.sh env DIR)"\n'
		printf "MAILSTACK_DIR='%s'\n" "$DIR"
		printf "MAILSTACK_HOST='127.0.0.1'\n"
		printf "MAILSTACK_SMTP_PORT='%s'\n" "$SMTP_PORT"
		printf "MAILSTACK_SMTPS_PORT='%s'\n" "$SMTPS_PORT"
		printf "MAILSTACK_IMAP_PORT='%s'\n" "$IMAP_PORT"
		printf "MAILSTACK_IMAPS_PORT='%s'\n" "$IMAPS_PORT"
		printf "MAILSTACK_PASSWORD='%s'\n" "$PASSWORD"
		printf "MAILSTACK_CA='%s'\n" "$DIR/etc/tls/cert.pem"
		printf "MAILSTACK_DOMAINS='%s'\n" "$DOMAINS"
		printf 'export MAILSTACK_DIR MAILSTACK_HOST MAILSTACK_SMTP_PORT MAILSTACK_SMTPS_PORT MAILSTACK_IMAP_PORT MAILSTACK_IMAPS_PORT MAILSTACK_PASSWORD MAILSTACK_CA MAILSTACK_DOMAINS\n'
	} >"$tmp"
	mv -f -- "$tmp" "$DIR/env"
}

# ---------------------------------------------------------------- config

make_cert() {
	local tls=$DIR/etc/tls
	mkdir -p "$tls"
	[[ -s $tls/cert.pem && -s $tls/key.pem ]] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 3650 -subj /CN=localhost \
	    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
	    -keyout "$tls/key.pem.tmp" -out "$tls/cert.pem.tmp" \
	    >"$DIR/log/openssl.log" 2>&1 ||
	    die_logs "openssl could not make the certificate" "$DIR/log/openssl.log"
	chmod 600 "$tls/key.pem.tmp"
	chmod 644 "$tls/cert.pem.tmp"
	mv -f "$tls/key.pem.tmp" "$tls/key.pem"
	mv -f "$tls/cert.pem.tmp" "$tls/cert.pem"
}

write_postfix_config() {
	local pf=$DIR/etc/postfix d first re=""
	first=${DOMAINS%% *}
	mkdir -p "$pf"
	for d in $DOMAINS; do
		re+="${re:+|}${d//./\\.}"
	done

	# Catch-all per domain: texthash needs no postmap run.
	: >"$pf/vmailbox"
	for d in $DOMAINS; do
		printf '@%s OK\n' "$d" >>"$pf/vmailbox"
	done
	# Bounce tests: these local parts do not exist (with or without +ext).
	printf '/^(unknown|nobody)[^@]*@(%s)$/ 550 5.1.1 User unknown (mailstack test rule)\n' \
	    "$re" >"$pf/rcpt_access"

	cat >"$pf/main.cf" <<EOF
# Written by mailstack.sh start; regenerated on every start.
compatibility_level = 3.6
queue_directory = $RUN/postfix
data_directory = $DIR/lib/postfix
maillog_file = $DIR/log/postfix.log
maillog_file_prefixes = $DIR/log
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.$first
mydomain = $first
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP mailstack
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
default_transport = error:mailstack delivers to its test domains only
relay_transport = error:mailstack delivers to its test domains only
relay_domains =
biff = no
readme_directory = no
append_dot_mydomain = no
recipient_delimiter = +
virtual_mailbox_domains = $DOMAINS
virtual_mailbox_maps = texthash:$pf/vmailbox
virtual_transport = lmtp:unix:$RUN/dovecot/lmtp
message_size_limit = 52428800
mailbox_size_limit = 0
virtual_mailbox_limit = 0
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access regexp:$pf/rcpt_access, reject_unlisted_recipient
smtpd_tls_cert_file = $DIR/etc/tls/cert.pem
smtpd_tls_key_file = $DIR/etc/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $RUN/dovecot/auth-postfix
smtpd_tls_auth_only = no
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
delay_warning_time = 0
EOF

	# chroot = n everywhere; no local/virtual/pipe services.
	cat >"$pf/master.cf" <<EOF
# Written by mailstack.sh start; regenerated on every start.
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
127.0.0.1:$SMTPS_PORT inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

write_dovecot_config() {
	local dc=$DIR/etc/dovecot first
	first=${DOMAINS%% *}
	mkdir -p "$dc"
	cat >"$dc/dovecot.conf" <<EOF
# Written by mailstack.sh start; regenerated on every start. Self-contained:
# nothing from /etc/dovecot is read.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $RUN/dovecot
state_dir = $DIR/lib/dovecot
instance_name = $(instance_name)
log_path = $DIR/log/dovecot.log
info_log_path = $DIR/log/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = $MAIL_UID
last_valid_uid = $MAIL_UID
mail_location = maildir:~/Maildir
mail_fsync = never
ssl = yes
ssl_cert = <$DIR/etc/tls/cert.pem
ssl_key = <$DIR/etc/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_max_userip_connections = 100
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no

# Any user exists (catch-all; Postfix rejects unknown*/nobody* at RCPT) and
# logs in with the one shared password.
passdb {
  driver = static
  args = password=$PASSWORD
}
userdb {
  driver = static
  args = uid=$MAIL_UID gid=$MAIL_UID home=$DIR/mail/%Ld/%Ln allow_all_users=yes
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}

service imap-login {
  service_count = 0
  process_min_avail = 1
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
service imap {
  service_count = 0
  process_min_avail = 1
  process_limit = 100
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
protocol lmtp {
  postmaster_address = postmaster@$first
}
EOF
}

# Postfix re-reads files whose mtime is within ~2 s of now (note 3).
backdate() {
	local t
	t=$(($(date +%s) - 10))
	touch -d "@$t" -- "$@"
}

# ---------------------------------------------------------------- probes

# probe_greeting PORT PREFIX BYE: connect, read the greeting, say goodbye.
# The redirection sits on a group, not on `exec`, so the script's stderr is
# never redirected (note 15).
probe_greeting() {
	local port=$1 want=$2 bye=$3 line=""
	{
		IFS= read -r -t 2 line <&3 || true
		printf '%s\r\n' "$bye" >&3 || true
		IFS= read -r -t 2 _ <&3 || true
	} 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
	[[ $line == "$want"* ]]
}

wait_ready() {
	local deadline p ok
	deadline=$((SECONDS + READY_TIMEOUT_S))
	while :; do
		ok=yes
		for p in "$SMTP_PORT" "$SMTPS_PORT" "$IMAP_PORT" "$IMAPS_PORT"; do
			port_listening "$p" || ok=no
		done
		if [[ $ok == yes ]] && probe_greeting "$SMTP_PORT" 220 QUIT &&
		    probe_greeting "$IMAP_PORT" '* OK' 'a LOGOUT'; then
			return 0
		fi
		postfix_alive || return 1
		dovecot_alive || return 1
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# ---------------------------------------------------------------- commands

cmd_status() {
	local quiet=${1:-}
	resolve_dir "$ARG_DIR" no || {
		[[ -n $quiet ]] || say "not running ($ARG_DIR does not exist)"
		return 1
	}
	find_run
	local pp dp ps=down ds=down
	pp=$(postfix_pid)
	dp=$(dovecot_pid)
	alive "$pp" master && ps="pid=$pp"
	alive "$dp" dovecot && ds="pid=$dp"
	if [[ $ps != down && $ds != down ]]; then
		[[ -n $quiet ]] || say "running dir=$DIR postfix $ps dovecot $ds smtp=127.0.0.1:$(env_get MAILSTACK_SMTP_PORT) smtps=127.0.0.1:$(env_get MAILSTACK_SMTPS_PORT) imap=127.0.0.1:$(env_get MAILSTACK_IMAP_PORT) imaps=127.0.0.1:$(env_get MAILSTACK_IMAPS_PORT)"
		return 0
	fi
	[[ -n $quiet ]] || say "not running dir=$DIR postfix $ps dovecot $ds"
	return 1
}

cmd_stop() {
	resolve_dir "$ARG_DIR" no || {
		say "nothing to stop ($ARG_DIR does not exist)"
		return 0
	}
	find_run
	local pp dp left ports p deadline stopped=""
	pp=$(postfix_pid)
	dp=$(dovecot_pid)
	alive "$pp" master || pp=""
	alive "$dp" dovecot || dp=""

	# Signal both masters first, then wait: Dovecot alone needs ~1 s (note 5).
	[[ -n $pp ]] && kill -TERM "$pp" 2>/dev/null && stopped+=" postfix"
	[[ -n $dp ]] && kill -TERM "$dp" 2>/dev/null && stopped+=" dovecot"
	deadline=$((SECONDS + STOP_TIMEOUT_S))
	while [[ -n $pp || -n $dp ]]; do
		[[ -n $pp ]] && ! alive "$pp" master && pp=""
		[[ -n $dp ]] && ! alive "$dp" dovecot && dp=""
		[[ -z $pp && -z $dp ]] && break
		if ((SECONDS >= deadline)); then
			warn "masters did not exit after ${STOP_TIMEOUT_S}s, sending SIGKILL"
			[[ -n $pp ]] && { kill -KILL "$pp" 2>/dev/null || true; }
			[[ -n $dp ]] && { kill -KILL "$dp" 2>/dev/null || true; }
			sleep 0.2
			break
		fi
		sleep 0.05
	done

	# Children notice their master is gone; give them a moment, then end
	# the ones still running from this DIR, by PID.
	deadline=$((SECONDS + 3))
	while left=$(leftovers) && [[ -n $left ]]; do
		if ((SECONDS >= deadline)); then
			warn "ending leftover processes: ${left//$'\n'/ }"
			# shellcheck disable=SC2086 # one PID per word
			kill -KILL $left 2>/dev/null || true
			sleep 0.2
			break
		fi
		sleep 0.05
	done

	# Wait until the ports are closed, so an immediate restart can bind them.
	ports="$(env_get MAILSTACK_SMTP_PORT) $(env_get MAILSTACK_SMTPS_PORT) $(env_get MAILSTACK_IMAP_PORT) $(env_get MAILSTACK_IMAPS_PORT)"
	if [[ -n $stopped ]]; then
		deadline=$((SECONDS + 5))
		for p in $ports; do
			while port_listening "$p" && ((SECONDS < deadline)); do
				sleep 0.05
			done
		done
	fi
	rm -f -- "$RUN/postfix/pid/master.pid" "$RUN/dovecot/master.pid" 2>/dev/null || true
	if [[ -n $stopped ]]; then
		say "stopped${stopped} dir=$DIR"
	else
		say "nothing running dir=$DIR"
	fi
	return 0
}

cmd_env() {
	resolve_dir "$ARG_DIR" no || die "$ARG_DIR does not exist (run: mailstack.sh start $ARG_DIR)"
	[[ -r $DIR/env ]] || die "no $DIR/env (run: mailstack.sh start $DIR)"
	find_run
	if ! postfix_alive || ! dovecot_alive; then
		warn "warning: the stack in $DIR is not running"
	fi
	grep -v '^#' "$DIR/env"
}

# Undo a half-done start so nothing is left running.
start_failed() {
	local msg=$1
	shift
	cmd_stop >/dev/null 2>&1 || true
	die_logs "$msg" "$@"
}

cmd_start() {
	install_check || die "required programs are missing (make deps installs them)"
	resolve_dir "$ARG_DIR" yes
	check_path_perms

	# One start at a time on this machine: two starts of the same DIR must
	# not both launch daemons, and two DIRs must not pick the same ports.
	# fd 9 is closed for the daemons, so the lock ends with this script.
	exec 9>>"$LOCK_FILE"
	flock -w 60 9 || die "could not lock $LOCK_FILE (another start hangs?)"

	if cmd_status quiet; then
		find_run
		say "already running dir=$DIR smtp=127.0.0.1:$(env_get MAILSTACK_SMTP_PORT) imap=127.0.0.1:$(env_get MAILSTACK_IMAP_PORT)"
		return 0
	fi
	find_run
	# One half running (a crash, a killed test): start from clean.
	if postfix_alive || dovecot_alive; then
		warn "half running, restarting dir=$DIR"
		cmd_stop >/dev/null
	fi

	PASSWORD=${MAILSTACK_PASSWORD:-$DEFAULT_PASSWORD}
	[[ $PASSWORD =~ ^[A-Za-z0-9._+-]{1,64}$ ]] ||
	    die "MAILSTACK_PASSWORD must be 1-64 characters of [A-Za-z0-9._+-]"
	DOMAINS=$DEFAULT_DOMAINS
	local d
	for d in ${MAILSTACK_DOMAINS:-}; do
		[[ $d =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$ ]] ||
		    die "bad domain in MAILSTACK_DOMAINS: '$d'"
		[[ " $DOMAINS " == *" $d "* ]] || DOMAINS+=" $d"
	done

	local t0=$EPOCHREALTIME
	mkdir -p "$DIR/etc" "$DIR/log" "$DIR/lib/dovecot" "$DIR/lib/postfix" "$DIR/mail"
	setup_run
	mkdir -p "$RUN/postfix" "$RUN/dovecot"
	chown postfix "$DIR/lib/postfix"          # note 2
	chown "$MAIL_UID:$MAIL_UID" "$DIR/mail"
	chmod 750 "$DIR/mail"
	make_cert

	CHOSEN=""
	SMTP_PORT=$(pick_port "$(env_get MAILSTACK_SMTP_PORT)" "$DEF_SMTP")
	CHOSEN+=" $SMTP_PORT"
	SMTPS_PORT=$(pick_port "$(env_get MAILSTACK_SMTPS_PORT)" "$DEF_SMTPS")
	CHOSEN+=" $SMTPS_PORT"
	IMAP_PORT=$(pick_port "$(env_get MAILSTACK_IMAP_PORT)" "$DEF_IMAP")
	CHOSEN+=" $IMAP_PORT"
	IMAPS_PORT=$(pick_port "$(env_get MAILSTACK_IMAPS_PORT)" "$DEF_IMAPS")

	write_postfix_config
	write_dovecot_config
	backdate "$DIR/etc/postfix/main.cf" "$DIR/etc/postfix/master.cf" \
	    "$DIR/etc/postfix/vmailbox" "$DIR/etc/postfix/rcpt_access" \
	    "$DIR/etc/dovecot/dovecot.conf"
	write_env

	# Daemons get no terminal, pipe or lock fd of ours (note 6).
	: >"$DIR/log/dovecot-start.log"
	: >"$DIR/log/postfix-start.log"
	mark_logs "$DIR/log/postfix.log" "$DIR/log/dovecot.log"
	dovecot -c "$DIR/etc/dovecot/dovecot.conf" \
	    </dev/null >>"$DIR/log/dovecot-start.log" 2>&1 9>&- ||
	    start_failed "dovecot did not start" "$DIR/log/dovecot-start.log" "$DIR/log/dovecot.log"
	# Without anvil's penalty socket the auth process turns the auth
	# penalty off (note 9); it must go before the first login.
	if [[ ${MAILSTACK_AUTH_PENALTY:-0} != 1 ]]; then
		rm -f -- "$RUN/dovecot/anvil-auth-penalty"
	fi
	postfix -c "$DIR/etc/postfix" start \
	    </dev/null >>"$DIR/log/postfix-start.log" 2>&1 9>&- ||
	    start_failed "postfix did not start (try: script -qc 'postfix -c $DIR/etc/postfix check' /dev/null)" \
		"$DIR/log/postfix-start.log" "$DIR/log/postfix.log"

	wait_ready || start_failed "not ready after ${READY_TIMEOUT_S}s" \
	    "$DIR/log/postfix-start.log" "$DIR/log/postfix.log" \
	    "$DIR/log/dovecot-start.log" "$DIR/log/dovecot.log"
	flock -u 9
	exec 9>&-

	local ms
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	say "started postfix smtp=127.0.0.1:$SMTP_PORT smtps=127.0.0.1:$SMTPS_PORT pid=$(postfix_pid)"
	say "started dovecot imap=127.0.0.1:$IMAP_PORT imaps=127.0.0.1:$IMAPS_PORT pid=$(dovecot_pid)"
	say "ready dir=$DIR domains=\"$DOMAINS\" ms=$ms env: eval \"\$($0 env $DIR)\""
}

# ---------------------------------------------------------------- main

[[ $# -ge 1 ]] || usage
CMD=$1
ARG_DIR=${2:-}
case $CMD in
install-check)
	install_check && say "install-check ok"
	;;
start | stop | status | env)
	[[ $# -eq 2 && -n $ARG_DIR ]] || usage
	[[ $CMD == status || $CMD == env || $(id -u) -eq 0 ]] ||
	    die "must run as root (Postfix and Dovecot masters)"
	case $CMD in
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	env) cmd_env ;;
	esac
	;;
*) usage ;;
esac
