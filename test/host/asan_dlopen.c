/*
 * Linked into mosquitto_cable.so and mosquitto_cable_gateway.so only in AddressSanitizer
 * builds (CABLE_SANITIZE with address; see test/integration/README.md).
 *
 * The adapter loads the gateway, and the gateway lws' libev glue, with RTLD_DEEPBIND
 * (docs/architecture.md). ASan's dlopen() interceptor refuses that flag outright: a
 * DEEPBIND library whose own dependencies lead to libc would bind malloc past the ASan
 * runtime. Both sanitizer-built objects list libasan.so first among their dependencies,
 * so under DEEPBIND their lookups still find ASan's allocator before libc's, and the glue
 * allocates through lws. This dlopen(), hidden and so used only by the two objects that
 * define it, loads DEEPBIND objects with dlmopen(LM_ID_BASE), which is the same load
 * into the main namespace and which ASan does not intercept, then lets ASan see the new
 * module through its own dlopen() with RTLD_NOLOAD (for symbolized reports).
 * Every other load goes through the process's dlopen() unchanged.
 *
 * dlclose() is a no-op for the same two objects, so the gateway and the libev glue stay
 * mapped until the process exits and a LeakSanitizer report at exit can name their
 * functions and lines (an unloaded module shows as "<unknown module>").
 *
 * Any thread: only forwards to the dynamic linker.
 */
#include <dlfcn.h>
#include <stddef.h>

typedef void *(*dlopen_fn)(const char *, int);

void *dlopen(const char *file, int mode)
{
	/* The process's dlopen: ASan's interceptor, which forwards to libc's. */
	dlopen_fn next = (dlopen_fn)dlsym(RTLD_DEFAULT, "dlopen");
	void *handle;
	void *again;

	if (next == NULL)
		return NULL;
	if (file == NULL || (mode & RTLD_DEEPBIND) == 0)
		return next(file, mode);
	handle = dlmopen(LM_ID_BASE, file, mode);
	if (handle != NULL) {
		again = next(file, RTLD_LAZY | RTLD_NOLOAD);
		(void)again; /* one more reference: the module stays loaded anyway */
	}
	return handle;
}

int dlclose(void *handle)
{
	(void)handle;
	return 0;
}
