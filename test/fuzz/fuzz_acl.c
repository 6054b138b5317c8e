/*
 * libFuzzer target for plugin/core/acl.c: arbitrary rule text, users, roles, topics and
 * filters. The first byte chooses the mode:
 *
 *   0  rules: the rest is rule text; the probes are the words of that text (as
 *      users, roles, filters and topics) and a few fixed hostile user names: each
 *      principal probes one pair of neighbouring words, in both orders;
 *   1  rules NUL user NUL roles NUL filter NUL topic (roles comma-separated; missing
 *      fields are empty);
 *   2  user NUL roles NUL filter NUL topic against a fixed rule set.
 *
 * Properties checked (besides ASan/UBSan finding nothing):
 *   - a failed load says "line N: ..." with N within the text (or is ENOMEM);
 *   - answers are DENY/ALLOW (check) or DENY/ALLOW/PARTIAL (subscribe); invalid
 *     topics and filters are denied;
 *   - no rule filter starts with '$' (no '$' after a blank in the text) => every
 *     '$' topic and filter is denied;
 *   - for a topic name, subscribe == check(READ);
 *   - subscribe ALLOW => every topic the filter matches (the fuzzed topic, and topics
 *     built from the filter) is readable; a matching unreadable topic => not ALLOW;
 *   - removing the allowing pattern lines that use %u never adds access, and changes
 *     nothing for a user that cannot be substituted (injection: "a/b", "+", "$x"...).
 *
 * Seeds: test/fuzz/corpus/acl/. The fixed rule set of mode 2 is loaded once and kept
 * (static state that every run leaves unchanged).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable.h"
#include "cable_acl.h"
#include "cable_principal.h"
#include "cable_topic.h"
#include "fuzz.h"

/* Never compiled out (unlike assert under NDEBUG). */
#define MAX_WORDS 16
#define MAX_ROLES 8

static const char fixed_rules[] = "topic read public/#\n"
                                  "topic deny public/secret/#\n"
                                  "topic read $SYS/broker/+\n"
                                  "pattern readwrite users/%u/#\n"
                                  "pattern deny users/%u/locked\n"
                                  "pattern read %u\n"
                                  "pattern read rooms/+/%u/in\n"
                                  "user alice\n"
                                  "topic readwrite actuators/42/#\n"
                                  "topic deny actuators/42/secret\n"
                                  "user bob\n"
                                  "topic read actuators/42/#\n"
                                  "role operators\n"
                                  "topic read actuators/+/state\n"
                                  "topic readwrite actuators/+/cmd\n"
                                  "role all\n"
                                  "topic read #\n"
                                  "topic deny +/+/firmware/#\n";

/* One rule set under test and its copy without the %u allowing patterns. */
struct subject {
	const struct cable_acl *acl;
	struct cable_acl *stripped; /* owned; NULL when it failed to load */
	bool has_dollar_rule;       /* some filter may start with '$' */
};

/* A field of the input: (s, n), not NUL-terminated. */
struct field {
	const char *s;
	size_t n;
};

