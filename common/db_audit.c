/* common/db_audit.c: the audit chain's encoding and append (see
 * db_audit.h and migrations/006_audit.sql). */
#include "common/db_audit.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"

#define AUDIT_CONTEXT "pstaudit"      /* 8 bytes: libsodium's KDF context */

static void
put_u64(crypto_auth_hmacsha256_state *st, uint64_t v)
{
	uint8_t b[8];

	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
	crypto_auth_hmacsha256_update(st, b, 8);
}

static void
put_byte(crypto_auth_hmacsha256_state *st, uint8_t v)
{
	crypto_auth_hmacsha256_update(st, &v, 1);
}

static void
put_str(crypto_auth_hmacsha256_state *st, const char *s)
{
	size_t n = strlen(s);
	uint8_t b[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
		(uint8_t)n };

	crypto_auth_hmacsha256_update(st, b, 4);
	crypto_auth_hmacsha256_update(st, (const uint8_t *)s, n);
}

static void
opt_u64(crypto_auth_hmacsha256_state *st, int64_t v)
{
	put_byte(st, v != 0);
	if (v != 0)
		put_u64(st, (uint64_t)v);
}

static void
opt_str(crypto_auth_hmacsha256_state *st, const char *s)
{
	put_byte(st, s != NULL);
	if (s != NULL)
		put_str(st, s);
}

int
audit_hash(const uint8_t server_key[CRYPTO_KEY_BYTES], int key_version,
    int64_t id, int64_t created_us, const uint8_t *prev,
    const struct audit_entry *e, uint8_t out[CRYPTO_HASH_BYTES])
{
	crypto_auth_hmacsha256_state st;
	uint8_t key[CRYPTO_KEY_BYTES];
	uint8_t v[2] = { (uint8_t)(key_version >> 8), (uint8_t)key_version };
	uint8_t addr[16];

	if (crypto_kdf_derive_from_key(key, sizeof key, (uint64_t)key_version,
	    AUDIT_CONTEXT, server_key) != 0)
		return -1;
	crypto_auth_hmacsha256_init(&st, key, sizeof key);
	sodium_memzero(key, sizeof key);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)"postern-audit-v1",
	    16);
	put_u64(&st, (uint64_t)id);
	crypto_auth_hmacsha256_update(&st, v, 2);
	put_u64(&st, (uint64_t)created_us);
	put_byte(&st, prev != NULL);
	if (prev != NULL)
		crypto_auth_hmacsha256_update(&st, prev, CRYPTO_HASH_BYTES);
	opt_u64(&st, e->practice_id);
	put_str(&st, e->actor_kind);
	opt_u64(&st, e->actor_id);
	put_str(&st, e->action);
	opt_str(&st, e->object_type);
	opt_u64(&st, e->object_id);
	put_byte(&st, e->ip != NULL);
	if (e->ip != NULL) {
		if (inet_pton(AF_INET, e->ip, addr) == 1) {
			put_byte(&st, 4);
			crypto_auth_hmacsha256_update(&st, addr, 4);
		} else if (inet_pton(AF_INET6, e->ip, addr) == 1) {
			put_byte(&st, 6);
			crypto_auth_hmacsha256_update(&st, addr, 16);
		} else {
			sodium_memzero(&st, sizeof st);
			return -1;
		}
	}
	opt_str(&st, e->details);
	crypto_auth_hmacsha256_final(&st, out);
	return 0;
}

static void
hex_param(const uint8_t *p, char out[2 + 2 * CRYPTO_HASH_BYTES + 1])
{
	out[0] = '\\';
	out[1] = 'x';
	crypto_hex(p, CRYPTO_HASH_BYTES, out + 2);
}

#define AUDIT_COLS 11          /* parameters per row */

