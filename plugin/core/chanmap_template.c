/*
 * Topic templates of the channel map: split into levels once at load time (literal
 * text, a param, {user}, {claim.NAME}), checked by expanding them with stand-ins, and
 * expanded with the bound values at bind time. Pure; see chanmap_internal.h.
 */
#include <stdlib.h>
#include <string.h>

#include "cable_topic.h"

#include "chanmap_internal.h"

/* The text a level expands to; NULL when it is {user} and there is no usable user.
 * vals == NULL means "stand-ins everywhere" (the load-time check). */
static const char *level_text(const struct level *l, const struct value *vals, const char *user,
                              size_t user_len, size_t *len)
{
	switch (l->kind) {
	case LEVEL_LITERAL:
		*len = l->len;
		return l->text;
	case LEVEL_PARAM:
		if (vals == NULL)
			break;
		*len = vals[l->param].len;
		return vals[l->param].s;
	case LEVEL_USER:
		if (vals == NULL)
			break;
		*len = user_len;
		return user;
	}
	*len = strlen(STANDIN);
	return STANDIN;
}

/*
 * Expand a template into a new NUL-terminated string. EINVAL when a {user} level has
 * no user or the result would exceed CABLE_TOPIC_MAX_LEN (checked before allocating,
 * so a long value cannot make us allocate much), ENOMEM.
 */
int chanmap_expand(const struct template *t, const struct value *vals, const char *user,
                   size_t user_len, char **out)
{
	size_t i, n, total = 0;
	const char *s;
	char *buf, *p;

	for (i = 0; i < t->nlevels; i++) {
		s = level_text(&t->levels[i], vals, user, user_len, &n);
		if (s == NULL || n > CABLE_TOPIC_MAX_LEN)
			return CABLE_EINVAL;
		total += n + (i > 0);
		if (total > CABLE_TOPIC_MAX_LEN)
			return CABLE_EINVAL;
	}
	buf = malloc(total + 1);
	if (buf == NULL)
		return CABLE_ENOMEM;
	p = buf;
	for (i = 0; i < t->nlevels; i++) {
		s = level_text(&t->levels[i], vals, user, user_len, &n);
		if (i > 0)
			*p++ = '/';
		memcpy(p, s, n);
		p += n;
	}
	*p = '\0';
	*out = buf;
	return CABLE_OK;
}

void chanmap_template_release(struct template *t)
{
	free(t->src);
	free(t->levels);
	memset(t, 0, sizeof(*t));
}

/*
 * The index of claim `name` among the channel's {claim.NAME} placeholders, adding it
 * if new; a negative status on a bad name or ENOMEM.
 */
static int claim_slot(struct channel *ch, const char *name, size_t len, const char *where,
                      struct cable_error *err)
{
	char **grown;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: a claim name is letters, digits and '_' only",
			                       where);
	}
	for (i = 0; i < ch->nclaims; i++) {
		if (strlen(ch->claims[i]) == len && memcmp(ch->claims[i], name, len) == 0)
			return (int)i;
	}
	grown = realloc(ch->claims, (ch->nclaims + 1) * sizeof(*grown));
	if (grown == NULL)
		return chanmap_nomem(err);
	ch->claims = grown;
	ch->claims[ch->nclaims] = chanmap_dup_mem(name, len);
	if (ch->claims[ch->nclaims] == NULL)
		return chanmap_nomem(err);
	return (int)ch->nclaims++;
}

/*
 * Split a template into levels and resolve placeholders against the channel's params.
 * Braces are reserved: a level containing one must be exactly "{name}".
 */
int chanmap_template_parse(struct template *t, struct channel *ch, const char *src,
                           const char *where, struct cable_error *err)
{
	size_t i, n, len = strlen(src), start, end;
	const char *lv, *name;
	size_t lvlen, namelen;
	struct level *l;

	if (len == 0)
		return cable_error_set(err, CABLE_EINVAL, "%s: empty topic", where);
	if (src[0] == '$')
		return cable_error_set(err, CABLE_EINVAL, "%s: a topic may not start with '$'",
		                       where);
	t->src = chanmap_dup_mem(src, len);
	if (t->src == NULL)
		return chanmap_nomem(err);
	for (i = 0, n = 1; i < len; i++)
		n += src[i] == '/';
	t->levels = calloc(n, sizeof(*t->levels));
	if (t->levels == NULL)
		return chanmap_nomem(err);
	t->nlevels = n;
	for (i = 0, start = 0; i < n; i++, start = end + 1) {
		for (end = start; end < len && t->src[end] != '/'; end++)
			;
		lv = t->src + start;
		lvlen = end - start;
		l = &t->levels[i];
		if (memchr(lv, '{', lvlen) == NULL && memchr(lv, '}', lvlen) == NULL) {
			l->kind = LEVEL_LITERAL;
			l->text = lv;
			l->len = lvlen;
			continue;
		}
		name = lv + 1;
		namelen = lvlen >= 2 ? lvlen - 2 : 0;
		if (lvlen < 3 || lv[0] != '{' || lv[lvlen - 1] != '}' ||
		    memchr(name, '{', namelen) || memchr(name, '}', namelen))
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: a placeholder must be a whole level, "
			                       "like a/{name}/b (level %zu is \"%.*s\")",
			                       where, i + 1, (int)(lvlen > 40 ? 40 : lvlen), lv);
		if (chanmap_name_is(name, namelen, "user")) {
			l->kind = LEVEL_USER;
			ch->uses_user = true;
			continue;
		}
		if (namelen > 6 && memcmp(name, "claim.", 6) == 0) {
			int rc = claim_slot(ch, name + 6, namelen - 6, where, err);

			if (rc < 0)
				return rc;
			l->kind = LEVEL_PARAM;
			l->param = ch->nparams + (size_t)rc;
			continue;
		}
		for (l->param = 0; l->param < ch->nparams; l->param++)
			if (chanmap_name_is(name, namelen, ch->params[l->param].name))
				break;
		if (l->param == ch->nparams)
			return cable_error_set(err, CABLE_EINVAL,
			                       "%s: placeholder {%.*s} is not a declared param",
			                       where, (int)(namelen > 40 ? 40 : namelen), name);
		l->kind = LEVEL_PARAM;
	}
	return CABLE_OK;
}

/* Judge a template by its expansion with stand-ins: streams must be valid filters,
 * action topics valid names (so no wildcards). */
int chanmap_template_check(const struct template *t, bool is_action, const char *where,
                           struct cable_error *err)
{
	char *s;
	size_t len;
	int rc;

	rc = chanmap_expand(t, NULL, NULL, 0, &s);
	if (rc == CABLE_ENOMEM)
		return chanmap_nomem(err);
	if (rc != CABLE_OK)
		return cable_error_set(err, CABLE_EINVAL, "%s: longer than %d bytes", where,
		                       CABLE_TOPIC_MAX_LEN);
	len = strlen(s);
	if (is_action && cable_topic_filter_valid(s, len) && cable_topic_has_wildcard(s, len))
		rc = cable_error_set(err, CABLE_EINVAL,
		                     "%s: an action topic may not contain wildcards", where);
	else if (is_action && !cable_topic_name_valid(s, len))
		rc = cable_error_set(err, CABLE_EINVAL, "%s: not a valid topic name", where);
	else if (!is_action && !cable_topic_filter_valid(s, len))
		rc = cable_error_set(err, CABLE_EINVAL, "%s: not a valid topic filter", where);
	free(s);
	return rc;
}
