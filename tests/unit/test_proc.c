/*
 * test_proc.c — src/pipeline/proc.c: pipeline steps as real local processes.
 *
 * Every test spawns real programs (/bin/sh -c '...', env, ls, cat, sleep) in
 * a temporary directory of its own (mkdtemp, removed by the teardown, which
 * also frees, and so kills and reaps, any handle a failed test left behind).
 * Synchronisation with a child is by content it writes to its stdout/stderr
 * files ("ready"), never by sleeping and hoping. Durations are bounded only
 * loosely (a 30 s sleep must end well before 20 s) or from below where the
 * contract makes a lower bound exact (no SIGKILL before the grace period).
 * Every test ends by checking that this process has no child left, zombie or
 * not; the last test checks it once more after all of them.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/pb_error.h"
#include "pipeline/pb_proc.h"

#include "fixture.h"

#define MAX_PROCS 8
#define LONG_WAIT_MS 20000 /* "ends soon": generous, only a hang fails it */

/* ------------------------------------------------------------- fixture -- */

struct fx {
    char dir[64];
    char out[128];
    char err[128];
    pb_proc *procs[MAX_PROCS];
    int nprocs;
};

static const char *const path_env[] = {"PATH=/usr/bin:/bin"};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (pb_test_tmpdir(f->dir, sizeof f->dir, "pb-proc")) {
        free(f);
        return -1;
    }
    snprintf(f->out, sizeof f->out, "%s/stdout.log", f->dir);
    snprintf(f->err, sizeof f->err, "%s/stderr.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < f->nprocs; i++)
        pb_proc_free(f->procs[i]);
    pb_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------- helpers -- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pb_proc_options opts(struct fx *f, const char *const *argv, size_t argc)
{
    pb_proc_options o = {
        .argv = argv, .argc = argc, .env = path_env, .envc = 1, .cwd = f->dir,
        .stdout_path = f->out, .stderr_path = f->err, .grace_ms = 300,
    };
    return o;
}

static pb_proc *spawn_ok(struct fx *f, const pb_proc_options *o)
{
    pb_proc *p = NULL;
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_proc_spawn(o, &p, &err);
    if (rc != 0 || !p)
        fail_msg("spawn of '%s' failed: %s %s", o->argv[0], pb_error_name(rc), err.message);
    assert_true(f->nprocs < MAX_PROCS);
    f->procs[f->nprocs++] = p;
    return p;
}

static pb_proc_result wait_done(pb_proc *p, int64_t timeout_ms)
{
    pb_proc_result r;
    pb_error err;
    pb_error_clear(&err);
    memset(&r, 0, sizeof r);
    int rc = pb_proc_wait(p, timeout_ms, &r, &err);
    if (rc != 1)
        fail_msg("pb_proc_wait returned %d (%s) after %lld ms", rc, err.message,
                 (long long)timeout_ms);
    return r;
}

/* Whole file (up to 64 KiB) as a string; the buffer is the caller's. */
static const char *slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    size_t n = 0;
    if (fp) {
        n = fread(buf, 1, cap - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
    return buf;
}

static void expect_file(const char *path, const char *want)
{
    char buf[65536];
    slurp(path, buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        fail_msg("%s holds \"%s\", expected \"%s\"", path, buf, want);
}

/* Waits (up to 10 s) until the file contains needle. */
static void await_text(const char *path, const char *needle)
{
    char buf[65536];
    for (int i = 0; i < 1000; i++) {
        if (strstr(slurp(path, buf, sizeof buf), needle))
            return;
        sleep_ms(10);
    }
    fail_msg("%s never contained \"%s\" (holds \"%s\")", path, needle, buf);
}

static void assert_no_children(void)
{
    int status;
    errno = 0;
    pid_t r = waitpid(-1, &status, WNOHANG);
    if (!(r == -1 && errno == ECHILD))
        fail_msg("this process still has children (waitpid(-1) = %d, errno %d)", (int)r, errno);
}

/* state and process group of pid from /proc; false when there is no such process */
static bool proc_stat(pid_t pid, char *state, long *pgrp)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    bool ok = fgets(line, sizeof line, fp) != NULL;
    fclose(fp);
    char *close_paren = ok ? strrchr(line, ')') : NULL;
    long ppid;
    if (!close_paren || sscanf(close_paren + 1, " %c %ld %ld", state, &ppid, pgrp) != 3)
        return false;
    return true;
}

/* The process is gone or a zombie within 10 s (its reaper is not us). */
static void expect_gone(pid_t pid)
{
    char st;
    long pg;
    for (int i = 0; i < 1000; i++) {
        if (!proc_stat(pid, &st, &pg) || st == 'Z' || st == 'X')
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL); /* do not leave it behind */
    fail_msg("process %d is still alive (state %c)", (int)pid, st);
}

static void expect_spawn_error(const pb_proc_options *o, int code, const char *needle1,
                               const char *needle2)
{
    pb_proc *p = (pb_proc *)&p; /* must be reset to NULL */
    pb_error err;
    pb_error_clear(&err);
    int rc = pb_proc_spawn(o, &p, &err);
    if (rc == 0)
        pb_proc_free(p);
    if (rc != code || err.code != code)
        fail_msg("expected %s, got %s: %s", pb_error_name(code), pb_error_name(rc), err.message);
    assert_null(p);
    if (needle1 && !strstr(err.message, needle1))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle1);
    if (needle2 && !strstr(err.message, needle2))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle2);
    assert_no_children();
}

