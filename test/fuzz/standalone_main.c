/*
 * A main() for fuzz targets built without libFuzzer (gcc, or clang without
 * -fsanitize=fuzzer): replays inputs through LLVMFuzzerTestOneInput so a corpus runs
 * as a regression test in every build, under whatever sanitizers the build uses.
 *
 *   fuzz_proto_replay test/fuzz/corpus/proto            every file in the directory
 *   fuzz_proto_replay crash-1234 slow-unit-5678         the given files
 *
 * Directories are read one level deep, in name order, skipping dot files. Arguments
 * starting with '-' are ignored, so libFuzzer command lines also work. The exit status
 * is non-zero if a path cannot be read or no input was found; a failing input aborts
 * (the target's checks call abort()) after its name has been printed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read a whole file into a malloc'd buffer (never NULL on success, even if empty). */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
	FILE *f;
	uint8_t *buf = NULL, *tmp;
	size_t len = 0, cap = 0, n;

	f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			tmp = realloc(buf, cap);
			if (tmp == NULL)
				goto fail;
			buf = tmp;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		goto fail;
	fclose(f);
	*out = buf;
	*out_len = len;
	return 0;
fail:
	free(buf);
	fclose(f);
	return -1;
}

static int run_file(const char *path, size_t *count)
{
	uint8_t *data;
	size_t len;

	if (read_file(path, &data, &len) != 0) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* Printed before running, so the input that crashes is the last line shown. */
	printf("%s (%zu bytes)\n", path, len);
	fflush(stdout);
	/* Copy into an exact-size allocation: ASan then catches reads past the end. */
	if (len > 0) {
		uint8_t *exact = malloc(len);

		if (exact == NULL) {
			free(data);
			return -1;
		}
		memcpy(exact, data, len);
		free(data);
		data = exact;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	(*count)++;
	return 0;
}

static int skip_dot(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static int run_dir(const char *dir, size_t *count)
{
	struct dirent **names;
	struct stat st;
	char *path;
	int n, i, rc = 0;

	n = scandir(dir, &names, skip_dot, alphasort);
	if (n < 0) {
		fprintf(stderr, "cannot list %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;

		path = malloc(len);
		if (path == NULL) {
			rc = -1;
		} else {
			snprintf(path, len, "%s/%s", dir, names[i]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
			    run_file(path, count) != 0)
				rc = -1;
			free(path);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	struct stat st;
	size_t count = 0;
	int i, rc = 0;

	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "cannot stat %s: %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) != 0)
				rc = 1;
		} else if (run_file(argv[i], &count) != 0) {
			rc = 1;
		}
	}
	printf("%zu inputs replayed\n", count);
	if (count == 0) {
		fprintf(stderr, "no inputs found\n");
		rc = 1;
	}
	return rc;
}
