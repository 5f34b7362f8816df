#!/usr/bin/python3
"""
The throughput floor's supervisor (bench/floor.ts): the least a launcher's supervisor must do per
job, and nothing else. Reads jobs from stdin, one per line (id, shell command, stdout file, stderr
file, tab-separated); starts each with posix_spawn (`/bin/sh -c COMMAND`, its own process group,
its output files opened here and given to it), records its start and its exit in one append-only
journal (so an exit code outlives the node that asked), and reports both on stdout:
  R <id> <pid>      started
  F <id> <code>     ended: exit code, or 128+signal
One thread, one poll loop: stdin, and SIGCHLD through a wake-up pipe (the shape of
src/runner/supervisor.py's daemon).

usage: floor-supervisor.py JOURNAL
"""
import os
import select
import signal
import sys

APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND
ENV = {"PATH": "/usr/bin:/bin"}


def main():
    journal = os.open(sys.argv[1], APPEND, 0o600)
    out = sys.stdout.fileno()
    stdin = sys.stdin.fileno()
    null = os.open("/dev/null", os.O_RDONLY)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    poll = select.poll()
    poll.register(stdin, select.POLLIN)
    poll.register(wake_r, select.POLLIN)
    running = {}
    buffered = b""

    def record(lines):
        if lines:
            data = b"".join(lines)
            os.write(journal, data)
            os.write(out, data)

    def start(line):
        job_id, command, stdout, stderr = line.split(b"\t")
        fds = [null, os.open(stdout, APPEND, 0o644), os.open(stderr, APPEND, 0o644)]
        try:
            pid = os.posix_spawn(
                "/bin/sh",
                ["sh", "-c", command],
                ENV,
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)],
                setpgroup=0,
            )
        finally:
            os.close(fds[1])
            os.close(fds[2])
        running[pid] = job_id
        return b"R %s %d\n" % (job_id, pid)

    def reap():
        lines = []
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            lines.append(b"F %s %d\n" % (running.pop(pid), code if code >= 0 else 128 - code))
        return lines

    while True:
        try:
            ready = poll.poll()
        except InterruptedError:
            continue
        lines = []
        for fd, _ in ready:
            if fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
                lines += reap()
            else:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return
                buffered += chunk
                *complete, buffered = buffered.split(b"\n")
                lines += [start(line) for line in complete]
        record(lines)


main()
