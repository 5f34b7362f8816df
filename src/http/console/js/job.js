// One job: its spec (`GET /jobs/{id}`), its status history (the job's status stream, resumed with
// `?since=`), its output streamed live (`/output`), its resource use while it runs
// (`/resource-util`), and the control operations its status allows.
import { ApiError, api, follow } from "./api.js";
import { badge, fill, h, localTime } from "./dom.js";

const TERMINAL = new Set(["Finished", "Failed", "Killed", "Canceled"]);

/** Which operation each status allows (docs/http-api.md, src/api/operation.ts). */
const OPERATIONS = [
  { op: "suspend", label: "Suspend", when: "Running" },
  { op: "resume", label: "Resume", when: "Suspended" },
  { op: "stop", label: "Stop", when: "Running", title: "SIGTERM" },
  { op: "kill", label: "Kill", when: "Running", title: "SIGKILL" },
  { op: "cancel", label: "Cancel", when: "Pending" },
];

/** The spec's fields worth a line of their own, in this order; the rest is in the raw JSON. */
const SPEC_FIELDS = [
  "name",
  "user",
  "command",
  "exe",
  "args",
  "tags",
  "queues",
  "cluster",
  "node",
  "host",
  "workingDirectory",
  "stdoutFile",
  "stderrFile",
  "submissionTime",
  "lastUpdateTime",
  "exitCode",
  "pid",
];

const mb = (n) => (typeof n === "number" ? `${n.toFixed(1)} MB` : "");

