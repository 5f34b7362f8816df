// Notices on the fleet queue's channel: `*` when jobs were queued (any node with a free slot may
// claim them), or a node id when a peer placed a job in that node's inbox. At-most-once, like all
// pub/sub: a node also sweeps its inbox and the queue on a timer (src/launcher/dispatcher.ts).
import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

export type QueueNotice = { kind: "queued" } | { kind: "inbox"; nodeId: string };

export class QueueNotices {
  private listener: ((channel: string, message: string) => void) | undefined;

  constructor(
    private readonly sub: Redis,
    private readonly keys: Keys,
  ) {}

  async listen(onNotice: (notice: QueueNotice) => void): Promise<void> {
    this.listener = (channel, message) => {
      if (channel !== this.keys.queueChannel) return;
      onNotice(message === "*" ? { kind: "queued" } : { kind: "inbox", nodeId: message });
    };
    this.sub.on("message", this.listener);
    await this.sub.subscribe(this.keys.queueChannel);
  }

  async close(): Promise<void> {
    if (this.listener) this.sub.off("message", this.listener);
    await this.sub.unsubscribe(this.keys.queueChannel).catch(() => undefined);
  }
}
