/*
 * libFuzzer target for plugin/core/topic.c, differential against libmosquitto.
 *
 * Input: "<filter>\0<topic>" (no NUL: the whole input is both). Validation and
 * matching must never crash, and whenever both sides are valid our answers must be
 * libmosquitto's: UTF-8 validity, filter/name syntax, and topic matching. Containment
 * is checked for its invariants (reflexive; a name lies within a filter exactly when
 * the filter matches it; a filter lies within "#" unless it starts with '$') and, for
 * two small valid filters, against a brute-force oracle built on the matcher.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "cable_topic.h"
#include "fuzz.h"

/* Both harness and replay builds keep assertions: failures must abort. */
/*
 * A NUL-terminated copy for libmosquitto, padded with extra NULs: its UTF-8 validator
 * (2.0.11) may read up to three bytes past a truncated sequence at the end.
 */
static char *mosq_copy(const char *s, size_t len)
{
	char *c = calloc(1, len + 4);

	CHECK(c != NULL);
	memcpy(c, s, len);
	return c;
}

/* Syntax as libmosquitto sees it, plus the limits its library build does not apply. */
static bool mosq_valid(const char *s, size_t len, bool filter)
{
	size_t i, levels = 1;

	if (len == 0 || len > 65535)
		return false;
	if (mosquitto_validate_utf8(s, (int)len) != MOSQ_ERR_SUCCESS)
		return false;
	if ((filter ? mosquitto_sub_topic_check2(s, len) : mosquitto_pub_topic_check2(s, len)) !=
	    MOSQ_ERR_SUCCESS)
		return false;
	for (i = 0; i < len; i++)
		levels += s[i] == '/';
	return levels <= CABLE_TOPIC_MAX_LEVELS;
}

static void check_one(const char *s, size_t len, char *copy)
{
	bool utf8 = cable_utf8_valid(s, len);
	bool fvalid = cable_topic_filter_valid(s, len);
	bool nvalid = cable_topic_name_valid(s, len);
	bool level = cable_topic_level_valid(s, len);

	if (len <= 65536)
		CHECK(utf8 == (mosquitto_validate_utf8(copy, (int)len) == MOSQ_ERR_SUCCESS));
	CHECK(fvalid == mosq_valid(copy, len, true));
	CHECK(nvalid == mosq_valid(copy, len, false));
	CHECK(!nvalid || fvalid); /* every name is a filter */
	if (fvalid) {
		/* A valid filter with no wildcard level is a name. */
		CHECK(cable_topic_has_wildcard(s, len) == !nvalid);
		CHECK(cable_topic_filter_within(s, len, s, len));
		CHECK(cable_topic_filter_within(s, len, "#", 1) == (s[0] != '$'));
	} else {
		CHECK(!cable_topic_filter_within(s, len, s, len));
	}
	if (level) {
		CHECK(nvalid);
		CHECK(s[0] != '$' && memchr(s, '/', len) == NULL);
	}
}

/*
 * Containment oracle for two small valid filters F and G: enumerate every topic of
 * up to ORACLE_LEVELS + 1 levels over the literal levels of F and G plus fresh values
 * ("~", "~~", "" - at least one differs from any literal at each level), and look for
 * a topic one filter matches and the other does not. For filters of at most
 * ORACLE_LEVELS levels, that universe always holds a witness when one exists.
 */
#define ORACLE_LEVELS 3
#define ORACLE_ALPHA  7

struct oracle {
	const char *f, *g;
	size_t flen, glen;
	const char *alpha[ORACLE_ALPHA];
	size_t alen[ORACLE_ALPHA];
	size_t n;
	bool f_in_g, g_in_f; /* cleared by a counterexample */
};

/* Add the literal levels of s to the alphabet; false if s is too big for the oracle. */
static bool oracle_add_levels(struct oracle *o, const char *s, size_t len)
{
	size_t start = 0, i, k, n, levels = 0;

	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		n = i - start;
		if (++levels > ORACLE_LEVELS || n > 8)
			return false;
		if (!(n == 1 && (s[start] == '+' || s[start] == '#'))) {
			for (k = 0; k < o->n; k++) {
				if (o->alen[k] == n && memcmp(o->alpha[k], s + start, n) == 0)
					break;
			}
			if (k == o->n) {
				if (o->n == ORACLE_ALPHA)
					return false;
				o->alpha[o->n] = s + start;
				o->alen[o->n++] = n;
			}
		}
		start = i + 1;
	}
	return true;
}

