// Submit: a command (run by the user's shell), a name and tags; `POST /jobs` with an
// Idempotency-Key, so a double click or a retry after a lost answer makes one job.
import { api, idempotencyKey } from "./api.js";
import { fill, h } from "./dom.js";

export function submitView(root, signal) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  // A retry of the same request keeps its key; any change to the form makes a new one.
  let key = idempotencyKey();
  const button = h("button", { type: "submit", id: "submit-job" }, "Submit");
  const form = h(
    "form",
    {
      class: "card submit",
      id: "submit-form",
      oninput: () => {
        key = idempotencyKey();
      },
      onsubmit: async (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const job = { command: String(data.get("command")) };
        const name = String(data.get("name")).trim();
        const tags = String(data.get("tags"))
          .split(",")
          .map((t) => t.trim())
          .filter(Boolean);
        if (name) job.name = name;
        if (tags.length) job.tags = tags;
        button.disabled = true;
        try {
          const created = await api("jobs", {
            method: "POST",
            body: job,
            signal,
            headers: { "idempotency-key": key },
          });
          location.hash = `#/jobs/${encodeURIComponent(created.id)}`;
        } catch (err) {
          if (signal.aborted) return;
          error.textContent = `The job was not submitted: ${err.message}`;
          error.hidden = false;
          button.disabled = false;
        }
      },
    },
    h("h1", {}, "Submit a job"),
    h("label", { for: "command" }, "Command"),
    h("textarea", {
      id: "command",
      name: "command",
      rows: 3,
      required: true,
      spellcheck: "false",
      placeholder: "echo hello; sleep 5",
    }),
    h("label", { for: "name" }, "Name"),
    h("input", { id: "name", name: "name", placeholder: "optional", maxlength: 1024 }),
    h("label", { for: "tags" }, "Tags"),
    h("input", { id: "tags", name: "tags", placeholder: "optional, comma-separated" }),
    error,
    button,
  );
  fill(root, form);
  form.querySelector("textarea").focus();
}
