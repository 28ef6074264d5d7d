/*
 * options.c - loadgen's flags: defaults, parsing, and the checks that
 * refuse a bad value (one line naming the flag, exit 2) before anything
 * touches the network - a non-loopback target without --allow-remote
 * included. The flags and their defaults are listed once, in usage text
 * that `loadgen --help` prints and docs/load.md repeats.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loadgen.h"

#define MAX_RATE 100000.0
#define WEEK_MS	 (7LL * 24 * 3600 * 1000)

void
lg_options_usage(FILE *out)
{
	fputs("usage: loadgen [flags]\n"
	      "Open-loop load against products, inventory and orders: requests"
	      " start on\n"
	      "schedule, --rate a second, whether or not earlier ones have"
	      " finished.\n"
	      "\n"
	      "  --rate N           requests per second, all kinds (10)\n"
	      "  --duration D       how long: 500ms, 30s, 2m, 1h; 0 until"
	      " Ctrl-C (60s)\n"
	      "  --mix LIST         weights of browse, read and order"
	      " (browse=25,read=50,order=25)\n"
	      "  --cancel PCT       share of read-back orders cancelled, in"
	      " percent (10)\n"
	      "  --check-after D    placed order -> its status read (1s)\n"
	      "  --list-limit N     ?limit= of browse, 1-100 (20)\n"
	      "  --items N          distinct products an order holds, 1 to N"
	      " (3)\n"
	      "  --quantity N       units of each item, 1 to N (2)\n"
	      "  --max-inflight N   requests in flight at most (256)\n"
	      "  --timeout D        per request, and for the final drain (5s)\n"
	      "  --seed N           create N products with stock first (0)\n"
	      "  --stock N          on_hand of each product created (100000)\n"
	      "  --token T          admin token for --seed (or LOADGEN_TOKEN)\n"
	      "  --token-file F     the token from a file\n"
	      "  --record F         every order and cancel answer into F, a"
	      " line each\n"
	      "  --products URL     (http://127.0.0.1:8081)\n"
	      "  --inventory URL    (http://127.0.0.1:8082)\n"
	      "  --orders URL       (http://127.0.0.1:8083)\n"
	      "  --allow-remote     allow targets that are not loopback\n"
	      "  --json             the summary as JSON on stdout (live lines"
	      " on stderr)\n"
	      "  --quiet            no live lines\n"
	      "  --help\n"
	      "\n"
	      "Exit status: 0 after a run (its summary printed), 1 when the"
	      " services\n"
	      "cannot be used, 2 for a bad flag or nothing to order.\n",
	      out);
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return LG_EUSAGE;
}

int
lg_parse_duration(const char *text, long long *ms)
{
	static const struct {
		const char *suffix;
		double ms;
	} units[] = { { "ms", 1 },
		      { "s", 1000 },
		      { "m", 60000 },
		      { "h", 3600000 },
		      { "", 1000 } };
	char *end;
	double v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || !isfinite(v))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			v *= units[i].ms;
			if (v > (double)WEEK_MS)
				return -1;
			*ms = (long long)(v + 0.5);
			return 0;
		}
	}
	return -1;
}

/* A whole number in [min, max] for flag, or a message. */
static int
parse_uint(const char *flag, const char *text, unsigned long long min,
	   unsigned long long max, unsigned long long *out, char *err,
	   size_t errlen)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 ||
	    v < min || v > max)
		return bad(err, errlen,
			   "%s must be a whole number from %llu"
			   " to %llu, not '%s'",
			   flag, min, max, text);
	*out = v;
	return LG_OK;
}

static int
parse_rate(const char *text, double *out, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 ||
	    !isfinite(v) || v <= 0 || v > MAX_RATE)
		return bad(err, errlen,
			   "--rate must be requests per second"
			   " above 0 and up to %.0f, not '%s'",
			   MAX_RATE, text);
	*out = v;
	return LG_OK;
}