static void oracle_walk(struct oracle *o, char *buf, size_t len, size_t depth)
{
	size_t k, n;
	bool mf, mg;

	for (k = 0; k < o->n; k++) {
		n = len;
		if (depth > 0)
			buf[n++] = '/';
		memcpy(buf + n, o->alpha[k], o->alen[k]);
		n += o->alen[k];
		/*
		 * Every level is a literal level of a valid filter (no wildcard, valid
		 * UTF-8, at most 8 bytes) or a fresh value, and there are at most
		 * ORACLE_LEVELS + 1 of them: the topic is valid exactly when it is not
		 * empty. F and G were validated by the caller, so the matcher for validated
		 * arguments is used (main checks it equals cable_topic_matches, and that
		 * libmosquitto agrees): no filter is validated again for each of the
		 * thousands of topics.
		 */
		if (n > 0) {
			mf = cable_topic_matches_valid(o->f, o->flen, buf, n);
			mg = cable_topic_matches_valid(o->g, o->glen, buf, n);
			if (mf && !mg)
				o->f_in_g = false;
			if (mg && !mf)
				o->g_in_f = false;
		}
		if (depth < ORACLE_LEVELS)
			oracle_walk(o, buf, n, depth + 1);
	}
}

static void check_within_oracle(const char *f, size_t flen, const char *g, size_t glen)
{
	static const char *const fresh[] = {"~", "~~", ""};
	struct oracle o;
	char buf[(ORACLE_LEVELS + 1) * 9 + 1];
	size_t k;

	memset(&o, 0, sizeof(o));
	o.f = f;
	o.flen = flen;
	o.g = g;
	o.glen = glen;
	o.f_in_g = o.g_in_f = true;
	for (k = 0; k < 3; k++) {
		o.alpha[o.n] = fresh[k];
		o.alen[o.n++] = strlen(fresh[k]);
	}
	if (!oracle_add_levels(&o, f, flen) || !oracle_add_levels(&o, g, glen))
		return;
	oracle_walk(&o, buf, 0, 0);
	CHECK(cable_topic_filter_within(f, flen, g, glen) == o.f_in_g);
	CHECK(cable_topic_filter_within(g, glen, f, flen) == o.g_in_f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const uint8_t *nul = memchr(data, 0, size);
	const char *filter = in, *topic = in;
	size_t flen = size, tlen = size;
	char *fcopy, *tcopy;
	bool fvalid, tvalid, ours, theirs = false;

	if (nul != NULL) {
		flen = (size_t)(nul - data);
		topic = in + flen + 1;
		tlen = size - flen - 1;
	}
	fcopy = mosq_copy(filter, flen);
	tcopy = mosq_copy(topic, tlen);

	check_one(filter, flen, fcopy);
	if (topic != filter)
		check_one(topic, tlen, tcopy);

	fvalid = cable_topic_filter_valid(filter, flen);
	tvalid = cable_topic_name_valid(topic, tlen);
	ours = cable_topic_matches(filter, flen, topic, tlen);
	if (fvalid && tvalid) {
		CHECK(mosquitto_topic_matches_sub(fcopy, tcopy, &theirs) == MOSQ_ERR_SUCCESS);
		CHECK(ours == theirs);
		/* A name is a wildcard-free filter, and lies within exactly the filters
		 * that match it. */
		CHECK(cable_topic_filter_within(topic, tlen, filter, flen) == ours);
		/* The variants for validated arguments (what the ACL uses) agree. */
		CHECK(cable_topic_matches_valid(filter, flen, topic, tlen) == ours);
		CHECK(cable_topic_filter_within_valid(topic, tlen, filter, flen) == ours);
	} else {
		CHECK(!ours);
	}
	/* Two valid filters: containment against the brute-force oracle. */
	if (fvalid && cable_topic_filter_valid(topic, tlen)) {
		check_within_oracle(filter, flen, topic, tlen);
		CHECK(cable_topic_filter_within_valid(filter, flen, topic, tlen) ==
		      cable_topic_filter_within(filter, flen, topic, tlen));
	}

	free(fcopy);
	free(tcopy);
	return 0;
}
