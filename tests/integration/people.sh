#!/usr/bin/env bash
# tests/integration/people.sh: posternctl practice/staff/patient/demo end to
# end against a real PostgreSQL. Prints TAP; exits 1 if any test failed.
#
# Database: with PG_TEST_DIR (set by the test runner) a fresh database
# people_t is created in that cluster; else PG_URL is used as is (it must
# be a scratch database); else a private cluster is started in a temp dir
# and stopped at the end. POSTERNCTL overrides the binary (default
# build/posternctl of this tree).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
ctl_bin=${POSTERNCTL:-${POSTERN_BUILD:-$root/build}/posternctl}
pg=$root/tests/harness/pg.sh
tmp=$(mktemp -d /tmp/people_t.XXXXXX)
own_cluster=

cleanup() {
	[ -n "$own_cluster" ] && bash "$pg" stop "$tmp/cluster" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$ctl_bin" ] || { echo "Bail out! no $ctl_bin (run make)"; exit 1; }
if [ -n "${PG_TEST_DIR:-}" ]; then
	url=$(bash "$pg" createdb "$PG_TEST_DIR" people_t) ||
		{ echo "Bail out! createdb failed"; exit 1; }
elif [ -n "${PG_URL:-}" ]; then
	url=$PG_URL
else
	own_cluster=1
	chmod 755 "$tmp"
	bash "$pg" start "$tmp/cluster" --fast >/dev/null ||
		{ echo "Bail out! cannot start PostgreSQL"; exit 1; }
	url=$(bash "$pg" createdb "$tmp/cluster" people_t)
fi

conf=$tmp/postern.conf
(umask 077; printf '[database]\nurl = %s\n' "$url" >"$conf")

n=0
failed=0
ok() {   # ok DESCRIPTION CONDITION-STATUS
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		failed=$((failed + 1))
		# show what the command said
		[ -s "$tmp/out" ] && sed 's/^/#   out: /' "$tmp/out" | head -20
		[ -s "$tmp/err" ] && sed 's/^/#   err: /' "$tmp/err" | head -20
	fi
}

# run ARGS…: posternctl with our config; stdout in $tmp/out, stderr in
# $tmp/err, exit status in $rc.
run() {
	"$ctl_bin" --config "$conf" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
run_in() {   # run_in FILE ARGS…: like run, with FILE on stdin
	local f=$1
	shift
	"$ctl_bin" --config "$conf" "$@" <"$f" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
has() { grep -qF -- "$1" "$2"; }
count_patients() {   # count_patients SLUG
	"$ctl_bin" --config "$conf" patient list --practice "$1" | tail -n +2 | wc -l
}

# --- schema
run migrate
ok "migrate applies the schema" $rc

# --- practices
run practice add --name 'Test Clinic' --slug clinic --timezone America/Chicago \
	--from-address desk@clinic.test --reply-domain Reply.Clinic.test
ok "practice add exits 0" $rc
has "clinic" "$tmp/out" && has "reply.clinic.test" "$tmp/out"
ok "practice add prints the id, slug and lower-cased reply domain" $?
run practice add --name 'Other' --slug clinic --from-address a@clinic.test \
	--reply-domain clinic.test
[ $rc -eq 1 ] && has "a practice with slug clinic already exists" "$tmp/err"
ok "a taken slug is refused with a clear message" $?
run practice add --name 'Bad' --slug Bad_Slug --from-address a@clinic.test \
	--reply-domain clinic.test
[ $rc -eq 1 ] && has "slug" "$tmp/err"
ok "a malformed slug is refused" $?
run practice add --name 'Bad' --slug badtz --from-address a@clinic.test \
	--reply-domain clinic.test --timezone Mars/Olympus_Mons
[ $rc -eq 1 ] && has "unknown timezone" "$tmp/err"
ok "an unknown timezone is refused" $?
run practice list
[ $rc -eq 0 ] && grep -q $'\tclinic\tTest Clinic\tAmerica/Chicago\t' "$tmp/out"
ok "practice list shows the practice" $?

# --- staff
run staff add --practice clinic --email Coach@Clinic.TEST --name 'Casey Coach'
[ $rc -eq 0 ] && has "Coach@clinic.test" "$tmp/out"
ok "staff add exits 0, keeps the local part's case, lower-cases the domain" $?
run staff add --practice clinic --email coach@clinic.test --name 'Casey Again'
[ $rc -eq 1 ] && has "a staff user with email coach@clinic.test already exists in practice clinic" "$tmp/err"
ok "staff add: the same email in another case is refused" $?
run staff add --practice clinic --email owner@clinic.test --name 'Olive Owner' --role owner
ok "staff add --role owner" $rc
run staff add --practice clinic --email x@clinic.test --name X --role boss
[ $rc -eq 2 ]
ok "staff add: an unknown role is a usage error (exit 2)" $?
run staff list --practice clinic
[ $rc -eq 0 ] && [ "$(sed -n 2p "$tmp/out" | cut -f2,4)" = $'owner@clinic.test\towner' ]
ok "staff list puts the owner first" $?

# --- patients one by one
run patient add --practice clinic --email Pat@Mail.Test --name '  Pat   Q  Public ' \
	--coach COACH@clinic.test --stage Active
[ $rc -eq 0 ] && has "Pat@mail.test" "$tmp/out"
ok "patient add exits 0" $?
run patient add --practice clinic --email pat@MAIL.test --name 'Pat Again'
[ $rc -eq 1 ] && has "a patient with email pat@mail.test already exists in practice clinic" "$tmp/err"
ok "patient add: the same email in another case is refused" $?
run patient add --practice clinic --email nobody@mail.test --name 'No Coach' --coach ghost@clinic.test
[ $rc -eq 1 ] && has "ghost@clinic.test" "$tmp/err"
ok "patient add: an unknown coach is refused" $?
run patient add --practice clinic --email 'bad email@mail.test' --name 'Bad'
[ $rc -eq 1 ] && has "space" "$tmp/err"
ok "patient add: a malformed email is refused" $?
run patient add --practice clinic --email np@mail.test --name Solo --no-portal
ok "patient add --no-portal" $rc
run patient list --practice clinic
[ $rc -eq 0 ] && grep -q $'\tPat@mail.test\tPat Q\tPublic\tactive\tCoach@clinic.test\tyes\t' "$tmp/out" &&
	grep -q $'\tnp@mail.test\tSolo\t-\tnew\t-\tno\t' "$tmp/out"
ok "patient list shows names split and folded, coach, portal flag" $?

# --- import: 3 bad rows among 10 -> nothing imported
before=$(count_patients clinic)
cat >"$tmp/bad.csv" <<'EOF'
email,name,stage,coach_email
r1@imp.test,Row One,active,coach@clinic.test
r2@imp.test,Row Two,,
not-an-address,Row Three,,
r4@imp.test,Row Four,new,
r5@imp.test,Row Five,,
R1@IMP.test,Row Six,,
r7@imp.test,Row Seven,,
r8@imp.test,Row Eight,,
r9@imp.test,Row Nine,sleeping,
r10@imp.test,Row Ten,,
EOF
run patient import --practice clinic "$tmp/bad.csv"
[ $rc -eq 1 ]
ok "import with 3 bad rows of 10 exits 1" $?
has "bad.csv:4: " "$tmp/err" && has "bad.csv:7: " "$tmp/err" && has "bad.csv:10: " "$tmp/err" &&
	[ "$(grep -c '^.*bad\.csv:[0-9]*: ' "$tmp/err")" -eq 3 ]
ok "all 3 bad line numbers are reported, and only those" $?
has "appears again (first on line 2)" "$tmp/err"
ok "a duplicate within the file (other case) names the first line" $?
[ "$(count_patients clinic)" -eq "$before" ]
ok "nothing was imported" $?

# --- import: a row that matches an existing patient
printf 'email,name\nnew1@imp.test,New One\nPAT@mail.test,Pat Dup\n' >"$tmp/exist.csv"
run patient import --practice clinic "$tmp/exist.csv"
[ $rc -eq 1 ] && has "exist.csv:3: a patient with email" "$tmp/err" &&
	[ "$(count_patients clinic)" -eq "$before" ]
ok "a row matching an existing patient (any case) is reported; nothing imported" $?

# --- import: quoted fields with a newline and a comma, CRLF, BOM
printf '\xef\xbb\xbfEmail,First Name,Last_Name,Stage,Coach_Email,Timezone,Portal_Access,Email_Text_Consent\r\n"q1@imp.test","Ann ""Annie""","Lee, Jr.\r\nthe second",onboarding,coach@clinic.test,Europe/Berlin,yes,yes\r\nq2@imp.test,Bo,,,,,no,\r\n' >"$tmp/quoted.csv"
run patient import --practice clinic "$tmp/quoted.csv"
[ $rc -eq 0 ] && has "imported 2 patients into clinic" "$tmp/out"
ok "import of quoted fields with a newline and a comma (CRLF, BOM) exits 0" $?
run patient list --practice clinic
grep -q $'\tq1@imp.test\tAnn "Annie"\tLee, Jr. the second\tonboarding\tCoach@clinic.test\tyes\tyes\tEurope/Berlin\t' "$tmp/out" &&
	grep -q $'\tq2@imp.test\tBo\t-\tnew\t-\tno\tno\t' "$tmp/out"
ok "quoted values arrive intact (line break folded to a space)" $?
printf 'email,name\n"m1@imp.test","Multi\nLine, Name"\nm2@imp.test,Ok\nbroken,Bad\n' >"$tmp/lines.csv"
run patient import --practice clinic "$tmp/lines.csv"
[ $rc -eq 1 ] && has "lines.csv:5: " "$tmp/err"
ok "line numbers count the line breaks inside quoted fields" $?

# --- import: header problems
printf 'email,stage\na@imp.test,new\n' >"$tmp/nocol.csv"
run patient import --practice clinic "$tmp/nocol.csv"
[ $rc -eq 1 ] && has "missing required column name" "$tmp/err"
ok "a missing required column is refused" $?
printf 'name,stage\nA,new\n' >"$tmp/noemail.csv"
run patient import --practice clinic "$tmp/noemail.csv"
[ $rc -eq 1 ] && has "missing required column email" "$tmp/err"
ok "a missing email column is refused" $?
printf 'email,name,shoe_size\na@imp.test,A,42\n' >"$tmp/unknown.csv"
run patient import --practice clinic "$tmp/unknown.csv"
[ $rc -eq 1 ] && has 'unknown column "shoe_size"' "$tmp/err"
ok "an unknown column is refused" $?

# --- import: invalid bytes
printf 'email,name\nu1@imp.test,Bad \xff byte\nu2@imp.test,"Nul \0 here"\n' >"$tmp/bytes.csv"
run patient import --practice clinic "$tmp/bytes.csv"
[ $rc -eq 1 ] && has "bytes.csv:2: invalid UTF-8" "$tmp/err" && has "bytes.csv:3: NUL byte" "$tmp/err"
ok "invalid UTF-8 and NUL bytes are reported per line" $?

# --- import: the error list is capped
{
	echo "email,name"
	for i in $(seq 1 150); do echo "bad$i,Name $i"; done
} >"$tmp/many.csv"
run patient import --practice clinic "$tmp/many.csv"
[ $rc -eq 1 ] && [ "$(grep -c 'many\.csv:' "$tmp/err")" -eq 101 ] && has "… and 50 more" "$tmp/err"
ok "at most 100 bad rows are listed, then '… and N more'" $?

# --- import: 20,000 good rows, from stdin, with progress
run practice add --name 'Bulk Clinic' --slug bulk --from-address a@bulk.test --reply-domain bulk.test
{
	echo "email,first_name,last_name,stage,coach_email"
	for i in $(seq 1 20000); do
		echo "p$i@bulk.test,First$i,Last$i,active,"
	done
} >"$tmp/big.csv"
t0=$(date +%s%N)
run_in "$tmp/big.csv" patient import --practice bulk -
t1=$(date +%s%N)
[ $rc -eq 0 ] && has "imported 20000 patients into bulk" "$tmp/out"
ok "a 20000-row CSV on stdin imports (in $(( (t1 - t0) / 1000000 )) ms)" $?
has "validated 10000 rows" "$tmp/err" && has "imported 20000/20000" "$tmp/err"
ok "progress lines on stderr" $?
[ "$(count_patients bulk)" -eq 20000 ]
ok "all 20000 rows are in the database" $?
run --quiet patient import --practice bulk "$tmp/big.csv"
[ $rc -eq 1 ] && ! has "validated" "$tmp/err" && has "… and 19900 more" "$tmp/err"
ok "importing the same file again: every row already exists; --quiet hides progress" $?

# --- command line
for sub in "practice add" "practice list" "staff add" "staff list" \
	"patient add" "patient list" "patient import" "demo seed"; do
	# shellcheck disable=SC2086
	run $sub --help
	[ $rc -eq 0 ] && has "NAME" "$tmp/out" && has "SYNOPSIS" "$tmp/out" &&
		has "DESCRIPTION" "$tmp/out" && has "OPTIONS" "$tmp/out" &&
		has "EXAMPLES" "$tmp/out" && has "EXIT STATUS" "$tmp/out" && [ ! -s "$tmp/err" ]
	ok "$sub --help exits 0 with a full manual page on stdout" $?
done
run patient --help
ok "patient --help exits 0" $rc
run patient import --practice clinic --bogus "$tmp/big.csv"
[ $rc -eq 2 ] && has "unknown option '--bogus'" "$tmp/err"
ok "an unknown option exits 2" $?
run patient add --practice clinic --email a@b.test
[ $rc -eq 2 ]
ok "a missing required option exits 2" $?
run staff frobnicate
[ $rc -eq 2 ]
ok "an unknown subcommand exits 2" $?
run patient list --practice nosuch
[ $rc -eq 1 ] && has 'no practice with slug "nosuch"' "$tmp/err"
ok "an unknown practice exits 1 and says so" $?

# --- demo
run demo seed
[ $rc -eq 0 ] && has "owner@practice.test" "$tmp/out" && has "@patients.test" "$tmp/out"
ok "demo seed creates the demo and prints the logins" $?
[ "$(count_patients riverside)" -ge 8 ]
ok "the demo has its patients" $?
run demo seed
[ $rc -eq 0 ] && has "already exists" "$tmp/out"
ok "demo seed again changes nothing and exits 0" $?
run demo seed --force
[ $rc -eq 0 ] && has "demo practice riverside created" "$tmp/out" &&
	[ "$(count_patients riverside)" -eq 8 ]
ok "demo seed --force recreates it" $?

echo "1..$n"
if [ $failed -gt 0 ]; then
	echo "# $failed of $n failed"
	exit 1
fi
exit 0
