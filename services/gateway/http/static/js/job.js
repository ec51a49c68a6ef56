// Job: its status timeline, progress, logs, result and error, followed live over the job's
// event stream (with its place while queued); its series with a quick plot; the outcomes of its
// notifications; a workflow's step tree (steps.js); cancel, retry and delete.
import { api, badge, errorBox, h, isTerminal, onLeave, paramText, progressBar, statusName, stream, when } from "./app.js";
import { chart } from "./plot.js";
import { stepsSection } from "./steps.js";

function summary(job) {
  const params = Object.entries(job.params || {}).map(([k, v]) => `${k}=${paramText(v)}`).join(", ");
  const labels = Object.entries(job.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return h("div", { class: "grid" },
    h("span", {}, "type"), h("span", {}, job.workflowType),
    h("span", {}, "status"), h("span", { id: "job-status" }, badge(job.status)),
    h("span", {}, "parameters"), h("code", {}, params),
    h("span", {}, "labels"), h("span", {}, labels || "—"),
    job.parentId ? [h("span", {}, "step of"), h("span", { id: "parent-job" },
      h("a", { href: `#/job/${job.parentId}` }, h("code", {}, job.parentId)), ` (step ${job.stepName})`)] : null,
    h("span", {}, "created"), h("span", {}, when(job.createdAt)),
    h("span", {}, "started / finished"), h("span", {}, `${when(job.startedAt) || "—"} / ${when(job.finishedAt) || "—"}`),
    h("span", {}, "attempts"), h("span", { id: "job-attempts" }, job.attempts),
    h("span", {}, "instance"), h("code", {}, job.instanceId || "—"),
    h("span", {}, "trace id"), h("code", { id: "trace-id" }, traceLink(job.traceId)));
}

// The trace id, a link into the tracing UI when the gateway names one (WORKMESH_HTTP_TRACE_URL).
function traceLink(traceId) {
  const template = document.querySelector('meta[name="workmesh-trace-url"]')?.content;
  if (!traceId || !template) return traceId || "—";
  const href = template.replaceAll("{trace_id}", encodeURIComponent(traceId));
  return h("a", { href, target: "_blank", rel: "noopener" }, traceId);
}

async function seriesSection(jobId, section) {
  let listed;
  try {
    listed = (await api.get(`/v1/jobs/${jobId}/series`)).series;
  } catch (err) {
    section.replaceChildren(errorBox(err));
    return;
  }
  if (!listed.length) { section.replaceChildren(h("p", { class: "muted" }, "No series.")); return; }
  // One row per measurement; its tag sets (e.g. one per building) in a select.
  const byMeasurement = new Map();
  for (const info of listed) {
    const rows = byMeasurement.get(info.key.measurement) || [];
    rows.push(info);
    byMeasurement.set(info.key.measurement, rows);
  }
  const plotArea = h("div", { id: "quick-plot" });
  const rows = [...byMeasurement].map(([measurement, infos]) => {
    const tagText = (info) => Object.entries(info.key.tags).map(([k, v]) => `${k}=${v}`).join(",");
    const select = h("select", { class: "tags" }, infos.slice(0, 2000).map((info, i) =>
      h("option", { value: i }, tagText(info) || "(no tags)")));
    const fields = [...new Set(infos.flatMap((info) => info.fields))];
    return h("tr", { dataset: { measurement } }, h("td", {}, measurement),
      h("td", {}, infos.length > 1 ? select : h("code", {}, tagText(infos[0]) || "—")),
      h("td", {}, infos.length), h("td", {}, infos[0].count),
      h("td", {}, fields.map((field) => h("button", { class: "secondary", onclick: async () => {
        const info = infos[Number(select.value) || 0];
        const tags = tagText(info);
        const query = new URLSearchParams({ job: jobId, measurement, field });
        if (tags) tags.split(",").forEach((t) => query.append("tag", t));
        const { series } = await api.get(`/v1/series?${query}`);
        const lines = series.map((x) => ({ label: `${field}${tags ? ` [${tags}]` : ""}`,
                                           timestamps: x.timestamps, values: x.fields[field] }));
        plotArea.replaceChildren(chart(lines, { title: `${measurement} ${field}`,
                                                unit: (info.units || {})[field] || "", height: 240 }).el);
      } }, `plot ${field}`))));
  });
  section.replaceChildren(plotArea,
    h("table", { id: "series" }, h("tr", {}, ...["measurement", "tags", "series", "points", "plot"].map((x) => h("th", {}, x))), rows),
    h("p", {}, h("a", { href: `#/compare?jobs=${jobId}` }, "compare with other jobs…")));
}

function notice(n) {
  const attempts = `${n.attempts} attempt${n.attempts === 1 ? "" : "s"}`;
  return h("li", { class: n.delivered ? "delivered" : "given-up" },
    h("span", { class: `badge ${n.delivered ? "SUCCEEDED" : "FAILED"}` }, n.delivered ? "DELIVERED" : "GIVEN UP"),
    ` ${n.channel} `, h("code", {}, n.target), ` after ${attempts}`,
    n.detail ? h("span", { class: "muted" }, ` — ${n.detail}`) : "");
}

// Delivery outcomes are recorded after the terminal status, where the live stream ends: read
// on after the last event seen, again with a growing pause (1 s … 30 s) while the page is open.
function followNotifications(jobId, afterSeq, list) {
  let after = afterSeq;
  let timer = null;
  let open = true;
  onLeave(() => { open = false; clearTimeout(timer); });
  const look = async (pause) => {
    if (!open) return;
    try {
      for (const ev of await api.events(`/v1/jobs/${jobId}/events?after_seq=${after}`)) {
        after = ev.id || after;
        if (ev.event !== "notification") continue;
        list.querySelector(".none")?.remove();
        list.append(notice(ev.data.notification));
      }
    } catch (err) {
      list.replaceChildren(errorBox(err));  // e.g. the job was deleted: nothing more to read
      return;
    }
    timer = setTimeout(() => look(Math.min(pause * 2, 30000)), pause);
  };
  look(1000);
}

function placeText(q) {
  const start = q.expectedStart ? `, expected to start ${when(q.expectedStart)}` : "";
  return `queued: position ${q.position} of ${q.queued}${start}`;
}

export async function jobPage(main, [jobId]) {
  let job = await api.get(`/v1/jobs/${jobId}`);
  const status = h("div", {});
  const progress = h("div", { id: "progress" }, progressBar(0, true), h("p", { class: "muted", id: "progress-message" }));
  const place = h("p", { class: "muted", id: "queue-place" }, job.queue ? placeText(job.queue) : "");
  const notices = h("ul", { class: "timeline", id: "notifications" },
    h("li", { class: "muted none" }, "None (yet): outcomes of the job's webhooks and e-mails appear once it has ended."));
  const timeline = h("ul", { class: "timeline", id: "timeline" });
  const logs = h("div", { class: "logs", id: "logs" });
  const outcome = h("div", { id: "outcome" });
  const steps = stepsSection();
  const series = h("div", { id: "series-section" }, h("p", { class: "muted" }, "once the job has ended…"));
  const actionError = h("div", {});
  const cancel = h("button", { id: "cancel", class: "danger", onclick: async () => {
    try { await api.post(`/v1/jobs/${jobId}:cancel`, { reason: "cancelled from the web console" }); }
    catch (err) { actionError.replaceChildren(errorBox(err)); }
  } }, "Cancel");
  const retry = h("button", { id: "retry", class: "secondary", onclick: async () => {
    try {
      const { job: again } = await api.post(`/v1/jobs/${jobId}:retry`, {});
      // A retry is a new attempt of the same job: the page is shown again, following it.
      if (location.hash === `#/job/${again.jobId}`) window.dispatchEvent(new HashChangeEvent("hashchange"));
      else location.hash = `#/job/${again.jobId}`;
    } catch (err) { actionError.replaceChildren(errorBox(err)); }
  } }, "Retry");
  const remove = h("button", { id: "delete", class: "secondary", onclick: async () => {
    if (!confirm(`Delete job ${jobId}, its events and its series?`)) return;
    try { await api.del(`/v1/jobs/${jobId}`); location.hash = "#/jobs"; }
    catch (err) { actionError.replaceChildren(errorBox(err)); }
  } }, "Delete");
  main.append(h("h1", {}, "Job ", h("code", {}, jobId)),
    h("div", { class: "row" }, cancel, retry, remove), actionError,
    h("div", { class: "card" }, status), h("div", { class: "card" }, h("h2", {}, "Progress"), place, progress),
    h("div", { class: "card" }, h("h2", {}, "Timeline"), timeline),
    h("div", { class: "card" }, h("h2", {}, "Steps"), steps.el),
    h("div", { class: "card" }, h("h2", {}, "Result"), outcome),
    h("div", { class: "card" }, h("h2", {}, "Logs"), logs),
    h("div", { class: "card" }, h("h2", {}, "Notifications"), notices),
    h("div", { class: "card" }, h("h2", {}, "Series"), series));

  const showJob = () => {
    status.replaceChildren(summary(job));
    cancel.disabled = isTerminal(job.status);
    retry.disabled = !isTerminal(job.status);
  };
  const setProgress = (p) => {
    progress.replaceChildren(progressBar(p.fraction, true), h("p", { class: "muted", id: "progress-message" }, p.message));
  };
  showJob();
  if (job.progress) setProgress(job.progress);
  const source = stream(`/v1/jobs/${jobId}/events?queue_updates=true`, {
    queue: (e) => { place.textContent = placeText(e.queue); },
    status: async (e) => {
      const s = e.status;
      if (statusName(s.status) !== "QUEUED") place.textContent = "";
      timeline.append(h("li", {}, badge(s.status), " ", when(e.time),
        s.attempt ? ` attempt ${s.attempt}` : "", s.instanceId ? ` on ${s.instanceId}` : "",
        s.reason ? h("span", { class: "muted" }, ` — ${s.reason}`) : ""));
      job = { ...job, status: s.status };
      showJob();
      if (isTerminal(s.status)) {
        source.close();  // the stream ends here; do not let the EventSource reconnect
        followNotifications(jobId, e.seq, notices);
        job = await api.get(`/v1/jobs/${jobId}`);
        showJob();
        if (statusName(job.status) === "SUCCEEDED") setProgress(job.progress || { fraction: 1, message: "" });
        seriesSection(jobId, series);
      }
    },
    progress: (e) => setProgress(e.progress),
    step: (e) => steps.onStep(e.step),
    log: (e) => {
      logs.append(h("div", { class: e.log.level.replace("LOG_LEVEL_", "") }, `${when(e.time)} ${e.log.message}`));
      logs.scrollTop = logs.scrollHeight;
    },
    result: (e) => {
      outcome.append(h("pre", { id: "outputs" }, JSON.stringify(e.result.outputs || {}, null, 2)));
    },
    error: (e, raw) => {
      if (!e) return;  // a connection error of the EventSource itself: it retries on its own
      if (e.error) outcome.append(h("div", { class: "error", id: "job-error" }, `${e.error.code}: ${e.error.message}`));
      else outcome.append(errorBox(e));  // the stream ended with a status (e.g. the job was deleted)
    },
  });
}
