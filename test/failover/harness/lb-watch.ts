// Watches HAProxy's view of the nodes (its stats CSV) and keeps every change with its time, so a
// scenario can tell when HAProxy stopped (and started again) routing to a node.
import { haproxyServerStates } from "../../../src/topology/haproxy.js";

export interface StateChange {
  t: number;
  server: string;
  status: string;
}

const isUp = (status: string) => status === "UP" || status.startsWith("UP ");
const isDown = (status: string) => status.startsWith("DOWN") || status === "MAINT" || status === "NOLB";

export class LbWatch {
  readonly changes: StateChange[] = [];
  private readonly current = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private polling: Promise<void> | undefined;
  /** Failed polls of the stats page (the watcher's own health, reported if not 0). */
  failures = 0;

  constructor(
    private readonly statsUrl: string,
    private readonly everyMs = 100,
  ) {}

  start(): void {
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      this.polling = this.poll().finally(() => {
        if (this.running) this.timer = setTimeout(loop, this.everyMs);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.polling;
  }

  private async poll(): Promise<void> {
    try {
      const t = Date.now();
      for (const s of await haproxyServerStates(this.statsUrl)) {
        if (this.current.get(s.name) === s.status) continue;
        this.current.set(s.name, s.status);
        this.changes.push({ t, server: s.name, status: s.status });
      }
    } catch {
      this.failures++;
    }
  }

  status(server: string): string | undefined {
    return this.current.get(server);
  }

  allUp(servers: readonly string[]): boolean {
    return servers.every((s) => isUp(this.current.get(s) ?? ""));
  }

  /** When HAProxy first showed `server` DOWN at or after `since`. */
  downAt(server: string, since: number): number | undefined {
    return this.changes.find((c) => c.server === server && c.t >= since && isDown(c.status))?.t;
  }

  /** When `server` was last seen turning UP at or after `since` (undefined if it is not UP now). */
  upAt(server: string, since: number): number | undefined {
    if (!isUp(this.current.get(server) ?? "")) return undefined;
    const ups = this.changes.filter((c) => c.server === server && c.t >= since && isUp(c.status));
    return ups.at(-1)?.t ?? since;
  }
}
