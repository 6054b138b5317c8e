/*
 * The table-driven option parser of cable-bench and cable-soak (opts.h): getopt_long
 * underneath, with its option array built from the table.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "opts.h"

#define OPT_HELP  1 /* val of the built-in options, below the table's (OPT_BASE + i) */
#define OPT_QUIET 2
#define OPT_BASE  256 /* val = OPT_BASE + row index */

void opts_usage(const struct opt *opts, size_t n, const char *synopsis, FILE *f)
{
	char head[64];
	size_t i;

	fputs(synopsis, f);
	for (i = 0; i < n; i++) {
		snprintf(head, sizeof(head), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
		         opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-30s %s\n", head, opts[i].help);
	}
	fprintf(f, "  %-30s %s\n  %-30s %s\n", "--quiet", "no progress lines on stderr", "--help",
	        "this text");
}

size_t opts_pick(const char *arg, const char *const *names, size_t n, const char *what)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (strcmp(arg, names[k]) == 0)
			return k;
	die("unknown %s %s", what, arg);
}

/* A decimal integer with an optional sign, for OPT_SINT; dies naming the option otherwise. */
static int sint_arg(const char *s, const char *name)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < -100000000l || v > 100000000l)
		die("--%s: not a number: %s", name, s);
	return (int)v;
}

static double double_arg(const char *s, const char *name)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0')
		die("--%s: not a number: %s", name, s);
	return v;
}

/* Stores one option's value (opts.h: what each type means). */
static void opts_store(const struct opt *o, const char *arg)
{
	char flag[64];

	snprintf(flag, sizeof(flag), "--%s", o->name);
	switch (o->type) {
	case OPT_STR:
		*(const char **)o->dest = arg;
		break;
	case OPT_U32:
		*(uint32_t *)o->dest = num_arg(arg, flag);
		break;
	case OPT_INT:
		*(int *)o->dest = (int)num_arg(arg, flag);
		break;
	case OPT_SINT:
		*(int *)o->dest = sint_arg(arg, o->name);
		break;
	case OPT_U64:
		*(uint64_t *)o->dest = num_arg(arg, flag);
		break;
	case OPT_LONG:
		*(long *)o->dest = (long)num_arg(arg, flag);
		break;
	case OPT_DOUBLE:
		*(double *)o->dest = double_arg(arg, o->name);
		break;
	case OPT_FLAG:
	case OPT_FN:
		o->set(arg, o->dest);
		return;
	}
	if (o->set)
		o->set(arg, o->dest);
}

int opts_parse(const struct opt *opts, size_t n, int argc, char **argv, const char *synopsis)
{
	struct option *lo = xcalloc(n + 3, sizeof(*lo));
	size_t i;
	int c;

	for (i = 0; i < n; i++) {
		lo[i].name = opts[i].name;
		lo[i].has_arg = opts[i].type == OPT_FLAG ? no_argument : required_argument;
		lo[i].val = OPT_BASE + (int)i;
	}
	lo[n] = (struct option){"help", no_argument, NULL, OPT_HELP};
	lo[n + 1] = (struct option){"quiet", no_argument, NULL, OPT_QUIET};
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h' || c == OPT_HELP) {
			opts_usage(opts, n, synopsis, stdout);
			exit(0);
		} else if (c == OPT_QUIET) {
			log_quiet();
		} else if (c >= OPT_BASE && (size_t)(c - OPT_BASE) < n) {
			opts_store(&opts[c - OPT_BASE], optarg);
		} else {
			opts_usage(opts, n, synopsis, stderr);
			exit(2);
		}
	}
	free(lo);
	return optind;
}
