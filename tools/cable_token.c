/*
 * mosquitto-cable-token: mint a token the plugin accepts, for development and for
 * backends without a JWT library. Prints the token on stdout.
 *
 * This is the I/O shell around cable_jwt_sign (include/cable_jwt_sign.h, the cable_sign
 * library, which the plugin does not link): it reads the key files, reads the clock and
 * builds the claim set; the core does the signing.
 *
 * Exit status: 0 with the token on stdout; 2 with a message and the usage line on
 * stderr for any error (bad arguments, unreadable key, signing failure).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cable_jwt_sign.h"

#define PROG         "mosquitto-cable-token"
#define KEY_FILE_MAX (1024 * 1024) /* far above any secret or PEM key */

static const char usage_line[] =
        "usage: " PROG " --secret-file F [--alg HS256] [--key-file PEM] [--kid K] --user alice\n"
        "       [--role r]... [--ttl 3600] [--claim k=v]... [--iss X] [--aud Y]\n";

static const char help_text[] =
        "\n"
        "Mint a signed token (a JWT) that mosquitto-cable accepts, and print it on stdout.\n"
        "\n"
        "Key:\n"
        "  --alg ALG          HS256 (default), HS384, HS512, RS256, RS384, RS512, ES256,\n"
        "                     ES384 or EdDSA; must be the algorithm the plugin pins for the key\n"
        "  --secret-file F    HS* secret, the same file the plugin is given. One trailing\n"
        "                     newline (\\n or \\r\\n) is not part of the secret, so a file made\n"
        "                     with `echo` or an editor works; every other byte is. At least\n"
        "                     32/48/64 bytes for HS256/384/512.\n"
        "  --key-file PEM     RS*, ES* or EdDSA: the unencrypted PEM private key\n"
        "  --kid K            put \"kid\": K in the header (needed when the plugin has the key\n"
        "                     under a kid)\n"
        "\n"
        "Claims:\n"
        "  --user U           the user (required); a string in the user claim\n"
        "  --user-claim NAME  name of the user claim (default sub)\n"
        "  --role R           add R to the roles claim (repeatable)\n"
        "  --roles-claim NAME name of the roles claim (default roles)\n"
        "  --ttl SECONDS      lifetime: exp = now + SECONDS (default 3600); iat = now\n"
        "  --iss X            issuer claim\n"
        "  --aud Y            audience claim\n"
        "  --claim K=V        an extra claim (repeatable); V is used as JSON when it parses\n"
        "                     as JSON (42, true, [\"a\"], {\"x\":1}, \"\\\"quoted\\\"\"), else as "
        "a\n"
        "                     string\n"
        "  --now SECONDS      use this Unix time instead of the clock (tests)\n"
        "  -h, --help         this text\n"
        "\n"
        "Example:\n"
        "  " PROG " --secret-file /etc/mosquitto/cable.secret --user alice --role operator\n";

enum {
	OPT_ALG = 256,
	OPT_SECRET_FILE,
	OPT_KEY_FILE,
	OPT_KID,
	OPT_USER,
	OPT_USER_CLAIM,
	OPT_ROLE,
	OPT_ROLES_CLAIM,
	OPT_TTL,
	OPT_ISS,
	OPT_AUD,
	OPT_CLAIM,
	OPT_NOW,
};

static const struct option long_opts[] = {
        {"alg", required_argument, NULL, OPT_ALG},
        {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"kid", required_argument, NULL, OPT_KID},
        {"user", required_argument, NULL, OPT_USER},
        {"user-claim", required_argument, NULL, OPT_USER_CLAIM},
        {"role", required_argument, NULL, OPT_ROLE},
        {"roles-claim", required_argument, NULL, OPT_ROLES_CLAIM},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"iss", required_argument, NULL, OPT_ISS},
        {"aud", required_argument, NULL, OPT_AUD},
        {"claim", required_argument, NULL, OPT_CLAIM},
        {"now", required_argument, NULL, OPT_NOW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

struct token_args {
	const char *alg;
	const char *secret_file;
	const char *key_file;
	const char *kid;
	const char *user;
	const char *user_claim;
	const char *roles_claim;
	const char *iss;
	const char *aud;
	long long ttl;
	long long now;
	bool have_now;
	json_t *roles;  /* array of strings */
	json_t *extras; /* object of --claim values */
};

/* Print a message and the usage line to stderr; the caller exits with 2. */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_line, stderr);
	return 2;
}