static int
parse_span(const char *flag, const char *text, long long min, long long *out,
	   char *err, size_t errlen)
{
	if (lg_parse_duration(text, out) != 0 || *out < min)
		return bad(err, errlen,
			   "%s must be a duration such as 500ms,"
			   " 30s or 2m%s, not '%s'",
			   flag, min > 0 ? " (above 0)" : "", text);
	return LG_OK;
}

/* "browse=25,read=50,order=25": the named weights; the others are 0. */
static int
parse_mix(const char *text, unsigned mix[LG_MIXED], char *err, size_t errlen)
{
	const char *p = text;
	unsigned sum = 0;

	memset(mix, 0, sizeof(unsigned) * LG_MIXED);
	while (*p != '\0') {
		size_t len = strcspn(p, "=");
		char *end;
		unsigned long w;
		int op;

		for (op = 0; op < LG_MIXED; op++)
			if (strlen(lg_op_name(op)) == len &&
			    strncmp(p, lg_op_name(op), len) == 0)
				break;
		if (op == LG_MIXED || p[len] != '=' || p[len + 1] < '0' ||
		    p[len + 1] > '9')
			return bad(err, errlen,
				   "--mix takes browse=N,read=N,"
				   "order=N, not '%s'",
				   text);
		w = strtoul(p + len + 1, &end, 10);
		if ((*end != ',' && *end != '\0') || w > 1000)
			return bad(err, errlen,
				   "--mix: each weight is a whole"
				   " number from 0 to 1000, not '%s'",
				   text);
		mix[op] = (unsigned)w;
		sum += (unsigned)w;
		p = *end == ',' ? end + 1 : end;
	}
	if (sum == 0)
		return bad(err, errlen,
			   "--mix: at least one weight must be"
			   " above 0, not '%s'",
			   text);
	return LG_OK;
}

/* An http(s) URL without query or fragment, kept without a final '/'. */
static int
parse_url(const char *flag, const char *text, char *out, size_t size, char *err,
	  size_t errlen)
{
	CURLU *u = curl_url();
	char *host = NULL;
	size_t len = strlen(text);
	int rc = LG_OK;

	if (u == NULL || len >= size ||
	    (strncmp(text, "http://", 7) != 0 &&
	     strncmp(text, "https://", 8) != 0) ||
	    strpbrk(text, "?#") != NULL ||
	    curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rc = bad(err, errlen,
			 "%s must be an http:// or https:// URL"
			 " such as http://127.0.0.1:8081, not '%s'",
			 flag, text);
	curl_free(host);
	curl_url_cleanup(u);
	if (rc != LG_OK)
		return rc;
	while (len > 0 && text[len - 1] == '/')
		len--;
	memcpy(out, text, len);
	out[len] = '\0';
	return LG_OK;
}

bool
lg_url_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool yes = false;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		unsigned a, b, c, d;
		char tail;

		yes = strcasecmp(host, "localhost") == 0 ||
		      strcmp(host, "[::1]") == 0 ||
		      (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) ==
			       4 &&
		       a == 127 && b < 256 && c < 256 && d < 256);
	}
	curl_free(host);
	curl_url_cleanup(u);
	return yes;
}

/* The first line of path, without surrounding blanks. */
static int
read_token_file(const char *path, char **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t len;
	char *start = line;

	if (f == NULL)
		return bad(err, errlen, "--token-file: cannot read %s: %s",
			   path, strerror(errno));
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	while (*start == ' ' || *start == '\t')
		start++;
	len = strcspn(start, " \t\r\n");
	if (len == 0)
		return bad(err, errlen, "--token-file: %s holds no token",
			   path);
	free(*out);
	*out = strndup(start, len);
	return LG_OK;
}