static char *dup_n(const char *s, size_t n)
{
	char *c = malloc(n + 1);

	CHECK(c != NULL);
	memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

/* Split (s, n) at NULs into up to max fields; missing ones are empty. */
static void split_nul(const char *s, size_t n, struct field *f, size_t max)
{
	const char *nul;
	size_t i;

	for (i = 0; i < max; i++) {
		f[i].s = s;
		f[i].n = 0;
		if (i + 1 == max) {
			f[i].n = n;
			break;
		}
		nul = memchr(s, '\0', n);
		f[i].n = nul ? (size_t)(nul - s) : n;
		s += f[i].n + (nul ? 1 : 0);
		n -= f[i].n + (nul ? 1 : 0);
	}
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A rule filter always follows a blank, so without " $" no filter starts with '$'. */
static bool text_has_dollar_rule(const char *s, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++) {
		if (s[i] == '$' && is_blank(s[i - 1]))
			return true;
	}
	return false;
}

/*
 * The rule text with every allowing pattern that uses %u turned into a comment. The
 * keyword and access word are found as the parser finds them (blanks are spaces and
 * tabs, the line ends at '\n').
 */
static char *strip_user_patterns(const char *s, size_t n)
{
	char *out = dup_n(s, n);
	size_t pos = 0, end, i, w;

	while (pos < n) {
		end = pos;
		while (end < n && out[end] != '\n')
			end++;
		i = pos;
		while (i < end && is_blank(out[i]))
			i++;
		if (end - i > 8 && memcmp(out + i, "pattern", 7) == 0 && is_blank(out[i + 7])) {
			w = i + 7;
			while (w < end && is_blank(out[w]))
				w++;
			/* A deny pattern keeps its line; so does one without %u. */
			if (!(end - w > 4 && memcmp(out + w, "deny", 4) == 0 &&
			      is_blank(out[w + 4])) &&
			    memmem(out + i, end - i, "%u", 2) != NULL)
				out[i] = '#';
		}
		pos = end + 1;
	}
	return out;
}

/* Could this user be substituted for %u? (The contract in cable_acl.h.) */
static bool user_substitutable(const char *u)
{
	size_t n = strlen(u);

	return cable_topic_level_valid(u, n) && memchr(u, '$', n) == NULL;
}

/*
 * A topic that the filter matches: '+' becomes `plus`, and '#' becomes nothing or
 * "x" (hash_level). NULL when the result is not a valid topic (e.g. "#" alone).
 */
static char *instantiate(const char *f, size_t n, const char *plus, bool hash_level)
{
	size_t plen = strlen(plus), cap = n * (plen + 2) + 4, o = 0, i = 0, j;
	char *out = malloc(cap);

	CHECK(out != NULL);
	while (i <= n) {
		j = i;
		while (j < n && f[j] != '/')
			j++;
		if (j - i == 1 && f[i] == '+') {
			memcpy(out + o, plus, plen);
			o += plen;
		} else if (j - i == 1 && f[i] == '#') {
			if (hash_level) {
				out[o++] = 'x';
			} else if (o > 0) {
				o--; /* drop the '/' before it: "a/#" matches "a" */
			}
		} else {
			memcpy(out + o, f + i, j - i);
			o += j - i;
		}
		if (j < n)
			out[o++] = '/';
		i = j + 1;
	}
	if (!cable_topic_name_valid(out, o)) {
		free(out);
		return NULL;
	}
	out[o] = '\0';
	return out;
}

/* subscribe(F) said `s`; t is a topic F matches: its read check must agree. */
static void check_under(const struct cable_acl *acl, const struct cable_principal *who,
                        enum cable_acl_result s, const char *t, size_t tn)
{
	enum cable_acl_result c = cable_acl_check(acl, who, CABLE_ACL_READ, t, tn);

	if (s == CABLE_ACL_ALLOW)
		CHECK(c == CABLE_ACL_ALLOW);
}

static void probe(const struct subject *sj, const struct cable_principal *who, const char *f,
                  size_t fn, const char *t, size_t tn)
{
	const struct cable_acl *acl = sj->acl;
	bool fvalid = cable_topic_filter_valid(f, fn), tvalid = cable_topic_name_valid(t, tn);
	enum cable_acl_result s = cable_acl_subscribe(acl, who, f, fn);
	enum cable_acl_result r = cable_acl_check(acl, who, CABLE_ACL_READ, t, tn);
	enum cable_acl_result w = cable_acl_check(acl, who, CABLE_ACL_WRITE, t, tn);
	static const char *const pluses[] = {"x", "", "alice"};
	char *inst;
	size_t i;

	CHECK(s == CABLE_ACL_DENY || s == CABLE_ACL_ALLOW || s == CABLE_ACL_PARTIAL);
	CHECK(r == CABLE_ACL_DENY || r == CABLE_ACL_ALLOW);
	CHECK(w == CABLE_ACL_DENY || w == CABLE_ACL_ALLOW);
	if (!fvalid)
		CHECK(s == CABLE_ACL_DENY);
	if (!tvalid)
		CHECK(r == CABLE_ACL_DENY && w == CABLE_ACL_DENY);
	if (!sj->has_dollar_rule) {
		if (fn > 0 && f[0] == '$')
			CHECK(s == CABLE_ACL_DENY);
		if (tn > 0 && t[0] == '$')
			CHECK(r == CABLE_ACL_DENY && w == CABLE_ACL_DENY);
	}
	/* A topic name is a filter with exactly one topic. */
	if (tvalid)
		CHECK(cable_acl_subscribe(acl, who, t, tn) == r);
	if (fvalid && !cable_topic_has_wildcard(f, fn))
		CHECK(s != CABLE_ACL_PARTIAL);
	if (fvalid && tvalid && cable_topic_matches(f, fn, t, tn))
		check_under(acl, who, s, t, tn);
	if (fvalid) {
		for (i = 0; i < sizeof(pluses) / sizeof(pluses[0]); i++) {
			inst = instantiate(f, fn, pluses[i], i == 0);
			if (inst == NULL)
				continue;
			CHECK(cable_topic_matches(f, fn, inst, strlen(inst)));
			check_under(acl, who, s, inst, strlen(inst));
			free(inst);
		}
	}
	/* Removing allowing %u patterns never adds access, and for a user that cannot be
	 * substituted it changes nothing at all. */
	if (sj->stripped != NULL) {
		enum cable_acl_result s2 = cable_acl_subscribe(sj->stripped, who, f, fn);
		enum cable_acl_result r2 =
		        cable_acl_check(sj->stripped, who, CABLE_ACL_READ, t, tn);
		enum cable_acl_result w2 =
		        cable_acl_check(sj->stripped, who, CABLE_ACL_WRITE, t, tn);

		if (r2 == CABLE_ACL_ALLOW)
			CHECK(r == CABLE_ACL_ALLOW);
		if (w2 == CABLE_ACL_ALLOW)
			CHECK(w == CABLE_ACL_ALLOW);
		/* Deny rules are all still there, so only a DENY may differ. */
		if (s2 != CABLE_ACL_DENY)
			CHECK(s == s2);
		if (who->user != NULL && !user_substitutable(who->user))
			CHECK(s == s2 && r == r2 && w == w2);
	}
}

/* A principal from fields: user text and comma-separated roles (all copied). */
struct owned_principal {
	struct cable_principal p;
	char *roles[MAX_ROLES];
};

static void principal_make(struct owned_principal *op, const char *u, size_t un, const char *r,
                           size_t rn)
{
	size_t i = 0, j;

	memset(op, 0, sizeof(*op));
	op->p.user = dup_n(u, un);
	while (rn > 0 && i < MAX_ROLES) {
		j = 0;
		while (j < rn && r[j] != ',')
			j++;
		op->roles[i++] = dup_n(r, j);
		r += j < rn ? j + 1 : j;
		rn -= j < rn ? j + 1 : j;
	}
	op->p.roles = op->roles;
	op->p.nroles = i;
}

static void principal_drop(struct owned_principal *op)
{
	size_t i;

	free(op->p.user);
	for (i = 0; i < op->p.nroles; i++)
		free(op->roles[i]);
}

/* Load rules; on failure check the error's shape. NULL when it did not load. */
static struct cable_acl *load_checked(const char *s, size_t n)
{
	struct cable_error err;
	struct cable_acl *acl;
	unsigned long line;
	size_t lines = 1, i;
	char *end;

	memset(&err, 0, sizeof(err));
	acl = cable_acl_new(s, n, &err);
	if (acl != NULL)
		return acl;
	CHECK(err.code == CABLE_EINVAL || err.code == CABLE_ENOMEM);
	CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
	if (err.code == CABLE_EINVAL) {
		CHECK(strncmp(err.text, "line ", 5) == 0);
		line = strtoul(err.text + 5, &end, 10);
		CHECK(end[0] == ':' && end[1] == ' ');
		for (i = 0; i < n; i++)
			lines += s[i] == '\n';
		CHECK(line >= 1 && line <= lines);
		CHECK(err.offset <= n);
	}
	return NULL;
}

static void subject_init(struct subject *sj, const struct cable_acl *acl, const char *s, size_t n)
{
	char *stripped = strip_user_patterns(s, n);

	sj->acl = acl;
	sj->stripped = cable_acl_new(stripped, n, NULL);
	sj->has_dollar_rule = text_has_dollar_rule(s, n);
	free(stripped);
}

/* Mode 0: probe with the words of the text, and with hostile users. */
static void run_words(const struct subject *sj, const char *s, size_t n)
{
	static const char *const hostile[] = {"a/b", "+", "#", "$x", "", "x$y", "%u"};
	struct field words[MAX_WORDS];
	struct owned_principal op;
	size_t nw = 0, i = 0, j, a, b;

	while (i < n && nw < MAX_WORDS) {
		while (i < n && (is_blank(s[i]) || s[i] == '\n' || s[i] == '\r'))
			i++;
		j = i;
		while (j < n && !is_blank(s[j]) && s[j] != '\n' && s[j] != '\r')
			j++;
		if (j > i) {
			words[nw].s = s + i;
			words[nw].n = j - i;
			nw++;
		}
		i = j;
	}
	if (nw == 0)
		return;
	for (a = 0; a < nw + CABLE_ARRAY_LEN(hostile); a++) {
		if (a < nw) {
			/* The word as user, the next word as its role. */
			b = a + 1 < nw ? a + 1 : a;
			principal_make(&op, words[a].s, words[a].n, words[b].s, words[b].n);
		} else {
			principal_make(&op, hostile[a - nw], strlen(hostile[a - nw]), "", 0);
		}
		/*
		 * Two probes per principal, the word pair in both orders: every word is a
		 * user, a filter and a topic, and word a meets itself as a filter (a user
		 * named like a rule's level). The fuzzer pairs words by moving them, at
		 * a fraction of the cost of all nw x nw pairs per input.
		 */
		j = a % nw;
		b = (a + 1) % nw;
		probe(sj, &op.p, words[j].s, words[j].n, words[b].s, words[b].n);
		probe(sj, &op.p, words[b].s, words[b].n, words[j].s, words[j].n);
		principal_drop(&op);
	}
}

static void run_query(const struct subject *sj, const struct field *q)
{
	struct owned_principal op;

	principal_make(&op, q[0].s, q[0].n, q[1].s, q[1].n);
	probe(sj, &op.p, q[2].s, q[2].n, q[3].s, q[3].n);
	/* The same query with no user at all is denied outright. */
	CHECK(cable_acl_subscribe(sj->acl, NULL, q[2].s, q[2].n) == CABLE_ACL_DENY);
	principal_drop(&op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cable_acl *fixed;
	static struct subject fixed_sj;
	const char *in = (const char *)data + 1;
	size_t n = size ? size - 1 : 0;
	struct cable_acl *acl;
	struct subject sj;
	struct field f[5];

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		acl = load_checked(in, n);
		if (acl == NULL)
			return 0;
		subject_init(&sj, acl, in, n);
		run_words(&sj, in, n);
		cable_acl_free(sj.stripped);
		cable_acl_free(acl);
		break;
	case 1:
		split_nul(in, n, f, 5);
		acl = load_checked(f[0].s, f[0].n);
		if (acl == NULL)
			return 0;
		subject_init(&sj, acl, f[0].s, f[0].n);
		run_query(&sj, f + 1);
		cable_acl_free(sj.stripped);
		cable_acl_free(acl);
		break;
	default:
		if (fixed == NULL) {
			fixed = cable_acl_new(fixed_rules, sizeof(fixed_rules) - 1, NULL);
			CHECK(fixed != NULL);
			subject_init(&fixed_sj, fixed, fixed_rules, sizeof(fixed_rules) - 1);
			CHECK(fixed_sj.stripped != NULL);
		}
		split_nul(in, n, f, 4);
		run_query(&fixed_sj, f);
		break;
	}
	return 0;
}
