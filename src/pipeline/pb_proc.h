/*
 * pb_proc.h — pipeline steps as local processes: spawn, poll or wait, stop,
 * time out, and explain a failure.
 *
 * pb_proc_spawn starts argv with exactly the environment it is given (nothing
 * is inherited), in a working directory the caller created, stdin from
 * /dev/null and stdout / stderr written to two files. The child leads a
 * process group of its own, so stopping a step reaches everything it started
 * in that group. Spawning forks and execs with a close-on-exec pipe back to
 * the parent: a program that cannot be run (not found, not executable, a bad
 * working directory) is an error of pb_proc_spawn with the errno text, never
 * a child that exits 127. The child starts with default signal dispositions,
 * an empty signal mask and only descriptors 0, 1 and 2 open.
 *
 * The leader's end is observed without reaping it first (waitid WNOWAIT):
 * while it is a zombie its pid, and so its process group id, cannot be reused,
 * so the group is signalled safely. When the leader has ended, whatever is
 * left in its group is SIGKILLed and then the leader is reaped: a step ends
 * with its main process, as a container does. Processes that left the group
 * (setsid, setpgid) are not followed.
 *
 * Stopping (pb_proc_stop, or MaxRuntimeInSeconds running out) sends SIGTERM
 * (and SIGCONT, for a group that was itself stopped) to the group, then
 * SIGKILL once the grace period has passed. Nothing runs in the background:
 * the timeout and the SIGKILL are carried out by whichever of pb_proc_poll /
 * pb_proc_wait runs next on the handle (pb_proc_wait sleeps until the next
 * such deadline, and a pb_proc_stop from another thread wakes it).
 *
 * Threads: there is no global state and no SIGCHLD handler; each handle waits
 * for its own pid only. Different handles are independent. On one handle,
 * pb_proc_poll, pb_proc_wait, pb_proc_stop and pb_proc_pid may be called from
 * different threads at once (a lock serializes them; none blocks while
 * holding it), but at most one thread should be in pb_proc_wait at a time;
 * pb_proc_free must not race with anything. The process must not set
 * SIGCHLD to SIG_IGN nor reap with waitpid(-1, ...) elsewhere: either takes
 * the exit status away from this module (reported as PB_EIO).
 *
 * Linux only (pidfd, eventfd, close_range, with fallbacks for old kernels).
 */
#ifndef PB_PROC_H
#define PB_PROC_H

#include "common/pb_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Caps, all checked before anything is allocated (PB_EVALIDATION beyond). */
#define PB_PROC_MAX_ARGS 1024            /* argv entries */
#define PB_PROC_MAX_ENV 1024             /* environment entries */
#define PB_PROC_MAX_STRING (128 * 1024 - 1) /* one argument or NAME=value, bytes; + NUL = Linux MAX_ARG_STRLEN */
#define PB_PROC_MAX_TOTAL (1024 * 1024)  /* argv and env strings together, bytes */
#define PB_PROC_MAX_PATH 4096            /* cwd, stdout and stderr paths, bytes */
#define PB_PROC_MAX_RUNTIME_S 2419200    /* 28 days, SageMaker's MaxRuntimeInSeconds ceiling */
#define PB_PROC_MAX_GRACE_MS 600000      /* 10 minutes */
#define PB_PROC_DEFAULT_GRACE_MS 2000    /* SIGTERM -> SIGKILL when grace_ms is 0 */
#define PB_PROC_REASON_LINE_MAX 512      /* last stderr line in a failure reason, bytes with NUL */
#define PB_PROC_TAIL_BYTES 4096          /* how much of the stderr file's end is read for it */

typedef struct pb_proc pb_proc; /* opaque; owned by the caller of pb_proc_spawn */

/* What to run. Borrowed: nothing is kept after pb_proc_spawn returns. */
typedef struct pb_proc_options {
    const char *const *argv; /* argc program arguments; argv[0] names the program */
    size_t argc;             /* 1..PB_PROC_MAX_ARGS */
    const char *const *env;  /* envc "NAME=value" entries: the child's whole environment */
    size_t envc;             /* 0..PB_PROC_MAX_ENV */
    const char *cwd;         /* working directory (must exist); NULL: the caller's */
    const char *stdout_path; /* created or truncated, mode 0644 (less umask); NULL: /dev/null */
    const char *stderr_path; /* same; the same file as stdout_path is opened only once.
                                Both are opened by the parent: a relative path is
                                relative to the caller's directory, not to cwd */
    int64_t max_runtime_s;   /* MaxRuntimeInSeconds; 0: no limit */
    int grace_ms;            /* SIGTERM -> SIGKILL delay for stop and timeout; 0: the default */
} pb_proc_options;

/* Why the process ended. */
typedef enum pb_proc_cause {
    PB_PROC_COMPLETED = 1, /* on its own (any exit code, or a signal nobody here sent) */
    PB_PROC_TIMED_OUT = 2, /* max_runtime_s ran out and this module terminated it */
    PB_PROC_STOPPED = 3,   /* pb_proc_stop terminated it */
} pb_proc_cause;

