// The Posit Launcher's own nodes (its load-balanced cluster), from SetLoadBalancerNodes (type 201);
// `GET /nodes` shows them as `launcherNodes`. It is
// purely advisory (launcher-plugin-api.md §4.2): the fleet's own registry in Redis decides where
// jobs live. This keeps the latest list in memory, logs changes, and lets other parts of the
// process (e.g. an HTTP route) read it or subscribe to it.
import { type Node, nodeOnline } from "../api/index.js";

export interface LauncherNodesSnapshot {
  /** The nodes as the Launcher last sent them (normalised to the Node JSON shape). */
  nodes: Node[];
  /** When the list was received (RFC 3339), or undefined before the first 201. */
  updatedAt?: string;
}

export type LauncherNodesListener = (snapshot: LauncherNodesSnapshot) => void;

export class LauncherNodes {
  private snapshot: LauncherNodesSnapshot = { nodes: [] };
  private readonly listeners = new Set<LauncherNodesListener>();

  get current(): LauncherNodesSnapshot {
    return this.snapshot;
  }

  /** The Launcher nodes whose status is exactly `Online` (Go `Node.Online()`). */
  online(): Node[] {
    return this.snapshot.nodes.filter(nodeOnline);
  }

  set(nodes: Node[], now = new Date()): LauncherNodesSnapshot {
    this.snapshot = { nodes: nodes.map((n) => ({ ...n })), updatedAt: now.toISOString() };
    for (const listener of this.listeners) {
      try {
        listener(this.snapshot);
      } catch {
        // A listener's failure must not break the plugin's answer to the Launcher.
      }
    }
    return this.snapshot;
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  onChange(listener: LauncherNodesListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** One node of a 201 request, tolerating missing fields and a numeric `port`. */
export function normaliseNode(value: unknown): Node | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const text = (x: unknown) => (typeof x === "string" ? x : typeof x === "number" ? String(x) : "");
  return {
    host: text(v.host),
    ipv4: text(v.ipv4),
    port: text(v.port),
    lastSeen: text(v.lastSeen),
    status: text(v.status),
  };
}

/**
 * The process's Launcher node list: `launcher-fleet plugin` records every SetLoadBalancerNodes
 * here, so other parts of the process (an HTTP route, metrics) can read it or subscribe to it.
 */
export const launcherNodes = new LauncherNodes();
