/*
 * test_connguard.c - unit tests for connguard.c on socketpairs: a request
 * late to arrive has its socket shut down (the peer reads the end of the
 * stream), one being answered or one inside its deadline does not, a sent
 * response starts the next deadline; and an address keeps to its share
 * only once half the server is taken. Against real connections through
 * libmicrohttpd: tests/security/test_connections.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connguard.h"
#include "svc/util.h"
#include "unit.h"

static struct sockaddr_in
ipv4(const char *text)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	ck_assert_int_eq(inet_pton(AF_INET, text, &sa.sin_addr), 1);
	return sa;
}

#define SA(x) ((const struct sockaddr *)(const void *)&(x))

/* Whether the peer of pair[0] sees the end of the stream right now. */
static bool
peer_sees_eof(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0;
}

START_TEST(late_request_is_shut_down)
{
	struct svc_connguard *g = svc_connguard_new(
		&(struct svc_connguard_config){ .max_connections = 16,
						.max_per_ip = 4,
						.read_timeout_ms = 3600000 });
	struct sockaddr_in a = ipv4("192.0.2.1");
	int late[2], busy[2], fresh[2];
	struct svc_conn *cl, *cb, *cf;
	long long now = svc_now_ms();

	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, late), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, busy), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fresh), 0);
	cl = svc_connguard_open(g, late[0], SA(a));
	cb = svc_connguard_open(g, busy[0], SA(a));
	ck_assert_ptr_nonnull(cl);
	ck_assert_ptr_nonnull(cb);
	svc_connguard_request_read(cb); /* being answered: no deadline */

	ck_assert_int_eq(svc_connguard_sweep(g, now + 1000), 0);
	ck_assert(!peer_sees_eof(late[1]));
	ck_assert_int_eq(svc_connguard_sweep(g, now + 3600000 + 1000), 1);
	ck_assert(peer_sees_eof(late[1]));
	ck_assert(!peer_sees_eof(busy[1]));
	/* Shut once: a second sweep leaves it be. */
	ck_assert_int_eq(svc_connguard_sweep(g, now + 3600000 + 2000), 0);

	/* A response out starts the next wait from then. */
	cf = svc_connguard_open(g, fresh[0], SA(a));
	svc_connguard_request_read(cf);
	svc_connguard_response_sent(cf);
	ck_assert_int_eq(svc_connguard_sweep(g, svc_now_ms() + 3599000), 0);
	ck_assert_int_eq(svc_connguard_sweep(g, svc_now_ms() + 3601000), 1);
	ck_assert(peer_sees_eof(fresh[1]));

	svc_connguard_close(g, cl);
	svc_connguard_close(g, cb);
	svc_connguard_close(g, cf);
	svc_connguard_free(g);
	for (int i = 0; i < 2; i++) {
		close(late[i]);
		close(busy[i]);
		close(fresh[i]);
	}
}
END_TEST

START_TEST(share_applies_past_half)
{
	struct svc_connguard *g =
		svc_connguard_new(&(struct svc_connguard_config){
			.max_connections = 8, .max_per_ip = 2 });
	struct sockaddr_in a = ipv4("192.0.2.1"), b = ipv4("192.0.2.2");
	struct svc_conn *held[4];

	ck_assert_ptr_nonnull(g);
	/* Room to spare: a may go past its share of 2. */
	for (int i = 0; i < 3; i++) {
		ck_assert(svc_connguard_admit(g, SA(a)));
		held[i] = svc_connguard_open(g, -1, SA(a));
	}
	ck_assert(svc_connguard_admit(g, SA(a)));
	held[3] = svc_connguard_open(g, -1, SA(a));
	/* Half taken: a is over its share, b is not. */
	ck_assert(!svc_connguard_admit(g, SA(a)));
	ck_assert(svc_connguard_admit(g, SA(b)));
	/* Closing brings the server under half again. */
	svc_connguard_close(g, held[3]);
	ck_assert(svc_connguard_admit(g, SA(a)));
	for (int i = 0; i < 3; i++)
		svc_connguard_close(g, held[i]);
	svc_connguard_free(g);
}
END_TEST

START_TEST(no_share_when_off)
{
	struct svc_connguard *g =
		svc_connguard_new(&(struct svc_connguard_config){
			.max_connections = 2, .max_per_ip = 0 });
	struct sockaddr_in a = ipv4("192.0.2.1");
	struct svc_conn *c[3];

	for (int i = 0; i < 3; i++)
		c[i] = svc_connguard_open(g, -1, SA(a));
	ck_assert(svc_connguard_admit(g, SA(a)));
	/* No deadline configured: nothing is ever swept. */
	ck_assert_int_eq(svc_connguard_sweep(g, svc_now_ms() + 86400000), 0);
	for (int i = 0; i < 3; i++)
		svc_connguard_close(g, c[i]);
	svc_connguard_free(g);
}
END_TEST

Suite *
connguard_suite(void)
{
	Suite *s = suite_create("connguard");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, late_request_is_shut_down);
	tcase_add_test(tc, share_applies_past_half);
	tcase_add_test(tc, no_share_when_off);
	suite_add_tcase(s, tc);
	return s;
}
