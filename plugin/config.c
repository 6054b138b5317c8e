/*
 * plugin_opt_* -> struct cable_options, and the files they name -> struct cable_rules.
 *
 * Thread: broker thread only (plugin init and MOSQ_EVT_RELOAD).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pwd.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "cable.h"
#include "cable_options.h"
#include "cable_topic.h"

#include <openssl/crypto.h>

enum opt_type { OPT_STRING, OPT_PORT, OPT_UINT, OPT_SIZE, OPT_BOOL, OPT_CHOICE, OPT_LLONG };

struct opt_spec {
	const char *key;
	enum opt_type type;
	size_t offset;
	long long min, max; /* for numbers; for OPT_CHOICE, min indexes choices[] */
};

/* OPT_CHOICE: a bool set by one of two words (false, true). */
enum { CHOICE_AUTH, CHOICE_EVENT_LOOP };
static const char *const choices[][2] = {
        [CHOICE_AUTH] = {"jwt", "anonymous"},
        [CHOICE_EVENT_LOOP] = {"epoll", "poll"},
};

#define OFF(m) offsetof(struct cable_options, m)

/* The one list of options. Keep docs/configuration.md in step with it. */
static const struct opt_spec opt_specs[] = {
        {"address", OPT_STRING, OFF(gw.address), 0, 0},
        {"port", OPT_PORT, OFF(gw.port), 1, 65535},
        {"path", OPT_STRING, OFF(gw.path), 0, 0},
        {"auth", OPT_CHOICE, OFF(gw.anonymous), CHOICE_AUTH, 0},
        {"token_param", OPT_STRING, OFF(gw.token_param), 0, 0},
        {"ping_interval", OPT_UINT, OFF(gw.ping_interval), 1, 60},
        {"max_message_size", OPT_SIZE, OFF(gw.max_message), 256, 16 * 1024 * 1024},
        {"max_outbound_bytes", OPT_SIZE, OFF(gw.max_outbound), 4096, 1024LL * 1024 * 1024},
        {"max_subscriptions", OPT_SIZE, OFF(gw.max_subscriptions), 1, 100000},
        {"max_connections", OPT_SIZE, OFF(gw.max_connections), 0, 1000000},
        {"max_connections_per_ip", OPT_SIZE, OFF(gw.max_per_ip), 0, 1000000},
        {"max_connections_per_user", OPT_SIZE, OFF(gw.max_per_user), 0, 1000000},
        {"max_descriptors", OPT_SIZE, OFF(gw.max_descriptors), 16, 10000000},
        {"max_handshakes", OPT_SIZE, OFF(gw.max_handshakes), 1, 10000000},
        {"max_handshakes_per_ip", OPT_SIZE, OFF(gw.max_handshakes_per_ip), 0, 10000000},
        {"max_identifier_size", OPT_SIZE, OFF(gw.max_identifier), 64, 16 * 1024 * 1024},
        {"max_subscription_bytes", OPT_SIZE, OFF(gw.max_sub_bytes), 4096, 1024LL * 1024 * 1024},
        {"max_subscription_bytes_per_user", OPT_SIZE, OFF(gw.max_user_sub_bytes), 0,
         64LL * 1024 * 1024 * 1024},
        {"handshake_timeout", OPT_UINT, OFF(gw.handshake_timeout), 1, 300},
        {"max_header_size", OPT_UINT, OFF(gw.max_header_size), 1024, 65535},
        {"socket_send_buffer", OPT_SIZE, OFF(gw.socket_send_buffer), 0, 64 * 1024 * 1024},
        {"event_loop", OPT_CHOICE, OFF(gw.poll_loop), CHOICE_EVENT_LOOP, 0},
        {"threads", OPT_UINT, OFF(gw.threads), 0, CABLE_MAX_THREADS},
        {"receive_buffer", OPT_SIZE, OFF(gw.receive_buffer), 128, 65536},
        {"tls_cert_file", OPT_STRING, OFF(gw.tls_cert), 0, 0},
        {"tls_key_file", OPT_STRING, OFF(gw.tls_key), 0, 0},
        {"tls_ca_file", OPT_STRING, OFF(gw.tls_ca), 0, 0},
        {"http_dir", OPT_STRING, OFF(gw.http_dir), 0, 0},
        {"allowed_origins", OPT_STRING, OFF(gw.allowed_origins), 0, 0},
        {"token_cookie", OPT_STRING, OFF(gw.token_cookie), 0, 0},
        {"token_cookie_any_origin", OPT_BOOL, OFF(gw.token_cookie_any_origin), 0, 0},
        {"metrics_topic", OPT_STRING, OFF(gw.metrics_topic), 0, 0},
        {"metrics_interval", OPT_UINT, OFF(gw.metrics_interval), 1, 86400},
        {"state_listener", OPT_STRING, OFF(gw.state_listener), 0, 0},
        {"state_grant_read", OPT_BOOL, OFF(state_grant_read), 0, 0},
        {"retained_max_entries", OPT_SIZE, OFF(gw.retained_max_entries), 1, 100000000},
        {"retained_max_bytes", OPT_SIZE, OFF(gw.retained_max_bytes), 4096,
         1024LL * 1024 * 1024 * 16},
        {"history_limit", OPT_SIZE, OFF(gw.history_limit), 0, 100000},
        {"history_max_bytes", OPT_SIZE, OFF(gw.history_max_bytes), 1024, 1024LL * 1024 * 1024},
        {"history_ttl", OPT_UINT, OFF(gw.history_ttl), 1, 86400},
        {"history_total_bytes", OPT_SIZE, OFF(gw.history_total_bytes), 65536,
         64LL * 1024 * 1024 * 1024},
        {"session_ttl", OPT_UINT, OFF(gw.session_ttl), 0, 86400},
        {"pong_timeout", OPT_UINT, OFF(gw.pong_timeout), 0, 3600},
        {"channels_file", OPT_STRING, OFF(channels_file), 0, 0},
        {"jwt_secret_file", OPT_STRING, OFF(jwt_secret_file), 0, 0},
        {"acl_file", OPT_STRING, OFF(acl_file), 0, 0},
        {"jwt_issuer", OPT_STRING, OFF(jwt_issuer), 0, 0},
        {"jwt_audience", OPT_STRING, OFF(jwt_audience), 0, 0},
        {"jwt_user_claim", OPT_STRING, OFF(jwt_user_claim), 0, 0},
        {"jwt_roles_claim", OPT_STRING, OFF(jwt_roles_claim), 0, 0},
        {"jwt_keys_file", OPT_STRING, OFF(jwt_keys_file), 0, 0},
        {"jwt_leeway", OPT_LLONG, OFF(jwt_leeway), 0, 3600},
        {"jwt_ecdsa_low_s", OPT_BOOL, OFF(jwt_ecdsa_low_s), 0, 0},
        {"gateway", OPT_STRING, OFF(gateway_path), 0, 0},
        {"wake_signal", OPT_UINT, OFF(wake_signal), 0, 15},
        {"queue_messages", OPT_SIZE, OFF(queue_messages), 16, 10000000},
        {"queue_bytes", OPT_SIZE, OFF(queue_bytes), 65536, 1024LL * 1024 * 1024 * 4},
};

