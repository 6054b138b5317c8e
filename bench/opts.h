/*
 * The command line of cable-bench and cable-soak: one table of options per program,
 * parsed by one function.
 *
 * Each row names a long option ("--name"), what its value is, where it goes and a line
 * of help; --help (usage on stdout, exit 0) and --quiet (log_quiet) are built in, so a
 * table lists only the program's own options. --help prints the synopsis, then one
 * line per row, generated from the table. Errors are fatal as elsewhere in bench/: a
 * bad value dies naming the option (status 2); an unknown option prints the usage on
 * stderr and exits with status 2.
 *
 * Thread: main, before any other thread starts.
 */
#ifndef BENCH_OPTS_H
#define BENCH_OPTS_H

#include <stddef.h>
#include <stdio.h>

enum opt_type {
	OPT_STR,    /* const char **: the argument as given (argv stays alive) */
	OPT_U32,    /* uint32_t *: num_arg (decimal, at most 100,000,000) */
	OPT_INT,    /* int *: num_arg, so never negative (ports, pids) */
	OPT_SINT,   /* int *: any decimal integer, sign allowed (a nice value) */
	OPT_U64,    /* uint64_t *: num_arg */
	OPT_LONG,   /* long *: num_arg */
	OPT_DOUBLE, /* double *: a decimal number */
	OPT_FLAG,   /* no argument: calls set(NULL, dest) */
	OPT_FN,     /* calls set(arg, dest), which checks and stores the value itself */
};

struct opt {
	const char *name; /* without the leading "--" */
	enum opt_type type;
	void *dest;
	/*
	 * OPT_FLAG and OPT_FN: does the work. Other types: called after the value is
	 * stored, if not NULL (for options that also change another setting).
	 */
	void (*set)(const char *arg, void *dest);
	const char *arg;  /* the value's name in the usage ("N"); NULL for OPT_FLAG */
	const char *help; /* one line; the default in parentheses */
};

/*
 * Parses argv against opts[0..n) and returns the index of the first operand (argc when
 * there is none). `synopsis` is the usage's first lines (ending in a newline), printed
 * before the generated option list.
 */
int opts_parse(const struct opt *opts, size_t n, int argc, char **argv, const char *synopsis);

/*
 * The index of `arg` in names[0..n) (an option's closed set of values, such as the
 * modes); dies with "unknown <what> <arg>" when it is none of them.
 */
size_t opts_pick(const char *arg, const char *const *names, size_t n, const char *what);

/* The usage: synopsis, then one line per option (and --help, --quiet). */
void opts_usage(const struct opt *opts, size_t n, const char *synopsis, FILE *f);

#endif