int
db_audit_append(struct db *db, const uint8_t server_key[CRYPTO_KEY_BYTES],
    const struct audit_entry *e, size_t n, struct err *err)
{
	static const char head_sql[] =
	    "SELECT pg_advisory_xact_lock(hashtextextended('postern.audit_log', 0))";
	/* one row: the head (NULLs on an empty log) and now() in µs */
	static const char last_sql[] =
	    "SELECT coalesce(a.id, 0), a.hash,"
	    " (extract(epoch FROM now()) * 1000000)::bigint"
	    " FROM (SELECT 1) one LEFT JOIN LATERAL"
	    " (SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) a ON true";
	PGresult *res = NULL;
	int64_t last_id, created_us;
	uint8_t prev[CRYPTO_HASH_BYTES], hash[CRYPTO_HASH_BYTES];
	bool have_prev;
	char (*num)[4][24] = NULL, (*hex)[2][2 + 2 * CRYPTO_HASH_BYTES + 1] = NULL;
	const char **params = NULL;
	struct buf sql;
	int ret = -1;

	if (n == 0)
		return 0;
	if (n > AUDIT_BATCH_MAX)
		return err_set(err, false, "audit: %zu entries at once, over %d",
		    n, AUDIT_BATCH_MAX);
	if (db_query_prepared(db, "db_audit_lock", head_sql, 0, NULL,
	    PGRES_TUPLES_OK, NULL, err) < 0)
		return -1;
	if (db_query_prepared(db, "db_audit_last", last_sql, 0, NULL,
	    PGRES_TUPLES_OK, &res, err) < 0)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return err_set(err, true, "audit: no chain head row");
	}
	if (db_get_i64(res, 0, 0, &last_id, err) < 0 ||
	    db_get_i64(res, 0, 2, &created_us, err) < 0) {
		PQclear(res);
		return -1;
	}
	have_prev = !PQgetisnull(res, 0, 1);
	if (have_prev) {
		size_t len = 0;
		unsigned char *raw = PQunescapeBytea(
		    (const unsigned char *)PQgetvalue(res, 0, 1), &len);

		if (raw == NULL || len != CRYPTO_HASH_BYTES) {
			PQfreemem(raw);
			PQclear(res);
			return err_set(err, false, "audit: chain head hash unreadable");
		}
		memcpy(prev, raw, CRYPTO_HASH_BYTES);
		PQfreemem(raw);
	}
	PQclear(res);

	num = xcalloc(n, sizeof *num);
	hex = xcalloc(n, sizeof *hex);
	params = xcalloc(n * AUDIT_COLS, sizeof *params);
	buf_init(&sql, 64 * 1024);
	if (buf_adds(&sql, "INSERT INTO audit_log (id, key_version, prev_hash,"
	    " practice_id, actor_kind, actor_id, action, object_type, object_id,"
	    " ip, details, hash) VALUES ") < 0) {
		err_set(err, false, "audit: statement too long");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t id = last_id + 1 + (int64_t)i;
		const char **p = params + i * AUDIT_COLS;
		char ph[400];
		int b = (int)(i * AUDIT_COLS);

		if (audit_hash(server_key, AUDIT_KEY_VERSION, id, created_us,
		    have_prev || i > 0 ? prev : NULL, &e[i], hash) < 0) {
			err_set(err, false, "audit: bad ip address");
			goto out;
		}
		snprintf(num[i][0], sizeof num[i][0], "%lld", (long long)id);
		snprintf(num[i][1], sizeof num[i][1], "%lld",
		    (long long)e[i].practice_id);
		snprintf(num[i][2], sizeof num[i][2], "%lld",
		    (long long)e[i].actor_id);
		snprintf(num[i][3], sizeof num[i][3], "%lld",
		    (long long)e[i].object_id);
		if (have_prev || i > 0)
			hex_param(prev, hex[i][0]);
		hex_param(hash, hex[i][1]);
		p[0] = num[i][0];
		p[1] = have_prev || i > 0 ? hex[i][0] : NULL;
		p[2] = e[i].practice_id ? num[i][1] : NULL;
		p[3] = e[i].actor_kind;
		p[4] = e[i].actor_id ? num[i][2] : NULL;
		p[5] = e[i].action;
		p[6] = e[i].object_type;
		p[7] = e[i].object_id ? num[i][3] : NULL;
		p[8] = e[i].ip;
		p[9] = e[i].details;
		p[10] = hex[i][1];
		snprintf(ph, sizeof ph, "%s($%d::bigint, %d, $%d::bytea,"
		    " $%d::bigint, $%d, $%d::bigint, $%d, $%d, $%d::bigint,"
		    " $%d::inet, $%d::json, $%d::bytea)", i ? "," : "",
		    b + 1, AUDIT_KEY_VERSION, b + 2, b + 3, b + 4, b + 5, b + 6,
		    b + 7, b + 8, b + 9, b + 10, b + 11);
		if (buf_adds(&sql, ph) < 0) {
			err_set(err, false, "audit: statement too long");
			goto out;
		}
		memcpy(prev, hash, sizeof prev);
	}
	ret = db_query(db, buf_str(&sql), (int)(n * AUDIT_COLS), params,
	    PGRES_COMMAND_OK, NULL, err);
out:
	buf_fini(&sql);
	free(params);
	free(num);
	free(hex);
	return ret;
}
