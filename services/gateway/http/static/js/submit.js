// Submit: a form generated from the type's ParamSpecs — defaults filled in, bounds and allowed
// values enforced by the browser, units shown. The gateway stays the authority: its error names
// the field, which is then marked.
import { api, errorBox, h, paramText } from "./app.js";

const DURATION = /^(\d+(\.\d+)?)(s|m|h|d)?$/;
const SECONDS = { s: 1, m: 60, h: 3600, d: 86400 };

function input(spec) {
  const type = spec.type.replace("PARAM_TYPE_", "");
  const value = paramText(spec.default);
  const common = { name: spec.name, id: `param-${spec.name}`, required: spec.required };
  if (type === "ENUM") {
    return h("select", common, spec.allowed.map((a) => h("option", { value: a, selected: a === value }, a)));
  }
  if (type === "BOOL") return h("input", { ...common, type: "checkbox", required: false, checked: value === "true" });
  if (type === "INT" || type === "FLOAT") {
    return h("input", { ...common, type: "number", value, min: spec.min, max: spec.max,
                        step: type === "INT" ? "1" : "any" });
  }
  if (type === "DATETIME") return h("input", { ...common, type: "datetime-local", step: "1", value: value.slice(0, 19) });
  if (type === "DURATION") return h("input", { ...common, value, placeholder: "e.g. 90s, 15m, 2h" });
  return h("input", { ...common, value });
}

function paramValue(spec, el) {
  const type = spec.type.replace("PARAM_TYPE_", "");
  if (type === "BOOL") return { boolValue: el.checked };
  if (el.value === "") return null;  // not given: the type's default applies
  if (type === "INT") return { intValue: el.value };
  if (type === "FLOAT") return { floatValue: Number(el.value) };
  if (type === "DATETIME") return { datetimeValue: new Date(el.value).toISOString() };
  if (type === "BYTES") return { bytesValue: btoa(el.value) };
  return { stringValue: el.value };  // ENUM, STRING, DURATION (the gateway parses durations)
}

function timeoutJson(text) {
  const match = DURATION.exec(text.trim());
  if (!match) throw new Error(`timeout: must be a duration such as 90s, 15m or 2h, got "${text}"`);
  return `${Number(match[1]) * SECONDS[match[3] || "s"]}s`;
}

export async function submitPage(main, [name]) {
  const { types } = await api.get("/v1/types");
  const picker = h("select", { id: "submit-type", onchange: (e) => { location.hash = `#/submit/${e.target.value}`; } },
    h("option", { value: "" }, "choose a type"),
    types.map((t) => h("option", { value: t.type.name, selected: t.type.name === name }, t.type.name)));
  main.append(h("h1", {}, "Submit a job"), h("div", { class: "row" }, h("label", {}, "workflow type", picker)));
  const info = types.find((t) => t.type.name === name);
  if (!info) return;
  const specs = info.type.params;
  const form = h("form", { class: "params", id: "submit-form", novalidate: false });
  for (const spec of specs) {
    const bounds = [spec.min !== undefined ? `min ${spec.min}` : "", spec.max !== undefined ? `max ${spec.max}` : ""]
      .filter(Boolean).join(", ");
    form.append(h("label", { for: `param-${spec.name}` },
      `${spec.name}${spec.unit ? ` (${spec.unit})` : ""}${spec.required ? " *" : ""}`, input(spec),
      h("span", { class: "hint muted" }, [spec.description, bounds].filter(Boolean).join(" — "))));
  }
  const timeout = h("input", { id: "submit-timeout", placeholder: "the type's default" });
  const labels = h("input", { id: "submit-labels", placeholder: "project=X, variant=a" });
  const key = h("input", { id: "submit-key", placeholder: "optional" });
  form.append(h("label", {}, "timeout", timeout), h("label", {}, "labels", labels), h("label", {}, "idempotency key", key));
  const errors = h("div", { id: "submit-error" });
  const button = h("button", { type: "submit", id: "submit" }, `Submit ${name}`);
  form.append(h("div", {}, button));
  form.onsubmit = async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    form.querySelectorAll(".field-error").forEach((el) => el.classList.remove("field-error"));
    if (!form.reportValidity()) return;
    try {
      const params = {};
      for (const spec of specs) {
        const value = paramValue(spec, form.elements[spec.name]);
        if (value !== null) params[spec.name] = value;
      }
      const body = { workflowType: name, params, labels: {} };
      for (const pair of labels.value.split(",").map((p) => p.trim()).filter(Boolean)) {
        const [k, ...v] = pair.split("=");
        body.labels[k.trim()] = v.join("=").trim();
      }
      if (timeout.value.trim()) body.timeout = timeoutJson(timeout.value);
      if (key.value.trim()) body.idempotencyKey = key.value.trim();
      button.disabled = true;
      const { job } = await api.post("/v1/jobs", body);
      location.hash = `#/job/${job.jobId}`;
    } catch (err) {
      button.disabled = false;
      errors.replaceChildren(errorBox(err));
      const named = /^params\.([\w-]+)/.exec(err.message || "");  // the gateway names the field
      if (named && form.elements[named[1]]) form.elements[named[1]].classList.add("field-error");
    }
  };
  main.append(h("p", {}, info.type.description), form, errors);
}
