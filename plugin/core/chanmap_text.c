/*
 * Helpers every part of the channel map uses: copies, names, quoting client text for
 * error messages, exact JSON serialization. Pure; see chanmap_internal.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanmap_internal.h"

char *chanmap_dup_mem(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

bool chanmap_name_is(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && memcmp(a, b, alen) == 0;
}

/*
 * Client-chosen names are quoted in error texts, which go to the log: bounded, and
 * anything but printable ASCII replaced, so a name can neither flood the log nor
 * forge a line in it.
 */
void chanmap_quote(char dst[QUOTE_MAX + 4], const char *s, size_t len)
{
	size_t i, n = len > QUOTE_MAX ? QUOTE_MAX : len;

	for (i = 0; i < n; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	if (n < len) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

int chanmap_nomem(struct cable_error *err)
{
	return cable_error_set(err, CABLE_ENOMEM, "out of memory");
}

/* Serialize into our own malloc'd buffer (NUL-terminated), so that cable_publish_release
 * can free() it whatever allocator jansson was given. */
int chanmap_dump(const json_t *j, size_t flags, char **out, size_t *outlen)
{
	size_t n;
	char *buf;

	n = json_dumpb(j, NULL, 0, flags);
	if (n == 0)
		return CABLE_ENOMEM;
	buf = malloc(n + 1);
	if (buf == NULL)
		return CABLE_ENOMEM;
	if (json_dumpb(j, buf, n, flags) != n) {
		free(buf);
		return CABLE_ENOMEM;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return CABLE_OK;
}

/*
 * jansson prints reals with 17 significant digits by default, which turns the 0.1 a
 * browser sent into 0.10000000000000001. Find the fewest digits (15..17) that still
 * round-trip every real in the document, so common values come out as sent and none
 * changes its value.
 */
static int real_precision(const json_t *j)
{
	char buf[40];
	const char *key;
	json_t *v;
	size_t i;
	int p, best = 15, sub;
	double d;

	switch (json_typeof(j)) {
	case JSON_REAL:
		d = json_real_value(j);
		for (p = 15; p < 17; p++) {
			snprintf(buf, sizeof(buf), "%.*g", p, d);
			if (strtod(buf, NULL) == d)
				return p;
		}
		return 17;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
		{
			sub = real_precision(v);
			best = sub > best ? sub : best;
		}
		return best;
	case JSON_OBJECT:
		json_object_foreach((json_t *)j, key, v)
		{
			sub = real_precision(v);
			best = sub > best ? sub : best;
		}
		return best;
	default:
		return best;
	}
}

size_t chanmap_dump_flags(const json_t *j)
{
	return JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
	       JSON_REAL_PRECISION((size_t)real_precision(j));
}
