/* The verified identity of a connection. Pure; see cable_principal.h. */
#include <stdlib.h>
#include <string.h>

#include "cable_principal.h"

void cable_principal_release(struct cable_principal *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->user);
	for (i = 0; i < p->nroles; i++)
		free(p->roles[i]);
	free(p->roles);
	json_decref(p->claims);
	memset(p, 0, sizeof(*p));
}
