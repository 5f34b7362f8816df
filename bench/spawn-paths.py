#!/usr/bin/python3
"""
How a supervisor daemon can start `sh -c true`, 9 in flight, from one Python process (the shape of
src/runner/supervisor.py). Prints one JSON object: per way, jobs/s and CPU ms per job (the starting
process, and the children).

  posix_spawn   as the daemon's own user (unprivileged mode): one vfork + exec
  helper        as another user through launch-as (privileged mode): vfork + exec of the helper,
                which drops privileges, opens the output file and execs the job
  fork          as another user by forking the daemon (privileged mode without the helper)

usage: spawn-paths.py [--ways posix_spawn,helper,fork] [--rounds R] N [UID GID HELPER OUTFILE]

With only N (and --ways posix_spawn), nothing needs root: that is the throughput measure's limit
baseline (bench/throughput.ts), the machine's own rate of starting `sh -c true` without Node's fork.
Best of R interleaved rounds (default 3) per way.
"""
import json
import os
import sys
import time


def measure(n, start):
    t0 = time.monotonic()
    c0 = os.times()
    started = done = 0
    while done < n:
        while started - done < 9 and started < n:
            start()
            started += 1
        os.waitpid(-1, 0)
        done += 1
    elapsed = time.monotonic() - t0
    c1 = os.times()
    own = (c1.user + c1.system - c0.user - c0.system) * 1000 / n
    children = (c1.children_user + c1.children_system - c0.children_user - c0.children_system) * 1000 / n
    return {"rate": n / elapsed, "cpuMs": own + children, "ownCpuMs": own, "childCpuMs": children}


def main():
    args = sys.argv[1:]
    only, rounds = None, 3
    while args and args[0].startswith("--"):
        opt, value, args = args[0], args[1], args[2:]
        if opt == "--ways":
            only = value.split(",")
        elif opt == "--rounds":
            rounds = int(value)
        else:
            sys.exit(f"unknown option {opt}")
    n = int(args[0])
    uid, gid, helper, out = (args[1:5] + [""] * 4)[:4]
    env = {"PATH": "/usr/bin:/bin"}
    job = ["/bin/sh", "-c", "true"]
    null = os.open("/dev/null", os.O_RDONLY)

    def posix_spawn():
        os.posix_spawn(job[0], job, env, setpgroup=0)

    def via_helper():
        r, w = os.pipe()
        os.posix_spawn(helper, [helper, uid, gid, gid, out, out, "", "/", "--", *job], env,
                       file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, w, 3)], setpgroup=0)
        os.close(w)
        while os.read(r, 4096):
            pass
        os.close(r)

    def via_fork():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([int(gid)])
                os.setresgid(int(gid), int(gid), int(gid))
                os.setresuid(int(uid), int(uid), int(uid))
                fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.write(w, b"ids\n")
                os.execve(job[0], job, env)
            finally:
                os._exit(127)
        os.close(w)
        while os.read(r, 4096):
            pass
        os.close(r)

    ways = {"posix_spawn": posix_spawn, "helper": via_helper, "fork": via_fork}
    ways = {name: start for name, start in ways.items() if only is None or name in only}
    for start in ways.values():
        measure(20, start)  # warm up
    results = {name: [] for name in ways}
    for _ in range(rounds):  # interleaved rounds: the machine's moments are shared alike
        for name, start in ways.items():
            results[name].append(measure(n, start))
    best = {name: max(rs, key=lambda r: r["rate"]) for name, rs in results.items()}
    print(json.dumps(best))


main()
