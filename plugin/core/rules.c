/* The reloadable rule set; see cable_rules.h. Pure. */
#include <stdlib.h>

#include "cable_rules.h"

void cable_rules_free(struct cable_rules *r)
{
	size_t i;

	if (r == NULL)
		return;
	cable_chanmap_free(r->chanmap);
	cable_keyset_free(r->keys);
	cable_acl_free(r->acl);
	for (i = 0; i < CABLE_ARRAY_LEN(r->strings); i++)
		free(r->strings[i]);
	free(r);
}
