// 5. Failure detection: SIGKILL one child-process node of a 3-node fleet (default timings:
// heartbeat 1 s, OFFLINE_AFTER 3 s) behind HAProxy with the shipped ops/haproxy.cfg settings, and
// poll every 20 ms: `GET /nodes` on both peers until they say `online:false`, and HAProxy's stats
// CSV until it marks the node DOWN (out of rotation).
// DESIGN: Online() reflects the crash within OFFLINE_AFTER + one heartbeat (4 s); the load
// balancer stops routing to it within 2 s.
import { type Ctx, fmtMs, Http, monoMs, Stack, sleep, summarize, topology, until, verdict } from "./lib.js";

const MEASURE = "failure";
const HEARTBEAT_MS = 1_000;
const OFFLINE_AFTER_MS = 3_000;
const POLL_MS = 20;

export async function failure(ctx: Ctx): Promise<void> {
  const stack = new Stack(MEASURE);
  try {
    const trials = ctx.full ? 5 : 1;
    // The shared fleet runs the default timings (heartbeat 1 s, OFFLINE_AFTER 3 s). This measure is
    // the last to use it: after the last trial node-2 stays down.
    const { fleet, token, haproxy: useHaproxy } = await ctx.shared();
    const peers = [fleet.nodes[0]!, fleet.nodes[2]!].map((n) => new Http(n.url, token, stack, 1));
    const victim = 1;
    const victimId = fleet.nodes[victim]!.id;

    const onlineOn = async (peer: Http) => {
      const res = await peer.json<{ nodes: { id: string; online: boolean }[] }>("GET", "/nodes");
      return res.body.nodes.find((x) => x.id === victimId)?.online;
    };
    const lbState = async () =>
      (await topology.haproxyServerStates(fleet.lbStatsUrl!)).find((s) => s.name === victimId)?.status ?? "";

    const toOffline: number[] = [];
    const toLb: number[] = [];
    for (let t = 0; t < trials; t++) {
      // Everything healthy first: online on both peers, UP in HAProxy.
      await until(
        "the node to be online everywhere",
        async () => {
          const seen = await Promise.all(peers.map(onlineOn));
          const up = useHaproxy ? (await lbState()) === "UP" : true;
          return seen.every((x) => x === true) && up;
        },
        30_000,
        100,
      );
      // Kill at a random point of the heartbeat period.
      await sleep(Math.random() * HEARTBEAT_MS);

      let killedAt = 0;
      const pollers: Promise<number>[] = peers.map(async (peer) => {
        while (killedAt === 0) await sleep(1);
        for (;;) {
          if ((await onlineOn(peer)) === false) return monoMs() - killedAt;
          if (monoMs() - killedAt > OFFLINE_AFTER_MS + 10_000)
            throw new Error("peer never reported the node offline");
          await sleep(POLL_MS);
        }
      });
      if (useHaproxy) {
        pollers.push(
          (async () => {
            while (killedAt === 0) await sleep(1);
            for (;;) {
              if ((await lbState()).startsWith("DOWN")) return monoMs() - killedAt;
              if (monoMs() - killedAt > 15_000) throw new Error("HAProxy never marked the node DOWN");
              await sleep(POLL_MS);
            }
          })(),
        );
      }
      killedAt = monoMs();
      const stopped = fleet.stopNode(victim, "SIGKILL");
      const [a, b, lb] = await Promise.all(pollers);
      await stopped;
      toOffline.push(Math.max(a!, b!));
      if (lb !== undefined) toLb.push(lb);
      ctx.log(
        `  trial ${t + 1}: offline on peers after ${fmtMs(a!, 0)} / ${fmtMs(b!, 0)}${lb !== undefined ? `, HAProxy DOWN after ${fmtMs(lb, 0)}` : ""}`,
      );
      if (t < trials - 1) await fleet.startNode(victim);
    }

    const off = summarize(toOffline);
    const limit = OFFLINE_AFTER_MS + HEARTBEAT_MS;
    ctx.row({
      measure: MEASURE,
      metric: `SIGKILL → online:false on both peers (${trials} trials)`,
      value: `max ${fmtMs(off.max, 0)} (min ${fmtMs(off.min, 0)})`,
      target: `≤ ${limit} ms`,
      verdict: verdict(off.max <= limit),
    });
    if (useHaproxy) {
      const lb = summarize(toLb);
      ctx.row({
        measure: MEASURE,
        metric: "SIGKILL → HAProxy marks DOWN",
        value: `max ${fmtMs(lb.max, 0)} (min ${fmtMs(lb.min, 0)})`,
        target: "≤ 2000 ms",
        verdict: verdict(lb.max <= 2_000),
      });
    } else {
      ctx.row({
        measure: MEASURE,
        metric: "SIGKILL → HAProxy marks DOWN",
        value: "skipped: haproxy not installed",
      });
    }
  } finally {
    await stack.close();
  }
}