export function jobView(root, id, signal) {
  const path = `jobs/${encodeURIComponent(id)}`;
  let job;
  let status;
  let since;
  let lastMessage;
  let resourcesFollowed = false;
  const seen = new Set();

  const title = h("h1", {}, id);
  const statusEl = h("span", { id: "job-status" });
  const message = h("p", { class: "muted", id: "job-message" });
  const controls = h("div", { class: "controls", id: "controls" });
  const controlNote = h("p", { class: "note", role: "status", hidden: true });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const history = h("tbody", { id: "history" });
  const output = h("pre", { class: "output", id: "output", "data-complete": "false" });
  const outputState = h("span", { class: "muted" });
  const resourceNote = h("p", { class: "muted", id: "resource-note" }, "Not running.");
  const resources = h("dl", { class: "resources", id: "resources" });
  const spec = h("dl", { class: "spec", id: "spec" });
  const raw = h("pre", { class: "raw" });

  fill(
    root,
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / ", id),
    h("div", { class: "title" }, title, statusEl),
    message,
    controls,
    controlNote,
    error,
    h(
      "div",
      { class: "columns" },
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Output ", outputState),
        output,
        h("h2", {}, "Status history"),
        h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Status"), h("th", {}, "Message"))),
          history,
        ),
      ),
      h(
        "section",
        { class: "card side" },
        h("h2", {}, "Resource use"),
        resourceNote,
        resources,
        h("h2", {}, "Spec"),
        spec,
        h("details", {}, h("summary", {}, "Raw JSON"), raw),
      ),
    ),
  );

  const showError = (text) => {
    error.textContent = text;
    error.hidden = !text;
  };

  const renderSpec = () => {
    if (!job) return;
    title.textContent = job.name ? `${job.name}` : job.id;
    fill(
      spec,
      SPEC_FIELDS.filter(
        (k) => job[k] !== undefined && job[k] !== "" && !(Array.isArray(job[k]) && !job[k].length),
      ).map((k) => [
        h("dt", {}, k),
        h("dd", { "data-field": k }, Array.isArray(job[k]) ? job[k].join(" ") : String(job[k])),
      ]),
      h("dt", {}, "id"),
      h("dd", {}, job.id),
    );
    raw.textContent = JSON.stringify(job, null, 2);
  };

  const renderStatus = () => {
    fill(statusEl, status ? badge(status) : null);
    fill(
      controls,
      OPERATIONS.filter((o) => o.when === status).map((o) =>
        h("button", { type: "button", "data-op": o.op, title: o.title, onclick: () => control(o) }, o.label),
      ),
    );
  };

  const control = async ({ op, label }) => {
    for (const b of controls.querySelectorAll("button")) b.disabled = true;
    try {
      const answer = await api(`${path}/control`, { method: "POST", body: { operation: op }, signal });
      controlNote.textContent = answer.statusMessage ?? `${label}: done`;
      controlNote.hidden = false;
      showError("");
    } catch (err) {
      if (signal.aborted) return;
      showError(`${label} failed: ${err.message}`);
      renderStatus();
    }
  };

  const reread = async () => {
    try {
      job = await api(path, { signal });
      renderSpec();
    } catch (err) {
      if (!signal.aborted) showError(err.message);
    }
  };

  const followResources = () => {
    if (resourcesFollowed) return;
    resourcesFollowed = true;
    let peak = 0;
    follow(`${path}/resource-util`, {
      signal,
      done: () => true,
      onMessage: (m) => {
        if (m.complete) return;
        peak = Math.max(peak, m.residentMemory ?? 0);
        fill(
          resources,
          h("dt", {}, "CPU"),
          h("dd", { "data-field": "cpuPercent" }, `${(m.cpuPercent ?? 0).toFixed(1)} %`),
          h("dt", {}, "CPU time"),
          h("dd", {}, `${(m.cpuTime ?? 0).toFixed(2)} s`),
          h("dt", {}, "Resident memory"),
          h("dd", {}, `${mb(m.residentMemory)} (peak ${mb(peak)})`),
          h("dt", {}, "Virtual memory"),
          h("dd", {}, mb(m.virtualMemory)),
        );
      },
      onState: (state, text) => {
        resourceNote.className = state === "failed" || state === "retrying" ? "error" : "muted";
        resourceNote.hidden = state === "live";
        if (state === "ended" || (state === "failed" && /running/i.test(text))) {
          resourcesFollowed = false;
          resourceNote.className = "muted";
          resourceNote.textContent = peak > 0 ? "Not running; its last sample:" : "Not running.";
        } else if (state !== "live") resourceNote.textContent = text;
      },
    });
  };

  const onStatus = (m) => {
    if (m.resync) return;
    if (m.eventId) {
      since = m.eventId;
      if (seen.has(m.eventId)) return;
      seen.add(m.eventId);
    }
    const changed = m.status !== status;
    // A message is shown when it is new; many events carry on the one before (e.g. "Starting on …").
    const words = m.statusMessage && m.statusMessage !== lastMessage ? m.statusMessage : "";
    lastMessage = m.statusMessage;
    status = m.status;
    message.textContent = m.statusMessage ?? "";
    history.append(
      h(
        "tr",
        { "data-status": m.status },
        h("td", { title: m.lastUpdateTime ?? "" }, localTime(m.lastUpdateTime)),
        h("td", {}, badge(m.status)),
        h("td", { class: "message" }, words),
      ),
    );
    if (changed) {
      renderStatus();
      // The spec gains host, node, pid, files and exit code as the job moves on.
      void reread();
    }
    if (status === "Running") followResources();
  };

  api(path, { signal })
    .then((j) => {
      job = j;
      renderSpec();
      follow(`${path}/status`, {
        signal,
        query: () => (since ? { since } : {}),
        done: () => TERMINAL.has(status),
        againMs: 500,
        onMessage: onStatus,
        onState: (state, text) => {
          if (state === "failed") showError(text);
          if (state === "retrying") showError(`Status: ${text}`);
          if (state === "live") showError("");
        },
      });
      follow(`${path}/output`, {
        signal,
        query: () => ({ outputType: "both" }),
        done: () => true,
        // The output is sent from the start on every connection.
        onOpen: () => {
          output.replaceChildren();
          outputState.textContent = "(live)";
        },
        onMessage: (m) => {
          if (m.complete) {
            output.dataset.complete = "true";
            outputState.textContent = "(complete)";
            return;
          }
          if (typeof m.output !== "string") return;
          const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
          output.append(m.outputType === "stderr" ? h("span", { class: "stderr" }, m.output) : m.output);
          if (atBottom) output.scrollTop = output.scrollHeight;
        },
        onState: (state, text) => {
          if (state === "retrying") outputState.textContent = `(${text})`;
          if (state === "failed") outputState.textContent = `(${text})`;
        },
      });
    })
    .catch((err) => {
      if (signal.aborted) return;
      showError(err instanceof ApiError ? err.message : String(err));
      title.textContent = id;
    });
}