/* ------------------------------------------------------- exit and reason -- */

static void test_exit_zero(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "echo hello"};
    pb_proc_options o = opts(f, argv, 3);
    pb_proc *p = spawn_ok(f, &o);
    pb_proc_result r = wait_done(p, LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_COMPLETED);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.term_signal, 0);
    assert_int_equal(r.pid, pb_proc_pid(p));
    assert_true(r.runtime_ms >= 0 && r.runtime_ms < LONG_WAIT_MS);
    assert_true(pb_proc_succeeded(&r));
    char reason[256];
    assert_int_equal(pb_proc_failure_reason(&r, f->err, reason, sizeof reason), 0);
    assert_string_equal(reason, "");
    expect_file(f->out, "hello\n");
    expect_file(f->err, "");

    /* the end is sticky: poll repeats it, stop is a no-op that changes nothing */
    pb_proc_result again;
    assert_int_equal(pb_proc_poll(p, &again, NULL), 1);
    assert_int_equal(again.cause, r.cause);
    assert_int_equal(again.exit_code, r.exit_code);
    assert_int_equal(again.runtime_ms, r.runtime_ms);
    assert_int_equal(again.pid, r.pid);
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    assert_int_equal(pb_proc_wait(p, -1, &again, NULL), 1);
    assert_int_equal(again.cause, PB_PROC_COMPLETED);
    assert_no_children();
}

static void test_exit_code_and_last_stderr_line(void **state)
{
    struct fx *f = *state;
    const char *script = "echo first >&2; echo '  the last line  ' >&2; "
                         "printf '\\n \\n' >&2; exit 3";
    const char *argv[] = {"/bin/sh", "-c", script};
    pb_proc_options o = opts(f, argv, 3);
    pb_proc_result r = wait_done(spawn_ok(f, &o), LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_COMPLETED);
    assert_int_equal(r.exit_code, 3);
    assert_int_equal(r.term_signal, 0);
    assert_false(pb_proc_succeeded(&r));
    char reason[1024];
    pb_proc_failure_reason(&r, f->err, reason, sizeof reason);
    assert_string_equal(reason, "exit code 3: the last line");
    assert_no_children();
}

static void test_exit_code_without_stderr(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "exit 42"};
    pb_proc_options o = opts(f, argv, 3);
    pb_proc_result r = wait_done(spawn_ok(f, &o), LONG_WAIT_MS);
    assert_int_equal(r.exit_code, 42);
    char reason[256];
    pb_proc_failure_reason(&r, f->err, reason, sizeof reason);
    assert_string_equal(reason, "exit code 42");
    assert_no_children();
}

static void test_killed_by_signal(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "echo dying >&2; kill -KILL $$; echo unreachable >&2"};
    pb_proc_options o = opts(f, argv, 3);
    pb_proc_result r = wait_done(spawn_ok(f, &o), LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_COMPLETED); /* nobody here sent it */
    assert_int_equal(r.exit_code, -1);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_false(pb_proc_succeeded(&r));
    char reason[256];
    pb_proc_failure_reason(&r, f->err, reason, sizeof reason);
    assert_string_equal(reason, "killed by signal 9 (SIGKILL): dying");
    assert_no_children();
}

/* ------------------------------------------------------- spawn failures -- */

static void test_command_not_found(void **state)
{
    struct fx *f = *state;
    char enoent[128];
    snprintf(enoent, sizeof enoent, "%s", strerror(ENOENT));

    const char *argv[] = {"pb-no-such-command", "arg"};
    pb_proc_options o = opts(f, argv, 2);
    expect_spawn_error(&o, PB_EIO, "cannot execute 'pb-no-such-command'", enoent);

    const char *abs[] = {"/nonexistent-dir/pb-prog"};
    o = opts(f, abs, 1);
    expect_spawn_error(&o, PB_EIO, "'/nonexistent-dir/pb-prog'", enoent);
}

