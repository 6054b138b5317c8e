/* One cookie out of a Cookie header; see cable_cookie.h. Pure. */
#include <stdbool.h>
#include <string.h>

#include "cable_cookie.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* header[*from, *to) without the blanks at both ends. */
static void trim(const char *header, size_t *from, size_t *to)
{
	while (*from < *to && is_blank(header[*from]))
		(*from)++;
	while (*to > *from && is_blank(header[*to - 1]))
		(*to)--;
}

int cable_cookie_get(const char *header, size_t len, const char *name, size_t name_len,
                     const char **value, size_t *value_len, struct cable_error *err)
{
	const char *semi, *eq;
	size_t pos = 0, stop, ns, ne, vs, ve, found_at = 0, found_len = 0;
	bool found = false;

	if (header == NULL || name == NULL || name_len == 0)
		return CABLE_ENOTFOUND;
	while (pos <= len) {
		/* One pair: header[pos, stop). */
		semi = memchr(header + pos, ';', len - pos);
		stop = semi ? (size_t)(semi - header) : len;
		eq = memchr(header + pos, '=', stop - pos);
		if (eq != NULL) {
			ns = pos;
			ne = (size_t)(eq - header);
			trim(header, &ns, &ne);
			if (ne - ns == name_len && memcmp(header + ns, name, name_len) == 0) {
				if (found)
					return cable_error_set(err, CABLE_EINVAL,
					                       "more than one cookie named %.*s",
					                       (int)(name_len > 64 ? 64 : name_len),
					                       name);
				vs = (size_t)(eq - header) + 1;
				ve = stop;
				trim(header, &vs, &ve);
				if (ve - vs >= 2 && header[vs] == '"' && header[ve - 1] == '"') {
					vs++;
					ve--;
				}
				found = true;
				found_at = vs;
				found_len = ve - vs;
			}
		}
		pos = stop + 1;
	}
	if (!found)
		return CABLE_ENOTFOUND;
	*value = header + found_at;
	*value_len = found_len;
	return CABLE_OK;
}
