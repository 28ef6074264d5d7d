/*
 * client_internal.h - test hooks into client.c: the clock the service
 * token is minted and aged by, the number of live per-thread handles, and
 * the libcurl result table. Nothing a service should call.
 */
#ifndef SVC_CLIENT_INTERNAL_H
#define SVC_CLIENT_INTERNAL_H

/*
 * Replaces the wall clock (seconds since the epoch) used for the token's
 * iat/exp and its refresh; NULL restores svc_time_s(). Set it while no
 * call is in flight.
 */
void svc__client_set_clock(long long (*now_s)(void));

/* Per-thread handles currently alive (registered and not yet freed). */
int svc__client_handles(void);

/* The SVC_E* code for a libcurl result (a CURLcode). */
int svc__client_curl_error(int code);

#endif
