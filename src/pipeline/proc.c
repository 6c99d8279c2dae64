/*
 * proc.c — pipeline steps as local processes. See pb_proc.h for the contract.
 *
 * Spawning, in order: every size is checked against its cap; the parent
 * builds the NULL-terminated argv / envp and the list of paths execve will
 * try for argv[0] (the PATH search is prepared here, where allocating is
 * allowed); it opens /dev/null, the stdout and the stderr files, the error
 * pipe and the wake eventfd, all close-on-exec; it blocks every signal, so
 * no handler of the parent can run in the child, and forks. The child makes
 * only async-signal-safe calls: it moves those descriptors above 2, dup2s
 * them onto 0, 1 and 2, joins a new process group, changes directory, marks
 * every descriptor from 3 up close-on-exec (close_range, or one fcntl per
 * descriptor on old kernels), resets every signal disposition and the mask,
 * and execve()s each candidate path in turn. Any failure writes {stage,
 * errno} to the error pipe and _exits. The parent restores its mask and reads
 * the pipe: EOF means the exec succeeded (the pipe closed on exec); a report
 * means the child failed, and it is reaped before spawn returns the error.
 *
 * Ending: step() is the single state machine, run under the handle's lock by
 * poll, wait and stop. It asks waitid(WNOWAIT) whether the leader has ended
 * without reaping it, so the pid (= the group id) stays reserved while the
 * group is signalled; when it has, it SIGKILLs what is left of the group and
 * reaps the leader. Otherwise it carries out what is due: the timeout's
 * SIGTERM, the grace period's SIGKILL. pb_proc_wait sleeps in poll(2) on the
 * pidfd (readable when the child ends) and the eventfd that pb_proc_stop
 * writes, until the next deadline; without pidfd_open it sleeps in slices.
 */
#define _GNU_SOURCE
#include "pipeline/pb_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define NS_PER_MS INT64_C(1000000)
#define FALLBACK_SLICE_MS 20       /* wait's sleep slices when there is no pidfd */
#define FALLBACK_MAX_FD (1 << 20)  /* fcntl sweep bound when close_range is missing */

enum state {
    RUNNING,     /* no signal sent by us yet */
    TERMINATING, /* SIGTERM sent; SIGKILL due at kill_ns */
    ENDED,       /* reaped; result is final */
    LOST,        /* reaped by someone else (SIGCHLD ignored, waitpid(-1)) */
};

struct pb_proc {
    pthread_mutex_t lock;  /* guards everything below but the fixed fields */
    pid_t pid;             /* fixed: the child, leader of process group pid */
    int pidfd;             /* fixed: readable once the child ended; -1 if unsupported */
    int wakefd;            /* fixed: eventfd written by terminate() to wake pb_proc_wait */
    int grace_ms;          /* fixed: SIGTERM -> SIGKILL */
    int64_t max_runtime_s; /* fixed: 0 for none */
    int64_t start_ns;      /* fixed: CLOCK_MONOTONIC just before fork */
    int64_t deadline_ns;   /* fixed: start_ns + max runtime, 0 for none */
    enum state state;
    pb_proc_cause cause;   /* COMPLETED until a stop or a timeout */
    int64_t kill_ns;       /* TERMINATING: when the SIGKILL is due */
    bool killed;           /* SIGKILL already sent */
    pb_proc_result result; /* ENDED */
};

/* --------------------------------------------------------------- helpers -- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* strerror, thread-safe (GNU strerror_r). */
static const char *errtext(int e, char *buf, size_t n) { return strerror_r(e, buf, n); }

static int open_retry(const char *path, int flags, mode_t mode)
{
    int fd;
    do
        fd = open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd); /* never retried: Linux releases the descriptor even on EINTR */
    *fd = -1;
}

