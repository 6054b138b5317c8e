/*
 * Topic ACL: parser and checks. Pure; any thread once loaded; see cable_acl.h for the
 * contract and docs/acl.md for the operator's view.
 *
 * DESIGN: a loaded ACL is a set of rule blocks: one common block (rules before any
 * user/role line), one block per user and per role (sorted by name, found by binary
 * search), and one block of patterns. Each block keeps its deny rules and its allow
 * rules in separate lists, because deny wins: a check first asks "does any applicable
 * deny rule match?" across every block, and only then "does any applicable allow rule
 * match?". Order in the file therefore never matters, which is what an operator coming
 * from Mosquitto's acl_file expects (it moves deny entries to the front of each list).
 *
 * The three questions asked of a rule filter are all answered by topic.c or by
 * filters_intersect() below: does it match a topic name (check), does a subscription
 * filter lie within it (subscribe, allow and deny), and does it share a topic with a
 * subscription filter (subscribe, deny: PARTIAL). Pattern rules are expanded into a
 * scratch buffer per question, so the same three functions serve them.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cable_acl.h"
#include "cable_topic.h"

/* Expanded patterns up to this size use the stack; longer ones one malloc per use. */
#define ACL_SCRATCH 256
/* How much of a bad token an error text quotes. */
#define ACL_SHOWN 40

struct acl_rule {
	char *filter; /* NUL-terminated copy; len excludes the NUL */
	size_t len;
	unsigned access;       /* CABLE_ACL_READ | CABLE_ACL_WRITE bits; 0 in deny lists */
	unsigned placeholders; /* number of "%u" levels; non-zero only for patterns */
};

struct acl_rules {
	struct acl_rule *v;
	size_t n, cap;
};

struct acl_block {
	char *name; /* NULL for the common and pattern blocks */
	size_t name_len;
	unsigned line; /* where the block starts, for duplicate errors */
	struct acl_rules deny, allow;
};

struct acl_blocks {
	struct acl_block *v;
	size_t n, cap;
};

struct cable_acl {
	struct acl_block common;   /* topic lines before any user/role line */
	struct acl_block patterns; /* every pattern line, wherever it appears */
	struct acl_blocks users;   /* sorted by name once loaded */
	struct acl_blocks roles;   /* sorted by name once loaded */
	size_t nrules;
};

/* ---- Topic levels ------------------------------------------------------------------- */

static bool level_is(const char *lvl, size_t n, const char *word)
{
	size_t wn = strlen(word);

	return n == wn && memcmp(lvl, word, n) == 0;
}

/* Does the two-byte sequence `pair` occur anywhere in (s, n)? */
static bool level_contains(const char *s, size_t n, const char *pair)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (s[i] == pair[0] && s[i + 1] == pair[1])
			return true;
	}
	return false;
}

/*
 * Is there a topic name that both valid filters match? Level by level: '#' matches
 * whatever the other filter has left (zero levels included), '+' any one level, and
 * two literals must be equal; on the first level a wildcard never meets a literal that
 * starts with '$'. The witness built along the way takes the literal where one side
 * has one and "x" where both have wildcards. It is a valid topic except in two cases:
 *   - it is one empty level, the empty topic ("+" and "/#" share only that), which is
 *     checked;
 *   - it would exceed the length cap (two long filters whose literals sit on different
 *     levels), which is not: then this says "yes" where the answer is "no", and that
 *     can only turn an ALLOW into a PARTIAL.
 */
static bool filters_intersect(const char *a, size_t alen, const char *b, size_t blen)
{
	/* a and b are valid filters (see rule_test). */
	struct cable_topic_cursor ca, cb;
	const char *al = NULL, *bl = NULL;
	size_t an = 0, bn = 0, levels = 0;
	bool ha, hb, first_empty = false;

	if (alen == 0 || blen == 0)
		return false;
	if (((a[0] == '+' || a[0] == '#') && b[0] == '$') ||
	    ((b[0] == '+' || b[0] == '#') && a[0] == '$'))
		return false;
	cable_topic_cursor_init(&ca, a, alen);
	cable_topic_cursor_init(&cb, b, blen);
	for (;;) {
		ha = cable_topic_cursor_next(&ca, &al, &an);
		hb = cable_topic_cursor_next(&cb, &bl, &bn);
		if (!ha && !hb)
			return true; /* same number of levels, all compatible (and one
			              * level alone is never empty: "" is not a filter) */
		if ((ha && level_is(al, an, "#")) || (hb && level_is(bl, bn, "#"))) {
			/* The witness may go on only if both may: '#' with '#', or '#' with
			 * a next level of the other. If it must stop here, it must not be
			 * the lone empty level. */
			return (ha && hb) || !(levels == 1 && first_empty);
		}
		if (!ha || !hb)
			return false; /* one needs another level, the other cannot have one */
		if (levels++ == 0)
			first_empty = an == 0 || bn == 0;
		if (level_is(al, an, "+") || level_is(bl, bn, "+"))
			continue;
		if (an != bn || memcmp(al, bl, an) != 0)
			return false;
	}
}

