#!/usr/bin/env bash
# tests/harness/deps.sh PACKAGE...: install the Debian packages that are
# missing (the list lives in the Makefile, DEB_PACKAGES). As root it runs
# apt-get; otherwise it prints the command to run and fails. Only missing
# packages are installed, so nothing already there is upgraded. Package
# scripts are kept from starting system services (a policy-rc.d for the
# duration), and a system Postfix or Dovecot that runs anyway is stopped:
# postern runs its own private instances.
set -euo pipefail

missing=()
for p in "$@"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#} Debian packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run as root:  apt-get install --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
# No questions; Postfix writes no system main.cf ("No configuration").
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s)
apt-get update -q >/tmp/postern-apt-update.log 2>&1 ||
	{ tail -5 /tmp/postern-apt-update.log >&2; echo "deps: apt-get update failed" >&2; exit 1; }
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/postern-apt-install.log 2>&1; then
	tail -15 /tmp/postern-apt-install.log >&2
	echo "deps: apt-get install failed (full log: /tmp/postern-apt-install.log)" >&2
	exit 1
fi
# System daemons the packages may have started despite policy-rc.d.
if [ -f /var/spool/postfix/pid/master.pid ] && grep -q master "/proc/$(tr -d ' ' </var/spool/postfix/pid/master.pid)/comm" 2>/dev/null; then
	postfix stop >/dev/null 2>&1 || true
fi
if [ -f /run/dovecot/master.pid ] && grep -q dovecot "/proc/$(cat /run/dovecot/master.pid)/comm" 2>/dev/null; then
	kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
fi
echo "deps: installed ${#missing[@]} package(s) in $(( $(date +%s) - t0 )) s"
