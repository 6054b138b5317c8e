/* The Origin allow-list; see cable_origin.h. Pure. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cable_origin.h"

struct entry {
	char *scheme; /* "https" */
	char *host;   /* "app.example.com", or the suffix ".example.com" for a wildcard */
	char *port;   /* "3000", or "" */
	bool wildcard;
};

struct cable_origins {
	bool any;
	size_t n;
	struct entry e[];
};

/* Split "scheme://host[:port]" without allocating. false if it is not that shape. */
static bool split(const char *s, size_t len, const char **scheme, size_t *slen, const char **host,
                  size_t *hlen, const char **port, size_t *plen)
{
	const char *sep, *end = s + len, *colon;

	sep = memmem(s, len, "://", 3);
	if (sep == NULL || sep == s)
		return false;
	*scheme = s;
	*slen = (size_t)(sep - s);
	*host = sep + 3;
	if (*host >= end)
		return false;
	colon = memchr(*host, ':', (size_t)(end - *host));
	if (memchr(*host, '/', (size_t)(end - *host)) || memchr(*host, '@', (size_t)(end - *host)))
		return false; /* an Origin has no path and no user info */
	if (colon) {
		*hlen = (size_t)(colon - *host);
		*port = colon + 1;
		*plen = (size_t)(end - *port);
		if (*plen == 0)
			return false;
		for (size_t i = 0; i < *plen; i++) {
			if ((*port)[i] < '0' || (*port)[i] > '9')
				return false;
		}
	} else {
		*hlen = (size_t)(end - *host);
		*port = "";
		*plen = 0;
	}
	return *hlen > 0;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void cable_origins_free(struct cable_origins *o)
{
	size_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->n; i++) {
		free(o->e[i].scheme);
		free(o->e[i].host);
		free(o->e[i].port);
	}
	free(o);
}

static bool is_sep(char c)
{
	return c == ' ' || c == ',' || c == '\t' || c == '\n' || c == '\r';
}

struct cable_origins *cable_origins_new(const char *spec, size_t len, struct cable_error *err)
{
	struct cable_origins *o;
	const char *p = spec, *end = spec + len, *tok, *scheme, *host, *port;
	size_t count = 0, tlen, slen, hlen, plen;

	for (p = spec; p < end;) {
		while (p < end && is_sep(*p))
			p++;
		if (p < end)
			count++;
		while (p < end && !is_sep(*p))
			p++;
	}
	o = calloc(1, sizeof(*o) + count * sizeof(o->e[0]));
	if (o == NULL) {
		cable_error_set(err, CABLE_ENOMEM, "out of memory");
		return NULL;
	}
	for (p = spec; p < end;) {
		struct entry *e;

		while (p < end && is_sep(*p))
			p++;
		if (p >= end)
			break;
		tok = p;
		while (p < end && !is_sep(*p))
			p++;
		tlen = (size_t)(p - tok);
		if (tlen == 1 && tok[0] == '*') {
			o->any = true;
			continue;
		}
		if (!split(tok, tlen, &scheme, &slen, &host, &hlen, &port, &plen)) {
			cable_error_set(err, CABLE_EINVAL,
			                "'%.*s' is not an origin like https://app.example.com",
			                (int)(tlen > 100 ? 100 : tlen), tok);
			cable_origins_free(o);
			return NULL;
		}
		e = &o->e[o->n++];
		if (hlen > 2 && host[0] == '*' && host[1] == '.') {
			e->wildcard = true;
			host++; /* keep ".example.com" */
			hlen--;
		} else if (memchr(host, '*', hlen)) {
			cable_error_set(err, CABLE_EINVAL,
			                "'%.*s': a wildcard may only be a leading '*.'",
			                (int)(tlen > 100 ? 100 : tlen), tok);
			cable_origins_free(o);
			return NULL;
		}
		e->scheme = dup_n(scheme, slen);
		e->host = dup_n(host, hlen);
		e->port = dup_n(port, plen);
		if (!e->scheme || !e->host || !e->port) {
			cable_origins_free(o);
			cable_error_set(err, CABLE_ENOMEM, "out of memory");
			return NULL;
		}
	}
	return o;
}

static bool eq_ci(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

bool cable_origins_allow(const struct cable_origins *o, const char *origin, size_t len)
{
	const char *scheme, *host, *port;
	size_t slen, hlen, plen, i, sl;

	if (o->any)
		return true;
	if (origin == NULL || !split(origin, len, &scheme, &slen, &host, &hlen, &port, &plen))
		return false; /* absent, "null" (opaque origins) or malformed */
	for (i = 0; i < o->n; i++) {
		const struct entry *e = &o->e[i];

		if (!eq_ci(scheme, slen, e->scheme) || strlen(e->port) != plen ||
		    memcmp(port, e->port, plen) != 0)
			continue;
		if (!e->wildcard) {
			if (eq_ci(host, hlen, e->host))
				return true;
			continue;
		}
		/* A wildcard host: a non-empty label, then the suffix ".example.com". */
		sl = strlen(e->host);
		if (hlen > sl && strncasecmp(host + hlen - sl, e->host, sl) == 0)
			return true;
	}
	return false;
}