static void test_not_executable(void **state)
{
    struct fx *f = *state;
    char eacces[128], script[160], path_var[96];
    snprintf(eacces, sizeof eacces, "%s", strerror(EACCES));
    snprintf(script, sizeof script, "%s/script", f->dir);
    FILE *fp = fopen(script, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\necho ran\n", fp);
    fclose(fp);
    assert_int_equal(chmod(script, 0644), 0); /* no x bit: even root gets EACCES */

    const char *argv[] = {script};
    pb_proc_options o = opts(f, argv, 1);
    expect_spawn_error(&o, PB_EIO, "cannot execute", eacces);

    /* through PATH: EACCES is remembered while the search goes on, as execvp does */
    snprintf(path_var, sizeof path_var, "PATH=%s:/pb-nonexistent", f->dir);
    const char *env[] = {path_var};
    const char *byname[] = {"script"};
    o = opts(f, byname, 1);
    o.env = env;
    o.envc = 1;
    expect_spawn_error(&o, PB_EIO, "'script'", eacces);
}

static void test_bad_working_directory(void **state)
{
    struct fx *f = *state;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing", f->dir);
    const char *argv[] = {"/bin/sh", "-c", "exit 0"};
    pb_proc_options o = opts(f, argv, 3);
    o.cwd = missing;
    expect_spawn_error(&o, PB_EIO, "working directory", strerror(ENOENT));
}

static void test_unwritable_output(void **state)
{
    struct fx *f = *state;
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no-such-dir/out.log", f->dir);
    const char *argv[] = {"/bin/sh", "-c", "exit 0"};
    pb_proc_options o = opts(f, argv, 3);
    o.stdout_path = bad;
    expect_spawn_error(&o, PB_EIO, "stdout", bad);
}

static void test_validation(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "exit 0"};
    pb_proc_options o;

    o = opts(f, argv, 0);
    expect_spawn_error(&o, PB_EVALIDATION, "argv is empty", NULL);

    const char *empty0[] = {""};
    o = opts(f, empty0, 1);
    expect_spawn_error(&o, PB_EVALIDATION, "argv[0] is empty", NULL);

    const char *with_null[] = {"/bin/sh", NULL};
    o = opts(f, with_null, 2);
    expect_spawn_error(&o, PB_EVALIDATION, "argv[1] is NULL", NULL);

    /* one entry past each cap */
    static const char *many[PB_PROC_MAX_ARGS + 1];
    for (size_t i = 0; i < PB_PROC_MAX_ARGS + 1; i++)
        many[i] = "x";
    o = opts(f, many, PB_PROC_MAX_ARGS + 1);
    expect_spawn_error(&o, PB_EVALIDATION, "more than the 1024 allowed", NULL);
    o = opts(f, argv, 3);
    o.env = many;
    o.envc = PB_PROC_MAX_ENV + 1;
    expect_spawn_error(&o, PB_EVALIDATION, "env has", NULL);

    char *longarg = malloc(PB_PROC_MAX_STRING + 2);
    assert_non_null(longarg);
    memset(longarg, 'a', PB_PROC_MAX_STRING + 1);
    longarg[PB_PROC_MAX_STRING + 1] = '\0';
    const char *long_argv[] = {"/bin/echo", longarg};
    o = opts(f, long_argv, 2);
    expect_spawn_error(&o, PB_EVALIDATION, "argv[1] is longer than", NULL);
    longarg[PB_PROC_MAX_STRING] = '\0'; /* exactly at the cap: accepted */
    o = opts(f, long_argv, 2);
    pb_proc *p = spawn_ok(f, &o);
    assert_int_equal(wait_done(p, LONG_WAIT_MS).exit_code, 0);

    /* ten arguments at the cap are past the total */
    const char *total_argv[10] = {"/bin/echo"};
    for (int i = 1; i < 10; i++)
        total_argv[i] = longarg;
    o = opts(f, total_argv, 10);
    expect_spawn_error(&o, PB_EVALIDATION, "together are longer than", NULL);
    free(longarg);

    const char *no_eq[] = {"PATH"};
    o = opts(f, argv, 3);
    o.env = no_eq;
    expect_spawn_error(&o, PB_EVALIDATION, "env[0] is not of the form NAME=value", NULL);
    const char *no_name[] = {"=x"};
    o.env = no_name;
    expect_spawn_error(&o, PB_EVALIDATION, "env[0]", NULL);

    o = opts(f, argv, 3);
    o.max_runtime_s = -1;
    expect_spawn_error(&o, PB_EVALIDATION, "MaxRuntimeInSeconds", NULL);
    o.max_runtime_s = PB_PROC_MAX_RUNTIME_S + 1;
    expect_spawn_error(&o, PB_EVALIDATION, "MaxRuntimeInSeconds", NULL);
    o = opts(f, argv, 3);
    o.grace_ms = PB_PROC_MAX_GRACE_MS + 1;
    expect_spawn_error(&o, PB_EVALIDATION, "grace period", NULL);
    o = opts(f, argv, 3);
    o.cwd = "";
    expect_spawn_error(&o, PB_EVALIDATION, "working directory is empty", NULL);

    char longpath[PB_PROC_MAX_PATH + 8];
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    o = opts(f, argv, 3);
    o.stderr_path = longpath;
    expect_spawn_error(&o, PB_EVALIDATION, "stderr path is longer", NULL);

    expect_spawn_error(NULL, PB_EVALIDATION, NULL, NULL);
    assert_int_equal(pb_proc_spawn(&o, NULL, NULL), PB_EVALIDATION);
}

/* -------------------------------------------------- environment and cwd -- */

static void test_environment_is_exactly_the_given_one(void **state)
{
    struct fx *f = *state;
    setenv("PB_PROC_TEST_PARENT_ONLY", "must-not-leak", 1);
    const char *argv[] = {"/usr/bin/env"};
    const char *env[] = {"A=1", "B=two words", "C=x=y", "EMPTY="};
    pb_proc_options o = opts(f, argv, 1);
    o.env = env;
    o.envc = 4;
    pb_proc_result r = wait_done(spawn_ok(f, &o), LONG_WAIT_MS);
    assert_int_equal(r.exit_code, 0);
    expect_file(f->out, "A=1\nB=two words\nC=x=y\nEMPTY=\n");

    o.env = NULL; /* no environment at all */
    o.envc = 0;
    r = wait_done(spawn_ok(f, &o), LONG_WAIT_MS);
    assert_int_equal(r.exit_code, 0);
    expect_file(f->out, "");
    unsetenv("PB_PROC_TEST_PARENT_ONLY");
    assert_no_children();
}