static void set_defaults(struct cable_options *o)
{
	memset(o, 0, sizeof(*o));
	o->gw.address = "127.0.0.1";
	o->gw.port = 8080;
	o->gw.path = "/cable";
	o->gw.token_param = "jid";
	o->gw.ping_interval = 3;
	o->gw.max_message = 64 * 1024;
	o->gw.max_outbound = 1024 * 1024;
	o->gw.max_subscriptions = 256;
	o->gw.metrics_interval = 10;
	o->gw.handshake_timeout = 10;
	o->gw.socket_send_buffer = 256 * 1024;
	o->gw.receive_buffer = 512;
	o->gw.max_header_size = 16384; /* lws' 4096 is too small for real Rails cookies */
	o->gw.max_connections = 10000;
	o->gw.max_per_ip = 0; /* behind a reverse proxy every browser has its address */
	o->gw.max_per_user = 100;
	o->gw.max_handshakes = 1024;
	o->gw.max_handshakes_per_ip = 64;
	o->gw.max_identifier = 4096;
	o->gw.max_sub_bytes = 256 * 1024;
	o->gw.max_user_sub_bytes = 4 * 1024 * 1024;
	o->gw.retained_max_entries = 100000;
	o->gw.retained_max_bytes = 64 * 1024 * 1024;
	o->gw.history_limit = 100;
	o->gw.history_max_bytes = 1024 * 1024;
	o->gw.history_ttl = 300;
	o->gw.history_total_bytes = 64 * 1024 * 1024;
	o->gw.session_ttl = 300;
	o->gw.pong_timeout = 0;
	o->jwt_leeway = 30;
	o->wake_signal = 7;
	o->queue_messages = 65536;
	o->queue_bytes = 64 * 1024 * 1024;
}

