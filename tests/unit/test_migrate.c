/*
 * test_migrate.c - unit tests for the part of migrate.c that needs no
 * database: reading a migrations folder (made with mkdtemp) and finding its
 * newest version with svc_migrate_latest(). File naming (NNNN_name.sql),
 * duplicate versions and unreadable folders are refused here exactly as
 * svc_migrate_run() would refuse them before touching PostgreSQL; applying,
 * checksums and locking are left to the integration tests.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc/log.h"
#include "svc/migrate.h"
#include "unit.h"

static char dir[64];
static int devnull = -1;

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/unit-migrate-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	/* Refusals are logged as errors; keep them out of the test output. */
	svc_log_init("unit-migrate", SVC_LOG_ERROR, devnull);
}

/* Removes the folder and what the tests put in it (one level deep). */
static void
teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (unlink(path) != 0)
				rmdir(path);
		}
		closedir(d);
	}
	rmdir(dir);
	svc_log_init("svc", SVC_LOG_INFO, 1);
	close(devnull);
}

static void
add(const char *name, const char *sql)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(sql, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(empty_folder_is_version_0)
{
	ck_assert_int_eq(svc_migrate_latest(dir), 0);
}
END_TEST

START_TEST(latest_is_the_highest_version)
{
	add("0002_more.sql", "SELECT 2;\n");
	add("0010_later.sql", "SELECT 10;\n");
	add("0001_init.sql", "SELECT 1;\n");
	ck_assert_int_eq(svc_migrate_latest(dir), 10);
}
END_TEST

START_TEST(versions_need_not_be_contiguous)
{
	add("0007_only.sql", "SELECT 7;\n");
	ck_assert_int_eq(svc_migrate_latest(dir), 7);
	add("9999_last.sql", "");
	ck_assert_int_eq(svc_migrate_latest(dir), 9999);
}
END_TEST

START_TEST(other_files_are_ignored)
{
	char sub[128];

	add("0001_init.sql", "SELECT 1;\n");
	add("0002_more.sql", "SELECT 2;\n");
	add("README.md", "notes\n");
	add("0003_draft.sql.bak", "SELECT 3;\n");
	add("0004_upper.SQL", "SELECT 4;\n");
	add(".0005_hidden.sql", "SELECT 5;\n");
	add("notes.txt", "");
	add("sql", "");
	snprintf(sub, sizeof(sub), "%s/old", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_int_eq(svc_migrate_latest(dir), 2);
}
END_TEST

static const char *const bad_names[] = {
	"1_x.sql",	 /* too few digits */
	"0001-x.sql",	 /* hyphen instead of underscore */
	"00001_x.sql",	 /* too many digits */
	"0000_zero.sql", /* versions start at 1 */
	"abcd_x.sql",	 /* not digits */
	"0001_.sql",	 /* no name */
	"0001x_name.sql", "001a_name.sql", "x0001_name.sql",
};

START_TEST(badly_named_files_are_refused)
{
	add("0001_good.sql", "SELECT 1;\n");
	add(bad_names[_i], "SELECT 2;\n");
	ck_assert_msg(svc_migrate_latest(dir) < 0, "accepted %s",
		      bad_names[_i]);
}
END_TEST

START_TEST(duplicate_versions_are_refused)
{
	add("0001_init.sql", "SELECT 1;\n");
	add("0002_a.sql", "SELECT 2;\n");
	add("0002_b.sql", "SELECT 2;\n");
	add("0003_c.sql", "SELECT 3;\n");
	ck_assert_int_lt(svc_migrate_latest(dir), 0);
}
END_TEST

START_TEST(missing_folder_is_refused)
{
	char missing[128];

	snprintf(missing, sizeof(missing), "%s/does-not-exist", dir);
	ck_assert_int_lt(svc_migrate_latest(missing), 0);
	ck_assert_int_lt(svc_migrate_latest("/nonexistent/unit/migrations"), 0);
}
END_TEST

START_TEST(a_file_is_not_a_folder)
{
	char file[128];

	add("0001_init.sql", "SELECT 1;\n");
	snprintf(file, sizeof(file), "%s/0001_init.sql", dir);
	ck_assert_int_lt(svc_migrate_latest(file), 0);
}
END_TEST

Suite *
migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("latest");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, empty_folder_is_version_0);
	tcase_add_test(tc, latest_is_the_highest_version);
	tcase_add_test(tc, versions_need_not_be_contiguous);
	tcase_add_test(tc, other_files_are_ignored);
	tcase_add_loop_test(tc, badly_named_files_are_refused, 0,
			    (int)(sizeof(bad_names) / sizeof(bad_names[0])));
	tcase_add_test(tc, duplicate_versions_are_refused);
	tcase_add_test(tc, missing_folder_is_refused);
	tcase_add_test(tc, a_file_is_not_a_folder);
	suite_add_tcase(s, tc);
	return s;
}
