// This node's estimate of Redis server time, the fleet's one clock. Every heartbeat reply carries
// Redis `TIME`; the offset between that and this host's clock is kept, so peers are judged on
// Redis time and a host clock minutes off changes nothing.

export class RedisClock {
  private offsetMs = 0;
  private latency = 0;

  /** `local` is this host's clock (tests skew it); only ever compared with itself. */
  constructor(readonly local: () => number = Date.now) {}

  /** The estimate of Redis server time (ms). */
  nowMs(): number {
    return this.local() + this.offsetMs;
  }

  /** The last round trip to Redis (ms). */
  get latencyMs(): number {
    return this.latency;
  }

  /** Notes a reply that carried Redis time `serverMs`, for a request sent at `sentMs` (local clock). */
  note(serverMs: number, sentMs: number): void {
    const received = this.local();
    this.latency = received - sentMs;
    // The server read its clock about halfway through the round trip.
    this.offsetMs = serverMs - (sentMs + received) / 2;
  }
}