static void test_path_lookup(void **state)
{
    struct fx *f = *state;
    /* the child's PATH is searched; a missing dir and "" (the cwd) are skipped */
    const char *argv[] = {"env"};
    const char *env[] = {"PATH=/pb-nonexistent::/usr/bin"};
    pb_proc_options o = opts(f, argv, 1);
    o.env = env;
    o.envc = 1;
    assert_int_equal(wait_done(spawn_ok(f, &o), LONG_WAIT_MS).exit_code, 0);
    expect_file(f->out, "PATH=/pb-nonexistent::/usr/bin\n");

    /* no PATH given: the system default path still finds sh */
    const char *sh[] = {"sh", "-c", "echo found"};
    o = opts(f, sh, 3);
    o.env = NULL;
    o.envc = 0;
    assert_int_equal(wait_done(spawn_ok(f, &o), LONG_WAIT_MS).exit_code, 0);
    expect_file(f->out, "found\n");

    /* a PATH without /usr/bin and /bin does not find env, whatever ours is */
    const char *only[] = {"PATH=/pb-nonexistent"};
    o = opts(f, argv, 1);
    o.env = only;
    o.envc = 1;
    expect_spawn_error(&o, PB_EIO, "searched PATH \"/pb-nonexistent\"", NULL);
}

