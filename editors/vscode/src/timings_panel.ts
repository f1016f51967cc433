// The timing results panel: a kernel's runs as a table and a small chart of the medians.
import * as vscode from "vscode";

import type { KernelTimings, TimingRecord } from "./lsp_ext";

let panel: vscode.WebviewPanel | undefined;

/** Shows the history in the panel, opening it beside the editor the first time. */
export function showTimings(timings: KernelTimings, title: string): void {
  if (!panel) {
    panel = vscode.window.createWebviewPanel("tensorlens.timings", title, vscode.ViewColumn.Beside, {
      enableScripts: false,
    });
    panel.onDidDispose(() => (panel = undefined));
  }
  panel.title = title;
  panel.webview.html = render(timings, panel.webview.cspSource);
  panel.reveal(undefined, true);
}

/** Updates the panel when it is open (a new run came in). */
export function refreshTimings(timings: KernelTimings): void {
  if (panel) {
    panel.webview.html = render(timings, panel.webview.cspSource);
  }
}

function render(timings: KernelTimings, cspSource: string): string {
  const sections = timings.kernels.map((k) => section(k.kernel, k.history)).join("\n");
  const empty = timings.kernels.length === 0 ? "<p>No timing runs yet: use “Time” above a kernel.</p>" : "";
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline';">
<style>
  body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); }
  table { border-collapse: collapse; margin: 8px 0 16px; }
  th, td { padding: 3px 10px; border-bottom: 1px solid var(--vscode-panel-border); text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .error { color: var(--vscode-errorForeground); }
  .warning { color: var(--vscode-editorWarning-foreground); }
  polyline { fill: none; stroke: var(--vscode-charts-blue); stroke-width: 2; }
  circle { fill: var(--vscode-charts-blue); }
  .axis { fill: var(--vscode-descriptionForeground); font-size: 10px; }
</style></head>
<body>${empty}${sections}</body></html>`;
}

function section(kernel: string, history: TimingRecord[]): string {
  const rows = history
    .slice()
    .reverse()
    .map((run) => {
      const when = new Date(run.at * 1000).toLocaleTimeString();
      if (!run.timing) {
        return `<tr><td>${when}</td><td colspan="6" class="error">${escape(run.error ?? run.summary)}</td></tr>`;
      }
      const t = run.timing;
      const change = run.change_percent === null ? "" : `${run.change_percent > 0 ? "+" : ""}${run.change_percent.toFixed(1)}%`;
      return `<tr><td>${when}</td><td>${micro(t.summary.median)}</td><td>±${(t.summary.noise * 100).toFixed(1)}%</td>
        <td>${micro(t.summary.min)} – ${micro(t.summary.max)}</td><td>${t.bandwidth_gbs.toFixed(0)} GB/s (${(t.bandwidth_fraction * 100).toFixed(0)}%)</td>
        <td>${change}</td><td>${escape(t.device.name)}</td></tr>`;
    })
    .join("\n");
  const latest = history[history.length - 1];
  const warnings = (latest?.warnings ?? []).map((w) => `<p class="warning">⚠ ${escape(w)}</p>`).join("");
  const spec = latest?.spec ? `<p>Launch: ${escape(latest.spec.explained.join("; "))}</p>` : "";
  return `<h2>${escape(kernel)}</h2>${chart(history)}
<table><tr><th>run</th><th>median</th><th>noise</th><th>min – max</th><th>bandwidth (of peak)</th><th>change</th><th>device</th></tr>
${rows}</table>${warnings}${spec}`;
}

/** Medians of the successful runs, oldest first, as an SVG line. */
function chart(history: TimingRecord[]): string {
  const medians = history.flatMap((run) => (run.timing ? [run.timing.summary.median] : []));
  if (medians.length < 2) {
    return "";
  }
  const [width, height, pad] = [420, 120, 24];
  const low = Math.min(...medians);
  const high = Math.max(...medians);
  const span = high - low || high || 1;
  const points = medians.map((m, i) => {
    const x = pad + (i * (width - 2 * pad)) / (medians.length - 1);
    const y = height - pad - ((m - low) / span) * (height - 2 * pad);
    return [x, y];
  });
  const dots = points.map(([x, y]) => `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3"/>`).join("");
  return `<svg width="${width}" height="${height}" role="img" aria-label="median per run">
<text class="axis" x="0" y="12">${micro(high)}</text><text class="axis" x="0" y="${height - 4}">${micro(low)}</text>
<polyline points="${points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ")}"/>${dots}</svg>`;
}

function micro(seconds: number): string {
  return seconds < 1e-3 ? `${(seconds * 1e6).toFixed(1)} µs` : `${(seconds * 1e3).toFixed(2)} ms`;
}

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] ?? c);
}
