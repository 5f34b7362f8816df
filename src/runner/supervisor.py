#!/usr/bin/python3
"""
launcher-fleet job supervisor (Python 3, standard library only: python3 is on every Debian/Ubuntu
host that runs this, and a resident interpreter costs ~10 MB of RSS). The node installs this file
into its runner state dir and starts it as
`python3 -I -S supervisor.py STATE_DIR SOCKET IDLE_SECONDS [LAUNCH_HELPER]`.

One resident daemon per state dir (per node) listens on a Unix socket. A connection sends one line:
 - `user NAME`: the daemon answers `user UID GID G1,G2,... HOME_HEX SHELL_HEX` from the system's user
   database (NSS: pwd.getpwnam and os.getgrouplist, so LDAP/SSSD users count) or `nouser`.
 - `job LEN JOB_DIR` and then LEN bytes, the job's spec (NUL-terminated key, value pairs: arg*,
   env*, base, cwd, stdin, stdout, stderr, and uid, gid, groups for a job of another user); JOB_DIR
   is the job's dir under STATE_DIR/jobs. The daemon starts the job in its own process group and
   answers once: `ok PID DAEMON_PID STDOUT_ID STDERR_ID` once the job has exec'd, or `fail WHY`.
   When the job has ended and its exit is recorded it sends `exit CODE` and closes the connection.
   A file id is `DEV:INO:OWNER_UID:CREATED` of the output file the job's process opened, or `-`
   when that is no regular file: the node streams output only from that very file.
Each job's state goes to JOB_DIR/status, one JSON line appended per change, each line the whole
state so far (the last complete line is the state; a reader ignores a line still being written):
  {"supervisorPid","supervisorStart"}  ->  + "pid", "startTime", "stdoutId", "stderrId"
  ->  + "exitCode", "signal"   (or "exitCode":127, "error" when the job could not start)
Appending to one file, not replacing it (tmp + rename), matters on a file system without a journal:
there ext4 skips, for every new inode, each inode deleted within the last ~30 s, so every file a job
creates and deletes makes every later creation dearer (it was ~20% of the daemon's CPU at 250 jobs/s).

One file of about 650 lines on purpose: it is installed and run as one script, with the standard
library only, on every host (nothing to import from beside it).

Why this shape:
 - One process starts every job and waits for it. A job of the daemon's own user (unprivileged mode)
   starts with posix_spawn, which glibc does with a vfork: the daemon's pages are neither copied nor
   write-protected (a fork costs ~10 ms of CPU per job on our VMs). Its output files are opened here
   with O_NONBLOCK, so a FIFO with no reader fails the launch instead of stalling the daemon.
 - A job of another user (a root daemon: privileged mode) is started through LAUNCH_HELPER
   (launch-as.c), also by posix_spawn: the helper drops to the user's uid, gid and groups, and only
   then opens the output files and enters the working directory, so a job can only write and enter
   where its user may; then it execs the job. Without a helper (no C compiler on the host) a forked
   child of the daemon does the same steps, slower. Either way the daemon never opens a job's files
   as root and never waits on them: the helper reports on a pipe the daemon polls, and a launch that
   has not reported within LAUNCH_TIMEOUT fails that job alone (its process group is killed).
 - The node spawns the daemon detached (own session), so the node dying, even by SIGKILL, leaves
   the daemon and the jobs running, and exit statuses still land in the status files for the next
   start of the node. If the daemon itself is killed, its running jobs lose their supervisor.
 - It ignores HUP/INT/TERM (stop/kill target a job's group, never it) and PIPE (the node may be
   gone when it reports). A job gets the defaults back, since ignored signals survive exec.
 - One event loop: poll() over the socket, the connections and the launch reports; SIGCHLD only
   wakes it (through the signal wakeup fd), and exits are reaped with WNOHANG, without WUNTRACED (a
   SIGSTOPped job does not look finished).
 - One daemon per state dir: it holds an flock on STATE_DIR/SOCKET.lock for its life; a second
   one says "busy" and exits.
 - It leaves after IDLE_SECONDS with no job and no connection, or once its socket file is gone
   (the state dir was removed) and its jobs have ended. It unlinks the socket first and serves
   connections that raced in, so a node either reaches a live daemon or starts a new one.
 - Only dirs directly under STATE_DIR/jobs are accepted, and the socket is mode 0600 in a 0700
   dir: only the node's user can ask the daemon (which may run as root) to start anything.
 - Every fd it opens is close-on-exec (Python's default), so a job inherits exactly fds 0, 1, 2.
"""
import errno
import fcntl
import os
import pwd
import select
import signal
import socket
import stat
import sys
import time
import traceback