static void test_working_directory(void **state)
{
    struct fx *f = *state;
    char real[PATH_MAX], want[PATH_MAX + 2];
    assert_non_null(realpath(f->dir, real));
    snprintf(want, sizeof want, "%s\n", real);
    const char *argv[] = {"/bin/pwd"};
    pb_proc_options o = opts(f, argv, 1);
    assert_int_equal(wait_done(spawn_ok(f, &o), LONG_WAIT_MS).exit_code, 0);
    expect_file(f->out, want);

    /* argv[0] with a '/' is relative to the working directory, as after chdir */
    char script[160];
    snprintf(script, sizeof script, "%s/hello.sh", f->dir);
    FILE *fp = fopen(script, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\necho hi from script\n", fp);
    fclose(fp);
    assert_int_equal(chmod(script, 0755), 0);
    const char *rel[] = {"./hello.sh"};
    o = opts(f, rel, 1);
    assert_int_equal(wait_done(spawn_ok(f, &o), LONG_WAIT_MS).exit_code, 0);
    expect_file(f->out, "hi from script\n");
    assert_no_children();
}

/* ---------------------------------------------------------------- files -- */

static void test_stdout_and_stderr_files(void **state)
{
    struct fx *f = *state;
    FILE *fp = fopen(f->out, "w");
    assert_non_null(fp);
    fputs("old contents, longer than what comes next\n", fp);
    fclose(fp);
    const char *script = "echo out; echo err >&2; printf partial; read x; "
                         "echo \"stdin gave $?\" >&2";
    const char *argv[] = {"/bin/sh", "-c", script};
    pb_proc_options o = opts(f, argv, 3);
    assert_int_equal(wait_done(spawn_ok(f, &o), LONG_WAIT_MS).exit_code, 0);
    expect_file(f->out, "out\npartial"); /* truncated, not overwritten in place */
    expect_file(f->err, "err\nstdin gave 1\n"); /* stdin is /dev/null: read hits EOF */
    struct stat st;
    assert_int_equal(stat(f->err, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    /* NULL paths are /dev/null */
    o.stdout_path = o.stderr_path = NULL;
    assert_int_equal(wait_done(spawn_ok(f, &o), LONG_WAIT_MS).exit_code, 0);
    expect_file(f->out, "out\npartial");
    assert_no_children();
}

static void test_same_file_for_stdout_and_stderr(void **state)
{
    struct fx *f = *state;
    char both[160], alias[170];
    snprintf(both, sizeof both, "%s/both.log", f->dir);
    snprintf(alias, sizeof alias, "%s/./both.log", f->dir); /* another name, same file */
    const char *argv[] = {"/bin/sh", "-c", "echo one; echo two >&2; echo three"};
    pb_proc_options o = opts(f, argv, 3);
    o.stdout_path = both;
    o.stderr_path = alias;
    assert_int_equal(wait_done(spawn_ok(f, &o), LONG_WAIT_MS).exit_code, 0);
    expect_file(both, "one\ntwo\nthree\n");
    assert_no_children();
}

/* Runs `ls -l /proc/self/fd` through pb_proc and checks what the child had
 * open: 0 -> /dev/null, 1 and 2 -> the two files, and one more descriptor,
 * the directory ls itself opened to list (-> /proc/<pid>/fd). Returns a
 * description of the first problem, or NULL. Thread-safe (no cmocka). */
static const char *check_fd_listing(const char *dir, const char *tag, char *why, size_t cap)
{
    char out[192], err[192], rout[PATH_MAX], rerr[PATH_MAX];
    snprintf(out, sizeof out, "%s/fds-%s.out", dir, tag);
    snprintf(err, sizeof err, "%s/fds-%s.err", dir, tag);
    const char *argv[] = {"/bin/ls", "-l", "/proc/self/fd"};
    pb_proc_options o = {.argv = argv, .argc = 3, .cwd = dir, .stdout_path = out,
                         .stderr_path = err, .grace_ms = 300};
    pb_proc *p = NULL;
    pb_proc_result r;
    pb_error e;
    if (pb_proc_spawn(&o, &p, &e) != 0) {
        snprintf(why, cap, "spawn: %.400s", e.message);
        return why;
    }
    int rc = pb_proc_wait(p, LONG_WAIT_MS, &r, &e);
    pb_proc_free(p);
    if (rc != 1 || r.exit_code != 0) {
        snprintf(why, cap, "ls did not succeed (rc %d, exit %d)", rc, r.exit_code);
        return why;
    }
    if (!realpath(out, rout) || !realpath(err, rerr)) {
        snprintf(why, cap, "realpath failed");
        return why;
    }

    char buf[65536];
    FILE *fp = fopen(out, "r");
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    int count = 0, other = 0;
    bool saw[3] = {false, false, false};
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *arrow = strstr(line, " -> ");
        if (!arrow)
            continue; /* "total 0" */
        *arrow = '\0';
        const char *target = arrow + 4, *num = strrchr(line, ' ');
        int fd = num ? atoi(num + 1) : -1;
        count++;
        if (fd == 0 && strcmp(target, "/dev/null") == 0)
            saw[0] = true;
        else if (fd == 1 && strcmp(target, rout) == 0)
            saw[1] = true;
        else if (fd == 2 && strcmp(target, rerr) == 0)
            saw[2] = true;
        else if (strncmp(target, "/proc/", 6) == 0 && strstr(target, "/fd") &&
                 strlen(strstr(target, "/fd")) == 3)
            other++;
        else {
            snprintf(why, cap, "leaked descriptor %d -> %s", fd, target);
            return why;
        }
    }
    if (!saw[0] || !saw[1] || !saw[2] || other != 1 || count != 4) {
        snprintf(why, cap, "expected 0 1 2 and ls's own directory, saw %d entries (%d %d %d, %d other)",
                 count, saw[0], saw[1], saw[2], other);
        return why;
    }
    return NULL;
}

static void test_no_descriptor_leaks(void **state)
{
    struct fx *f = *state;
    /* descriptors this process holds without close-on-exec, as a library might */
    int plain = open("/dev/null", O_RDONLY);
    int high = dup2(plain, 100);
    int fds[2];
    assert_true(plain >= 0 && high == 100);
    assert_int_equal(pipe(fds), 0);
    char why[512];
    const char *problem = check_fd_listing(f->dir, "main", why, sizeof why);
    close(plain);
    close(high);
    close(fds[0]);
    close(fds[1]);
    if (problem)
        fail_msg("%s", problem);
    assert_no_children();
}

struct spawner {
    const char *dir;
    int index;
    char problem[512]; /* empty when all went well */
};

static void *spawn_many(void *arg)
{
    struct spawner *s = arg;
    char tag[32], why[512];
    for (int i = 0; i < 6 && !s->problem[0]; i++) {
        snprintf(tag, sizeof tag, "t%d-%d", s->index, i);
        const char *problem = check_fd_listing(s->dir, tag, why, sizeof why);
        if (problem)
            snprintf(s->problem, sizeof s->problem, "%s: %s", tag, problem);
    }
    return NULL;
}

/* Spawns racing in four threads must not hand each other's pipes or files over. */
static void test_concurrent_spawns_do_not_leak(void **state)
{
    struct fx *f = *state;
    pthread_t th[4];
    struct spawner sp[4];
    for (int i = 0; i < 4; i++) {
        memset(&sp[i], 0, sizeof sp[i]);
        sp[i].dir = f->dir;
        sp[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, spawn_many, &sp[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        if (sp[i].problem[0])
            fail_msg("%s", sp[i].problem);
    assert_no_children();
}

/* ------------------------------------------------------------- signals -- */

static void test_signal_dispositions_and_mask_reset(void **state)
{
    struct fx *f = *state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe, old_usr2;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigaction(SIGUSR2, &ign, &old_usr2);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);

    const char *argv[] = {"/bin/cat", "/proc/self/status"};
    pb_proc_options o = opts(f, argv, 2);
    pb_proc *p = spawn_ok(f, &o);

    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGUSR2, &old_usr2, NULL);

    assert_int_equal(wait_done(p, LONG_WAIT_MS).exit_code, 0);
    char buf[65536];
    slurp(f->out, buf, sizeof buf);
    if (!strstr(buf, "\nSigBlk:\t0000000000000000\n"))
        fail_msg("the child's signal mask is not empty:\n%s", buf);
    /* glibc reserves the signals from 32 to SIGRTMIN-1 for itself and refuses
     * to change them, so an ignored one inherited from whoever started the
     * tests (a background job of a shell) cannot be reset: leave those out */
    const char *ig = strstr(buf, "\nSigIgn:\t");
    assert_non_null(ig);
    unsigned long long ignored = strtoull(ig + 9, NULL, 16);
    for (int sig = 32; sig < SIGRTMIN; sig++)
        ignored &= ~(1ULL << (sig - 1));
    if (ignored)
        fail_msg("the child ignores signals (mask %llx):\n%s", ignored, buf);
    assert_no_children();
}

static void test_signal_names(void **state)
{
    (void)state;
    assert_string_equal(pb_proc_signal_name(SIGKILL), "SIGKILL");
    assert_string_equal(pb_proc_signal_name(SIGTERM), "SIGTERM");
    assert_string_equal(pb_proc_signal_name(SIGSEGV), "SIGSEGV");
    assert_string_equal(pb_proc_signal_name(SIGABRT), "SIGABRT");
    assert_string_equal(pb_proc_signal_name(SIGRTMIN + 1), "SIGRT");
    assert_string_equal(pb_proc_signal_name(0), "unknown signal");
    assert_string_equal(pb_proc_signal_name(1000), "unknown signal");
    assert_string_equal(pb_proc_signal_name(-3), "unknown signal");
}

/* ------------------------------------------------------ timeout and stop -- */

static void test_own_process_group(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"sleep", "30"};
    pb_proc_options o = opts(f, argv, 2);
    pb_proc *p = spawn_ok(f, &o);
    char st;
    long pgrp;
    assert_true(proc_stat(pb_proc_pid(p), &st, &pgrp));
    assert_int_equal(pgrp, pb_proc_pid(p));
    assert_int_not_equal(pgrp, getpgrp());

    pb_proc_result r;
    assert_int_equal(pb_proc_poll(p, &r, NULL), 0);      /* running */
    assert_int_equal(pb_proc_wait(p, 50, &r, NULL), 0); /* still running after 50 ms */
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    r = wait_done(p, LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_STOPPED);
    assert_int_equal(r.term_signal, SIGTERM); /* sleep obeys SIGTERM: no SIGKILL needed */
    char reason[64];
    pb_proc_failure_reason(&r, f->err, reason, sizeof reason);
    assert_string_equal(reason, "stopped");
    assert_no_children();
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"sleep", "30"};
    pb_proc_options o = opts(f, argv, 2);
    o.max_runtime_s = 1;
    pb_proc *p = spawn_ok(f, &o);
    assert_int_equal(pb_proc_poll(p, NULL, NULL), 0);
    pb_proc_result r = wait_done(p, LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_TIMED_OUT);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_int_equal(r.exit_code, -1);
    assert_true(r.runtime_ms >= 1000); /* not stopped before its time */
    assert_true(r.runtime_ms < LONG_WAIT_MS);
    char reason[64];
    pb_proc_failure_reason(&r, f->err, reason, sizeof reason);
    assert_string_equal(reason, "timed out after 1 s");
    /* a stop after the timeout changes nothing */
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    assert_int_equal(pb_proc_poll(p, &r, NULL), 1);
    assert_int_equal(r.cause, PB_PROC_TIMED_OUT);
    assert_no_children();
}

/* Non-blocking polls alone carry out the timeout and, when SIGTERM is
 * ignored, the SIGKILL after the grace period. */
static void test_timeout_by_polling_escalates_to_sigkill(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 30"};
    pb_proc_options o = opts(f, argv, 3);
    o.max_runtime_s = 1;
    pb_proc *p = spawn_ok(f, &o);
    pb_proc_result r;
    int rc = 0;
    int64_t t0 = mono_ms();
    while ((rc = pb_proc_poll(p, &r, NULL)) == 0 && mono_ms() - t0 < LONG_WAIT_MS)
        sleep_ms(10);
    assert_int_equal(rc, 1);
    assert_int_equal(r.cause, PB_PROC_TIMED_OUT);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_true(r.runtime_ms >= 1000 + 300); /* deadline, then the grace period */
    assert_no_children();
}

static void test_stop_escalates_to_sigkill_after_grace(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 30"};
    pb_proc_options o = opts(f, argv, 3);
    o.grace_ms = 400;
    pb_proc *p = spawn_ok(f, &o);
    await_text(f->out, "ready"); /* the trap is set */
    int64_t t0 = mono_ms();
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    assert_int_equal(pb_proc_stop(p, NULL), 0); /* twice is harmless, does not restart grace */
    pb_proc_result r = wait_done(p, LONG_WAIT_MS);
    int64_t took = mono_ms() - t0;
    assert_int_equal(r.cause, PB_PROC_STOPPED);
    assert_int_equal(r.term_signal, SIGKILL);
    if (took < 400)
        fail_msg("SIGKILL came %lld ms after the stop, before the 400 ms grace", (long long)took);
    assert_no_children();
}

static void test_stop_lets_sigterm_handler_finish(void **state)
{
    struct fx *f = *state;
    const char *script = "trap 'echo cleaning up >&2; exit 7' TERM; echo ready; "
                         "while :; do sleep 1; done";
    const char *argv[] = {"/bin/sh", "-c", script};
    pb_proc_options o = opts(f, argv, 3);
    o.grace_ms = 60000; /* a SIGKILL would come far too late for the wait below */
    pb_proc *p = spawn_ok(f, &o);
    await_text(f->out, "ready");
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    pb_proc_result r = wait_done(p, LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_STOPPED);
    assert_int_equal(r.exit_code, 7);
    assert_int_equal(r.term_signal, 0);
    char line[PB_PROC_REASON_LINE_MAX]; /* sh may also report the sleep it lost */
    pb_proc_last_line(f->err, line, sizeof line);
    assert_string_equal(line, "cleaning up");
    assert_no_children();
}

/* The SIGTERM goes to the whole group, not only to the leader: here the
 * leader ignores it and keeps running, while its child dies of it. */
static void test_stop_sends_sigterm_to_whole_group(void **state)
{
    struct fx *f = *state;
    const char *script = "sleep 30 & trap '' TERM; echo ready; wait; "
                         "echo grandchild ended >&2; exec sleep 30";
    const char *argv[] = {"/bin/sh", "-c", script};
    pb_proc_options o = opts(f, argv, 3);
    o.grace_ms = 60000; /* no SIGKILL during this test */
    pb_proc *p = spawn_ok(f, &o);
    await_text(f->out, "ready");
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    await_text(f->err, "grandchild ended");
    assert_int_equal(pb_proc_poll(p, NULL, NULL), 0); /* the leader ignored it */
    /* the teardown's pb_proc_free SIGKILLs and reaps it */
}

/* A grandchild that ignores SIGTERM is in the group and is killed with it. */
static void test_stop_kills_grandchild(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c",
                          "(trap '' TERM; echo ready >&2; exec sleep 30) & echo $!; wait"};
    pb_proc_options o = opts(f, argv, 3);
    pb_proc *p = spawn_ok(f, &o);
    await_text(f->err, "ready");
    await_text(f->out, "\n");
    char buf[256];
    pid_t grandchild = (pid_t)atoi(slurp(f->out, buf, sizeof buf));
    assert_true(grandchild > 0);
    char st;
    long pgrp;
    assert_true(proc_stat(grandchild, &st, &pgrp));
    if (pgrp != pb_proc_pid(p)) {
        kill(grandchild, SIGKILL);
        fail_msg("grandchild %d is in group %ld, not %d", (int)grandchild, pgrp, (int)pb_proc_pid(p));
    }
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    pb_proc_result r = wait_done(p, LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_STOPPED);
    expect_gone(grandchild);
    assert_no_children();
}