enum {
	O_RATE = 256,
	O_DURATION,
	O_MIX,
	O_CANCEL,
	O_CHECK_AFTER,
	O_LIST_LIMIT,
	O_ITEMS,
	O_QUANTITY,
	O_MAX_INFLIGHT,
	O_TIMEOUT,
	O_SEED,
	O_STOCK,
	O_TOKEN,
	O_TOKEN_FILE,
	O_RECORD,
	O_PRODUCTS,
	O_INVENTORY,
	O_ORDERS,
	O_ALLOW_REMOTE,
	O_JSON,
	O_QUIET,
	O_HELP
};

static const struct option longopts[] = {
	{ "rate", required_argument, NULL, O_RATE },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "mix", required_argument, NULL, O_MIX },
	{ "cancel", required_argument, NULL, O_CANCEL },
	{ "check-after", required_argument, NULL, O_CHECK_AFTER },
	{ "list-limit", required_argument, NULL, O_LIST_LIMIT },
	{ "items", required_argument, NULL, O_ITEMS },
	{ "quantity", required_argument, NULL, O_QUANTITY },
	{ "max-inflight", required_argument, NULL, O_MAX_INFLIGHT },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "seed", required_argument, NULL, O_SEED },
	{ "stock", required_argument, NULL, O_STOCK },
	{ "token", required_argument, NULL, O_TOKEN },
	{ "token-file", required_argument, NULL, O_TOKEN_FILE },
	{ "record", required_argument, NULL, O_RECORD },
	{ "products", required_argument, NULL, O_PRODUCTS },
	{ "inventory", required_argument, NULL, O_INVENTORY },
	{ "orders", required_argument, NULL, O_ORDERS },
	{ "allow-remote", no_argument, NULL, O_ALLOW_REMOTE },
	{ "json", no_argument, NULL, O_JSON },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static void
defaults(struct lg_options *opt)
{
	static const char *const urls[LG_NTARGETS] = {
		"http://127.0.0.1:8081",
		"http://127.0.0.1:8082",
		"http://127.0.0.1:8083",
	};
	const char *token = getenv("LOADGEN_TOKEN");

	memset(opt, 0, sizeof(*opt));
	opt->rate = 10;
	opt->duration_ms = 60000;
	opt->mix[LG_BROWSE] = 25;
	opt->mix[LG_READ] = 50;
	opt->mix[LG_ORDER] = 25;
	opt->cancel_pct = 10;
	opt->list_limit = 20;
	opt->max_items = 3;
	opt->max_quantity = 2;
	opt->check_after_ms = 1000;
	opt->max_inflight = 256;
	opt->timeout_ms = 5000;
	opt->stock = 100000;
	for (int t = 0; t < LG_NTARGETS; t++)
		snprintf(opt->url[t], sizeof(opt->url[t]), "%s", urls[t]);
	if (token != NULL && token[0] != '\0')
		opt->token = strdup(token);
}

