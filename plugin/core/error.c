/* Status codes and error texts. Pure; any thread. */
#include <stdarg.h>
#include <stdio.h>

#include "cable.h"

int cable_error_set(struct cable_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->text, sizeof(err->text), fmt, ap);
		va_end(ap);
	}
	return code;
}

const char *cable_status_name(int code)
{
	switch (code) {
	case CABLE_OK:
		return "OK";
	case CABLE_ENOMEM:
		return "ENOMEM";
	case CABLE_EINVAL:
		return "EINVAL";
	case CABLE_EPROTO:
		return "EPROTO";
	case CABLE_EAUTH:
		return "EAUTH";
	case CABLE_ENOTFOUND:
		return "ENOTFOUND";
	case CABLE_EFULL:
		return "EFULL";
	case CABLE_EDENIED:
		return "EDENIED";
	case CABLE_EIO:
		return "EIO";
	}
	return "E?";
}
