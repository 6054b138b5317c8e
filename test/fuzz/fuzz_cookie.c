/*
 * libFuzzer target for plugin/core/cookie.c.
 *
 * Input: name NUL header (without a NUL, the name is "cable_jwt" and the whole input is
 * the header). cable_cookie_get is compared with a second, deliberately naive reading
 * of RFC 6265 done here (split on ';', cut at the first '=', strip blanks and one pair
 * of quotes): not found exactly when no pair has the name, refused exactly when two or
 * more do, and otherwise the same value, pointing into the header. The header is an
 * exact-size copy, so ASan catches any read past its length.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cable_cookie.h"
#include "fuzz.h"

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The naive reading: number of pairs named `name`, and the value of the last one. */
static size_t oracle(const char *h, size_t len, const char *name, size_t nlen, const char **v,
                     size_t *vn)
{
	size_t count = 0, i = 0, j, k, a, b;

	while (i <= len) {
		for (j = i; j < len && h[j] != ';'; j++)
			;
		for (k = i; k < j && h[k] != '='; k++)
			;
		if (k < j) {
			for (a = i; a < k && blank(h[a]); a++)
				;
			for (b = k; b > a && blank(h[b - 1]); b--)
				;
			if (b - a == nlen && nlen > 0 && memcmp(h + a, name, nlen) == 0) {
				count++;
				for (a = k + 1; a < j && blank(h[a]); a++)
					;
				for (b = j; b > a && blank(h[b - 1]); b--)
					;
				if (b - a >= 2 && h[a] == '"' && h[b - 1] == '"') {
					a++;
					b--;
				}
				*v = h + a;
				*vn = b - a;
			}
		}
		i = j + 1;
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *nul, *name = "cable_jwt", *v = NULL, *ov = NULL;
	size_t nlen = 9, hlen = size, vn = 0, ovn = 0, count;
	struct cable_error err = {0};
	char *h;
	int rc;

	nul = memchr(in, '\0', size);
	if (nul != NULL) {
		name = in;
		nlen = (size_t)(nul - in);
		hlen = size - nlen - 1;
		in = nul + 1;
	}
	h = malloc(hlen ? hlen : 1);
	CHECK(h != NULL);
	memcpy(h, in, hlen);
	rc = cable_cookie_get(h, hlen, name, nlen, &v, &vn, &err);
	count = oracle(h, hlen, name, nlen, &ov, &ovn);
	if (count == 0) {
		CHECK(rc == CABLE_ENOTFOUND);
	} else if (count > 1) {
		CHECK(rc == CABLE_EINVAL && err.code == CABLE_EINVAL);
		CHECK(v == NULL && vn == 0);
	} else {
		CHECK(rc == CABLE_OK);
		CHECK(v == ov && vn == ovn);
		CHECK(v >= h && v + vn <= h + hlen);
		CHECK(memchr(v, ';', vn) == NULL);
	}
	free(h);
	return 0;
}