/* One flag with its value; the numbers' ranges are here. */
static int
one_flag(struct lg_options *opt, int c, const char *flag, const char *v,
	 char *err, size_t errlen)
{
	unsigned long long n = 0;
	int rc = LG_OK;

	switch (c) {
	case O_RATE:
		return parse_rate(v, &opt->rate, err, errlen);
	case O_DURATION:
		return parse_span(flag, v, 0, &opt->duration_ms, err, errlen);
	case O_CHECK_AFTER:
		return parse_span(flag, v, 1, &opt->check_after_ms, err,
				  errlen);
	case O_TIMEOUT:
		return parse_span(flag, v, 1, &opt->timeout_ms, err, errlen);
	case O_MIX:
		return parse_mix(v, opt->mix, err, errlen);
	case O_PRODUCTS:
	case O_INVENTORY:
	case O_ORDERS:
		return parse_url(flag, v, opt->url[c - O_PRODUCTS],
				 sizeof(opt->url[0]), err, errlen);
	case O_TOKEN:
		free(opt->token);
		opt->token = strdup(v);
		return LG_OK;
	case O_TOKEN_FILE:
		return read_token_file(v, &opt->token, err, errlen);
	case O_RECORD:
		free(opt->record);
		opt->record = strdup(v);
		if (opt->record == NULL)
			return bad(err, errlen, "%s: out of memory", flag);
		break;
	case O_CANCEL:
		rc = parse_uint(flag, v, 0, 100, &n, err, errlen);
		opt->cancel_pct = (unsigned)n;
		break;
	case O_LIST_LIMIT:
		rc = parse_uint(flag, v, 1, 100, &n, err, errlen);
		opt->list_limit = (unsigned)n;
		break;
	case O_ITEMS:
		rc = parse_uint(flag, v, 1, LG_MAX_ITEMS, &n, err, errlen);
		opt->max_items = (unsigned)n;
		break;
	case O_QUANTITY:
		rc = parse_uint(flag, v, 1, 100, &n, err, errlen);
		opt->max_quantity = (unsigned)n;
		break;
	case O_MAX_INFLIGHT:
		rc = parse_uint(flag, v, 1, 10000, &n, err, errlen);
		opt->max_inflight = (unsigned)n;
		break;
	case O_SEED:
		rc = parse_uint(flag, v, 0, LG_MAX_PRODUCTS, &n, err, errlen);
		opt->seed = (unsigned)n;
		break;
	case O_STOCK:
		rc = parse_uint(flag, v, 1, 1000000000, &n, err, errlen);
		opt->stock = (long long)n;
		break;
	}
	return rc;
}

/* What no single flag can say: targets, and a token for --seed. */
static int
check_whole(const struct lg_options *opt, char *err, size_t errlen)
{
	static const char *const flags[LG_NTARGETS] = {
		"--products",
		"--inventory",
		"--orders",
	};

	for (int t = 0; t < LG_NTARGETS && !opt->allow_remote; t++)
		if (!lg_url_is_loopback(opt->url[t]))
			return bad(err, errlen,
				   "%s %s is not a loopback"
				   " address; pass --allow-remote to load"
				   " another host",
				   flags[t], opt->url[t]);
	if (opt->seed > 0 && opt->token == NULL)
		return bad(err, errlen,
			   "--seed needs an admin token: --token,"
			   " --token-file or LOADGEN_TOKEN");
	return LG_OK;
}

/* "--rate" for O_RATE: how a message names the flag. */
static const char *
flag_name(int c, char buf[32])
{
	for (const struct option *o = longopts; o->name != NULL; o++)
		if (o->val == c) {
			snprintf(buf, 32, "--%s", o->name);
			return buf;
		}
	return "?";
}

int
lg_options_parse(struct lg_options *opt, int argc, char **argv, char *err,
		 size_t errlen)
{
	char flag[32];
	int c, rc;

	defaults(opt);
	opterr = 0;
	optind = 0; /* glibc: a full restart, for a second parse (tests) */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h' || c == O_HELP)
			return -1;
		if (c == ':')
			return bad(err, errlen, "%s needs a value",
				   flag_name(optopt, flag));
		if (c == '?')
			return bad(err, errlen,
				   "unknown flag %s (loadgen"
				   " --help lists them)",
				   argv[optind - 1]);
		if (c == O_ALLOW_REMOTE || c == O_JSON || c == O_QUIET) {
			opt->allow_remote |= c == O_ALLOW_REMOTE;
			opt->json |= c == O_JSON;
			opt->quiet |= c == O_QUIET;
			continue;
		}
		rc = one_flag(opt, c, flag_name(c, flag), optarg, err, errlen);
		if (rc != LG_OK)
			return rc;
	}
	if (optind < argc)
		return bad(err, errlen,
			   "unexpected argument '%s' (loadgen"
			   " takes flags only)",
			   argv[optind]);
	return check_whole(opt, err, errlen);
}

void
lg_options_cleanup(struct lg_options *opt)
{
	free(opt->token);
	opt->token = NULL;
	free(opt->record);
	opt->record = NULL;
}
