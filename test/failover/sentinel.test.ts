// The failover suite's Sentinel scenario: the fleet on a Redis primary, a replica and three
// sentinels (as docker-compose.sentinel.yml), nodes finding the primary through the sentinels
// (LAUNCHER_REDIS_SENTINELS, LAUNCHER_REDIS_MASTER_NAME), under the same client load as
// failover.test.ts. First a planned switch (writes paused on the primary, then SENTINEL FAILOVER),
// then the same switch while jobs wait in the fleet queue (harness/queue-scenarios.ts), then a crash
// (the primary SIGKILLed); each time the sentinels promote the replica.
import { describe, expect, it } from "vitest";
import { type QueueOutcome, sentinelFailoverWhileQueued } from "./harness/queue-scenarios.js";
import {
  composeSkipReason,
  expectNoAclRefusals,
  expectNoLoss,
  sleep,
  targetKind,
  useFailoverSuite,
} from "./harness/setup.js";

const kind = targetKind();
const skip = composeSkipReason(kind, true);
if (skip) console.warn(`failover suite, Sentinel (compose target) SKIPPED, not passed: ${skip}`);

describe.skipIf(skip !== undefined)(
  `failover: Redis Sentinel (${kind} target)${skip ? ` [skipped: ${skip}]` : ""}`,
  () => {
    const suite = useFailoverSuite("Failover: Redis Sentinel", kind, "sentinel");

    it("baseline: steady load, no failure", async () => {
      expectNoLoss(await suite.run.scenario("baseline (no failure)", () => sleep(3_000)));
    });

    it("switch the primary over by hand (writes paused, SENTINEL FAILOVER): nothing is lost", async () => {
      const f = await suite.run.scenario(
        "Sentinel: manual switch (CLIENT PAUSE WRITE + SENTINEL FAILOVER)",
        async () => {
          await suite.target.failoverRedis("manual");
        },
      );
      expectNoLoss(f);
    });

    // Before the kill below, which leaves no replica. Local target only (slots, ledger file).
    it.skipIf(kind === "compose")(
      "switch the primary over while jobs are queued: the queue survives, each job runs once",
      async () => {
        let out: QueueOutcome = { problems: [] };
        const f = await suite.run.scenario("Sentinel: manual switch with jobs queued", async (ctx) => {
          out = await sentinelFailoverWhileQueued(suite, ctx);
        });
        expectNoLoss(f);
        expect(out.problems).toEqual([]);
      },
      240_000,
    );

    it("kill the Sentinel primary: the replica is promoted and the nodes follow", async () => {
      const f = await suite.run.scenario("Sentinel: primary SIGKILLed, replica promoted", async () => {
        await suite.target.failoverRedis("kill");
      });
      expectNoLoss(f);
    });

    it("Redis's ACL refused the fleet nothing throughout (nodes, replica, sentinels)", async ({ skip }) => {
      await expectNoAclRefusals(suite, skip);
    });
  },
);