static int parse_number(const char *v, long long *out)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

static int set_option(struct cable_options *o, const struct opt_spec *s, const char *v, char *err,
                      size_t errlen)
{
	char *field = (char *)o + s->offset;
	long long n = 0;

	switch (s->type) {
	case OPT_STRING:
		*(const char **)field = v;
		return CABLE_OK;
	case OPT_BOOL:
		if (!strcasecmp(v, "true") || !strcmp(v, "1"))
			*(bool *)field = true;
		else if (!strcasecmp(v, "false") || !strcmp(v, "0"))
			*(bool *)field = false;
		else
			goto bad;
		return CABLE_OK;
	case OPT_CHOICE: {
		const char *const *word = choices[s->min];

		if (!strcmp(v, word[0]) || !strcmp(v, word[1])) {
			*(bool *)field = !strcmp(v, word[1]);
			return CABLE_OK;
		}
		snprintf(err, errlen, "plugin_opt_%s: '%s' is not one of: %s, %s", s->key, v,
		         word[0], word[1]);
		return CABLE_EINVAL;
	}
	case OPT_PORT:
	case OPT_UINT:
	case OPT_SIZE:
	case OPT_LLONG:
		if (parse_number(v, &n) != 0 || n < s->min || n > s->max) {
			snprintf(err, errlen,
			         "plugin_opt_%s: '%s' is not a whole number from %lld to %lld",
			         s->key, v, s->min, s->max);
			return CABLE_EINVAL;
		}
		if (s->type == OPT_SIZE)
			*(size_t *)field = (size_t)n;
		else if (s->type == OPT_LLONG)
			*(long long *)field = n;
		else if (s->type == OPT_UINT)
			*(unsigned *)field = (unsigned)n;
		else
			*(int *)field = (int)n;
		return CABLE_OK;
	}
bad:
	snprintf(err, errlen, "plugin_opt_%s: '%s' is not true or false", s->key, v);
	return CABLE_EINVAL;
}

/* Edit distance between a and b (insertions, deletions, substitutions), capped at 99. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t row[64], la = strlen(a), lb = strlen(b), i, j, diag, up;

	if (la >= CABLE_ARRAY_LEN(row) || lb >= CABLE_ARRAY_LEN(row))
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[lb];
}

/*
 * The known option an unknown key most likely meant: a typo (edit distance up to a
 * third of its length, at least 2) or a shortened name (jwt_secret for
 * jwt_secret_file). NULL when nothing is close.
 */
static const struct opt_spec *closest_option(const char *key)
{
	const struct opt_spec *best = NULL;
	size_t j, d, best_d = 99, len = strlen(key), limit = len / 3 > 2 ? len / 3 : 2;

	for (j = 0; j < CABLE_ARRAY_LEN(opt_specs); j++) {
		d = edit_distance(key, opt_specs[j].key);
		if (len >= 4 && strncmp(opt_specs[j].key, key, len) == 0)
			d = 1; /* a prefix of a known name */
		if (d < best_d) {
			best_d = d;
			best = &opt_specs[j];
		}
	}
	return best_d <= limit ? best : NULL;
}

/*
 * plugin_opt_threads 0 (the default): one gateway thread per CPU this process may run
 * on (its affinity mask, so a container's or taskset's limit counts), at most
 * CABLE_MAX_THREADS.
 */
static unsigned auto_threads(void)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = 1;
	return n > CABLE_MAX_THREADS ? CABLE_MAX_THREADS : (unsigned)n;
}

