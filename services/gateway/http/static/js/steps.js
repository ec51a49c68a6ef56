// A workflow's steps on the job page (issue 13): each step's name, type, status, start and
// duration, with a link to its child job and its own steps nested under it. Kept live from the
// job's `step` events; when a step ends, its child job is read (times) with its own steps.
import { api, badge, h, isTerminal, when } from "./app.js";

const MAX_DEPTH = 8;  // as deep as the gateway lets steps nest by default

// The steps a job's events name, by step name (a step run again shows its latest child).
function fromEvents(events) {
  const steps = new Map();
  for (const ev of events) {
    const s = ev.data && ev.data.step;
    if (s && s.kind === "KIND_STARTED") steps.set(s.stepName, { name: s.stepName, jobId: s.childJobId, type: s.workflowType, status: s.childStatus });
  }
  return [...steps.values()];
}

// A step's child job (times, status) and, once it has ended, its own steps, recursively.
async function load(node, depth) {
  const job = await api.get(`/v1/jobs/${node.jobId}`);
  const out = { ...node, type: job.workflowType, status: job.status, startedAt: job.startedAt, finishedAt: job.finishedAt, steps: [] };
  if (isTerminal(job.status) && depth < MAX_DEPTH) {
    const children = fromEvents(await api.events(`/v1/jobs/${node.jobId}/events`));
    out.steps = await Promise.all(children.map((child) => load(child, depth + 1)));
  }
  return out;
}

function duration(node) {
  if (!node.startedAt) return "—";
  if (!node.finishedAt) return "running";
  return `${((new Date(node.finishedAt) - new Date(node.startedAt)) / 1000).toFixed(2)} s`;
}

function rows(nodes, depth) {
  return nodes.flatMap((node) => [
    h("tr", { class: "step", dataset: { step: node.name, job: node.jobId, depth } },
      h("td", { style: `padding-left:${8 + 20 * depth}px` }, depth ? "↳ " : "", node.name),
      h("td", {}, node.type || ""), h("td", {}, badge(node.status)),
      h("td", {}, when(node.startedAt) || "—"), h("td", {}, duration(node)),
      h("td", {}, h("a", { href: `#/job/${node.jobId}` }, h("code", {}, node.jobId)))),
    ...rows(node.steps || [], depth + 1),
  ]);
}

export function stepsSection() {
  const steps = new Map();  // step name -> node
  const el = h("div", { id: "steps" }, h("p", { class: "muted" }, "No steps (yet)."));
  const render = () => el.replaceChildren(h("table", { id: "step-tree" },
    h("tr", {}, ...["step", "type", "status", "started", "duration", "job"].map((x) => h("th", {}, x))),
    rows([...steps.values()], 0)));
  return {
    el,
    // A `step` event of the job: the step started (a new child job) or ended.
    async onStep(s) {
      const node = { ...(steps.get(s.stepName) || {}), name: s.stepName, jobId: s.childJobId, type: s.workflowType, status: s.childStatus };
      steps.set(s.stepName, node);
      render();
      if (s.kind === "KIND_STARTED") return;
      try {
        const loaded = await load(node, 1);
        if (steps.get(s.stepName)?.jobId === loaded.jobId) { steps.set(s.stepName, loaded); render(); }
      } catch { /* the child went (deleted): the row keeps what the event said */ }
    },
  };
}
