/*
 * http_client.c - the integration suites' HTTP client (libcurl), token
 * minting and small helpers. Not a mock of anything: every call goes to a
 * real service over loopback.
 */
#include <curl/curl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "integ.h"
#include "svc/jwt.h"

struct buf {
	char *data;
	size_t len;
};

static size_t
append(char *ptr, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	char *p = realloc(b->data, b->len + add + 1);

	if (p == NULL)
		return 0;
	memcpy(p + b->len, ptr, add);
	b->data = p;
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

struct http_resp *
http_do(const char *method, const char *u, const char *const *headers,
	const char *body)
{
	struct http_resp *r = calloc(1, sizeof(*r));
	struct buf bbody = { calloc(1, 1), 0 }, bhead = { calloc(1, 1), 0 };
	struct curl_slist *list = NULL;
	CURL *c = curl_easy_init();
	CURLcode rc;

	ck_assert_ptr_nonnull(c);
	for (int i = 0; headers != NULL && headers[i] != NULL; i++)
		list = curl_slist_append(list, headers[i]);
	/* libcurl adds "Expect: 100-continue" to large bodies; not wanted. */
	list = curl_slist_append(list, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, u);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &bbody);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, append);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &bhead);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, u,
		      curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(list);
	curl_easy_cleanup(c);
	r->body = bbody.data;
	r->len = bbody.len;
	r->headers = bhead.data;
	r->json = json_loadb(r->body, r->len, 0, NULL);
	return r;
}

void
http_free(struct http_resp *r)
{
	if (r == NULL)
		return;
	json_decref(r->json);
	free(r->body);
	free(r->headers);
	free(r);
}

char *
http_header(const struct http_resp *r, const char *name)
{
	size_t n = strlen(name);

	for (const char *line = r->headers; line != NULL && *line != '\0';) {
		const char *eol = strstr(line, "\r\n");
		size_t len = eol ? (size_t)(eol - line) : strlen(line);

		if (len > n + 1 && strncasecmp(line, name, n) == 0 &&
		    line[n] == ':') {
			const char *v = line + n + 1;

			while (*v == ' ')
				v++;
			return strndup(v, (size_t)(line + len - v));
		}
		line = eol ? eol + 2 : NULL;
	}
	return NULL;
}

const char *
env_or_fail(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v != NULL && *v != '\0', "%s is not set", name);
	return v;
}

const char *
url(const char *base, const char *fmt, ...)
{
	static _Thread_local char slots[8][2048];
	static _Thread_local int next;
	char *out = slots[next++ % 8];
	int n = snprintf(out, sizeof(slots[0]), "%s", base);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out + n, sizeof(slots[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	return out;
}

const char *
auth_header(const char *role)
{
	static _Thread_local char slots[4][1100];
	static _Thread_local int next;
	char *out = slots[next++ % 4], token[1024];
	const char *secret = env_or_fail("JWT_SECRET");

	ck_assert_int_eq(svc_jwt_mint("tests", role, (long long)time(NULL), 600,
				      (const unsigned char *)secret,
				      strlen(secret), token, sizeof(token)),
			 0);
	snprintf(out, sizeof(slots[0]), "Authorization: Bearer %s", token);
	return out;
}

int
run_cmd(const char *cmd, char **out)
{
	struct buf b = { calloc(1, 1), 0 };
	char chunk[4096];
	FILE *p = popen(cmd, "r");
	size_t n;
	int st;

	ck_assert_ptr_nonnull(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		append(chunk, 1, n, &b);
	st = pclose(p);
	if (out != NULL)
		*out = b.data;
	else
		free(b.data);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void
pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int
spare_port(int i)
{
	return atoi(env_or_fail("SPARE_PORTS")) + i;
}

/* Polls url until it answers 200, for at most ms milliseconds. */
static bool
answers(const char *u, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		CURL *c = curl_easy_init();
		long status = 0;

		curl_easy_setopt(c, CURLOPT_URL, u);
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(c);
		if (status == 200)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

int
spawn_service(const char *name, int port, const char *const *env, char log[64])
{
	char db_key[64], ready[128], ports[16];
	const char *dir = getenv("BIN_DIR");
	int fd, pid;

	snprintf(log, 64, "/tmp/microshop-%s-XXXXXX", name);
	fd = mkstemp(log);
	ck_assert_int_ge(fd, 0);
	snprintf(db_key, sizeof(db_key), "%s_DATABASE_URL", name);
	for (char *c = db_key; *c != '\0'; c++)
		*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
	snprintf(ports, sizeof(ports), "%d", port);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char bin[512];

		dup2(fd, 1);
		dup2(fd, 2);
		setenv("SERVICE_HOST", "127.0.0.1", 1);
		setenv("SERVICE_PORT", ports, 1);
		setenv("DATABASE_URL", getenv(db_key) ? getenv(db_key) : "", 1);
		for (int i = 0; env != NULL && env[i] != NULL; i++)
			putenv((char *)env[i]);
		snprintf(bin, sizeof(bin), "%s/%s", dir ? dir : "build", name);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	close(fd);
	snprintf(ready, sizeof(ready), "http://127.0.0.1:%d/health/ready",
		 port);
	ck_assert_msg(answers(ready, 20000), "%s on %d did not become ready",
		      name, port);
	return pid;
}

long long
db_count(const char *env, const char *sql, const char *param)
{
	PGconn *c = PQconnectdb(env_or_fail(env));
	PGresult *r;
	long long n;

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	r = PQexecParams(c, sql, 1, NULL, &param, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
		      PQerrorMessage(c));
	n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return n;
}

int *
spawned_new(int n)
{
	void *p = mmap(NULL, (size_t)n * sizeof(int), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, (size_t)n * sizeof(int));
	return p;
}

void
spawned_kill(int *pids, int n)
{
	if (pids == NULL)
		return;
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	munmap(pids, (size_t)n * sizeof(int));
}

int
stop_service(int pid)
{
	int status = 0;

	kill(pid, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

bool
file_contains(const char *path, const char *text, int ms)
{
	for (int waited = 0;; waited += 50) {
		FILE *f = fopen(path, "r");
		char line[8192];
		bool found = false;

		while (f != NULL && !found && fgets(line, sizeof(line), f))
			found = strstr(line, text) != NULL;
		if (f != NULL)
			fclose(f);
		if (found)
			return true;
		if (waited >= ms)
			return false;
		usleep(50 * 1000);
	}
}

int
service_names(char names[][SERVICE_NAME_MAX], int max)
{
	static const char prefix[] = "services/";
	glob_t g;
	int n = 0;

	if (glob("services/*/main.c", 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc && n < max; i++) {
		const char *name = g.gl_pathv[i] + sizeof(prefix) - 1;
		size_t len = strcspn(name, "/");

		if (len == 0 || len >= SERVICE_NAME_MAX)
			continue;
		memcpy(names[n], name, len);
		names[n][len] = '\0';
		n++;
	}
	globfree(&g);
	return n;
}