/*
 * Descriptors for browser sockets (plugin_opt_max_descriptors). The broker's MQTT
 * clients, its files and the plugin's own few descriptors share the process's
 * RLIMIT_NOFILE with them, so by default the plugin takes at most three quarters of the
 * soft limit and leaves the rest (at least 64) to the broker. An explicit value must
 * leave 16.
 */
#define DESCRIPTOR_RESERVE_MIN 64

static int descriptor_budget(struct cable_options *o, char *err, size_t errlen)
{
	struct rlimit rl;
	size_t soft = SIZE_MAX, reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		soft = (size_t)rl.rlim_cur;
	if (o->gw.max_descriptors) {
		if (soft != SIZE_MAX && o->gw.max_descriptors + 16 > soft) {
			snprintf(
			        err, errlen,
			        "plugin_opt_max_descriptors: %zu leaves the broker less than 16 of "
			        "the process's %zu descriptors (ulimit -n, systemd LimitNOFILE)",
			        o->gw.max_descriptors, soft);
			return CABLE_EINVAL;
		}
		return CABLE_OK;
	}
	if (soft == SIZE_MAX || soft > 10000000)
		soft = 10000000;
	reserve = soft / 4 > DESCRIPTOR_RESERVE_MIN ? soft / 4 : DESCRIPTOR_RESERVE_MIN;
	if (reserve > soft / 2)
		reserve = soft / 2;
	o->gw.max_descriptors = soft - reserve;
	return CABLE_OK;
}

int cable_options_parse(const struct mosquitto_opt *opts, int n, struct cable_options *out,
                        char *err, size_t errlen)
{
	struct cable_options o;
	size_t j;
	int i, rc;

	set_defaults(&o);
	for (i = 0; i < n; i++) {
		const struct opt_spec *s = NULL;

		for (j = 0; j < CABLE_ARRAY_LEN(opt_specs); j++) {
			if (!strcmp(opts[i].key, opt_specs[j].key)) {
				s = &opt_specs[j];
				break;
			}
		}
		if (s == NULL) {
			const struct opt_spec *near = closest_option(opts[i].key);

			snprintf(err, errlen,
			         "plugin_opt_%s: unknown option%s%s%s (see docs/configuration.md)",
			         opts[i].key, near ? "; did you mean plugin_opt_" : "",
			         near ? near->key : "", near ? "?" : "");
			return CABLE_EINVAL;
		}
		rc = set_option(&o, s, opts[i].value, err, errlen);
		if (rc != CABLE_OK)
			return rc;
	}

	if (o.gw.path[0] != '/') {
		snprintf(err, errlen, "plugin_opt_path: '%s' must start with '/'", o.gw.path);
		return CABLE_EINVAL;
	}
	if (o.channels_file == NULL) {
		snprintf(err, errlen,
		         "plugin_opt_channels_file: required (the channel map, see "
		         "docs/channels.md)");
		return CABLE_EINVAL;
	}
	if (!o.gw.anonymous && o.jwt_secret_file == NULL && o.jwt_keys_file == NULL) {
		snprintf(err, errlen,
		         "plugin_opt_jwt_secret_file (or plugin_opt_jwt_keys_file): required "
		         "unless plugin_opt_auth is anonymous");
		return CABLE_EINVAL;
	}
	if (o.gw.metrics_topic &&
	    (!cable_topic_name_valid(o.gw.metrics_topic, strlen(o.gw.metrics_topic)) ||
	     o.gw.metrics_topic[strlen(o.gw.metrics_topic) - 1] == '/')) {
		snprintf(err, errlen,
		         "plugin_opt_metrics_topic: '%s' is not a topic prefix like "
		         "cable/metrics",
		         o.gw.metrics_topic);
		return CABLE_EINVAL;
	}
	if (o.gw.token_cookie && !o.gw.allowed_origins && !o.gw.token_cookie_any_origin) {
		snprintf(err, errlen,
		         "plugin_opt_token_cookie needs plugin_opt_allowed_origins: without an "
		         "Origin allow-list any web page can open a socket that carries the "
		         "user's cookie (cross-site WebSocket hijacking); set "
		         "plugin_opt_token_cookie_any_origin true to accept that risk");
		return CABLE_EINVAL;
	}
	if (o.gw.threads == 0)
		o.gw.threads = auto_threads();
	if (descriptor_budget(&o, err, errlen) != CABLE_OK)
		return CABLE_EINVAL;
	if ((o.gw.tls_cert == NULL) != (o.gw.tls_key == NULL)) {
		snprintf(err, errlen,
		         "plugin_opt_tls_cert_file and plugin_opt_tls_key_file go together");
		return CABLE_EINVAL;
	}
	*out = o;
	return CABLE_OK;
}

