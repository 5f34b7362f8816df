/*
 * launch-as: starts one job as its user, for the supervisor daemon (supervisor.py) of a root node.
 *
 *   launch-as UID GID GROUPS STDOUT STDERR CWD BASE -- ARGV...
 *
 * The daemon posix_spawns it (a vfork: the daemon's memory is not copied) with the job's
 * environment, the job's stdin on fd 0 and a report pipe on fd 3. It
 *   1. drops to UID, GID and the supplementary GROUPS (comma list) for good,
 *   2. only then opens STDOUT and STDERR (append, create) and enters BASE, then CWD (if not empty),
 *      so the job writes and enters only where its user may, and the daemon never opens them,
 *   3. writes "ids OUT ERR\n" to fd 3 (each DEV:INO:OWNER_UID:CREATED of a regular file, or "-"),
 *   4. execvp's ARGV with fd 3 close-on-exec: the daemon reads EOF once the exec succeeded.
 * Any failure writes "fail WHY\n" to fd 3 and exits 127. Opening a FIFO may block here: that stalls
 * this job alone, and the daemon fails it after its launch timeout.
 *
 * Written in C because each job pays for this program's start: a second Python (or a fork of the
 * daemon) costs ~10 ms of CPU per job on our VMs, this one well under 1 ms.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPORT_FD 3
#define MAX_GROUPS 65536

static void report(const char *fmt, ...) {
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  /* One line: newlines in paths or messages would split it. */
  for (int i = 0; i < n; i++)
    if (line[i] == '\n') line[i] = ' ';
  line[n++] = '\n';
  ssize_t ignored = write(REPORT_FD, line, (size_t)n);
  (void)ignored;
}

static void fail(const char *fmt, ...) {
  char why[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  report("fail %s", why);
  _exit(127);
}

static long number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long n = strtol(text, &end, 10);
  if (errno || *text == '\0' || *end != '\0' || n < 0) fail("bad %s \"%s\"", what, text);
  return n;
}

static int parse_groups(char *list, gid_t *groups) {
  int n = 0;
  for (char *item = strtok(list, ","); item && n < MAX_GROUPS; item = strtok(NULL, ","))
    groups[n++] = (gid_t)number(item, "group");
  return n;
}

/* Opens an output file as the job's user; `id` gets what the node checks before streaming it. */
static int open_output(const char *path, const char *what, char *id, size_t size) {
  int created = 1;
  int fd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_CREAT | O_EXCL, 0666);
  if (fd < 0 && errno == EEXIST) {
    created = 0;
    fd = open(path, O_WRONLY | O_APPEND | O_NOCTTY);
  }
  if (fd < 0) fail("%s \"%s\": %s", what, path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
    snprintf(id, size, "%llu:%llu:%u:%d", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (unsigned)st.st_uid, created);
  else
    snprintf(id, size, "-");
  return fd;
}

static void move_fd(int from, int to) {
  if (from == to) return;
  if (dup2(from, to) < 0) fail("dup2: %s", strerror(errno));
  close(from);
}

int main(int argc, char **argv) {
  if (fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC) < 0) return 127;
  if (argc < 10 || strcmp(argv[8], "--") != 0)
    fail("usage: launch-as UID GID GROUPS STDOUT STDERR CWD BASE -- ARGV...");
  uid_t uid = (uid_t)number(argv[1], "uid");
  gid_t gid = (gid_t)number(argv[2], "gid");
  static gid_t groups[MAX_GROUPS];
  int ngroups = parse_groups(argv[3], groups);
  const char *out = argv[4], *err = argv[5], *cwd = argv[6], *base = argv[7];
  char **job = argv + 9;

  if (setgroups((size_t)ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
    fail("cannot switch to uid %u, gid %u: %s", (unsigned)uid, (unsigned)gid, strerror(errno));
  if (uid != 0 && setuid(0) == 0) fail("privileges could not be dropped");

  char out_id[96], err_id[96];
  move_fd(open_output(out, "stdout file", out_id, sizeof out_id), 1);
  if (strcmp(err, out) == 0) {
    if (dup2(1, 2) < 0) fail("dup2: %s", strerror(errno));
    snprintf(err_id, sizeof err_id, "%s", out_id);
  } else {
    move_fd(open_output(err, "stderr file", err_id, sizeof err_id), 2);
  }
  if (chdir(base) < 0) { /* like the node's own directory: optional */ }
  if (cwd[0] != '\0' && chdir(cwd) < 0) fail("working directory \"%s\": %s", cwd, strerror(errno));

  report("ids %s %s", out_id, err_id);
  execvp(job[0], job); /* PATH is the job's own (this process's environment is the job's) */
  fail("exec \"%s\": %s", job[0], strerror(errno));
}