static bool parse_ll(const char *s, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* Read a whole file (at most KEY_FILE_MAX bytes). */
static int read_file(const char *path, unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	size_t n;
	FILE *f;

	f = fopen(path, "rb");
	if (f == NULL)
		return fail("cannot open %s: %s", path, strerror(errno));
	buf = malloc(KEY_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return fail("out of memory");
	}
	n = fread(buf, 1, KEY_FILE_MAX + 1, f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return fail("cannot read %s", path);
	}
	fclose(f);
	if (n > KEY_FILE_MAX) {
		free(buf);
		return fail("%s is larger than %d bytes", path, KEY_FILE_MAX);
	}
	*out = buf;
	*out_len = n;
	return 0;
}

/*
 * The secret-file rule, shared with the plugin: a single trailing "\n" or "\r\n" is
 * the end of the line an editor or `echo` wrote, not part of the secret.
 */
static size_t strip_one_newline(const unsigned char *buf, size_t len)
{
	if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n')
		return len - 2;
	if (len >= 1 && buf[len - 1] == '\n')
		return len - 1;
	return len;
}

static bool looks_like_pem(const unsigned char *buf, size_t len)
{
	static const char tag[] = "-----BEGIN";
	size_t i = 0;

	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return len - i >= sizeof(tag) - 1 && memcmp(buf + i, tag, sizeof(tag) - 1) == 0;
}

/* --claim K=V: V as JSON when it is JSON, else as a string. */
static int add_extra_claim(json_t *extras, const char *arg)
{
	const char *eq = strchr(arg, '=');
	json_t *v;
	char *name;
	int rc = 0;

	if (eq == NULL || eq == arg)
		return fail("--claim wants NAME=VALUE, got \"%s\"", arg);
	name = strndup(arg, (size_t)(eq - arg));
	if (name == NULL)
		return fail("out of memory");
	v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
	if (v == NULL)
		v = json_string(eq + 1);
	if (v == NULL)
		rc = fail("--claim %s: value is not UTF-8", name);
	else if (json_object_get(extras, name))
		rc = fail("--claim %s given twice", name);
	else if (json_object_set_new(extras, name, v) != 0)
		rc = fail("out of memory");
	else
		v = NULL;
	json_decref(v);
	free(name);
	return rc;
}

static bool known_alg(const char *alg)
{
	static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
	                                   "RS512", "ES256", "ES384", "EdDSA"};
	size_t i;

	for (i = 0; i < CABLE_ARRAY_LEN(algs); i++) {
		if (strcmp(alg, algs[i]) == 0)
			return true;
	}
	return false;
}

static int parse_args(int argc, char **argv, struct token_args *a)
{
	json_t *s;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ALG:
			a->alg = optarg;
			break;
		case OPT_SECRET_FILE:
			a->secret_file = optarg;
			break;
		case OPT_KEY_FILE:
			a->key_file = optarg;
			break;
		case OPT_KID:
			a->kid = optarg;
			break;
		case OPT_USER:
			a->user = optarg;
			break;
		case OPT_USER_CLAIM:
			a->user_claim = optarg;
			break;
		case OPT_ROLE:
			s = json_string(optarg);
			if (s == NULL)
				return fail("--role %s: not UTF-8", optarg);
			if (json_array_append_new(a->roles, s) != 0)
				return fail("out of memory");
			break;
		case OPT_ROLES_CLAIM:
			a->roles_claim = optarg;
			break;
		case OPT_TTL:
			if (!parse_ll(optarg, &a->ttl) || a->ttl <= 0)
				return fail("--ttl wants a positive number of seconds, got \"%s\"",
				            optarg);
			break;
		case OPT_ISS:
			a->iss = optarg;
			break;
		case OPT_AUD:
			a->aud = optarg;
			break;
		case OPT_CLAIM:
			rc = add_extra_claim(a->extras, optarg);
			if (rc != 0)
				return rc;
			break;
		case OPT_NOW:
			if (!parse_ll(optarg, &a->now))
				return fail("--now wants Unix seconds, got \"%s\"", optarg);
			a->have_now = true;
			break;
		case 'h':
			fputs(usage_line, stdout);
			fputs(help_text, stdout);
			exit(0);
		case ':':
			return fail("%s needs a value", argv[optind - 1]);
		default:
			return fail("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail("unexpected argument \"%s\"", argv[optind]);
	if (!known_alg(a->alg))
		return fail("unknown --alg %s (HS256, HS384, HS512, RS256, RS384, RS512, ES256, "
		            "ES384, EdDSA)",
		            a->alg);
	if (a->user == NULL || a->user[0] == '\0')
		return fail("--user is required");
	return 0;
}

