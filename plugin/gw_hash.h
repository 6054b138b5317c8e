/*
 * uthash as the gateway uses it: non-fatal on out of memory, small first tables.
 * Included by every gateway file that keeps a hash table (instead of <uthash.h>).
 */
#ifndef CABLE_GW_HASH_H
#define CABLE_GW_HASH_H

/*
 * uthash calls exit() when it cannot allocate, which would take the broker down with
 * the plugin. With HASH_NONFATAL_OOM it leaves the element out instead. The only
 * allocation an add can fail is a table's first (a failed growth keeps the table as it
 * is), so an add failed exactly when the table is still empty afterwards: GW_HASH_ADD.
 */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>
/*
 * Every connection with a subscription has its own uthash table (session->subs), and
 * uthash starts a table at 32 buckets: 512 bytes per connection, an eighth of its
 * memory, for the one to few subscriptions a browser usually has. Tables start at 4
 * buckets and double as they fill, as before. (uthash.h defines these unconditionally.)
 */
#undef HASH_INITIAL_NUM_BUCKETS
#undef HASH_INITIAL_NUM_BUCKETS_LOG2
#define HASH_INITIAL_NUM_BUCKETS      4U
#define HASH_INITIAL_NUM_BUCKETS_LOG2 2U

/* HASH_ADD_KEYPTR(hh, ...); false when it ran out of memory (the item is not added). */
#define GW_HASH_ADD(head, key, len, item, added)                                                   \
	do {                                                                                       \
		HASH_ADD_KEYPTR(hh, head, key, len, item);                                         \
		(added) = (head) != NULL;                                                          \
	} while (0)

#endif