# Signals the daemon ignores (a job gets them back: ignored signals survive exec). Python itself
# ignores PIPE and XFSZ.
IGNORED = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ)
READABLE = select.POLLIN | select.POLLHUP | select.POLLERR
APPEND = os.O_WRONLY | os.O_APPEND | os.O_NOCTTY
SH = "/bin/sh"
# A launch whose process has not exec'd by then (a FIFO, a hung file system) fails alone.
LAUNCH_TIMEOUT = 10.0
# The longest request line, and the largest spec a `job` request may carry.
MAX_LINE = 65536
MAX_SPEC = 64 << 20


class Failure(Exception):
    """A job that cannot start; the message says why, for the node and the job's status."""


class Job:
    def __init__(self, dir, conn, me):
        self.dir = dir
        self.conn = conn
        self.status = dict(me)
        self.pid = None
        # While its process has not reported: the report pipe, what arrived on it, and the deadline.
        self.report = None
        self.report_data = b""
        self.deadline = 0.0


class Daemon:
    def __init__(self, state, sock_name, idle, helper):
        self.state = state
        self.jobs_dir = os.path.join(state, "jobs")
        self.sock_path = os.path.join(state, sock_name)
        self.idle = idle
        self.helper = helper
        self.me = {"supervisorPid": os.getpid(), "supervisorStart": start_time(os.getpid())}
        self.poll = select.poll()
        self.requests = {}  # fd -> [conn, bytes after the line, the line once whole]: requests not fully arrived
        self.jobs = {}  # pid -> Job: started, until its exit is recorded (or its launch failed)
        self.watching = {}  # fd of the connection -> Job whose node listens
        self.launching = {}  # fd of the report pipe -> Job whose process has not exec'd yet
        self.last_use = time.monotonic()
        self.leaving = False

    def listen(self):
        self.lock = os.open(self.sock_path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.write(1, b"busy\n")
            sys.exit(0)
        unlink(self.sock_path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)
        self.server.bind(self.sock_path)
        os.umask(old_umask)
        self.server.listen(512)
        self.server.setblocking(False)
        self.poll.register(self.server, READABLE)
        # SIGCHLD only wakes the loop (through this pipe), so exits are recorded at once.
        self.wake, wake_w = os.pipe()
        os.set_blocking(self.wake, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.poll.register(self.wake, READABLE)
        os.write(1, b"ready %d\n" % os.getpid())
        null = os.open("/dev/null", os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)

    def run(self):
        while True:
            events = self.poll.poll(self.poll_timeout_ms())
            for fd, _ in events:
                try:
                    self.handle(fd)
                except Exception:  # a bug must not take every running job's supervisor down
                    traceback.print_exc()
            self.reap()
            self.expire_launches()
            if self.jobs or self.requests:
                self.last_use = time.monotonic()
            if events:
                continue
            if not self.leaving and (not is_socket(self.sock_path) or time.monotonic() - self.last_use >= self.idle):
                # Leaving: new connections now find no socket (and start a new daemon); serve those queued.
                self.leaving = True
                unlink(self.sock_path)
                self.accept_all()
                self.poll.unregister(self.server)
                self.server.close()
                self.server = None
            if self.leaving and not self.jobs and not self.requests:
                sys.exit(0)

    def poll_timeout_ms(self):
        if not self.launching:
            return 2000
        first = min(job.deadline for job in self.launching.values())
        return max(0, min(2000, int((first - time.monotonic()) * 1000) + 1))

    def handle(self, fd):
        if fd == self.wake:
            drain(self.wake)
        elif self.server and fd == self.server.fileno():
            self.accept_all()
        elif fd in self.requests:
            self.read_request(fd)
        elif fd in self.launching:
            self.read_report(self.launching[fd])
        elif fd in self.watching:
            self.read_watcher(fd)
        else:  # not ours any more: never let poll() report it again and again
            try:
                self.poll.unregister(fd)
            except KeyError:
                pass

    def accept_all(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except (BlockingIOError, InterruptedError):
                return
            # Non-blocking: readiness seen by poll() may belong to an fd number closed and reused since.
            conn.setblocking(False)
            self.requests[conn.fileno()] = [conn, bytearray(), None]
            self.poll.register(conn, READABLE)

    def read_request(self, fd):
        request = self.requests[fd]
        conn = request[0]
        data = receive(conn, 65536)
        if data is None:
            return
        request[1] += data
        if request[2] is None:
            line, newline, rest = bytes(request[1]).partition(b"\n")
            if newline:
                request[1], request[2] = bytearray(rest), line
        line = request[2]
        is_job = line is not None and line.startswith(b"job ")
        size, _, dir = line[4:].partition(b" ") if is_job else (b"", b"", b"")
        size = int(size) if size.isdigit() and int(size) <= MAX_SPEC else -1
        if not data or (line is None and len(request[1]) > MAX_LINE) or (is_job and size < 0):
            del self.requests[fd]
            self.poll.unregister(fd)
            conn.close()
            return
        if line is None or len(request[1]) < size:
            return  # more to come
        del self.requests[fd]
        if size >= 0:
            self.start(os.fsdecode(dir), request[1][:size], conn)
        else:
            self.poll.unregister(fd)
            send(conn, lookup_user(os.fsdecode(line[5:])) if line.startswith(b"user ") else b"fail bad request\n")
            conn.close()

    def start(self, dir, spec_bytes, conn):
        job = Job(dir, conn, self.me)
        # Watched from now on: a node that goes away while the job starts is noticed.
        self.watching[conn.fileno()] = job
        if os.path.dirname(dir) != self.jobs_dir or os.path.basename(dir) in ("", ".", ".."):
            return self.fail(job, "bad job dir", record=False)
        try:
            spec = parse_spec(spec_bytes)
            self.write_status(job)
            if "uid" in spec:
                job.pid, job.report = spawn_as_user(spec, self.helper)
            else:
                job.pid, ids = spawn(spec, self.state)
        except Failure as err:
            return self.fail(job, str(err))
        except Exception as err:  # e.g. fork() refused: this job fails, the daemon and its jobs go on
            return self.fail(job, f"cannot start the job: {err}")
        restore_oom_score(job.pid)
        self.jobs[job.pid] = job
        if job.report is None:
            return self.started(job, ids)
        job.deadline = time.monotonic() + LAUNCH_TIMEOUT
        self.launching[job.report] = job
        self.poll.register(job.report, READABLE)

    def read_report(self, job):
        """What the job's process says before it execs: `ids OUT ERR`, or `fail WHY`; EOF ends it."""
        try:
            data = os.read(job.report, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data and len(job.report_data) < 65536:
            job.report_data += data
            return
        self.end_launch(job)

    def end_launch(self, job, timed_out=False):
        del self.launching[job.report]
        self.poll.unregister(job.report)
        os.close(job.report)
        job.report = None
        lines = job.report_data.decode("utf-8", "replace").splitlines()
        ids = next((line.split()[1:3] for line in lines if line.startswith("ids ")), None)
        why = next((line[5:] for line in lines if line.startswith("fail ")), None)
        if timed_out:
            why = f"the job's process did not start within {LAUNCH_TIMEOUT:.0f} s (is one of its files a FIFO, or on a hung file system?)"
            kill_group(job.pid)
        elif why is None and (ids is None or len(ids) != 2):
            why = "the job's process ended before it started"
        if why is not None:
            self.jobs.pop(job.pid, None)  # reaped silently: it never ran
            return self.fail(job, why)
        self.started(job, ids)

    def expire_launches(self):
        now = time.monotonic()
        for job in [j for j in self.launching.values() if j.deadline <= now]:
            self.end_launch(job, timed_out=True)

    def started(self, job, ids):
        job.status["pid"] = job.pid
        job.status["startTime"] = start_time(job.pid)  # not reaped yet, so still in /proc
        job.status["stdoutId"], job.status["stderrId"] = ids
        self.write_status(job)
        if job.conn is not None:
            send(job.conn, f"ok {job.pid} {os.getpid()} {ids[0]} {ids[1]}\n".encode())

    # Readable while a job runs only when the node closed its end: it stopped listening (the job is
    # polled instead, or the node went away). Dropping the connection keeps the daemon's fds few.
    def read_watcher(self, fd):
        job = self.watching[fd]
        data = receive(job.conn)
        if data == b"":
            self.close_conn(job)

    # waitpid without WUNTRACED: a SIGSTOPped job does not look finished.
    def reap(self):
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.jobs.get(pid)
            if job and job.report is not None:
                # It ended before its report was read: the pipe holds all of it, up to EOF.
                drain_report(job)
                self.end_launch(job)
            job = self.jobs.pop(pid, None)
            if job:
                self.finish(job, wait_status)

    def finish(self, job, wait_status):
        signal_number = os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else 0
        job.status["signal"] = signal_number
        job.status["exitCode"] = 128 + signal_number if signal_number else os.WEXITSTATUS(wait_status)
        self.write_status(job)
        if job.conn is not None:  # the exit is recorded: the node needs not read it back
            send(job.conn, b"exit %d\n" % job.status["exitCode"])
        self.close_conn(job)

    def fail(self, job, why, record=True):
        why = " ".join(why.split())
        if record:
            job.status["exitCode"] = 127
            job.status["error"] = why
            self.write_status(job)
        if job.conn is not None:
            send(job.conn, b"fail " + why.encode("utf-8", "surrogateescape") + b"\n")
        self.close_conn(job)

    def close_conn(self, job):
        conn, job.conn = job.conn, None
        if conn is None:
            return
        fd = conn.fileno()
        self.watching.pop(fd, None)
        try:
            self.poll.unregister(fd)
        except KeyError:
            pass
        conn.close()

    def write_status(self, job):
        """Appends the whole state as one line (one write: a reader sees it whole or not at all)."""
        text = "{" + ",".join(json_pair(k, v) for k, v in sorted(job.status.items())) + "}\n"
        try:
            fd = os.open(os.path.join(job.dir, "status"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, text.encode("utf-8", "surrogateescape"))
            finally:
                os.close(fd)
        except OSError as err:
            print(f"status {job.dir}: {err.strerror}", file=sys.stderr, flush=True)


# The OOM killer's score the daemon gives each job: the node's own, which the daemon gave up when it
# made itself unkillable (protect_from_oom). None when the daemon could not (it is not root).
JOB_OOM_SCORE = None


def protect_from_oom():
    """
    When root: the daemon asks the kernel's OOM killer to spare it (-1000), since every running
    job's exit is recorded by it, and remembers the score it had (the node's; 0 if that was lower)
    to give each job back: a job is never protected by the daemon's exemption.
    """
    global JOB_OOM_SCORE
    if os.geteuid() != 0:
        return
    try:
        with open("/proc/self/oom_score_adj") as f:
            previous = int(f.read().strip() or "0")
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-1000")
        JOB_OOM_SCORE = str(max(previous, 0))
    except (OSError, ValueError) as err:
        # A container without CAP_SYS_RESOURCE: the daemon keeps the node's score, like its jobs.
        print(f"supervisor: cannot protect the daemon from the OOM killer: {err}", file=sys.stderr)


def restore_oom_score(pid):
    """Gives a just-started job the node's own OOM score (it inherited the daemon's -1000)."""
    if JOB_OOM_SCORE is None:
        return
    # os.open/os.write, not open(): a Python file object costs ~40 µs more, on every job.
    try:
        fd = os.open(f"/proc/{pid}/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, JOB_OOM_SCORE.encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # it has already ended


def spawn(spec, home):
    """
    A job of the daemon's own user: one posix_spawn (a vfork: no page copying), its files opened
    here without blocking. The daemon enters the job's directory for the spawn (posix_spawn cannot)
    and goes back home after. Returns the pid and the output files' ids.
    """
    fds = []
    try:
        fds.append(open_input(spec.get("stdin", "/dev/null")))
        out, out_id = open_output(spec["stdout"], "stdout file")
        fds.append(out)
        if spec["stderr"] == spec["stdout"]:
            fds.append(out)
            err_id = out_id
        else:
            err, err_id = open_output(spec["stderr"], "stderr file")
            fds.append(err)
        enter(spec)
        env = environment(spec)
        path = executable(spec["arg"][0], env)
        options = {
            "file_actions": [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)],
            "setpgroup": 0,  # its own process group, which stop/kill signal as a whole
            "setsigdef": IGNORED,
        }
        try:
            return os.posix_spawn(path, spec["arg"], env, **options), (out_id, err_id)
        except OSError as err:
            if err.errno != errno.ENOEXEC:
                raise Failure(f'exec "{spec["arg"][0]}": {err.strerror}') from None
        try:
            return os.posix_spawn(SH, as_script(path, spec["arg"]), env, **options), (out_id, err_id)
        except OSError as err:
            raise Failure(f'exec "{spec["arg"][0]}": {err.strerror}') from None
    finally:
        os.chdir(home)
        for fd in set(fds):
            os.close(fd)


def spawn_as_user(spec, helper):
    """
    A job of another user (the daemon is root). Its process drops privileges first, then opens its
    files and enters its directory as the user, then reports on a pipe and execs. Returns the pid and
    the pipe's read end (non-blocking), which the daemon polls: nothing here waits on the job's files.
    """
    report_r, report_w = os.pipe()  # close-on-exec in the daemon
    os.set_blocking(report_r, False)
    stdin = open_input(spec.get("stdin", "/dev/null"))
    try:
        if helper:
            argv = [helper, spec["uid"], spec["gid"], spec.get("groups", spec["gid"]), spec["stdout"], spec["stderr"],
                    spec.get("cwd", ""), spec.get("base", "/"), "--", *spec["arg"]]
            pid = os.posix_spawn(helper, argv, environment(spec), file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, report_w, 3)],
                setpgroup=0, setsigdef=IGNORED)
        else:
            pid = fork_as_user(spec, stdin, report_w)
    except OSError as err:
        os.close(report_r)
        raise Failure(f"cannot start the job: {err.strerror}") from None
    finally:
        os.close(report_w)
        os.close(stdin)
    return pid, report_r


def fork_as_user(spec, stdin, report_w):
    """The helper's steps in a forked child, for hosts without it (a fork costs ~10 ms more per job)."""
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        # Only stdin and the report pipe: the daemon's other fds (connections of other jobs among
        # them) must not stay open here while this child may block on opening the job's files.
        os.dup2(stdin, 0)
        os.dup2(report_w, 3)
        report_w = 3
        os.closerange(4, os.sysconf("SC_OPEN_MAX"))
        for s in IGNORED:
            signal.signal(s, signal.SIG_DFL)
        os.setpgid(0, 0)
        drop_privileges(int(spec["uid"]), int(spec["gid"]), [int(g) for g in spec.get("groups", spec["gid"]).split(",")])
        out, out_id = open_output(spec["stdout"], "stdout file", block=True)
        os.dup2(out, 1)
        if spec["stderr"] == spec["stdout"]:
            os.dup2(1, 2)
            err_id = out_id
        else:
            err, err_id = open_output(spec["stderr"], "stderr file", block=True)
            os.dup2(err, 2)
        enter(spec)
        env = environment(spec)
        path = executable(spec["arg"][0], env)
        os.write(report_w, f"ids {out_id} {err_id}\n".encode())
        try:
            try:
                os.execve(path, spec["arg"], env)
            except OSError as err:
                if err.errno != errno.ENOEXEC:
                    raise
                os.execve(SH, as_script(path, spec["arg"]), env)
        except OSError as err:
            raise Failure(f'exec "{spec["arg"][0]}": {err.strerror}') from None
    except Failure as err:
        why = str(err)
    except BaseException as err:  # whatever it was, it must not look like a successful exec
        why = getattr(err, "strerror", None) or f"{type(err).__name__}: {err}"
    try:
        os.write(report_w, b"fail " + " ".join(why.split()).encode("utf-8", "surrogateescape") + b"\n")
    finally:
        os._exit(127)


def as_script(path, argv):
    """
    What execvp does with an executable file that is no program (ENOEXEC: a script without a #! line):
    run it with the shell. The Perl supervisor before this one exec'd through execvp.
    """
    return [SH, path] + argv[1:]


def drop_privileges(uid, gid, groups):
    """The user's own groups only: the job inherits none of the daemon's."""
    try:
        os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as err:
        raise Failure(f"cannot switch to uid {uid}, gid {gid}: {err.strerror}") from None


def open_input(path):
    """The job's stdin: a file of the job's own state dir (written by the node), or /dev/null."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise Failure(f'stdin "{path}": {err.strerror}') from None
    os.set_blocking(fd, True)
    return fd


def open_output(path, what, block=False):
    """
    Opens (appends to, or creates) an output file; returns the fd and the file's id. Non-blocking
    unless `block` (the job's own process may wait): a FIFO without a reader fails at once.
    """
    flags = APPEND if block else APPEND | os.O_NONBLOCK
    try:
        try:
            fd, created = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666), 1
        except FileExistsError:
            fd, created = os.open(path, flags), 0
    except OSError as err:
        reason = "a FIFO with no reader" if err.errno == errno.ENXIO else err.strerror
        raise Failure(f'{what} "{path}": {reason}') from None
    if not block:
        os.set_blocking(fd, True)
    st = os.fstat(fd)
    return fd, (f"{st.st_dev}:{st.st_ino}:{st.st_uid}:{created}" if stat.S_ISREG(st.st_mode) else "-")


def lookup_user(name):
    """The answer to `user NAME`: ids, groups, home and shell (hex: they may hold spaces), or nouser."""
    try:
        pw = pwd.getpwnam(name)
        groups = os.getgrouplist(name, pw.pw_gid)
    except (KeyError, OSError, ValueError):
        return b"nouser\n"
    return b"user %d %d %s %s %s\n" % (
        pw.pw_uid, pw.pw_gid, ",".join(map(str, groups)).encode(),
        os.fsencode(pw.pw_dir).hex().encode() or b"-", os.fsencode(pw.pw_shell).hex().encode() or b"-")


def kill_group(pid):
    for target in (-pid, pid):  # its group, or itself if it had not made one yet
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass


def drain_report(job):
    try:
        while data := os.read(job.report, 4096):
            job.report_data += data
    except OSError:
        pass


def enter(spec):
    """The job's working directory; one without starts where the node runs."""
    try:
        os.chdir(spec["base"])
    except (KeyError, OSError):
        pass
    if "cwd" in spec:
        try:
            os.chdir(spec["cwd"])
        except OSError as err:
            raise Failure(f'working directory "{spec["cwd"]}": {err.strerror}') from None


def environment(spec):
    return dict(pair.split("=", 1) for pair in spec["env"])


def executable(name, env):
    """A name without a slash is looked up on the job's PATH (as execvp would)."""
    if "/" in name:
        return name
    for dir in env.get("PATH", "/usr/bin:/bin").split(":"):
        path = os.path.join(dir or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    raise Failure(f'exec "{name}": No such file or directory')


def parse_spec(data):
    """NUL-terminated key, value pairs; arg and env repeat."""
    fields = bytes(data).split(b"\0")
    spec = {"arg": [], "env": []}
    for key, value in zip(fields[0:-1:2], fields[1:-1:2]):
        key, value = os.fsdecode(key), os.fsdecode(value)
        if key in ("arg", "env"):
            spec[key].append(value)
        else:
            spec[key] = value
    if not spec["arg"] or "stdout" not in spec or "stderr" not in spec:
        raise Failure("spec has no command")
    return spec


def start_time(pid):
    """Field 22 of /proc/PID/stat; an unreaped child is still there even if it already exited."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            return int(os.read(fd, 4096).rpartition(b")")[2].split()[19])
        finally:
            os.close(fd)
    except (OSError, IndexError, ValueError):
        return 0


def json_pair(key, value):
    return f"{json_string(key)}:{json_string(value) if isinstance(value, str) else int(value)}"


def json_string(s):
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    # Control characters are not printable: most strings skip the per-character pass (it was a
    # third of the daemon's own CPU per job, for three status lines).
    if not out.isprintable():
        out = "".join(c if c >= " " else "\\u%04x" % ord(c) for c in out)
    return '"' + out + '"'


def receive(conn, size=4096):
    """Bytes read (b"" at the end), or None when there is nothing to read yet."""
    try:
        return conn.recv(size)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def send(conn, data):
    try:
        conn.send(data)
    except OSError:
        pass  # the node went away; it learns the outcome from the status file


def drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_socket(path):
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: supervisor.py STATE_DIR SOCKET IDLE_SECONDS [LAUNCH_HELPER]")
    # Whatever the node's process left open without close-on-exec must not reach the jobs.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    for s in IGNORED:
        signal.signal(s, signal.SIG_IGN)
    protect_from_oom()
    daemon = Daemon(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] if len(sys.argv) == 5 else None)
    daemon.listen()
    daemon.run()