/* The claim set: user, iat, exp, roles, iss, aud, then the --claim extras. */
static int build_claims(const struct token_args *a, char **out)
{
	const char *reserved[6];
	const char *name;
	json_t *claims, *v;
	size_t i;
	int rc = 2;

	if (a->now > LLONG_MAX - a->ttl)
		return fail("--now + --ttl overflows");
	reserved[0] = a->user_claim;
	reserved[1] = a->roles_claim;
	reserved[2] = "iat";
	reserved[3] = "exp";
	reserved[4] = "iss";
	reserved[5] = "aud";
	for (i = 0; i < CABLE_ARRAY_LEN(reserved); i++) {
		if (json_object_get(a->extras, reserved[i]))
			return fail("--claim %s: set it with its own option", reserved[i]);
	}
	claims = json_object();
	if (claims == NULL)
		return fail("out of memory");
	v = json_string(a->user);
	if (v == NULL) {
		rc = fail("--user: not UTF-8");
		goto out;
	}
	if (json_object_set_new(claims, a->user_claim, v) != 0 ||
	    json_object_set_new(claims, "iat", json_integer(a->now)) != 0 ||
	    json_object_set_new(claims, "exp", json_integer(a->now + a->ttl)) != 0)
		goto nomem;
	if (json_array_size(a->roles) > 0 && json_object_set(claims, a->roles_claim, a->roles) != 0)
		goto nomem;
	if (a->iss) {
		v = json_string(a->iss);
		if (v == NULL) {
			rc = fail("--iss: not UTF-8");
			goto out;
		}
		if (json_object_set_new(claims, "iss", v) != 0)
			goto nomem;
	}
	if (a->aud) {
		v = json_string(a->aud);
		if (v == NULL) {
			rc = fail("--aud: not UTF-8");
			goto out;
		}
		if (json_object_set_new(claims, "aud", v) != 0)
			goto nomem;
	}
	json_object_foreach(a->extras, name, v)
	{
		if (json_object_set(claims, name, v) != 0)
			goto nomem;
	}
	*out = json_dumps(claims, JSON_COMPACT);
	if (*out == NULL)
		goto nomem;
	rc = 0;
	goto out;
nomem:
	rc = fail("out of memory");
out:
	json_decref(claims);
	return rc;
}

/* Load the key the algorithm needs: a secret file for HS*, a PEM private key otherwise. */
static int load_key(const struct token_args *a, unsigned char **key, size_t *key_len,
                    size_t *read_len)
{
	bool hmac = strncmp(a->alg, "HS", 2) == 0;
	int rc;

	if (hmac) {
		if (a->key_file)
			return fail("%s signs with --secret-file, not --key-file", a->alg);
		if (a->secret_file == NULL)
			return fail("%s needs --secret-file", a->alg);
		rc = read_file(a->secret_file, key, read_len);
		if (rc != 0)
			return rc;
		*key_len = strip_one_newline(*key, *read_len);
		/* The plugin refuses such a secret (it is the HS/RS confusion), so say so now. */
		if (looks_like_pem(*key, *key_len))
			return fail(
			        "%s is a PEM key, not a secret: use --key-file with --alg RS256, "
			        "ES256 or EdDSA",
			        a->secret_file);
		return 0;
	}
	if (a->secret_file)
		return fail("%s signs with --key-file (a PEM private key), not --secret-file",
		            a->alg);
	if (a->key_file == NULL)
		return fail("%s needs --key-file (a PEM private key)", a->alg);
	rc = read_file(a->key_file, key, read_len);
	if (rc == 0)
		*key_len = *read_len;
	return rc;
}

int main(int argc, char **argv)
{
	struct token_args a = {0};
	struct cable_error err = {0};
	unsigned char *key = NULL;
	size_t key_len = 0, read_len = 0;
	char *claims = NULL, *token = NULL;
	int rc;

	a.alg = "HS256";
	a.user_claim = "sub";
	a.roles_claim = "roles";
	a.ttl = 3600;
	a.roles = json_array();
	a.extras = json_object();
	if (a.roles == NULL || a.extras == NULL) {
		rc = fail("out of memory");
		goto out;
	}
	rc = parse_args(argc, argv, &a);
	if (rc != 0)
		goto out;
	if (!a.have_now)
		a.now = (long long)time(NULL);
	rc = build_claims(&a, &claims);
	if (rc != 0)
		goto out;
	rc = load_key(&a, &key, &key_len, &read_len);
	if (rc != 0)
		goto out;
	if (cable_jwt_sign(a.alg, a.kid, key, key_len, claims, strlen(claims), &token, &err) !=
	    CABLE_OK) {
		rc = fail("%s", err.text);
		goto out;
	}
	if (printf("%s\n", token) < 0 || fflush(stdout) != 0)
		rc = fail("cannot write the token: %s", strerror(errno));
out:
	if (key) {
		OPENSSL_cleanse(key, read_len);
		free(key);
	}
	free(token);
	free(claims);
	json_decref(a.roles);
	json_decref(a.extras);
	return rc;
}