/* A step ends with its main process: what it left running in its group dies. */
static void test_leader_exit_kills_rest_of_group(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!"};
    pb_proc_options o = opts(f, argv, 3);
    pb_proc *p = spawn_ok(f, &o);
    pb_proc_result r = wait_done(p, LONG_WAIT_MS);
    assert_int_equal(r.cause, PB_PROC_COMPLETED);
    assert_int_equal(r.exit_code, 0);
    char buf[256];
    pid_t grandchild = (pid_t)atoi(slurp(f->out, buf, sizeof buf));
    assert_true(grandchild > 0);
    expect_gone(grandchild);
    assert_no_children();
}

struct waiter {
    pb_proc *p;
    int rc;
    pb_proc_result r;
};

static void *wait_in_thread(void *arg)
{
    struct waiter *w = arg;
    w->rc = pb_proc_wait(w->p, LONG_WAIT_MS, &w->r, NULL);
    return NULL;
}

/* The runner's shape: one thread blocks in wait, another asks for the stop.
 * The waiter must wake up to send the SIGKILL when the grace period ends. */
static void test_stop_from_another_thread_wakes_waiter(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 30"};
    pb_proc_options o = opts(f, argv, 3);
    o.grace_ms = 200;
    pb_proc *p = spawn_ok(f, &o);
    await_text(f->out, "ready");
    struct waiter w = {.p = p, .rc = -100};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_in_thread, &w), 0);
    sleep_ms(50); /* let it block (the test holds either way) */
    assert_int_equal(pb_proc_stop(p, NULL), 0);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 1);
    assert_int_equal(w.r.cause, PB_PROC_STOPPED);
    assert_int_equal(w.r.term_signal, SIGKILL);
    assert_no_children();
}

