// Jobs: newest first, filtered by type, status, owner and labels, paged by the API's page tokens
// (the server filters and pages: the browser holds one page, however many jobs there are); the
// page in view is refreshed every second, so progress bars move without a reload.
import { api, badge, errorBox, every, h, progressBar, statusName, when } from "./app.js";

const STATUSES = ["QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];
const PAGE_SIZE = 50;

function labelsText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
}

export async function jobsPage(main, _rest, params) {
  const state = { type: params.get("type") || "", status: params.get("status") || "",
                  label: params.get("label") || "", owner: params.get("owner") || "",
                  parent: params.get("parent") || "", tokens: [""], selected: new Set(), asked: 0, busy: false };
  const { types } = await api.get("/v1/types");
  const typeSelect = h("select", { id: "filter-type" }, h("option", { value: "" }, "all types"),
    types.map((t) => h("option", { value: t.type.name, selected: t.type.name === state.type }, t.type.name)));
  const statusSelect = h("select", { id: "filter-status" }, h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s.toLowerCase())));
  const labelInput = h("input", { id: "filter-label", placeholder: "key=value key2=value2", value: state.label });
  const ownerInput = h("input", { id: "filter-owner", placeholder: "user", value: state.owner });
  const problem = h("div", { id: "jobs-error" });
  const body = h("tbody", {});
  const pager = h("span", { class: "muted" });
  const prev = h("button", { class: "secondary", onclick: () => { state.tokens.pop(); refresh(); } }, "← newer");
  const next = h("button", { class: "secondary", onclick: () => { state.tokens.push(state.next); refresh(); } }, "older →");
  const compare = h("button", { id: "compare-selected", disabled: true,
    onclick: () => { location.hash = `#/compare?jobs=${[...state.selected].join(",")}`; } }, "Compare selected");
  const filtered = () => {
    state.type = typeSelect.value; state.status = statusSelect.value; state.label = labelInput.value.trim();
    state.owner = ownerInput.value.trim();
    state.tokens = [""];
    refresh();
  };
  typeSelect.onchange = filtered; statusSelect.onchange = filtered; labelInput.onchange = filtered;
  ownerInput.onchange = filtered;

  main.append(h("h1", {}, "Jobs"),
    h("div", { class: "row" }, h("label", {}, "type", typeSelect), h("label", {}, "status", statusSelect),
      h("label", {}, "owner", ownerInput), h("label", {}, "labels", labelInput), compare, prev, next, pager),
    ...(state.parent ? [h("p", { id: "filter-parent", class: "muted" }, "steps of ",
      h("a", { href: `#/job/${state.parent}` }, h("code", {}, state.parent)))] : []), problem,
    h("table", { id: "jobs" }, h("thead", {}, h("tr", {}, ...["", "job", "type", "status", "progress", "labels",
      "created", "attempts"].map((x) => h("th", {}, x)))), body));

  function row(job) {
    const box = h("input", { type: "checkbox", checked: state.selected.has(job.jobId), onchange: (e) => {
      if (e.target.checked) state.selected.add(job.jobId); else state.selected.delete(job.jobId);
      compare.disabled = state.selected.size < 1;
    } });
    return h("tr", { dataset: { job: job.jobId } }, h("td", {}, box),
      h("td", {}, h("a", { href: `#/job/${job.jobId}` }, h("code", {}, job.jobId))),
      h("td", {}, job.workflowType), h("td", {}, badge(job.status)),
      h("td", {}, progressBar(job.progress ? job.progress.fraction : statusName(job.status) === "SUCCEEDED" ? 1 : 0)),
      h("td", { class: "muted" }, labelsText(job.labels)), h("td", {}, when(job.createdAt)),
      h("td", {}, job.attempts));
  }

  // `asked` numbers the requests: a slow reply to an older one never overwrites a newer page; the
  // timer skips a tick while a request is out (a loaded server is not asked faster than it answers).
  async function refresh(tick) {
    if (tick === true && state.busy) return;
    const asked = ++state.asked;
    const query = new URLSearchParams({ page_size: PAGE_SIZE });
    if (state.type) query.set("workflow_type", state.type);
    if (state.status) query.set("statuses", `JOB_STATUS_${state.status}`);
    if (state.owner) query.set("owner", state.owner);
    if (state.parent) query.set("parent_id", state.parent);
    for (const pair of state.label.split(/[\s,]+/).filter(Boolean)) query.append("labels", pair);
    const token = state.tokens[state.tokens.length - 1];
    if (token) query.set("page_token", token);
    let reply;
    state.busy = true;
    try {
      reply = await api.get(`/v1/jobs?${query}`);
    } catch (err) {  // e.g. a label without "=": the server's message names the field and the rule
      if (asked !== state.asked) return;
      problem.replaceChildren(errorBox(err));
      body.replaceChildren();
      pager.textContent = "";
      next.disabled = true;
      return;
    } finally {
      if (asked === state.asked) state.busy = false;
    }
    if (asked !== state.asked) return;
    problem.replaceChildren();
    body.replaceChildren(...reply.jobs.map(row));
    state.next = reply.nextPageToken;
    next.disabled = !reply.nextPageToken;
    prev.disabled = state.tokens.length < 2;
    pager.textContent = `page ${state.tokens.length}, ${reply.jobs.length} job(s)`;
  }
  await refresh();
  every(1000, () => refresh(true));
}
