/*
 * svc/config.h - configuration from the environment and an optional .env.
 *
 * Values come from the process environment first, then from a .env file
 * (KEY=VALUE lines, '#' comments, optional quotes). Getters are typed and
 * take a default, used only when the key is not set at all (KEY= sets it to
 * "", which a typed getter refuses). An invalid value does not abort at
 * once but is recorded, so start-up can report the first bad key in one
 * line and exit with code 2 (svc_config_ok/svc_config_error). Configuration
 * is read once at start-up from the main thread; it is not meant to be
 * re-read or used from workers.
 */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Loads a .env file. path NULL means $ENV_FILE, or "./.env" when that exists.
 * A missing default file is fine; a missing explicit file is an error.
 * Returns 0 or SVC_EINVAL (recorded like a bad value, naming ENV_FILE).
 */
int svc_config_load(const char *path);

/* Forgets loaded values, noted keys and recorded errors. */
void svc_config_reset(void);

/* Raw value of key (borrowed, valid until svc_config_reset), or NULL. */
const char *svc_config_get(const char *key);

/* String value or def (borrowed). An empty value counts as set. */
const char *svc_config_str(const char *key, const char *def);

/* A string that must be present and at least min_len bytes long. */
const char *svc_config_required(const char *key, size_t min_len);

/* Integer in [min, max]; records an error and returns def otherwise. */
long long svc_config_int(const char *key, long long def, long long min,
			 long long max);

/* true/false/1/0/yes/no/on/off. */
bool svc_config_bool(const char *key, bool def);

/*
 * A duration with a unit: "250ms", "30s", "5m", "1h" (a bare number means
 * seconds). Returned in milliseconds, within [min_ms, max_ms].
 */
long long svc_config_duration_ms(const char *key, const char *def,
				 long long min_ms, long long max_ms);

/* One of the given choices (NULL-terminated); returns its index. */
int svc_config_enum(const char *key, const char *def,
		    const char *const *choices);

/*
 * Says what key accepts ("debug|info|warn|error"), for --help, where its
 * reader's own description would only say "text"; call it before the key
 * is read to list it at that place. The getters above note every key
 * they read with the default they were given. Start-up only.
 */
void svc_config_describe(const char *key, const char *accepts);

typedef void (*svc_config_key_fn)(const char *key, const char *def,
				  const char *accepts, void *arg);

/*
 * Calls fn for every key read or described since the last
 * svc_config_reset(), in the order first seen, with the default its first
 * reader passed (NULL: none) and what it accepts, both borrowed for the
 * call.
 */
void svc_config_foreach(svc_config_key_fn fn, void *arg);

/* Records an error for key (used by module-specific parsers). */
void svc_config_fail(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Whether every value read so far was valid. */
bool svc_config_ok(void);

/* The first error, "SERVICE_PORT: must be an integer in 1..65535, got \"x\"".
 */
const char *svc_config_error(void);

#endif