static void test_free_kills_and_reaps_running_process(void **state)
{
    struct fx *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!; wait"};
    pb_proc_options o = opts(f, argv, 3);
    pb_proc *p = spawn_ok(f, &o);
    await_text(f->out, "\n");
    char buf[256];
    pid_t grandchild = (pid_t)atoi(slurp(f->out, buf, sizeof buf));
    assert_true(grandchild > 0);
    f->nprocs--; /* freed here, not by the teardown */
    pb_proc_free(p);
    assert_no_children();
    expect_gone(grandchild);
    pb_proc_free(NULL);
}

/* ------------------------------------------------------ failure reasons -- */

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static void expect_last_line(const char *path, const void *data, size_t n, const char *want)
{
    char buf[PB_PROC_REASON_LINE_MAX];
    if (data) /* NULL: the file is already there */
        write_file(path, data, n);
    size_t len = pb_proc_last_line(path, buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        fail_msg("last line \"%s\", expected \"%s\"", buf, want);
    assert_int_equal(len, strlen(want));
}

#define LIT(s) s, sizeof(s) - 1

static void test_last_line(void **state)
{
    struct fx *f = *state;
    char path[160], buf[PB_PROC_REASON_LINE_MAX];
    snprintf(path, sizeof path, "%s/stderr.txt", f->dir);

    assert_int_equal(pb_proc_last_line(path, buf, sizeof buf), 0); /* missing */
    assert_string_equal(buf, "");
    assert_int_equal(pb_proc_last_line(NULL, buf, sizeof buf), 0);
    assert_int_equal(pb_proc_last_line(f->dir, buf, sizeof buf), 0); /* a directory */
    expect_last_line(path, LIT(""), "");
    expect_last_line(path, LIT("\n\n  \t\n"), "");
    expect_last_line(path, LIT("only"), "only");
    expect_last_line(path, LIT("a\nb\n"), "b");
    expect_last_line(path, LIT("Traceback:\n  File x\nValueError: bad\r\n\r\n"), "ValueError: bad");
    expect_last_line(path, LIT("  10%\r 50%\r100% done\n"), "100% done");
    expect_last_line(path, LIT("\x1b[31mError:\x1b[0m boom\n"), "Error: boom");
    expect_last_line(path, LIT("nul\0and\x01" "ctl\n"), "nul and ctl");
    expect_last_line(path, LIT("caf\xc3\xa9 \xff\xfe ok \xed\xa0\x80\n"), "caf\xc3\xa9 ?? ok ???");

    /* a long last line is cut to 511 bytes, never inside a character */
    char big[2000];
    memset(big, 'a', 510);
    memcpy(big + 510, "\xc3\xa9tail\n", 7);
    write_file(path, big, 517);
    assert_int_equal(pb_proc_last_line(path, buf, sizeof buf), 510);
    assert_int_equal(strspn(buf, "a"), 510);
    char small[8];
    memcpy(big, "ab\xe2\x82\xac\xe2\x82\xac\n", 9); /* ab€€ */
    write_file(path, big, 9);
    assert_int_equal(pb_proc_last_line(path, small, sizeof small), 5);
    assert_string_equal(small, "ab\xe2\x82\xac");

    /* only the end of a large file is read; the line is the last one there */
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 20000; i++)
        fprintf(fp, "line %d\n", i);
    fclose(fp);
    expect_last_line(path, NULL, 0, "line 19999");
    fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 10000; i++)
        fputs("\xc3\xa9", fp); /* one 20000-byte line of é ... */
    fputc('\n', fp);           /* ... and an odd size: the window starts mid-character */
    fclose(fp);
    size_t n = pb_proc_last_line(path, buf, sizeof buf);
    assert_int_equal(n, 510); /* 255 whole characters, starting on a boundary */
    for (size_t i = 0; i < n; i += 2)
        assert_memory_equal(buf + i, "\xc3\xa9", 2);
}

