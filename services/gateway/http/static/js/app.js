// The console: a hash router over five pages, and the few helpers they share.
import { typesPage } from "./types.js";
import { jobsPage } from "./jobs.js";
import { jobPage } from "./job.js";
import { comparePage } from "./compare.js";
import { submitPage } from "./submit.js";

const PAGES = { types: typesPage, jobs: jobsPage, job: jobPage, compare: comparePage, submit: submitPage };
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"]);

// An error of the HTTP API: the google.rpc.Status the gateway sent.
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body ? body.code : 0;
  }
}

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : {};
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const api = {
  get: (path) => call("GET", path),
  post: (path, body) => call("POST", path, body ?? {}),
  del: (path) => call("DELETE", path),
  events: readEvents,
};

// The events of an SSE route that ends by itself (a job's events after its terminal status):
// [{event, id, data}], none for 204. An `error` event (the stream's last) is thrown.
async function readEvents(path) {
  const response = await fetch(path, { headers: { Accept: "text/event-stream" } });
  if (response.status === 204) return [];
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, text ? JSON.parse(text) : null);
  const out = [];
  for (const block of text.split("\n\n")) {
    const ev = { event: "message", id: "", data: null };
    for (const line of block.split("\n")) {
      if (line.startsWith("id: ")) ev.id = line.slice(4);
      else if (line.startsWith("event: ")) ev.event = line.slice(7);
      else if (line.startsWith("data: ")) ev.data = JSON.parse(line.slice(6));
    }
    if (ev.event === "error" && ev.data) throw new ApiError(0, ev.data);
    if (ev.data !== null) out.push(ev);
  }
  return out;
}

// h("div", {class: "x", onclick: f}, "text", child, ...) — a DOM element.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const statusName = (s) => (s || "").replace("JOB_STATUS_", "");
export const isTerminal = (s) => TERMINAL.has(statusName(s));
export const badge = (s) => h("span", { class: `badge ${statusName(s)}` }, statusName(s));
export const when = (t) => (t ? new Date(t).toLocaleString() : "");

export function progressBar(fraction, wide) {
  const pct = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
  return h("div", { class: wide ? "bar wide" : "bar", role: "progressbar", "aria-valuenow": pct },
    h("span", { style: `width:${pct}%` }), h("em", {}, `${pct}%`));
}

// A ParamValue (protobuf JSON) as display text.
export function paramText(value) {
  if (!value) return "";
  const [kind, v] = Object.entries(value)[0] || ["", ""];
  return kind === "bytesValue" ? `${atob(v).length} bytes` : String(v);
}

export const errorBox = (err) => h("div", { class: "error" }, err.message || String(err));

// Work to undo when the page changes (event sources, timers).
let leaving = [];
export function onLeave(fn) { leaving.push(fn); }

export function stream(path, handlers) {
  const source = new EventSource(path);
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => fn(e.data ? JSON.parse(e.data) : null, e));
  }
  onLeave(() => source.close());
  return source;
}

export function every(ms, fn) {
  const id = setInterval(fn, ms);
  onLeave(() => clearInterval(id));
}

function route() {
  for (const fn of leaving) fn();
  leaving = [];
  const [path, query] = (location.hash.slice(1) || "/types").split("?");
  const [, page, ...rest] = path.split("/");
  const params = new URLSearchParams(query || "");
  const main = document.getElementById("main");
  main.replaceChildren();
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.dataset.page === page || (page === "job" && a.dataset.page === "jobs"));
  }
  const render = PAGES[page] || PAGES.types;
  Promise.resolve(render(main, rest.map(decodeURIComponent), params)).catch((err) => main.append(errorBox(err)));
}

window.addEventListener("hashchange", route);
route();
