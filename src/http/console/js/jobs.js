// Jobs: the list (`GET /jobs`, filtered by tag and, for admins, user) kept live by the status
// stream of every visible job (`GET /jobs/*/status`), resumed with `?since=<last eventId>` after a
// break. Tags and user never change, so they are filtered by the API; the status filter is applied
// here, as statuses change under it. A job the list does not know yet (a new submission) makes the
// list be read again.
import { api, follow } from "./api.js";
import { age, badge, fill, h, liveLine, timeMs } from "./dom.js";

export const STATUSES = ["Pending", "Running", "Suspended", "Finished", "Failed", "Killed", "Canceled"];
const FIELDS = "id,name,user,status,statusMessage,submissionTime,lastUpdateTime,host,node,tags,exitCode";

const list = (text) =>
  (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

export function jobsView(root, query, signal) {
  const filter = {
    statuses: list(query.get("statuses")),
    tags: list(query.get("tags")),
    user: (query.get("user") ?? "").trim(),
  };
  const jobs = new Map();
  /** Ids the list left out (another user's or tag's): their events are ignored. */
  const excluded = new Set();
  let since;
  let loaded = false;
  const early = [];
  const live = liveLine();
  const note = h("p", { class: "error", role: "alert", hidden: true });
  const body = h("tbody");
  const count = h("span", { class: "muted" });

  const form = h(
    "form",
    {
      class: "filters",
      id: "job-filters",
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const q = new URLSearchParams();
        const statuses = data.getAll("status");
        if (statuses.length) q.set("statuses", statuses.join(","));
        if (String(data.get("tags")).trim()) q.set("tags", String(data.get("tags")).trim());
        if (String(data.get("user")).trim()) q.set("user", String(data.get("user")).trim());
        location.hash = `#/jobs${q.size ? `?${q}` : ""}`;
      },
    },
    h(
      "fieldset",
      {},
      h("legend", {}, "Status"),
      STATUSES.map((s) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", name: "status", value: s, checked: filter.statuses.includes(s) }),
          s,
        ),
      ),
    ),
    h(
      "label",
      {},
      "Tags ",
      h("input", { name: "tags", value: filter.tags.join(","), placeholder: "all of: a,b", size: 14 }),
    ),
    h(
      "label",
      { title: "Admins only: a user name, or * for everyone's. Others always see their own jobs." },
      "User (admins) ",
      h("input", { name: "user", value: filter.user, placeholder: "name or *", size: 10 }),
    ),
    h("button", { type: "submit" }, "Filter"),
  );

  fill(
    root,
    h(
      "div",
      { class: "title" },
      h("h1", {}, "Jobs"),
      count,
      live.el,
      h("a", { class: "button", href: "#/submit" }, "Submit a job"),
    ),
    form,
    note,
    h(
      "table",
      { class: "grid", id: "jobs" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Job", "Name", "User", "Status", "Node", "Submitted", "Updated", "Message"].map((t) =>
            h("th", {}, t),
          ),
        ),
      ),
      body,
    ),
  );

  const shown = (job) => filter.statuses.length === 0 || filter.statuses.includes(job.status);

  const render = () => {
    const rows = [...jobs.values()].filter(shown).sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    count.textContent = `${rows.length} of ${jobs.size}`;
    const now = Date.now();
    fill(
      body,
      rows.length === 0
        ? h("tr", {}, h("td", { colspan: 8, class: "empty" }, loaded ? "No jobs." : "Loading…"))
        : null,
      rows.map((j) =>
        h(
          "tr",
          { "data-job": j.id },
          h("td", { "data-col": "id" }, h("a", { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id)),
          h("td", { "data-col": "name" }, j.name ?? ""),
          h("td", { "data-col": "user" }, j.user ?? ""),
          h("td", { "data-col": "status" }, badge(j.status)),
          h("td", { "data-col": "node", title: j.host ?? "" }, j.node ?? j.host ?? ""),
          h(
            "td",
            { title: j.submissionTime ?? "" },
            j.submissionTime ? age(now - timeMs(j.submissionTime)) : "",
          ),
          h(
            "td",
            { title: j.lastUpdateTime ?? "" },
            j.lastUpdateTime ? age(now - timeMs(j.lastUpdateTime)) : "",
          ),
          h("td", { class: "message" }, j.statusMessage ?? ""),
        ),
      ),
    );
  };

  /** Keeps whichever of the two is newer (an event may overtake the list read). */
  const merge = (job) => {
    const known = jobs.get(job.id);
    if (known && (timeMs(known.lastUpdateTime) ?? 0) > (timeMs(job.lastUpdateTime) ?? 0)) {
      jobs.set(job.id, { ...job, ...pick(known) });
    } else jobs.set(job.id, { ...known, ...job });
  };
  const pick = (j) => ({
    status: j.status,
    statusMessage: j.statusMessage,
    lastUpdateTime: j.lastUpdateTime,
  });

  let unknown = new Set();
  let reading = false;
  let timer;
  /** One read of the list for a burst of unknown jobs. */
  const loadSoon = () => {
    if (timer === undefined && !signal.aborted) {
      timer = setTimeout(() => {
        timer = undefined;
        void load();
      }, 250);
    }
  };
  const load = async () => {
    if (reading) return;
    reading = true;
    const asked = unknown;
    unknown = new Set();
    try {
      const answer = await api("jobs", {
        signal,
        query: { tags: filter.tags, user: filter.user || undefined, fields: FIELDS },
      });
      const ids = new Set();
      for (const job of answer.jobs) {
        ids.add(job.id);
        merge(job);
      }
      for (const id of asked) if (!ids.has(id)) excluded.add(id);
      loaded = true;
      note.hidden = true;
      for (const event of early.splice(0)) apply(event);
      render();
    } catch (err) {
      if (signal.aborted) return;
      note.textContent = `Could not read the jobs: ${err.message}`;
      note.hidden = false;
    } finally {
      reading = false;
      if (unknown.size > 0) loadSoon();
    }
  };

  const apply = (event) => {
    if (excluded.has(event.id)) return;
    const known = jobs.get(event.id);
    if (!known) {
      unknown.add(event.id);
      if (!reading) loadSoon();
      return;
    }
    if ((timeMs(known.lastUpdateTime) ?? 0) > (timeMs(event.lastUpdateTime) ?? 0)) return;
    known.status = event.status;
    known.statusMessage = event.statusMessage;
    known.lastUpdateTime = event.lastUpdateTime;
    if (event.name) known.name = event.name;
  };

  follow("jobs/*/status", {
    signal,
    query: () => (since ? { since } : {}),
    done: () => false,
    onMessage: (m) => {
      if (m.resync) {
        void load();
        return;
      }
      if (!m.id) return;
      if (m.eventId) {
        since = m.eventId;
        live.el.dataset.since = since; // where a reconnection resumes (shown to tests and curious people)
      }
      if (!loaded) {
        early.push(m);
        return;
      }
      apply(m);
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
  void load();
  render();
  const tick = setInterval(render, 5000);
  signal.addEventListener("abort", () => {
    clearInterval(tick);
    clearTimeout(timer);
  });
}