typedef struct pb_proc_result {
    pb_proc_cause cause;
    int exit_code;         /* 0..255 when it exited, -1 when a signal killed it */
    int term_signal;       /* the signal that killed it, 0 when it exited */
    int64_t runtime_ms;    /* from spawn until its end was observed, monotonic */
    int64_t max_runtime_s; /* copied from the options (for "timed out after N s") */
    pid_t pid;             /* the (now reaped) process id */
} pb_proc_result;

/* Starts a process. On success *out is a new handle the caller owns (free it
 * with pb_proc_free) and the child has already exec'd its program. argv[0]
 * with a '/' is used as it is (relative to cwd); otherwise it is looked up as
 * execvp would, in the PATH of opt->env, or in the system default path
 * (confstr _CS_PATH, "/bin:/usr/bin") when opt->env has no PATH. Unlike
 * execvp, a file the kernel cannot execute (ENOEXEC) is not handed to
 * /bin/sh: it is an error. Errors (*out is then
 * NULL and no child is left behind): PB_EVALIDATION for options beyond the
 * caps or malformed (empty argv, an env entry without '=', ...), PB_ENOMEM,
 * PB_EIO when a file cannot be opened, fork fails or the program cannot be
 * run, with messages like "cannot execute 'foo': No such file or directory
 * (searched PATH "/usr/bin:/bin")". */
int pb_proc_spawn(const pb_proc_options *opt, pb_proc **out, pb_error *err);

/* Never blocks. Returns 1 when the process has ended and been reaped (*out,
 * if non-NULL, is filled; later calls return the same result), 0 while it
 * runs (carrying out a due timeout or SIGKILL first), or PB_EIO. */
int pb_proc_poll(pb_proc *p, pb_proc_result *out, pb_error *err);

/* Like pb_proc_poll, but blocks up to timeout_ms (< 0: without limit, 0: do
 * not block) for the end, enforcing the timeout and grace period meanwhile.
 * Returns 1 (ended, *out filled), 0 (still running at timeout_ms) or PB_EIO. */
int pb_proc_wait(pb_proc *p, int64_t timeout_ms, pb_proc_result *out, pb_error *err);

/* Sends SIGTERM to the whole group and returns at once; SIGKILL follows after
 * the grace period (see the file comment). The result's cause becomes
 * PB_PROC_STOPPED. A no-op returning 0 when the process has already ended
 * or is already being terminated (a timeout keeps PB_PROC_TIMED_OUT). */
int pb_proc_stop(pb_proc *p, pb_error *err);

/* The child's pid, which is also its process group id. */
pid_t pb_proc_pid(const pb_proc *p);

/* A descriptor that becomes readable (poll/epoll POLLIN) when the process
 * ends: its pidfd, owned by the handle (do not close it). -1 when the kernel
 * has no pidfd_open: then poll the handle periodically. */
int pb_proc_pollfd(const pb_proc *p);

/* The start time of process pid in clock ticks since boot (field 22 of
 * /proc/PID/stat), or -1 when there is no such process. Recorded with a pid
 * so that a later pb_proc_kill_orphan cannot hit a reused pid. */
int64_t pb_proc_start_ticks(pid_t pid);

/* For recovery after a crash of the process that spawned a step: when pid
 * still exists and started at start_ticks, SIGKILLs its process group (the
 * step's whole group) and returns 1; 0 when it is gone or was reused. */
int pb_proc_kill_orphan(pid_t pid, int64_t start_ticks);

/* Releases the handle. A process still running is SIGKILLed with its group
 * and reaped first (call pb_proc_stop and pb_proc_wait for a graceful end).
 * NULL is a no-op. */
void pb_proc_free(pb_proc *p);

/* True when the process completed on its own with exit code 0. */
bool pb_proc_succeeded(const pb_proc_result *r);

/* "SIGKILL" for 9 and so on; "SIGRT" for real-time signals, "unknown signal"
 * otherwise. The string is static. */
const char *pb_proc_signal_name(int sig);

/* Copies into buf (cap bytes, cap >= 1; NUL-terminated) the last line of the
 * file at path that is not blank, trimmed. Only the file's last
 * PB_PROC_TAIL_BYTES are read (a longer line is taken from the window's
 * start); lines end at \n or \r (a progress bar's final state is its last
 * line). The line is cut to PB_PROC_REASON_LINE_MAX - 1 bytes (and cap - 1)
 * on a character boundary; ANSI escape sequences (ESC [ ... letter) are
 * dropped, other control characters become spaces and bytes that are not
 * UTF-8 become '?', so the text is valid UTF-8 for a JSON FailureReason. A
 * missing, unreadable, non-regular or empty file gives "". Returns the
 * length written. */
size_t pb_proc_last_line(const char *path, char *buf, size_t cap);

/* The FailureReason of a result into buf (cap bytes, cap >= 1), "" when
 * pb_proc_succeeded: "exit code 3: <line>", "killed by signal 9 (SIGKILL):
 * <line>" (": <line>" only when stderr_path has a non-blank line; see
 * pb_proc_last_line; stderr_path may be NULL), "timed out after N s" or
 * "stopped". Truncated to cap - 1 bytes. Returns strlen(buf). */
size_t pb_proc_failure_reason(const pb_proc_result *r, const char *stderr_path, char *buf,
                              size_t cap);

#endif