static pid_t waitpid_retry(pid_t pid, int *status)
{
    pid_t r;
    do
        r = waitpid(pid, status, 0);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Signals the whole group; ESRCH (nobody left in it) is not an error. */
static void signal_group(pid_t pgid, int sig) { (void)kill(-pgid, sig); }

/* Length of the well-formed UTF-8 sequence at s[0..n), 0 when ill-formed
 * (Unicode table 3-7: no overlongs, surrogates or values past U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c == 0xE0)
        len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        len = 3;
    else if (c == 0xED)
        len = 3, hi = 0x9F;
    else if (c == 0xF0)
        len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        len = 4;
    else if (c == 0xF4)
        len = 4, hi = 0x8F;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

/* Drops an incomplete UTF-8 sequence left at the end of s[0..len) by a cut. */
static size_t utf8_trim_end(char *s, size_t len)
{
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--, back++;
    if (i > 0 && (unsigned char)s[i - 1] >= 0xC0) {
        size_t lead = i - 1;
        if (utf8_len((const unsigned char *)s + lead, len - lead) == 0)
            len = lead;
    }
    s[len] = '\0';
    return len;
}

/* ------------------------------------------------------------ validation -- */

static int check_string(const char *s, const char *what, size_t i, size_t *total, pb_error *err)
{
    if (!s)
        return pb_error_set(err, PB_EVALIDATION, "%s[%zu] is NULL", what, i);
    size_t n = strnlen(s, PB_PROC_MAX_STRING + 1);
    if (n > PB_PROC_MAX_STRING)
        return pb_error_set(err, PB_EVALIDATION, "%s[%zu] is longer than %d bytes", what, i,
                            PB_PROC_MAX_STRING);
    *total += n + 1;
    if (*total > PB_PROC_MAX_TOTAL)
        return pb_error_set(err, PB_EVALIDATION,
                            "argv and env together are longer than %d bytes", PB_PROC_MAX_TOTAL);
    return 0;
}

static int check_path(const char *s, const char *what, pb_error *err)
{
    if (!s)
        return 0;
    size_t n = strnlen(s, PB_PROC_MAX_PATH);
    if (n == 0)
        return pb_error_set(err, PB_EVALIDATION, "%s is empty", what);
    if (n >= PB_PROC_MAX_PATH)
        return pb_error_set(err, PB_EVALIDATION, "%s is longer than %d bytes", what,
                            PB_PROC_MAX_PATH - 1);
    return 0;
}

static int validate(const pb_proc_options *o, pb_error *err)
{
    size_t total = 0;
    int rc;
    if (!o)
        return pb_error_set(err, PB_EVALIDATION, "no options given");
    if (o->argc == 0 || !o->argv)
        return pb_error_set(err, PB_EVALIDATION, "argv is empty");
    if (o->argc > PB_PROC_MAX_ARGS)
        return pb_error_set(err, PB_EVALIDATION, "argv has %zu entries, more than the %d allowed",
                            o->argc, PB_PROC_MAX_ARGS);
    if (o->envc > PB_PROC_MAX_ENV)
        return pb_error_set(err, PB_EVALIDATION, "env has %zu entries, more than the %d allowed",
                            o->envc, PB_PROC_MAX_ENV);
    if (o->envc > 0 && !o->env)
        return pb_error_set(err, PB_EVALIDATION, "env is NULL but envc is %zu", o->envc);
    for (size_t i = 0; i < o->argc; i++)
        if ((rc = check_string(o->argv[i], "argv", i, &total, err)) != 0)
            return rc;
    if (o->argv[0][0] == '\0')
        return pb_error_set(err, PB_EVALIDATION, "argv[0] is empty");
    for (size_t i = 0; i < o->envc; i++) {
        if ((rc = check_string(o->env[i], "env", i, &total, err)) != 0)
            return rc;
        const char *eq = strchr(o->env[i], '=');
        if (!eq || eq == o->env[i])
            return pb_error_set(err, PB_EVALIDATION, "env[%zu] is not of the form NAME=value", i);
    }
    if ((rc = check_path(o->cwd, "the working directory", err)) != 0 ||
        (rc = check_path(o->stdout_path, "the stdout path", err)) != 0 ||
        (rc = check_path(o->stderr_path, "the stderr path", err)) != 0)
        return rc;
    if (o->max_runtime_s < 0 || o->max_runtime_s > PB_PROC_MAX_RUNTIME_S)
        return pb_error_set(err, PB_EVALIDATION, "MaxRuntimeInSeconds must be 0..%d, not %lld",
                            PB_PROC_MAX_RUNTIME_S, (long long)o->max_runtime_s);
    if (o->grace_ms < 0 || o->grace_ms > PB_PROC_MAX_GRACE_MS)
        return pb_error_set(err, PB_EVALIDATION, "the grace period must be 0..%d ms, not %d",
                            PB_PROC_MAX_GRACE_MS, o->grace_ms);
    return 0;
}

/* ------------------------------------------------------------ PATH search -- */

/* The paths the child tries for argv[0], in order. */
struct candidates {
    char **list;      /* owned, NULL-terminated; entries point into mem */
    size_t n;
    char *mem;        /* owned */
    const char *path; /* the PATH searched (borrowed), NULL when argv[0] has a '/' */
};

static const char *env_path(const pb_proc_options *o)
{
    for (size_t i = 0; i < o->envc; i++) /* the first one wins, as for getenv */
        if (strncmp(o->env[i], "PATH=", 5) == 0)
            return o->env[i] + 5;
    return NULL;
}

/* Fills c for argv[0]; path_buf (caller's, path_cap bytes) holds the default
 * PATH when the environment has none. Allocates c->list and c->mem. */
static int find_candidates(const pb_proc_options *o, struct candidates *c, char *path_buf,
                           size_t path_cap, pb_error *err)
{
    const char *name = o->argv[0];
    size_t namelen = strlen(name);

    if (strchr(name, '/')) {
        c->list = calloc(2, sizeof *c->list);
        if (!c->list)
            return pb_error_set(err, PB_ENOMEM, "out of memory");
        c->list[0] = (char *)name;
        c->n = 1;
        return 0;
    }
    if (namelen > NAME_MAX)
        return pb_error_set(err, PB_EVALIDATION, "cannot execute '%.64s...': %s", name,
                            "the program name is longer than NAME_MAX");

    const char *path = env_path(o);
    if (!path) {
        size_t n = confstr(_CS_PATH, path_buf, path_cap);
        if (n == 0 || n > path_cap)
            snprintf(path_buf, path_cap, "/bin:/usr/bin");
        path = path_buf;
    }
    c->path = path;

    size_t plen = strlen(path), elems = 1;
    for (const char *s = path; *s; s++)
        elems += *s == ':';
    /* each element becomes dir + "/" + name + NUL, an empty one "./" + name + NUL */
    if (elems > PB_PROC_MAX_TOTAL / (namelen + 3) ||
        plen + elems * (namelen + 3) > PB_PROC_MAX_TOTAL)
        return pb_error_set(err, PB_EVALIDATION, "the PATH search for '%s' is too large", name);
    c->list = calloc(elems + 1, sizeof *c->list);
    c->mem = malloc(plen + elems * (namelen + 3));
    if (!c->list || !c->mem)
        return pb_error_set(err, PB_ENOMEM, "out of memory");

    char *w = c->mem;
    const char *s = path;
    for (;;) {
        const char *e = strchr(s, ':');
        size_t dlen = e ? (size_t)(e - s) : strlen(s);
        c->list[c->n++] = w;
        if (dlen == 0) {
            memcpy(w, "./", 2);
            w += 2;
        } else {
            memcpy(w, s, dlen);
            w += dlen;
            if (w[-1] != '/')
                *w++ = '/';
        }
        memcpy(w, name, namelen + 1);
        w += namelen + 1;
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

/* ------------------------------------------------------------- the child -- */

enum stage { ST_FDS = 1, ST_SETPGID, ST_CHDIR, ST_SIGNALS, ST_EXEC };

struct report {
    int stage; /* enum stage */
    int err;   /* errno */
};

/* Everything the child needs, prepared by the parent before fork. */
struct plan {
    char *const *argv;
    char *const *envp;
    char *const *cands;
    size_t ncands;
    const char *cwd; /* NULL: stay */
    int fd_in, fd_out, fd_err; /* become 0, 1 and 2 */
    int report_fd;             /* write end of the error pipe (close-on-exec) */
    int max_fd;                /* bound of the fcntl sweep when close_range is missing */
};

static void child_fail(int fd, int stage, int e) __attribute__((noreturn));
static void child_fail(int fd, int stage, int e)
{
    struct report r = {stage, e};
    ssize_t n;
    do
        n = write(fd, &r, sizeof r);
    while (n < 0 && errno == EINTR);
    _exit(127);
}

/* fd itself when >= 3, else a close-on-exec duplicate >= 3, so the dup2s onto
 * 0..2 cannot overwrite it (the parent may have had 0..2 closed). */
static int above_stdio(int fd) { return fd >= 3 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3); }

static int dup2_retry(int from, int to)
{
    int r;
    do
        r = dup2(from, to);
    while (r < 0 && (errno == EINTR || errno == EBUSY));
    return r;
}

/* Between fork and exec: async-signal-safe calls only, no allocation. */
static void run_child(const struct plan *pl) __attribute__((noreturn));
static void run_child(const struct plan *pl)
{
    int rfd = above_stdio(pl->report_fd);
    if (rfd < 0)
        child_fail(pl->report_fd, ST_FDS, errno); /* nothing was dup2'd over it yet */
    int in = above_stdio(pl->fd_in), out = above_stdio(pl->fd_out), er = above_stdio(pl->fd_err);
    if (in < 0 || out < 0 || er < 0)
        child_fail(rfd, ST_FDS, errno);
    /* dup2 clears close-on-exec on 0, 1 and 2; the sources close on exec */
    if (dup2_retry(in, 0) < 0 || dup2_retry(out, 1) < 0 || dup2_retry(er, 2) < 0)
        child_fail(rfd, ST_FDS, errno);

    if (setpgid(0, 0) < 0)
        child_fail(rfd, ST_SETPGID, errno);
    if (pl->cwd && chdir(pl->cwd) < 0)
        child_fail(rfd, ST_CHDIR, errno);

    /* Descriptors other threads opened without O_CLOEXEC must not leak. */
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
#endif
    {
        for (int fd = 3; fd < pl->max_fd; fd++) {
            int fl = fcntl(fd, F_GETFD);
            if (fl >= 0 && !(fl & FD_CLOEXEC))
                (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
    }

    /* Handlers reset themselves on exec, but SIG_IGN (a server ignores
     * SIGPIPE) and the mask are inherited: put both back to the defaults.
     * glibc's reserved real-time signals refuse with EINVAL; that is fine. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        child_fail(rfd, ST_SIGNALS, errno);

    /* execvp's rules: skip what is not there, remember EACCES, stop at anything else */
    bool eacces = false;
    int last = ENOENT;
    for (size_t i = 0; i < pl->ncands; i++) {
        execve(pl->cands[i], pl->argv, pl->envp);
        last = errno;
        if (last == EACCES)
            eacces = true;
        else if (last != ENOENT && last != ENOTDIR && last != ESTALE && last != ENODEV &&
                 last != ETIMEDOUT)
            child_fail(rfd, ST_EXEC, last);
    }
    child_fail(rfd, ST_EXEC, eacces ? EACCES : last);
}

/* ----------------------------------------------------------------- spawn -- */

static int open_output(const char *path, const char *what, pb_error *err, int *fd)
{
    char eb[128];
    *fd = open_retry(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY,
                     0644);
    if (*fd < 0)
        return pb_error_set(err, PB_EIO, "cannot open the %s file '%s': %s", what,
                            path ? path : "/dev/null", errtext(errno, eb, sizeof eb));
    return 0;
}

static int child_error(const struct report *r, const pb_proc_options *o,
                       const struct candidates *c, pb_error *err)
{
    char eb[128];
    const char *why = errtext(r->err, eb, sizeof eb);
    switch (r->stage) {
    case ST_CHDIR:
        return pb_error_set(err, PB_EIO, "cannot change to the working directory '%s': %s", o->cwd,
                            why);
    case ST_EXEC:
        if (c->path)
            return pb_error_set(err, PB_EIO, "cannot execute '%.256s': %s (searched PATH \"%.512s\")",
                                o->argv[0], why, c->path);
        return pb_error_set(err, PB_EIO, "cannot execute '%.256s': %s", o->argv[0], why);
    case ST_SETPGID:
        return pb_error_set(err, PB_EIO, "cannot give the child its own process group: %s", why);
    case ST_SIGNALS:
        return pb_error_set(err, PB_EIO, "cannot reset the child's signal mask: %s", why);
    default:
        return pb_error_set(err, PB_EIO, "cannot set up the child's standard streams: %s", why);
    }
}

/* Forks and runs pl in the child; on success p->pid is the child, which has
 * exec'd. pipefd is the error pipe: its write end is closed here. On error no
 * child is left. */
static int start_child(pb_proc *p, const struct plan *pl, int pipefd[2],
                       const pb_proc_options *opt, const struct candidates *c, pb_error *err)
{
    char eb[128];
    sigset_t all, old;
    struct report r;
    size_t got = 0;
    ssize_t n = 0;

    sigfillset(&all); /* no handler of ours may run in the child before exec */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    p->start_ns = now_ns();
    pid_t pid = fork();
    if (pid == 0)
        run_child(pl);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close_fd(&pipefd[1]);
    if (pid < 0)
        return pb_error_set(err, PB_EIO, "fork failed: %s", errtext(fork_errno, eb, sizeof eb));

    /* EOF: the exec closed the pipe. A report: the child failed and exits. */
    while (got < sizeof r) {
        n = read(pipefd[0], (char *)&r + got, sizeof r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (n < 0 || (got > 0 && got < sizeof r)) { /* cannot tell what happened: make sure */
        int e = n < 0 ? errno : EPROTO;
        kill(pid, SIGKILL);
        waitpid_retry(pid, NULL);
        return pb_error_set(err, PB_EIO, "cannot read the spawn pipe: %s",
                            errtext(e, eb, sizeof eb));
    }
    if (got == sizeof r) {
        waitpid_retry(pid, NULL);
        return child_error(&r, opt, c, err);
    }
    p->pid = pid;
    return 0;
}

int pb_proc_spawn(const pb_proc_options *opt, pb_proc **out, pb_error *err)
{
    char eb[128], path_buf[1024];
    struct candidates c = {0};
    char **argv = NULL, **envp = NULL;
    int fd_in = -1, fd_out = -1, fd_err = -1, pipefd[2] = {-1, -1};
    int max_fd = FALLBACK_MAX_FD;
    bool lock_made = false;
    struct stat so, se;
    struct rlimit rl;
    struct plan pl;
    pb_proc *p = NULL;
    int rc;

    if (!out)
        return pb_error_set(err, PB_EVALIDATION, "pb_proc_spawn: out is NULL");
    *out = NULL;
    if ((rc = validate(opt, err)) != 0)
        return rc;
    if ((rc = find_candidates(opt, &c, path_buf, sizeof path_buf, err)) != 0)
        goto out;

    argv = calloc(opt->argc + 1, sizeof *argv);
    envp = calloc(opt->envc + 1, sizeof *envp);
    p = calloc(1, sizeof *p);
    if (!argv || !envp || !p) {
        rc = pb_error_set(err, PB_ENOMEM, "out of memory");
        goto out;
    }
    p->pidfd = p->wakefd = -1;
    for (size_t i = 0; i < opt->argc; i++)
        argv[i] = (char *)opt->argv[i]; /* execve does not write them */
    for (size_t i = 0; i < opt->envc; i++)
        envp[i] = (char *)opt->env[i];

    fd_in = open_retry("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
    if (fd_in < 0) {
        rc = pb_error_set(err, PB_EIO, "cannot open /dev/null: %s", errtext(errno, eb, sizeof eb));
        goto out;
    }
    if ((rc = open_output(opt->stdout_path, "stdout", err, &fd_out)) != 0)
        goto out;
    /* The same file twice would be two offsets overwriting each other: share one. */
    if (opt->stderr_path && opt->stdout_path && stat(opt->stderr_path, &se) == 0 &&
        fstat(fd_out, &so) == 0 && so.st_dev == se.st_dev && so.st_ino == se.st_ino) {
        fd_err = fd_out;
    } else if ((rc = open_output(opt->stderr_path, "stderr", err, &fd_err)) != 0) {
        goto out;
    }

    p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wakefd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
        rc = pb_error_set(err, PB_EIO, "cannot create the spawn pipes: %s",
                          errtext(errno, eb, sizeof eb));
        goto out;
    }
    if ((rc = pthread_mutex_init(&p->lock, NULL)) != 0) {
        rc = pb_error_set(err, PB_EIO, "pthread_mutex_init: %s", errtext(rc, eb, sizeof eb));
        goto out;
    }
    lock_made = true;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)FALLBACK_MAX_FD)
        max_fd = (int)rl.rlim_cur;
    pl = (struct plan){
        .argv = argv, .envp = envp, .cands = c.list, .ncands = c.n, .cwd = opt->cwd,
        .fd_in = fd_in, .fd_out = fd_out, .fd_err = fd_err, .report_fd = pipefd[1],
        .max_fd = max_fd,
    };
    if ((rc = start_child(p, &pl, pipefd, opt, &c, err)) != 0)
        goto out;

#ifdef SYS_pidfd_open
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0); /* -1: wait falls back to slices */
#endif
    p->grace_ms = opt->grace_ms ? opt->grace_ms : PB_PROC_DEFAULT_GRACE_MS;
    p->max_runtime_s = opt->max_runtime_s;
    p->deadline_ns = opt->max_runtime_s ? p->start_ns + opt->max_runtime_s * 1000 * NS_PER_MS : 0;
    p->state = RUNNING;
    p->cause = PB_PROC_COMPLETED;
    *out = p;
    p = NULL;

out:
    close_fd(&pipefd[0]);
    close_fd(&pipefd[1]);
    close_fd(&fd_in);
    if (fd_err == fd_out)
        fd_err = -1;
    close_fd(&fd_out);
    close_fd(&fd_err);
    if (p) {
        if (lock_made)
            pthread_mutex_destroy(&p->lock);
        close_fd(&p->wakefd);
        free(p);
    }
    free(argv);
    free(envp);
    free(c.list);
    free(c.mem);
    return rc;
}

/* ------------------------------------------------------------ the ending -- */

/* SIGTERM (and SIGCONT, so a stopped group can act on it) to the group; the
 * SIGKILL is due grace_ms later. Wakes a pb_proc_wait to schedule it. */
static void terminate(pb_proc *p, pb_proc_cause cause, int64_t now)
{
    p->state = TERMINATING;
    p->cause = cause;
    p->kill_ns = now + p->grace_ms * NS_PER_MS;
    signal_group(p->pid, SIGTERM);
    signal_group(p->pid, SIGCONT);
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(p->wakefd, &one, sizeof one);
    while (n < 0 && errno == EINTR); /* EAGAIN: already signalled enough */
}

/* The state machine; the lock is held. 1: ended (p->result final), 0: running. */
static int step(pb_proc *p, int64_t now, pb_error *err)
{
    char eb[128];
    if (p->state == ENDED)
        return 1;
    if (p->state == LOST)
        return pb_error_set(err, PB_EIO, "process %d was reaped outside pb_proc", (int)p->pid);

    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    do
        r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        if (e == ECHILD)
            p->state = LOST;
        return pb_error_set(err, PB_EIO, "waiting for process %d failed: %s", (int)p->pid,
                            errtext(e, eb, sizeof eb));
    }

    if (si.si_pid == p->pid) {
        /* The leader is a zombie, so its group id cannot be reused yet: kill
         * what is left of the group, then reap. */
        signal_group(p->pid, SIGKILL);
        int status = 0;
        if (waitpid_retry(p->pid, &status) < 0) {
            int e = errno;
            if (e == ECHILD)
                p->state = LOST;
            return pb_error_set(err, PB_EIO, "reaping process %d failed: %s", (int)p->pid,
                                errtext(e, eb, sizeof eb));
        }
        p->state = ENDED;
        p->result.cause = p->cause;
        p->result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        p->result.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        p->result.runtime_ms = (now - p->start_ns) / NS_PER_MS;
        p->result.max_runtime_s = p->max_runtime_s;
        p->result.pid = p->pid;
        return 1;
    }

    if (p->state == RUNNING && p->deadline_ns && now >= p->deadline_ns)
        terminate(p, PB_PROC_TIMED_OUT, now);
    if (p->state == TERMINATING && !p->killed && now >= p->kill_ns) {
        signal_group(p->pid, SIGKILL);
        p->killed = true;
    }
    return 0;
}

int pb_proc_wait(pb_proc *p, int64_t timeout_ms, pb_proc_result *out, pb_error *err)
{
    char eb[128];
    if (!p)
        return pb_error_set(err, PB_EVALIDATION, "no process handle");
    int64_t start = now_ns();
    int64_t until = INT64_MAX;
    if (timeout_ms >= 0 && timeout_ms < (INT64_MAX - start) / NS_PER_MS)
        until = start + timeout_ms * NS_PER_MS;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        int64_t now = now_ns();
        int rc = step(p, now, err);
        int64_t next = until;
        if (rc == 1 && out)
            *out = p->result;
        if (rc == 0 && p->state == RUNNING && p->deadline_ns && p->deadline_ns < next)
            next = p->deadline_ns;
        if (rc == 0 && p->state == TERMINATING && !p->killed && p->kill_ns < next)
            next = p->kill_ns;
        pthread_mutex_unlock(&p->lock);
        if (rc != 0)
            return rc;
        if (now >= until)
            return 0;

        int64_t ms = (next - now + NS_PER_MS - 1) / NS_PER_MS;
        if (p->pidfd < 0 && ms > FALLBACK_SLICE_MS)
            ms = FALLBACK_SLICE_MS;
        if (ms > INT_MAX)
            ms = INT_MAX;
        struct pollfd fds[2] = {{.fd = p->wakefd, .events = POLLIN}, {.fd = p->pidfd, .events = POLLIN}};
        int r = poll(fds, p->pidfd >= 0 ? 2 : 1, (int)ms);
        if (r < 0 && errno != EINTR)
            return pb_error_set(err, PB_EIO, "poll: %s", errtext(errno, eb, sizeof eb));
        if (r > 0 && (fds[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t n;
            do
                n = read(p->wakefd, &v, sizeof v);
            while (n < 0 && errno == EINTR);
        }
    }
}

int pb_proc_poll(pb_proc *p, pb_proc_result *out, pb_error *err)
{
    return pb_proc_wait(p, 0, out, err);
}

int pb_proc_stop(pb_proc *p, pb_error *err)
{
    if (!p)
        return pb_error_set(err, PB_EVALIDATION, "no process handle");
    pthread_mutex_lock(&p->lock);
    int64_t now = now_ns();
    int rc = step(p, now, err); /* an end already there, or a due timeout, comes first */
    if (rc == 0 && p->state == RUNNING)
        terminate(p, PB_PROC_STOPPED, now);
    pthread_mutex_unlock(&p->lock);
    return rc < 0 ? rc : 0;
}

pid_t pb_proc_pid(const pb_proc *p) { return p ? p->pid : -1; }

int pb_proc_pollfd(const pb_proc *p) { return p ? p->pidfd : -1; }

int64_t pb_proc_start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open_retry(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and ')', so count
     * fields after the last ')'; starttime is field 22, the 20th after it. */
    char *q = strrchr(buf, ')');
    if (!q)
        return -1;
    q++;
    for (int field = 3; field < 22; field++) {
        q = strchr(q + 1, ' ');
        if (!q)
            return -1;
    }
    char *end;
    long long v = strtoll(q + 1, &end, 10);
    return end == q + 1 ? -1 : (int64_t)v;
}

int pb_proc_kill_orphan(pid_t pid, int64_t start_ticks)
{
    if (pid <= 1 || start_ticks < 0 || pb_proc_start_ticks(pid) != start_ticks)
        return 0;
    /* the leader leads its group (setpgid at spawn): kill the whole group */
    if (kill(-pid, SIGKILL) != 0 && kill(pid, SIGKILL) != 0)
        return 0;
    return 1;
}

void pb_proc_free(pb_proc *p)
{
    if (!p)
        return;
    if (p->state != ENDED && p->state != LOST) {
        signal_group(p->pid, SIGKILL); /* not reaped yet, so the group id is still ours */
        waitpid_retry(p->pid, NULL);
    }
    close_fd(&p->pidfd);
    close_fd(&p->wakefd);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* -------------------------------------------------------------- reporting -- */

bool pb_proc_succeeded(const pb_proc_result *r)
{
    return r && r->cause == PB_PROC_COMPLETED && r->term_signal == 0 && r->exit_code == 0;
}

const char *pb_proc_signal_name(int sig)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP",     [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT",
        [SIGILL] = "SIGILL",     [SIGTRAP] = "SIGTRAP",     [SIGABRT] = "SIGABRT",
        [SIGBUS] = "SIGBUS",     [SIGFPE] = "SIGFPE",       [SIGKILL] = "SIGKILL",
        [SIGUSR1] = "SIGUSR1",   [SIGSEGV] = "SIGSEGV",     [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE",   [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM",
#ifdef SIGSTKFLT
        [SIGSTKFLT] = "SIGSTKFLT",
#endif
        [SIGCHLD] = "SIGCHLD",   [SIGCONT] = "SIGCONT",     [SIGSTOP] = "SIGSTOP",
        [SIGTSTP] = "SIGTSTP",   [SIGTTIN] = "SIGTTIN",     [SIGTTOU] = "SIGTTOU",
        [SIGURG] = "SIGURG",     [SIGXCPU] = "SIGXCPU",     [SIGXFSZ] = "SIGXFSZ",
        [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",   [SIGWINCH] = "SIGWINCH",
        [SIGIO] = "SIGIO",
#ifdef SIGPWR
        [SIGPWR] = "SIGPWR",
#endif
        [SIGSYS] = "SIGSYS",
    };
    if (sig > 0 && (size_t)sig < sizeof names / sizeof names[0] && names[sig])
        return names[sig];
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        return "SIGRT";
    return "unknown signal";
}

size_t pb_proc_last_line(const char *path, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return 0;
    buf[0] = '\0';
    if (!path)
        return 0;
    int fd = open_retry(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        close_fd(&fd);
        return 0;
    }

    unsigned char tail[PB_PROC_TAIL_BYTES];
    off_t off = st.st_size > PB_PROC_TAIL_BYTES ? st.st_size - PB_PROC_TAIL_BYTES : 0;
    size_t want = (size_t)(st.st_size - off), got = 0;
    while (got < want) {
        ssize_t n = pread(fd, tail + got, want - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close_fd(&fd);

    /* Lines end at \n or \r (a progress bar's last state is its last line). */
    size_t end = got;
    while (end > 0 && (tail[end - 1] == ' ' || (tail[end - 1] >= '\t' && tail[end - 1] <= '\r')))
        end--;
    size_t start = end;
    while (start > 0 && tail[start - 1] != '\n' && tail[start - 1] != '\r')
        start--;
    if (start == 0 && off > 0) /* began before the window: skip a cut character */
        for (int k = 0; k < 3 && start < end && (tail[start] & 0xC0) == 0x80; k++)
            start++;
    while (start < end && (tail[start] == ' ' || tail[start] == '\t'))
        start++;

    size_t limit = (cap < PB_PROC_REASON_LINE_MAX ? cap : PB_PROC_REASON_LINE_MAX) - 1, o = 0;
    for (size_t i = start; i < end;) {
        unsigned char ch = tail[i];
        if (ch == 0x1b && i + 1 < end && tail[i + 1] == '[') { /* ANSI colour: drop it */
            i += 2;
            while (i < end && !(tail[i] >= 0x40 && tail[i] <= 0x7e))
                i++;
            i += i < end;
            continue;
        }
        size_t len = utf8_len(tail + i, end - i);
        if (o + (len ? len : 1) > limit)
            break;
        if (len == 0)
            buf[o++] = '?';
        else if (len == 1)
            buf[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        else
            memcpy(buf + o, tail + i, len), o += len;
        i += len ? len : 1;
    }
    while (o > 0 && buf[o - 1] == ' ') /* a dropped escape or control may leave some */
        o--;
    buf[o] = '\0';
    return o;
}

size_t pb_proc_failure_reason(const pb_proc_result *r, const char *stderr_path, char *buf,
                              size_t cap)
{
    char line[PB_PROC_REASON_LINE_MAX], head[64];
    if (!buf || cap == 0)
        return 0;
    buf[0] = '\0';
    if (!r || pb_proc_succeeded(r))
        return 0;
    int n;
    switch (r->cause) {
    case PB_PROC_TIMED_OUT:
        n = snprintf(buf, cap, "timed out after %lld s", (long long)r->max_runtime_s);
        break;
    case PB_PROC_STOPPED:
        n = snprintf(buf, cap, "stopped");
        break;
    default:
        if (r->term_signal)
            snprintf(head, sizeof head, "killed by signal %d (%s)", r->term_signal,
                     pb_proc_signal_name(r->term_signal));
        else
            snprintf(head, sizeof head, "exit code %d", r->exit_code);
        pb_proc_last_line(stderr_path, line, sizeof line);
        n = snprintf(buf, cap, "%s%s%s", head, line[0] ? ": " : "", line);
        break;
    }
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    if ((size_t)n >= cap) /* cut: do not leave half a character */
        return utf8_trim_end(buf, cap - 1);
    return (size_t)n;
}
