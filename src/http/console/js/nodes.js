// Nodes: every node of the fleet, live from `GET /nodes?watch=1` (the list, then each change), and
// a Drain button (admins only: the API answers others with a 403, shown).
// The stream does not send `lastSeen` alone, so the list is read again every few seconds for the
// ages; between reads an age counts up from the last one.
import { api, clockSkewMs, follow } from "./api.js";
import { age, badge, fill, h, liveLine, timeMs } from "./dom.js";

const LAST_SEEN_REFRESH_MS = 3000;

export function nodesView(root, signal) {
  const nodes = new Map();
  const live = liveLine();
  const note = h("p", { class: "error", role: "alert", hidden: true });
  const body = h("tbody");

  fill(
    root,
    h("div", { class: "title" }, h("h1", {}, "Nodes"), live.el),
    note,
    h(
      "table",
      { class: "grid", id: "nodes" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            "Node",
            "Host",
            "Address",
            "Status",
            "Online",
            "Last seen",
            "Jobs / slots",
            "Queues",
            "Labels",
            "",
          ].map((t) => h("th", {}, t)),
        ),
      ),
      body,
    ),
  );

  const drain = async (id) => {
    if (!confirm(`Drain ${id}? It stops taking jobs, gives its queued ones back and exits.`)) return;
    try {
      await api(`nodes/${encodeURIComponent(id)}/drain`, { method: "POST" });
      note.hidden = true;
    } catch (err) {
      note.textContent = `Could not drain ${id}: ${err.message}`;
      note.hidden = false;
    }
  };

  const ageText = (n) => {
    const seen = timeMs(n.lastSeen);
    return seen === undefined ? "never" : age(Date.now() + clockSkewMs - seen);
  };

  const render = () => {
    const rows = [...nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    fill(
      body,
      rows.length === 0 ? h("tr", {}, h("td", { colspan: 10, class: "empty" }, "No nodes.")) : null,
      rows.map((n) =>
        h(
          "tr",
          { "data-node": n.id, class: n.online ? "" : "dim" },
          h("td", { "data-col": "id" }, h("strong", {}, n.id)),
          h("td", { "data-col": "host" }, n.host),
          h("td", { "data-col": "address" }, `${n.ipv4}:${n.port}`),
          h("td", { "data-col": "status" }, badge(n.status)),
          h("td", { "data-col": "online", "data-online": String(n.online) }, n.online ? "yes" : "no"),
          h("td", { "data-col": "lastSeen", title: n.lastSeen }, ageText(n)),
          h("td", { "data-col": "jobs" }, `${n.runningJobs} / ${n.slots > 0 ? n.slots : "∞"}`),
          h("td", { "data-col": "queues" }, (n.queues ?? []).join(", ")),
          h(
            "td",
            { "data-col": "labels" },
            Object.entries(n.labels ?? {})
              .map(([k, v]) => (v ? `${k}=${v}` : k))
              .join(", "),
          ),
          h(
            "td",
            {},
            n.status === "Online"
              ? h("button", { type: "button", class: "small", onclick: () => drain(n.id) }, "Drain")
              : null,
          ),
        ),
      ),
    );
  };

  follow("nodes", {
    signal,
    query: () => ({ watch: 1 }),
    done: () => false,
    onOpen: () => {
      note.hidden = true;
    },
    onMessage: (m) => {
      if (Array.isArray(m.nodes)) {
        nodes.clear();
        for (const n of m.nodes) nodes.set(n.id, n);
      } else if (m.node) nodes.set(m.node.id, m.node);
      else if (m.removed) nodes.delete(m.removed);
      render();
    },
    onState: (state, text) => {
      live.set(state, state === "live" ? "live" : text);
      if (state === "failed") {
        note.textContent = text;
        note.hidden = false;
      }
    },
  });

  // Ages count up every second; lastSeen itself is read again every few seconds.
  const tick = setInterval(() => {
    for (const row of body.querySelectorAll("tr[data-node]")) {
      const n = nodes.get(row.dataset.node);
      const cell = row.querySelector('[data-col="lastSeen"]');
      if (n && cell) cell.textContent = ageText(n);
    }
  }, 1000);
  const refresh = setInterval(async () => {
    try {
      const { nodes: list } = await api("nodes", { signal });
      for (const n of list) {
        const known = nodes.get(n.id);
        if (known) known.lastSeen = n.lastSeen;
      }
    } catch {
      // The stream's line says what is wrong.
    }
  }, LAST_SEEN_REFRESH_MS);
  signal.addEventListener("abort", () => {
    clearInterval(tick);
    clearInterval(refresh);
  });
}
