// DOM and formatting helpers. Text is only ever set as text (never as HTML), so nothing a job or a
// node says can become markup.

/**
 * `h("a", { href: "#/x", class: "c", onclick: fn }, "text", child)`. Props that are `undefined`,
 * `null` or `false` are left out; `true` sets an empty attribute.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** `3 s ago`, `4 min ago`, `2 h ago`, `3 d ago` (a time slightly in the future counts as now). */
export function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** A duration in words: `45 s`, `12 min`, `3 h 5 min`. */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  const m = Math.floor(s / 60) % 60;
  return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ""}`;
}

/** An RFC 3339 time as the browser's local date and time (the text itself when unparsable). */
export function localTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function timeMs(iso) {
  const t = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(t) ? undefined : t;
}

/** A status as a coloured badge. */
export function badge(status) {
  return h("span", { class: `badge s-${String(status).toLowerCase()}`, "data-status": status }, status);
}

/** A line that says how a live view is doing: "live", "reconnecting in 2 s: …". */
export function liveLine() {
  const el = h("span", { class: "live", "data-live": "connecting" }, "connecting…");
  return {
    el,
    set(state, text) {
      el.dataset.live = state;
      el.textContent = text;
    },
  };
}