int cable_read_file(const char *path, char **out, size_t *len, size_t max)
{
	FILE *f;
	char *buf;
	size_t n;

	f = fopen(path, "rb");
	if (f == NULL)
		return CABLE_EIO;
	buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(f);
		return CABLE_ENOMEM;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		fclose(f);
		free(buf);
		return CABLE_EIO;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return CABLE_OK;
}

/* A secret file's one trailing newline (\n or \r\n) is not part of the secret. */
static size_t strip_newline(const char *s, size_t len)
{
	if (len && s[len - 1] == '\n') {
		len--;
		if (len && s[len - 1] == '\r')
			len--;
	}
	return len;
}

/*
 * Why a file could not be read. For a permission problem it names the user the broker
 * runs as: it drops privileges (to mosquitto) before it loads plugins, so a file root
 * can read may still be out of reach.
 */
static void why_unreadable(int rc, int errnum, char *buf, size_t len)
{
	struct passwd pw, *found = NULL;
	char pwbuf[1024];

	if (rc == CABLE_ENOMEM) {
		snprintf(buf, len, "out of memory");
		return;
	}
	if (errnum != EACCES && errnum != EPERM) {
		snprintf(buf, len, "%s", strerror(errnum));
		return;
	}
	getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &found);
	if (found)
		snprintf(buf, len,
		         "%s; the broker runs as user '%s' (uid %u): that user needs read access "
		         "to the file and search access to its directories",
		         strerror(errnum), found->pw_name, (unsigned)geteuid());
	else
		snprintf(buf, len,
		         "%s; the broker runs as uid %u: that uid needs read access to the file "
		         "and search access to its directories",
		         strerror(errnum), (unsigned)geteuid());
}

static int read_option_file(const char *option, const char *path, size_t max, char **buf,
                            size_t *len, char *err, size_t errlen)
{
	int rc = cable_read_file(path, buf, len, max);
	char why[256];

	if (rc != CABLE_OK) {
		why_unreadable(rc, errno, why, sizeof(why));
		snprintf(err, errlen, "plugin_opt_%s: cannot read '%s': %s", option, path, why);
	}
	return rc;
}

/* The key files named by plugin_opt_jwt_keys_file, read into memory. */
struct key_files {
	json_t *doc;
	struct cable_key_source *keys;
	char **bufs;
	size_t *lens;
	size_t n;
};

static void key_files_release(struct key_files *kf)
{
	size_t i;

	for (i = 0; i < kf->n; i++) {
		if (kf->bufs[i]) {
			OPENSSL_cleanse(kf->bufs[i], kf->lens[i]);
			free(kf->bufs[i]);
		}
	}
	free(kf->bufs);
	free(kf->lens);
	free(kf->keys);
	json_decref(kf->doc);
	memset(kf, 0, sizeof(*kf));
}

/*
 * {"keys": [{"kid": "2026-11", "alg": "HS256", "secret_file": "..."},
 *           {"kid": "rsa-1", "alg": "RS256", "public_key_file": "....pem"}]}
 */