static void test_failure_reason_formats(void **state)
{
    struct fx *f = *state;
    char buf[1024];
    pb_proc_result r = {.cause = PB_PROC_TIMED_OUT, .exit_code = -1, .term_signal = SIGKILL,
                        .max_runtime_s = 3600};
    pb_proc_failure_reason(&r, f->err, buf, sizeof buf);
    assert_string_equal(buf, "timed out after 3600 s");

    r = (pb_proc_result){.cause = PB_PROC_COMPLETED, .exit_code = -1, .term_signal = SIGSEGV};
    pb_proc_failure_reason(&r, NULL, buf, sizeof buf);
    assert_string_equal(buf, "killed by signal 11 (SIGSEGV)");

    write_file(f->err, LIT("Error: \xc3\xa9\xc3\xa9\xc3\xa9\n"));
    r = (pb_proc_result){.cause = PB_PROC_COMPLETED, .exit_code = 1};
    assert_int_equal(pb_proc_failure_reason(&r, f->err, buf, sizeof buf), 26);
    assert_string_equal(buf, "exit code 1: Error: \xc3\xa9\xc3\xa9\xc3\xa9");
    /* cut to the caller's buffer without splitting a character */
    char tiny[24];
    assert_int_equal(pb_proc_failure_reason(&r, f->err, tiny, sizeof tiny), 22);
    assert_string_equal(tiny, "exit code 1: Error: \xc3\xa9");
    assert_int_equal(pb_proc_failure_reason(&r, f->err, tiny, 1), 0);
    assert_string_equal(tiny, "");

    r = (pb_proc_result){.cause = PB_PROC_COMPLETED, .exit_code = 0};
    buf[0] = 'x';
    assert_int_equal(pb_proc_failure_reason(&r, f->err, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
}

/* Last: every child of every test above was reaped. */
static void test_no_zombies_left(void **state)
{
    (void)state;
    assert_no_children();
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_exit_zero),
        T(test_exit_code_and_last_stderr_line),
        T(test_exit_code_without_stderr),
        T(test_killed_by_signal),
        T(test_command_not_found),
        T(test_not_executable),
        T(test_bad_working_directory),
        T(test_unwritable_output),
        T(test_validation),
        T(test_environment_is_exactly_the_given_one),
        T(test_path_lookup),
        T(test_working_directory),
        T(test_stdout_and_stderr_files),
        T(test_same_file_for_stdout_and_stderr),
        T(test_no_descriptor_leaks),
        T(test_concurrent_spawns_do_not_leak),
        T(test_signal_dispositions_and_mask_reset),
        T(test_signal_names),
        T(test_own_process_group),
        T(test_timeout),
        T(test_timeout_by_polling_escalates_to_sigkill),
        T(test_stop_escalates_to_sigkill_after_grace),
        T(test_stop_lets_sigterm_handler_finish),
        T(test_stop_sends_sigterm_to_whole_group),
        T(test_stop_kills_grandchild),
        T(test_leader_exit_kills_rest_of_group),
        T(test_stop_from_another_thread_wakes_waiter),
        T(test_free_kills_and_reaps_running_process),
        T(test_last_line),
        T(test_failure_reason_formats),
        T(test_no_zombies_left),
#undef T
    };
    return cmocka_run_group_tests_name("proc", tests, NULL, NULL);
}
