/*
 * Who a connection is: the result of token verification, used by the channel map
 * (placeholders) and the ACL.
 *
 * Thread: any; immutable after it is built.
 */
#ifndef CABLE_PRINCIPAL_H
#define CABLE_PRINCIPAL_H

#include <stddef.h>

#include <jansson.h>

struct cable_principal {
	char *user;   /* from the configured user claim ("sub"); never NULL once verified */
	char **roles; /* from the configured roles claim; may be NULL when nroles == 0 */
	size_t nroles;
	long long exp;  /* token expiry, Unix seconds; 0 = none */
	json_t *claims; /* the whole verified claim set (owned reference), for {claim.x} */
};

/* Free the members (not the struct). Accepts a zeroed struct. */
void cable_principal_release(struct cable_principal *p);

#endif
