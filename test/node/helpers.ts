// Shared helpers for the single-node tests: submit, read, control and wait on jobs of a real node,
// and look at the job's real process through /proc.
import { TERMINAL_STATUSES } from "../../src/api/status.js";
import { api, until } from "../helpers/nodes.js";

export type JobBody = Record<string, unknown> & {
  id: string;
  status?: string;
  statusMessage?: string;
  exitCode?: number;
  pid?: number;
  stdoutFile?: string;
  stderrFile?: string;
  submissionTime?: string;
  user?: string;
};

export const TERMINAL: readonly string[] = TERMINAL_STATUSES;

/** A node's address (TestNode and ChildNode both have one). */
export interface HasUrl {
  url: string;
}

/** Submits a job and insists on 201. */
export async function submit(n: HasUrl, tok: string, body: Record<string, unknown>): Promise<JobBody> {
  const res = await api<JobBody>(n.url, "POST", "/jobs", { token: tok, body });
  if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function getJob(n: HasUrl, tok: string, id: string): Promise<JobBody> {
  const res = await api<JobBody>(n.url, "GET", `/jobs/${encodeURIComponent(id)}`, { token: tok });
  if (res.status !== 200) throw new Error(`get ${id} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export function control(n: HasUrl, tok: string, id: string, operation: unknown) {
  return api(n.url, "POST", `/jobs/${encodeURIComponent(id)}/control`, { token: tok, body: { operation } });
}

/**
 * Waits until the job has one of `statuses` and returns it. An error answer (a node restarting, a
 * 503 during failover) is polled past; the last answer is in the timeout's message.
 */
export async function waitStatus(
  n: HasUrl,
  tok: string,
  id: string,
  statuses: string | readonly string[],
  timeoutMs = 10_000,
): Promise<JobBody> {
  const want: readonly string[] = typeof statuses === "string" ? [statuses] : statuses;
  let last: unknown;
  try {
    return await until(
      async () => {
        const res = await api<JobBody>(n.url, "GET", `/jobs/${encodeURIComponent(id)}`, { token: tok });
        last = res;
        return res.status === 200 && want.includes(res.body.status ?? "") ? res.body : undefined;
      },
      { timeoutMs },
    );
  } catch (err) {
    throw new Error(`job ${id} did not reach ${want.join("/")}: last answer ${JSON.stringify(last)}`, {
      cause: err,
    });
  }
}

export const waitTerminal = (n: HasUrl, tok: string, id: string, timeoutMs = 10_000) =>
  waitStatus(n, tok, id, TERMINAL, timeoutMs);

/** Submits and waits until the job runs; returns the Running job (with its pid). */
export async function running(n: HasUrl, tok: string, body: Record<string, unknown>): Promise<JobBody> {
  const job = await submit(n, tok, body);
  return waitStatus(n, tok, job.id, "Running");
}

export async function listJobs(n: HasUrl, tok: string, query = ""): Promise<JobBody[]> {
  const res = await api<{ jobs: JobBody[] }>(n.url, "GET", `/jobs${query}`, { token: tok });
  if (res.status !== 200) throw new Error(`list failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.jobs;
}

export { setTimeout as sleep } from "node:timers/promises";
export { alive, groupMembers, procState } from "../helpers/procs.js";

/**
 * Ends every unfinished job the admin token can see (resume first for suspended ones, since
 * kill needs Running), so no test leaves processes behind.
 */
export async function endAll(n: HasUrl, adminTok: string): Promise<void> {
  let jobs: JobBody[];
  try {
    jobs = await listJobs(n, adminTok, "?user=*&statuses=Pending,Running,Suspended");
  } catch {
    return;
  }
  await Promise.all(
    jobs.map(async (j) => {
      if (j.status === "Pending") await control(n, adminTok, j.id, "cancel");
      if (j.status === "Suspended") await control(n, adminTok, j.id, "resume");
      if (j.status !== "Pending") await control(n, adminTok, j.id, "kill");
    }),
  );
}