/* ---- Building ------------------------------------------------------------------------ */

struct acl_parser {
	struct cable_acl *acl;
	/* Where topic lines go. It points into a block array that realloc may move, so
	 * it is set again after every push (and only a push moves the array). */
	struct acl_block *cur;
	unsigned line;
	size_t line_off;
	struct cable_error *err;
};

static int rules_push(struct acl_rules *rs, const char *filter, size_t len, unsigned access,
                      unsigned placeholders)
{
	struct acl_rule *r;

	r = cable_grow(rs->v, rs->n, &rs->cap, sizeof(*r), 4);
	if (r == NULL)
		return CABLE_ENOMEM;
	rs->v = r;
	r = &rs->v[rs->n];
	r->filter = malloc(len + 1);
	if (r->filter == NULL)
		return CABLE_ENOMEM;
	memcpy(r->filter, filter, len);
	r->filter[len] = '\0';
	r->len = len;
	r->access = access;
	r->placeholders = placeholders;
	rs->n++;
	return CABLE_OK;
}

static void rules_release(struct acl_rules *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		free(rs->v[i].filter);
	free(rs->v);
}

static void block_release(struct acl_block *b)
{
	free(b->name);
	rules_release(&b->deny);
	rules_release(&b->allow);
}

static void blocks_release(struct acl_blocks *bs)
{
	size_t i;

	for (i = 0; i < bs->n; i++)
		block_release(&bs->v[i]);
	free(bs->v);
}

