/* Output files (core/file_out.c): a set's outputs appear all or none, temporaries never outlive it,
 * modes carry over, and what is not a regular file is written through or refused, never replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "test_util.h"
#include "file_out.h"

static char dir[64];

static const char *at(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

/* The names in dir, one string: a temporary left behind shows up as a new name. */
static void listing(char *buf, size_t n)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", dir);
    FILE *p = popen(cmd, "r");
    size_t k = fread(buf, 1, n - 1, p);
    buf[k] = 0;
    pclose(p);
}

static const stile_out_piece hello[2] = {{"hello, ", 7}, {"world\n", 6}};

static void test_a_set_destroyed_before_commit_leaves_nothing_behind(void **state)
{
    (void)state;
    char before[4096], after[4096], err[512];
    listing(before, sizeof before);
    stile_out_set *set = NULL;
    assert_int_equal(stile_out_set_create(&set), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("a.txt"), hello, 2, err, sizeof err), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("b.txt"), hello, 1, err, sizeof err), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("nodir/c.txt"), hello, 1, err, sizeof err), STILE_ERR_IO);
    printf("  %s\n", err);
    stile_out_set_destroy(&set);
    assert_null(set);
    listing(after, sizeof after);
    assert_string_equal(before, after);
}

static void test_a_committed_set_writes_every_output(void **state)
{
    (void)state;
    char err[512], text[64] = "";
    stile_out_set *set = NULL;
    assert_int_equal(stile_out_set_create(&set), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("one.txt"), hello, 2, err, sizeof err), STILE_OK);
    assert_int_equal(stile_out_stage(set, "/dev/null", hello, 2, err, sizeof err), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("empty.txt"), NULL, 0, err, sizeof err), STILE_OK);
    assert_int_equal(access(at("one.txt"), F_OK), -1); /* nothing appears before commit */
    assert_int_equal(stile_out_commit(set, err, sizeof err), STILE_OK);
    stile_out_set_destroy(&set);
    FILE *f = fopen(at("one.txt"), "r");
    assert_int_equal(fread(text, 1, sizeof text - 1, f), 13);
    fclose(f);
    assert_string_equal(text, "hello, world\n");
    struct stat st;
    assert_int_equal(stat(at("empty.txt"), &st), 0);
    assert_int_equal(st.st_size, 0);
    unlink(at("one.txt"));
    unlink(at("empty.txt"));
}

/* A copy of /dev/full made with mknod (so that a regression replaces the copy), else /dev/full
 * itself where we are not root (and so could not replace it); NULL: skip. */
static const char *full_device(void)
{
    if (mknod(at("full"), S_IFCHR | 0666, makedev(1, 7)) == 0) return at("full");
    return geteuid() != 0 ? "/dev/full" : NULL;
}

static void test_a_failing_device_write_commits_no_file_and_keeps_the_device(void **state)
{
    (void)state;
    const char *full = full_device();
    if (!full) skip();
    char path_full[256], before[4096], after[4096], err[512];
    snprintf(path_full, sizeof path_full, "%s", full);
    listing(before, sizeof before);
    stile_out_set *set = NULL;
    assert_int_equal(stile_out_set_create(&set), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("first.txt"), hello, 2, err, sizeof err), STILE_OK);
    assert_int_equal(stile_out_stage(set, path_full, hello, 2, err, sizeof err), STILE_OK);
    assert_int_equal(stile_out_commit(set, err, sizeof err), STILE_ERR_IO);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "No space left on device"));
    stile_out_set_destroy(&set);
    listing(after, sizeof after);
    assert_string_equal(before, after); /* no first.txt, no temporary */
    struct stat st;
    assert_int_equal(stat(path_full, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    if (strcmp(path_full, "/dev/full") != 0) unlink(path_full);
}

static void test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(void **state)
{
    (void)state;
    char err[512];
    const mode_t old = umask(027);
    assert_int_equal(stile_out_write(at("new.txt"), hello, 2, err, sizeof err), STILE_OK);
    umask(old);
    struct stat st;
    assert_int_equal(stat(at("new.txt"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(chmod(at("new.txt"), 0604), 0);
    assert_int_equal(stile_out_write(at("new.txt"), hello, 1, err, sizeof err), STILE_OK);
    assert_int_equal(stat(at("new.txt"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0604);
    assert_int_equal(st.st_size, 7);
    unlink(at("new.txt"));
}

static void test_one_file_named_twice_in_a_set_is_refused(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(stile_out_write(at("twice.txt"), hello, 2, err, sizeof err), STILE_OK);
    assert_int_equal(symlink("twice.txt", at("alias.txt")), 0);
    stile_out_set *set = NULL;
    assert_int_equal(stile_out_set_create(&set), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("twice.txt"), hello, 1, err, sizeof err), STILE_OK);
    assert_int_equal(stile_out_stage(set, at("alias.txt"), hello, 1, err, sizeof err), STILE_ERR_INVALID_ARGUMENT);
    printf("  %s\n", err);
    assert_non_null(strstr(err, "the same file"));
    stile_out_set_destroy(&set);
    unlink(at("alias.txt"));
    unlink(at("twice.txt"));
}

static void test_directories_sockets_and_missing_directories_are_refused_up_front(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(stile_out_check(dir, err, sizeof err), STILE_ERR_IO);
    assert_non_null(strstr(err, "is a directory"));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", at("sock"));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(stile_out_check(at("sock"), err, sizeof err), STILE_ERR_IO);
    assert_non_null(strstr(err, "socket"));
    assert_int_equal(stile_out_write(at("sock"), hello, 2, err, sizeof err), STILE_ERR_IO);
    struct stat st;
    assert_int_equal(lstat(at("sock"), &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    close(fd);
    unlink(at("sock"));
    assert_int_equal(stile_out_check(at("nodir/x.txt"), err, sizeof err), STILE_ERR_IO);
    printf("  %s\n", err);
    assert_int_equal(stile_out_check(at("fresh.txt"), err, sizeof err), STILE_OK);
    assert_int_equal(access(at("fresh.txt"), F_OK), -1); /* checking creates nothing */
    assert_int_equal(stile_out_check("/dev/null", err, sizeof err), STILE_OK);
    assert_int_equal(symlink("loop", at("loop")), 0);
    assert_int_equal(stile_out_check(at("loop"), err, sizeof err), STILE_ERR_IO);
    printf("  %s\n", err);
    unlink(at("loop"));
}

int main(void)
{
    if (conf_tmpdir(dir, sizeof dir, "file-out") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_set_destroyed_before_commit_leaves_nothing_behind),
        cmocka_unit_test(test_a_committed_set_writes_every_output),
        cmocka_unit_test(test_a_failing_device_write_commits_no_file_and_keeps_the_device),
        cmocka_unit_test(test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs),
        cmocka_unit_test(test_one_file_named_twice_in_a_set_is_refused),
        cmocka_unit_test(test_directories_sockets_and_missing_directories_are_refused_up_front),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (conf_tmpdir_remove(dir) != 0) rc = rc ? rc : 1;
    return rc;
}
