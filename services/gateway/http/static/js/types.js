// Types: every live workflow type with its parameters and instances (the registry's view),
// kept current by the types:watch event stream; load (in flight, free capacity) refreshed.
import { api, every, h, paramText, stream } from "./app.js";

function paramRow(spec) {
  const bounds = [spec.min !== undefined ? `≥ ${spec.min}` : "", spec.max !== undefined ? `≤ ${spec.max}` : ""];
  return h("tr", {},
    h("td", {}, h("code", {}, spec.name), spec.required ? " *" : ""),
    h("td", {}, spec.type.replace("PARAM_TYPE_", "").toLowerCase()),
    h("td", {}, paramText(spec.default)),
    h("td", {}, spec.allowed.length ? spec.allowed.join(", ") : bounds.filter(Boolean).join(", ")),
    h("td", {}, spec.unit),
    h("td", { class: "muted" }, spec.description));
}

function instanceRow(inst) {
  return h("tr", {},
    h("td", {}, h("code", {}, inst.address)), h("td", {}, inst.instanceId), h("td", {}, inst.version),
    h("td", {}, `${inst.inFlight} / ${inst.capacity}`),
    h("td", {}, h("span", { class: `badge ${inst.healthy ? "healthy" : "unhealthy"}` },
      inst.healthy ? "passing" : "critical")),
    h("td", { class: "checks" }, (inst.checks || []).map((c) =>
      h("div", { class: "check" }, h("span", { class: `badge ${c.status === "passing" ? "healthy" : "unhealthy"}` }, c.status),
        " ", h("b", {}, c.name), c.serviceId ? h("span", { class: "muted" }, ` (${c.serviceId})`) : "",
        c.output ? h("div", { class: "muted" }, h("code", {}, c.output)) : ""))));
}

function card(info) {
  const t = info.type;
  return h("div", { class: "card type", dataset: { type: t.name } },
    h("h2", {}, t.name, " ", h("span", { class: "muted" }, `v${t.version}`), " ",
      h("a", { href: `#/submit/${encodeURIComponent(t.name)}` }, "submit…")),
    h("p", {}, t.description),
    h("p", { class: "load" }, `${info.healthyInstances} healthy instance(s), capacity ${info.capacity}, `,
      h("b", { class: "free" }, `free ${info.freeCapacity}`),
      t.defaultTimeout ? `, default timeout ${t.defaultTimeout}` : "",
      info.typicalRuntime ? `, typical runtime ${info.typicalRuntime} (${info.runtimeRuns} runs)` : ""),
    h("table", { class: "params" }, h("tr", {}, ...["parameter", "type", "default", "allowed", "unit", ""].map((x) => h("th", {}, x))),
      t.params.map(paramRow)),
    h("h2", {}, "Instances"),
    h("table", { class: "instances" }, h("tr", {}, ...["address", "instance", "version", "in flight", "health", "registry checks (service, status, output)"].map((x) => h("th", {}, x))),
      info.instances.map(instanceRow)));
}

export function typesPage(main) {
  const types = new Map();
  const list = h("div", { id: "types" }, h("p", { class: "muted" }, "waiting for the registry…"));
  main.append(h("h1", {}, "Workflow types ", h("span", { class: "muted", id: "type-count" }, "")), list);
  let shown = "";
  const render = () => {
    const names = [...types.keys()].sort();
    const now = JSON.stringify(names.map((n) => types.get(n)));
    if (now === shown) return;  // unchanged: keep the page as it is (selection, scroll)
    shown = now;
    list.replaceChildren(...names.map((n) => card(types.get(n))));
    if (!names.length) list.append(h("p", { class: "muted" }, "No worker is registered."));
    document.getElementById("type-count").textContent = `(${names.length} live)`;
  };
  const put = (change) => { types.set(change.type.type.name, change.type); render(); };
  stream("/v1/types:watch", {
    added: put, updated: put,
    removed: (change) => { types.delete(change.type.type.name); render(); },
  });
  // The watch reports registry changes; jobs in flight change the load between them.
  every(2000, async () => {
    const { types: infos } = await api.get("/v1/types");
    for (const info of infos) if (types.has(info.type.name)) types.set(info.type.name, info);
    render();
  });
}