static int blocks_push(struct acl_blocks *bs, const char *name, size_t len, unsigned line)
{
	struct acl_block *b;

	b = cable_grow(bs->v, bs->n, &bs->cap, sizeof(*b), 4);
	if (b == NULL)
		return CABLE_ENOMEM;
	bs->v = b;
	b = &bs->v[bs->n];
	memset(b, 0, sizeof(*b));
	b->name = malloc(len + 1);
	if (b->name == NULL)
		return CABLE_ENOMEM;
	memcpy(b->name, name, len);
	b->name[len] = '\0';
	b->name_len = len;
	b->line = line;
	bs->n++;
	return CABLE_OK;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

static int block_cmp(const void *va, const void *vb)
{
	const struct acl_block *a = va, *b = vb;

	return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

struct acl_name {
	const char *s;
	size_t len;
};

static int block_key_cmp(const void *vkey, const void *vb)
{
	const struct acl_name *key = vkey;
	const struct acl_block *b = vb;

	return name_cmp(key->s, key->len, b->name, b->name_len);
}

/* The block named (name, len) in a sorted list, or NULL. */
static const struct acl_block *blocks_find(const struct acl_blocks *bs, const char *name,
                                           size_t len)
{
	struct acl_name key = {name, len};

	if (bs->n == 0)
		return NULL;
	return bsearch(&key, bs->v, bs->n, sizeof(*bs->v), block_key_cmp);
}

/* ---- Parsing ------------------------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * A printable excerpt of (s, n) for an error text: at most ACL_SHOWN bytes, anything
 * but printable ASCII shown as '?', "..." when cut. out has ACL_SHOWN + 4 bytes.
 */
static const char *shown(char *out, const char *s, size_t n)
{
	size_t i, m = n < ACL_SHOWN ? n : ACL_SHOWN;

	for (i = 0; i < m; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (m < n) {
		memcpy(out + m, "...", 3);
		m += 3;
	}
	out[m] = '\0';
	return out;
}

__attribute__((format(printf, 3, 4))) static int parse_fail(struct acl_parser *p, int code,
                                                            const char *fmt, ...)
{
	char what[CABLE_ERROR_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cable_error_set(p->err, code, "line %u: %s", p->line, what);
	if (p->err)
		p->err->offset = p->line_off;
	return code;
}

static int parse_nomem(struct acl_parser *p)
{
	return parse_fail(p, CABLE_ENOMEM, "out of memory");
}

/*
 * Placeholders in a rule filter. In a pattern, a level that mentions "%u" must be
 * exactly "%u" (substitution inside a level is how Mosquitto 2.0's acl_file lets a
 * user name widen a rule), and "%c" is refused: a browser has no client id, and
 * silently treating it as text would hide the operator's mistake. In a topic line '%'
 * is ordinary text ("10%cash"), but a level that is exactly "%u" or "%c" is surely a
 * placeholder written on the wrong kind of line, so that is reported too.
 */
static int scan_placeholders(struct acl_parser *p, const char *f, size_t flen, bool pattern,
                             unsigned *count)
{
	static const char no_client_id[] =
	        "'%c' (client id) is not supported: browsers have no MQTT client id";
	struct cable_topic_cursor c;
	const char *l;
	size_t n;

	*count = 0;
	cable_topic_cursor_init(&c, f, flen);
	while (cable_topic_cursor_next(&c, &l, &n)) {
		if (!pattern) {
			if (level_is(l, n, "%u"))
				return parse_fail(p, CABLE_EINVAL,
				                  "'%%u' is substituted only in 'pattern' lines");
			if (level_is(l, n, "%c"))
				return parse_fail(p, CABLE_EINVAL, "%s", no_client_id);
			continue;
		}
		if (level_contains(l, n, "%c"))
			return parse_fail(p, CABLE_EINVAL, "%s", no_client_id);
		if (!level_contains(l, n, "%u"))
			continue;
		if (!level_is(l, n, "%u"))
			return parse_fail(p, CABLE_EINVAL, "'%%u' must be a whole topic level");
		(*count)++;
	}
	return CABLE_OK;
}

/* "topic|pattern [access] <filter>"; rest is what follows the keyword, trimmed. */
static int parse_rule(struct acl_parser *p, bool pattern, const char *rest, size_t n)
{
	static const struct {
		const char *word;
		unsigned access;
		bool deny;
	} words[] = {
	        {"read", CABLE_ACL_READ, false},
	        {"write", CABLE_ACL_WRITE, false},
	        {"readwrite", CABLE_ACL_READ | CABLE_ACL_WRITE, false},
	        {"deny", 0, true},
	};
	const char *kw = pattern ? "pattern" : "topic";
	const char *filter = rest;
	size_t flen = n, wn = 0, i;
	unsigned access = CABLE_ACL_READ | CABLE_ACL_WRITE, placeholders;
	bool deny = false;
	char sh[ACL_SHOWN + 4];
	struct acl_rules *list;
	int rc;

	if (n == 0)
		return parse_fail(p, CABLE_EINVAL, "'%s' needs a filter", kw);
	while (wn < n && !is_blank(rest[wn]))
		wn++;
	if (wn < n) {
		/* Two or more words: the first is the access word, the rest the filter
		 * (spaces included), as in Mosquitto. */
		for (i = 0; i < CABLE_ARRAY_LEN(words); i++) {
			if (level_is(rest, wn, words[i].word))
				break;
		}
		if (i == CABLE_ARRAY_LEN(words))
			return parse_fail(p, CABLE_EINVAL,
			                  "unknown access '%s' (read, write, readwrite or deny)",
			                  shown(sh, rest, wn));
		access = words[i].deny ? 0 : words[i].access;
		deny = words[i].deny;
		filter = rest + wn;
		flen = n - wn;
		while (flen > 0 && is_blank(*filter)) {
			filter++;
			flen--;
		}
	} else {
		/* One word: Mosquitto reads "topic read" as readwrite on the topic "read";
		 * that is far more likely a rule with its filter missing. */
		for (i = 0; i < CABLE_ARRAY_LEN(words); i++) {
			if (level_is(rest, n, words[i].word))
				return parse_fail(p, CABLE_EINVAL,
				                  "'%s %s' has no filter (for a topic named '%s' "
				                  "write '%s readwrite %s')",
				                  kw, words[i].word, words[i].word, kw,
				                  words[i].word);
		}
	}
	if (!cable_topic_filter_valid(filter, flen))
		return parse_fail(p, CABLE_EINVAL,
		                  "invalid filter '%s' ('+' and '#' fill a whole level, '#' "
		                  "only last; valid UTF-8)",
		                  shown(sh, filter, flen));
	rc = scan_placeholders(p, filter, flen, pattern, &placeholders);
	if (rc != CABLE_OK)
		return rc;
	if (pattern)
		list = deny ? &p->acl->patterns.deny : &p->acl->patterns.allow;
	else
		list = deny ? &p->cur->deny : &p->cur->allow;
	if (rules_push(list, filter, flen, access, placeholders) != CABLE_OK)
		return parse_nomem(p);
	p->acl->nrules++;
	return CABLE_OK;
}

/* "user|role <name>": start that block. */
static int parse_block(struct acl_parser *p, bool role, const char *name, size_t n)
{
	struct acl_blocks *bs = role ? &p->acl->roles : &p->acl->users;

	if (n == 0)
		return parse_fail(p, CABLE_EINVAL, "'%s' needs a name", role ? "role" : "user");
	if (!cable_utf8_valid(name, n))
		return parse_fail(p, CABLE_EINVAL, "%s name is not valid UTF-8 text",
		                  role ? "role" : "user");
	if (blocks_push(bs, name, n, p->line) != CABLE_OK)
		return parse_nomem(p);
	p->cur = &bs->v[bs->n - 1];
	return CABLE_OK;
}

static int parse_line(struct acl_parser *p, const char *s, size_t n)
{
	const char *rest;
	size_t kn = 0, rn;
	char sh[ACL_SHOWN + 4];

	while (n > 0 && is_blank(*s)) {
		s++;
		n--;
	}
	while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
		n--;
	if (n == 0 || s[0] == '#')
		return CABLE_OK;
	if (memchr(s, '\0', n) != NULL)
		return parse_fail(p, CABLE_EINVAL, "NUL byte");
	while (kn < n && !is_blank(s[kn]))
		kn++;
	rest = s + kn;
	rn = n - kn;
	while (rn > 0 && is_blank(*rest)) {
		rest++;
		rn--;
	}
	if (level_is(s, kn, "topic"))
		return parse_rule(p, false, rest, rn);
	if (level_is(s, kn, "pattern"))
		return parse_rule(p, true, rest, rn);
	if (level_is(s, kn, "user"))
		return parse_block(p, false, rest, rn);
	if (level_is(s, kn, "role"))
		return parse_block(p, true, rest, rn);
	return parse_fail(p, CABLE_EINVAL, "unknown keyword '%s' (topic, pattern, user or role)",
	                  shown(sh, s, kn));
}

/*
 * Sort the blocks for lookup and find a name given two blocks (refused: one place to
 * read a user's rights is easier to review). Returns the block whose second
 * occurrence comes earliest in the file, with both line numbers, or NULL.
 */
static const struct acl_block *blocks_sort(struct acl_blocks *bs, unsigned *first, unsigned *second)
{
	const struct acl_block *dup = NULL;
	unsigned lo, next, l;
	size_t i, j;

	if (bs->n > 1)
		qsort(bs->v, bs->n, sizeof(*bs->v), block_cmp);
	for (i = 0; i < bs->n; i = j) {
		lo = bs->v[i].line;
		next = UINT_MAX;
		for (j = i + 1; j < bs->n && block_cmp(&bs->v[i], &bs->v[j]) == 0; j++) {
			l = bs->v[j].line;
			if (l < lo) {
				next = lo;
				lo = l;
			} else if (l < next) {
				next = l;
			}
		}
		if (next != UINT_MAX && (dup == NULL || next < *second)) {
			dup = &bs->v[i];
			*first = lo;
			*second = next;
		}
	}
	return dup;
}

static int blocks_finish(struct acl_parser *p)
{
	const struct acl_block *u, *r, *dup;
	unsigned uf = 0, us = 0, rf = 0, rs = 0;
	char sh[ACL_SHOWN + 4];
	bool role;

	u = blocks_sort(&p->acl->users, &uf, &us);
	r = blocks_sort(&p->acl->roles, &rf, &rs);
	if (u == NULL && r == NULL)
		return CABLE_OK;
	role = u == NULL || (r != NULL && rs < us);
	dup = role ? r : u;
	p->line = role ? rs : us;
	p->line_off = 0; /* line offsets are not kept; the line number says where */
	return parse_fail(p, CABLE_EINVAL, "a second block for %s '%s' (the first is at line %u)",
	                  role ? "role" : "user", shown(sh, dup->name, dup->name_len),
	                  role ? rf : uf);
}

struct cable_acl *cable_acl_new(const char *buf, size_t len, struct cable_error *err)
{
	struct acl_parser p;
	struct cable_acl *acl;
	const char *nl;
	size_t pos = 0, end;
	int rc = CABLE_OK;

	memset(&p, 0, sizeof(p));
	p.err = err;
	if (buf == NULL && len != 0) {
		cable_error_set(err, CABLE_EINVAL, "no rule text");
		return NULL;
	}
	acl = calloc(1, sizeof(*acl));
	if (acl == NULL) {
		cable_error_set(err, CABLE_ENOMEM, "out of memory");
		return NULL;
	}
	p.acl = acl;
	p.cur = &acl->common;
	/* A byte order mark from an editor is not a keyword. */
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	while (pos < len && rc == CABLE_OK) {
		p.line++;
		p.line_off = pos;
		nl = memchr(buf + pos, '\n', len - pos);
		end = nl ? (size_t)(nl - buf) : len;
		rc = parse_line(&p, buf + pos, end - pos);
		pos = end + 1;
	}
	if (rc == CABLE_OK)
		rc = blocks_finish(&p);
	if (rc != CABLE_OK) {
		cable_acl_free(acl);
		return NULL;
	}
	return acl;
}

void cable_acl_free(struct cable_acl *acl)
{
	if (acl == NULL)
		return;
	block_release(&acl->common);
	block_release(&acl->patterns);
	blocks_release(&acl->users);
	blocks_release(&acl->roles);
	free(acl);
}

size_t cable_acl_rule_count(const struct cable_acl *acl)
{
	return acl ? acl->nrules : 0;
}

/* ---- Checking ------------------------------------------------------------------------ */

/* What a rule filter is asked about the query string q. */
enum acl_test {
	ACL_MATCHES,    /* q is a topic name the filter matches */
	ACL_CONTAINS,   /* q is a filter lying within the rule's filter */
	ACL_INTERSECTS, /* q is a filter sharing at least one topic with the rule's */
};

struct acl_query {
	const struct cable_acl *acl;
	const struct cable_principal *who;
	const struct acl_block *user; /* the user's own block, or NULL */
	const char *q;
	size_t qlen;
	size_t user_len;
	bool user_ok; /* the user may be substituted for "%u" */
};

/*
 * A rule's filter against the query. Both are valid already (rules when loaded, a
 * pattern after expansion by construction, the query in cable_acl_check/subscribe), so
 * nothing is validated again per rule.
 */
static bool rule_test(enum acl_test t, const char *f, size_t flen, const char *q, size_t qlen)
{
	switch (t) {
	case ACL_MATCHES:
		return cable_topic_matches_valid(f, flen, q, qlen);
	case ACL_CONTAINS:
		return cable_topic_filter_within_valid(q, qlen, f, flen);
	case ACL_INTERSECTS:
		return filters_intersect(f, flen, q, qlen);
	}
	return false;
}

/* The rules of one kind in a block: deny rules, or allow rules granting `access`. */
static bool block_any(const struct acl_block *b, bool deny, unsigned access, enum acl_test t,
                      const char *q, size_t qlen)
{
	const struct acl_rules *rs = deny ? &b->deny : &b->allow;
	size_t i;

	for (i = 0; i < rs->n; i++) {
		if (!deny && (rs->v[i].access & access) == 0)
			continue;
		if (rule_test(t, rs->v[i].filter, rs->v[i].len, q, qlen))
			return true;
	}
	return false;
}

/* Copy the rule's filter into out with every "%u" level replaced by (v, vlen). */
static void pattern_expand(const struct acl_rule *r, const char *v, size_t vlen, char *out)
{
	struct cable_topic_cursor c;
	const char *l;
	size_t n, o = 0;
	bool first = true;

	cable_topic_cursor_init(&c, r->filter, r->len);
	while (cable_topic_cursor_next(&c, &l, &n)) {
		if (!first)
			out[o++] = '/';
		first = false;
		if (level_is(l, n, "%u")) {
			memcpy(out + o, v, vlen);
			o += vlen;
		} else {
			memcpy(out + o, l, n);
			o += n;
		}
	}
}

/*
 * One pattern rule. A user that cannot be substituted (or would make the filter too
 * long) never satisfies an allow rule, and meets a deny rule with "%u" read as '+',
 * so the failure modes (odd name, no memory) only ever take access away.
 */
static bool pattern_test(const struct acl_query *qy, const struct acl_rule *r, bool deny,
                         enum acl_test t)
{
	char stack[ACL_SCRATCH], *buf;
	const char *v = qy->who->user;
	size_t vlen = qy->user_len, need;
	bool hit;

	if (r->placeholders == 0)
		return rule_test(t, r->filter, r->len, qy->q, qy->qlen);
	/* user_ok bounds vlen by the level cap, so the product cannot overflow. */
	need = qy->user_ok ? r->len - 2 * (size_t)r->placeholders + vlen * r->placeholders : 0;
	if (!qy->user_ok || need > CABLE_TOPIC_MAX_LEN) {
		if (!deny)
			return false;
		v = "+";
		vlen = 1;
		need = r->len - (size_t)r->placeholders;
	}
	buf = need <= sizeof(stack) ? stack : malloc(need);
	if (buf == NULL)
		return deny;
	pattern_expand(r, v, vlen, buf);
	hit = rule_test(t, buf, need, qy->q, qy->qlen);
	if (buf != stack)
		free(buf);
	return hit;
}

/*
 * Does any applicable rule of one kind pass the test? Applicable: the common block,
 * the user's block, each of the principal's roles, and the patterns.
 */
static bool any_rule(const struct acl_query *qy, bool deny, unsigned access, enum acl_test t)
{
	const struct cable_principal *who = qy->who;
	const struct acl_block *b;
	const struct acl_rules *rs;
	size_t i;

	if (block_any(&qy->acl->common, deny, access, t, qy->q, qy->qlen))
		return true;
	if (qy->user && block_any(qy->user, deny, access, t, qy->q, qy->qlen))
		return true;
	for (i = 0; i < who->nroles && who->roles != NULL; i++) {
		if (who->roles[i] == NULL)
			continue;
		b = blocks_find(&qy->acl->roles, who->roles[i], strlen(who->roles[i]));
		if (b && block_any(b, deny, access, t, qy->q, qy->qlen))
			return true;
	}
	rs = deny ? &qy->acl->patterns.deny : &qy->acl->patterns.allow;
	for (i = 0; i < rs->n; i++) {
		if (!deny && (rs->v[i].access & access) == 0)
			continue;
		if (pattern_test(qy, &rs->v[i], deny, t))
			return true;
	}
	return false;
}

/* False when nobody can be allowed anything: no ACL, no principal, no user. */
static bool query_init(struct acl_query *qy, const struct cable_acl *acl,
                       const struct cable_principal *who, const char *q, size_t qlen)
{
	if (acl == NULL || who == NULL || who->user == NULL || q == NULL)
		return false;
	qy->acl = acl;
	qy->who = who;
	qy->q = q;
	qy->qlen = qlen;
	qy->user_len = strlen(who->user);
	qy->user = blocks_find(&acl->users, who->user, qy->user_len);
	/* The brief's list for substituted values: no '/', '+', '#', '$' anywhere (the
	 * level check alone only refuses a leading '$'), not empty, valid UTF-8. */
	qy->user_ok = cable_topic_level_valid(who->user, qy->user_len) &&
	              memchr(who->user, '$', qy->user_len) == NULL;
	return true;
}

enum cable_acl_result cable_acl_check(const struct cable_acl *acl,
                                      const struct cable_principal *who, int access,
                                      const char *topic, size_t len)
{
	struct acl_query qy;

	if (access != CABLE_ACL_READ && access != CABLE_ACL_WRITE)
		return CABLE_ACL_DENY;
	if (!query_init(&qy, acl, who, topic, len) || !cable_topic_name_valid(topic, len))
		return CABLE_ACL_DENY;
	if (any_rule(&qy, true, 0, ACL_MATCHES))
		return CABLE_ACL_DENY;
	if (any_rule(&qy, false, (unsigned)access, ACL_MATCHES))
		return CABLE_ACL_ALLOW;
	return CABLE_ACL_DENY;
}

enum cable_acl_result cable_acl_subscribe(const struct cable_acl *acl,
                                          const struct cable_principal *who, const char *filter,
                                          size_t len)
{
	struct acl_query qy;

	if (!query_init(&qy, acl, who, filter, len) || !cable_topic_filter_valid(filter, len))
		return CABLE_ACL_DENY;
	/* Everything it could deliver is denied: refuse now rather than filter forever
	 * (and keep a topic name's answer equal to cable_acl_check's). */
	if (any_rule(&qy, true, 0, ACL_CONTAINS))
		return CABLE_ACL_DENY;
	if (!any_rule(&qy, false, CABLE_ACL_READ, ACL_CONTAINS))
		return CABLE_ACL_DENY;
	if (any_rule(&qy, true, 0, ACL_INTERSECTS))
		return CABLE_ACL_PARTIAL;
	return CABLE_ACL_ALLOW;
}