static int read_keys_file(const char *path, struct key_files *kf, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *arr, *k;
	size_t i;

	kf->doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (kf->doc == NULL && access(path, R_OK) != 0) {
		char why[256];

		why_unreadable(CABLE_EIO, errno, why, sizeof(why));
		snprintf(err, errlen, "plugin_opt_jwt_keys_file: cannot read '%s': %s", path, why);
		return CABLE_EIO;
	}
	if (kf->doc == NULL) {
		snprintf(err, errlen, "plugin_opt_jwt_keys_file: '%s': line %d: %s", path,
		         jerr.line, jerr.text);
		return CABLE_EINVAL;
	}
	arr = json_object_get(kf->doc, "keys");
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		snprintf(err, errlen,
		         "plugin_opt_jwt_keys_file: '%s': needs a non-empty \"keys\" array", path);
		return CABLE_EINVAL;
	}
	kf->n = json_array_size(arr);
	kf->keys = calloc(kf->n, sizeof(*kf->keys));
	kf->bufs = calloc(kf->n, sizeof(*kf->bufs));
	kf->lens = calloc(kf->n, sizeof(*kf->lens));
	if (!kf->keys || !kf->bufs || !kf->lens) {
		snprintf(err, errlen, "out of memory");
		return CABLE_ENOMEM;
	}
	json_array_foreach(arr, i, k)
	{
		const char *alg = json_string_value(json_object_get(k, "alg"));
		const char *kid = json_string_value(json_object_get(k, "kid"));
		const char *secret = json_string_value(json_object_get(k, "secret_file"));
		const char *pub = json_string_value(json_object_get(k, "public_key_file"));
		const char *file = secret ? secret : pub;

		if (alg == NULL || (secret == NULL) == (pub == NULL)) {
			snprintf(err, errlen,
			         "plugin_opt_jwt_keys_file: '%s': keys[%zu] needs \"alg\" and one "
			         "of "
			         "\"secret_file\" (HS*) or \"public_key_file\" (PEM)",
			         path, i);
			return CABLE_EINVAL;
		}
		int rc = cable_read_file(file, &kf->bufs[i], &kf->lens[i], 1024 * 1024);

		if (rc != CABLE_OK) {
			char why[256];

			why_unreadable(rc, errno, why, sizeof(why));
			snprintf(err, errlen,
			         "plugin_opt_jwt_keys_file: keys[%zu]: cannot read '%s': %s", i,
			         file, why);
			return CABLE_EIO;
		}
		kf->keys[i].kid = kid;
		kf->keys[i].alg = alg;
		kf->keys[i].key = (const unsigned char *)kf->bufs[i];
		kf->keys[i].key_len =
		        secret ? strip_newline(kf->bufs[i], kf->lens[i]) : kf->lens[i];
		kf->keys[i].file = file;
	}
	return CABLE_OK;
}

struct cable_rules *cable_rules_load(const struct cable_options *o,
                                     const struct cable_gateway_api *api, char *err, size_t errlen)
{
	struct cable_rules_source src = {0};
	struct key_files kf = {0};
	struct cable_rules *r = NULL;
	char *channels = NULL, *secret = NULL, *acl = NULL;
	size_t len, secret_len = 0;

	if (read_option_file("channels_file", o->channels_file, 16 * 1024 * 1024, &channels, &len,
	                     err, errlen) != CABLE_OK)
		goto out;
	src.channels = channels;
	src.channels_len = len;
	src.channels_file = o->channels_file;
	if (!o->gw.anonymous && o->jwt_secret_file) {
		if (read_option_file("jwt_secret_file", o->jwt_secret_file, 64 * 1024, &secret,
		                     &secret_len, err, errlen) != CABLE_OK)
			goto out;
		src.secret = (const unsigned char *)secret;
		src.secret_len = strip_newline(secret, secret_len);
		src.secret_file = o->jwt_secret_file;
	}
	if (!o->gw.anonymous && o->jwt_keys_file) {
		if (read_keys_file(o->jwt_keys_file, &kf, err, errlen) != CABLE_OK)
			goto out;
		src.keys = kf.keys;
		src.nkeys = kf.n;
		src.keys_file = o->jwt_keys_file;
	}
	if (o->acl_file) {
		if (read_option_file("acl_file", o->acl_file, 16 * 1024 * 1024, &acl, &len, err,
		                     errlen) != CABLE_OK)
			goto out;
		src.acl = acl;
		src.acl_len = len;
		src.acl_file = o->acl_file;
	}
	src.issuer = o->jwt_issuer;
	src.audience = o->jwt_audience;
	src.user_claim = o->jwt_user_claim;
	src.roles_claim = o->jwt_roles_claim;
	src.leeway = o->jwt_leeway;
	src.ecdsa_low_s = o->jwt_ecdsa_low_s;
	r = api->rules_new(&src, err, errlen);
out:
	free(channels);
	free(acl);
	key_files_release(&kf);
	if (secret) {
		OPENSSL_cleanse(secret, secret_len);
		free(secret);
	}
	return r;
}
