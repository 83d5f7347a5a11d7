#!/usr/bin/env bash
# tests/integration/migrate.sh: migrations on a fresh database, twice (the
# second run is a no-op), concurrently, and refused when a file changed.
. "$(dirname "$0")/lib.bash"

fresh_db migrate_t
n_files=$(ls "$top"/migrations/[0-9][0-9][0-9]_*.sql | wc -l)

expect_exit 0 "first migrate applies every file" "$ctl" -c "$CONF" migrate
contains "first run reports $n_files applied" "$last_out" "applied $n_files migration(s)"
check "schema_migrations has one row per file" \
	test "$(psql_db 'SELECT count(*) FROM schema_migrations')" = "$n_files"
expect_exit 0 "second migrate succeeds" "$ctl" -c "$CONF" migrate
contains "second run is a no-op" "$last_out" "nothing to apply"
check "second run recorded nothing new" \
	test "$(psql_db 'SELECT count(*) FROM schema_migrations')" = "$n_files"

tables="practices staff_users patients login_tokens sessions patient_messages
inbound_mail mailbox_state deliveries patient_notifications staff_notifications
appointments tasks invites practice_reports transfer_requests audit_log jobs
suppressions preferences"
missing=
for t in $tables; do
	[ "$(psql_db "SELECT to_regclass('public.$t') IS NOT NULL")" = t ] || missing="$missing $t"
done
check "every table of the design exists${missing:+ (missing:$missing)}" test -z "$missing"
check "no timestamp without time zone anywhere" test "$(psql_db \
	"SELECT count(*) FROM information_schema.columns WHERE table_schema='public'
	 AND data_type = 'timestamp without time zone'")" = 0

expect_exit 0 "--status lists everything as applied" "$ctl" -c "$CONF" migrate --status
contains "--status says 0 pending" "$last_out" "0 pending, 0 changed"

# Concurrent migrators on a second fresh database: both succeed, each file
# applied once.
fresh_db migrate_race
for i in 1 2 3; do "$ctl" -q -c "$CONF" migrate >"$POSTERN_TEST_TMP/race$i.out" 2>&1 & done
rc=0; for j in 1 2 3; do wait -n || rc=1; done
check "three concurrent migrators all exit 0" test "$rc" = 0
check "each file applied exactly once" \
	test "$(psql_db 'SELECT count(*) FROM schema_migrations')" = "$n_files"
check "exactly one migrator applied the files" \
	test "$(grep -l "applied $n_files migration" "$POSTERN_TEST_TMP"/race?.out | wc -l)" = 1

# A changed applied file stops everything.
mdir=$POSTERN_TEST_TMP/migrations_copy
rm -rf "$mdir"; cp -r "$top/migrations" "$mdir"
first=$(ls "$mdir"/[0-9][0-9][0-9]_*.sql | head -1)
echo "-- edited after the fact" >>"$first"
printf 'CREATE TABLE later_one (id int);\n' >"$mdir/999_later.sql"
expect_exit 1 "a changed applied file makes migrate fail" "$ctl" -c "$CONF" migrate --dir "$mdir"
contains "the message names the changed file" "$last_out" "$(basename "$first") was changed after it was applied"
check "nothing else was applied" test "$(psql_db "SELECT to_regclass('public.later_one') IS NULL")" = t
expect_exit 1 "--status exits 1 and shows CHANGED" "$ctl" -c "$CONF" migrate --status --dir "$mdir"
contains "--status marks it" "$last_out" "CHANGED"

# A failing migration is rolled back whole and reported.
rm -rf "$mdir"; cp -r "$top/migrations" "$mdir"
printf 'CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n' >"$mdir/998_broken.sql"
expect_exit 1 "a broken file makes migrate fail" "$ctl" -c "$CONF" migrate --dir "$mdir"
contains "the error names the file" "$last_out" "998_broken.sql"
check "its first statement was rolled back" test "$(psql_db "SELECT to_regclass('public.half_done') IS NULL")" = t
printf 'x\n' >"$mdir/12_bad_name.sql"
expect_exit 1 "a badly named file is refused" "$ctl" -c "$CONF" migrate --dir "$mdir"
contains "with the naming rule" "$last_out" "NNN_name.sql"

# Unreachable database: one clear message, exit 1, no crash.
bad=$POSTERN_TEST_TMP/unreachable.conf
(umask 077; printf '[database]\nurl = postgresql://nobody@127.0.0.1:1/none\nconnect_timeout_s = 2\n' >"$bad")
expect_exit 1 "unreachable database exits 1" "$ctl" -c "$bad" migrate
contains "with a clear message" "$last_out" "cannot connect to database postgresql://nobody@127.0.0.1:1/none"
finish
