/* tests/fuzz/fuzz_cfg.c: the config reader over arbitrary file contents
 * (written to a memfd and read through /proc/self/fd): it loads or fails
 * cleanly, and every failure names the file. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct cfg cfg;
	struct err err;
	char path[64];
	int fd;

	if (!ready) {
		if (crypto_init(&err) < 0)
			abort();
		unsetenv("POSTERN_DATABASE_URL");
		unsetenv("POSTERN_SERVER_KEY");
		ready = 1;
	}
	fd = memfd_create("cfg", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	fchmod(fd, 0600);
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (cfg_load(&cfg, path, &err) == 0) {
		if (cfg.database.url == NULL || cfg.worker.threads < 1 ||
		    cfg.worker.threads > 64)
			abort();
		cfg_fini(&cfg);
	} else if (strstr(err.msg, path) == NULL) {
		abort();
	}
	close(fd);
	return 0;
}
