// Compare: the same measurement and field of several jobs (variations) in one chart; each job
// a line that its legend entry toggles; window and aggregate chosen here; CSV of the same.
import { api, errorBox, h, paramText } from "./app.js";
import { chart } from "./plot.js";

const WINDOWS = [["", "raw"], ["1h", "1 hour"], ["6h", "6 hours"], ["1d", "1 day"], ["7d", "1 week"]];
const AGGS = ["mean", "min", "max", "last"];

function variation(job, others) {
  // Label a job by the parameters in which it differs from the others.
  const differing = Object.entries(job.params || {}).filter(([k, v]) =>
    others.some((o) => paramText((o.params || {})[k]) !== paramText(v)));
  const text = differing.map(([k, v]) => `${k}=${paramText(v)}`).join(" ");
  return `${job.jobId.slice(-8)}${text ? ` ${text}` : ""}`;
}

export async function comparePage(main, _rest, params) {
  const chosen = new Set((params.get("jobs") || "").split(",").filter(Boolean));
  // The jobs to pick from: the newest 200 that succeeded, carrying the labels asked for (the
  // server filters, so "all jobs with project=X" are found however many jobs there are).
  const succeeded = (labels) => {
    const query = new URLSearchParams({ page_size: 200, statuses: "JOB_STATUS_SUCCEEDED" });
    for (const pair of labels.split(/\s+/).filter(Boolean)) query.append("labels", pair);
    return api.get(`/v1/jobs?${query}`).then((r) => r.jobs);
  };
  let recent = await succeeded(params.get("label") || "");
  for (const id of chosen) {
    if (!recent.some((j) => j.jobId === id)) recent.unshift(await api.get(`/v1/jobs/${id}`));
  }
  const labelFilter = h("input", { id: "pick-label", placeholder: "label key=value, e.g. project=X",
                                   value: params.get("label") || "" });
  const pickError = h("div", { id: "pick-error" });
  const typeFilter = h("select", { id: "pick-type" }, h("option", { value: "" }, "all types"),
    [...new Set(recent.map((j) => j.workflowType))].map((t) => h("option", { value: t }, t)));
  const picks = h("div", { class: "pick", id: "pick-jobs" });
  const measurement = h("select", { id: "measurement" });
  const field = h("select", { id: "field" });
  const tag = h("select", { id: "tag" });
  const windowSel = h("select", { id: "window" }, WINDOWS.map(([v, t]) => h("option", { value: v, selected: v === (params.get("window") || "") }, t)));
  const agg = h("select", { id: "agg" }, AGGS.map((a) => h("option", { value: a, selected: a === params.get("agg") }, a)));
  const out = h("div", { id: "compare-chart" });
  const csv = h("a", { id: "csv", class: "muted" });
  let keys = [];  // {measurement, fields, tags} of the chosen jobs' series

  function renderPicks() {
    const shown = recent.filter((j) => !typeFilter.value || j.workflowType === typeFilter.value);
    picks.replaceChildren(h("table", {}, shown.map((j) => h("tr", {},
      h("td", {}, h("input", { type: "checkbox", value: j.jobId, checked: chosen.has(j.jobId), onchange: (e) => {
        if (e.target.checked) chosen.add(j.jobId); else chosen.delete(j.jobId);
        loadKeys();
      } })),
      h("td", {}, h("code", {}, j.jobId)), h("td", {}, j.workflowType),
      h("td", { class: "muted" }, Object.entries(j.params || {}).map(([k, v]) => `${k}=${paramText(v)}`).join(" "))))));
  }
  labelFilter.onchange = async () => {
    try {
      recent = await succeeded(labelFilter.value);
      pickError.replaceChildren();
    } catch (err) {  // e.g. a label without "=": the server's message names the field and the rule
      recent = [];
      pickError.replaceChildren(errorBox(err));
    }
    renderPicks();
  };
  typeFilter.onchange = renderPicks;

  async function loadKeys() {
    const lists = await Promise.all([...chosen].map((id) => api.get(`/v1/jobs/${id}/series`).then((r) => r.series, () => [])));
    const byMeasurement = new Map();
    for (const info of lists.flat()) {
      const entry = byMeasurement.get(info.key.measurement) || { fields: new Set(), tags: new Set() };
      info.fields.forEach((f) => entry.fields.add(f));
      entry.tags.add(Object.entries(info.key.tags).map(([k, v]) => `${k}=${v}`).join(","));
      byMeasurement.set(info.key.measurement, entry);
    }
    keys = byMeasurement;
    const want = params.get("measurement") || measurement.value;
    measurement.replaceChildren(...[...byMeasurement.keys()].sort().map((m) => h("option", { value: m, selected: m === want }, m)));
    fillFields();
  }
  function fillFields() {
    const entry = keys.get(measurement.value);
    const want = params.get("field") || field.value;
    field.replaceChildren(...(entry ? [...entry.fields] : []).map((f) => h("option", { value: f, selected: f === want }, f)));
    const tags = entry ? [...entry.tags].sort() : [];
    tag.replaceChildren(...tags.slice(0, 500).map((t) => h("option", { value: t }, t || "(no tags)")));
  }
  measurement.onchange = fillFields;

  async function plot() {
    out.replaceChildren();
    if (!chosen.size || !measurement.value || !field.value) {
      out.append(h("p", { class: "muted" }, "Choose jobs, a measurement and a field."));
      return;
    }
    const query = new URLSearchParams({ measurement: measurement.value, field: field.value });
    [...chosen].forEach((id) => query.append("job", id));
    if (tag.value) tag.value.split(",").forEach((t) => query.append("tag", t));
    if (windowSel.value) { query.set("window", windowSel.value); query.set("agg", agg.value); }
    csv.href = `/v1/series?${query}&format=csv`;
    csv.textContent = "download CSV";
    csv.setAttribute("download", `compare-${measurement.value}-${field.value}.csv`);
    try {
      const [{ series }, jobs] = await Promise.all([api.get(`/v1/series?${query}`),
        Promise.all([...chosen].map((id) => api.get(`/v1/jobs/${id}`)))]);
      const byId = new Map(jobs.map((j) => [j.jobId, j]));
      const lines = series.map((s) => ({
        label: variation(byId.get(s.jobId), jobs.filter((j) => j.jobId !== s.jobId)),
        timestamps: s.timestamps, values: s.fields[field.value] }));
      const unit = series.length ? (series[0].units || {})[field.value] || "" : "";
      const { el, chart: plotted } = chart(lines, { title: `${measurement.value} ${field.value}`, unit });
      window.workmeshCompare = plotted;  // for the browser tests and the curious
      out.append(el, h("p", { class: "muted" }, `${lines.length} series; click a legend entry to hide or show it`));
    } catch (err) {
      out.append(errorBox(err));
    }
  }

  main.append(h("h1", {}, "Compare jobs"),
    h("div", { class: "row" }, h("label", {}, "type", typeFilter), h("label", {}, "label", labelFilter)), pickError, picks,
    h("div", { class: "row" }, h("label", {}, "measurement", measurement), h("label", {}, "field", field),
      h("label", {}, "tags", tag), h("label", {}, "window", windowSel), h("label", {}, "aggregate", agg),
      h("button", { id: "plot", onclick: plot }, "Plot"), csv),
    out);
  renderPicks();
  await loadKeys();
  if (chosen.size) await plot();
}
