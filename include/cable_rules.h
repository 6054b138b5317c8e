/*
 * The reloadable part of the configuration: everything read from the files that
 * plugin options name (token keys, channel map). Built on the broker thread (at start
 * and on SIGHUP), handed to the gateway through the queue, and then owned and used by
 * the gateway thread only. Immutable once built.
 */
#ifndef CABLE_RULES_H
#define CABLE_RULES_H

#include "cable_acl.h"
#include "cable_chanmap.h"
#include "cable_jwt.h"

struct cable_rules {
	struct cable_chanmap *chanmap;
	struct cable_keyset *keys;      /* NULL in anonymous mode */
	struct cable_acl *acl;          /* NULL: no ACL file, the channel map alone decides */
	struct cable_jwt_policy policy; /* string members point into `strings` below */
	char *strings[4];               /* owned copies backing policy strings */
};

void cable_rules_free(struct cable_rules *r); /* accepts NULL */

#endif
