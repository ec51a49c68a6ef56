// One uPlot chart of series that share a time axis (or not: timestamps are merged, gaps null).
import { h } from "./app.js";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

// lines: [{label, timestamps (s), values}] → {el, chart}
export function chart(lines, { title = "", unit = "", height = 320 } = {}) {
  const times = [...new Set(lines.flatMap((l) => l.timestamps))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = lines.map((line) => {
    const column = new Array(times.length).fill(null);
    line.timestamps.forEach((t, i) => { column[index.get(t)] = line.values[i]; });
    return column;
  });
  const el = h("div", { class: "chart" });
  const width = Math.max(400, (document.getElementById("main").clientWidth || 900) - 80);
  const options = {
    title, width, height,
    scales: { x: { time: true } },
    axes: [{}, { label: unit, size: 60 }],
    series: [{}, ...lines.map((line, i) => ({ label: line.label, stroke: COLOURS[i % COLOURS.length],
                                               width: 1.5, spanGaps: false }))],
  };
  const plot = new uPlot(options, [times, ...columns], el);
  return { el, chart: plot };
}
