// tensorlens in a real JupyterLab 4 with jupyterlab-lsp, driven in headless Chromium (playwright-core):
// JupyterLab is started from the environment the wheel is installed in, not activated, and a user
// opens a notebook whose first cell imports torch and whose second calls torch.matmul, clicks into that
// cell, rests the mouse on `matmul`, presses Control (jupyterlab-lsp's hover key) and reads
// tensorlens's answer; the third cell's deprecated
// call is marked. Then the same with a second Python server installed (python-lsp-server): JupyterLab
// sends a notebook only to the top-ranked server, which at equal priorities is the user's Python server;
// with tensorlens's priority raised in the settings, tensorlens answers. Screenshots go to the
// folder printed first. Any step that does not happen fails the run.
//
// Usage: node tests/jupyter/e2e.mjs VENV PYLSP_DIR   (tests/jupyter/run passes them)
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const require = createRequire(join(repo, ".cache/jupyter/node/package.json"));
const { chromium } = require("playwright-core");

const [venv, pylsp] = process.argv.slice(2);
if (!venv || !pylsp) {
  console.error("usage: e2e.mjs VENV PYLSP_DIR");
  process.exit(2);
}
const scratch = mkdtempSync(join(tmpdir(), "tensorlens-jupyterlab-"));
const shots = join(scratch, "screenshots");
mkdirSync(shots);
console.log(`screenshots: ${shots}`);

const root = join(scratch, "root");
mkdirSync(root);
const cells = [
  "import torch",
  "a = torch.randn(8, 16)\nb = torch.randn(16, 4)\ntorch.matmul(a, b)",
  "with torch.cuda.amp.autocast():\n    c = a @ b",
];
writeFileSync(
  join(root, "notebook.ipynb"),
  JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: "python3", display_name: "Python 3", language: "python" },
      language_info: { name: "python", file_extension: ".py", mimetype: "text/x-python" },
    },
    cells: cells.map((source, index) => ({
      cell_type: "code", id: `cell-${index}`, metadata: {}, execution_count: null, outputs: [],
      source,
    })),
  }),
);
// The user's JupyterLab settings: no news or update pop-ups over the notebook.
const settings = join(scratch, "settings");
writeSettings("@jupyterlab/apputils-extension/notification", { fetchNews: "false", checkForUpdates: false });

const token = "tensorlens-test";
let lab;
let labLog = "";
let port;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 800 } });
const page = await context.newPage();
const consoleLines = [];
page.on("console", (message) => consoleLines.push(message.text()));
page.setDefaultTimeout(60_000);
let failed = false;
let step = 0;

try {
  // 1. Only tensorlens: the wheel's spec is found, and the notebook goes to it.
  await startLab({});
  const status = await lspStatus();
  expect(Object.keys(status.sessions).includes("tensorlens"), `jupyter-lsp lists: ${Object.keys(status.sessions).join(", ")}`);
  await openNotebook();
  await waitForSession("tensorlens");
  let hover = await hoverOver(1, "torch.matmul", "matmul", "torch.matmul");
  expect(hover.includes("torch.matmul") && hover.includes("PyTorch"), `the hover is tensorlens's: ${hover.split("\n").slice(0, 3).join(" / ")}`);
  expect(/jax\.numpy\.matmul|Equivalents/.test(hover), "with the equivalents in other frameworks");
  await shot("notebook-hover-matmul");
  await page.keyboard.up("Control");
  await page.mouse.move(5, 5);
  const deprecated = page.locator(".jp-Cell").nth(2).locator(".cm-lintRange.cm-lsp-diagnostic-tag-Deprecated");
  await deprecated.first().waitFor({ timeout: 30_000 });
  expect((await deprecated.first().innerText()) === "autocast", "the deprecated autocast in the third cell is marked deprecated");
  await stopLab();

  // 2. With python-lsp-server as well: both are listed, and the notebook goes to the top-ranked one.
  // At the same priority (50 for both) JupyterLab picks by name, and pylsp, like basedpyright, jedi,
  // pyrefly and pyright, comes before tensorlens: the user's Python server keeps the notebook.
  await startLab({ PYTHONPATH: pylsp });
  const both = Object.keys((await lspStatus()).sessions);
  expect(both.includes("tensorlens") && both.includes("pylsp"), `both servers are listed: ${both.join(", ")}`);
  await openNotebook();
  await waitForSession("pylsp");
  await page.waitForTimeout(2_000);
  expect((await lspStatus()).sessions.tensorlens.status === "not_started", "by default pylsp has the notebook, tensorlens is not started");
  expect(
    consoleLines.some((line) => line.includes("Two matching servers") && line.includes("same rank")),
    "JupyterLab says the two have the same priority, and picks one by name",
  );

  // 3. The README's setting: tensorlens's priority above the other server's; after a reload the
  // notebook goes to tensorlens (pylsp stays installed) and it answers.
  writeSettings("@jupyter-lsp/jupyterlab-lsp/plugin", {
    language_servers: { tensorlens: { priority: 60 } },
  });
  await page.reload();
  await page.locator(".jp-Notebook .jp-Cell").nth(2).waitFor();
  await waitForSession("tensorlens");
  hover = await hoverOver(1, "torch.matmul", "matmul", "torch.matmul");
  expect(hover.includes("torch.matmul") && hover.includes("PyTorch"), "with priority 60 the notebook goes to tensorlens, pylsp installed or not, and it answers the hover");
  await shot("notebook-hover-priority");
  await stopLab();
} catch (error) {
  failed = true;
  console.error(`FAILED at step ${step}: ${error.stack ?? error}`);
  await shot("failure").catch(() => {});
} finally {
  await browser.close().catch(() => {});
  await stopLab();
}
if (failed) {
  console.error(`JupyterLab log:\n${labLog.slice(-4000)}`);
  process.exit(1);
}
console.log(`all JupyterLab steps passed; screenshots in ${shots}`);

function expect(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
  console.log(`  ok: ${message.split("\n")[0].slice(0, 160)}`);
}

async function shot(name) {
  step += 1;
  await page.screenshot({ path: join(shots, `${String(step).padStart(2, "0")}-${name}.png`) });
}

function writeSettings(plugin, value) {
  mkdirSync(join(settings, dirname(plugin)), { recursive: true });
  writeFileSync(join(settings, `${plugin}.jupyterlab-settings`), JSON.stringify(value));
}

/** Starts `jupyter lab` of the venv with its environment not activated (PATH without it). */
async function startLab(extraEnv) {
  port = await freePort();
  const env = {
    PATH: "/usr/bin:/bin",
    HOME: join(scratch, "home"),
    JUPYTER_CONFIG_DIR: join(scratch, "config"),
    JUPYTER_DATA_DIR: join(scratch, "data"),
    JUPYTER_RUNTIME_DIR: join(scratch, "runtime"),
    JUPYTERLAB_SETTINGS_DIR: settings,
    JUPYTERLAB_WORKSPACES_DIR: join(scratch, "workspaces"),
    ...extraEnv,
  };
  mkdirSync(env.HOME, { recursive: true });
  const args = ["--no-browser", `--port=${port}`, "--ip=127.0.0.1", `--IdentityProvider.token=${token}`,
    `--ServerApp.root_dir=${root}`, "--LabApp.news_url=", ...(process.getuid?.() === 0 ? ["--allow-root"] : [])];
  lab = spawn(join(venv, "bin/jupyter-lab"), args, { env, stdio: ["ignore", "pipe", "pipe"] });
  lab.stdout.on("data", (d) => (labLog += d));
  lab.stderr.on("data", (d) => (labLog += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const answer = await fetch(`http://127.0.0.1:${port}/api/status`, { headers: { Authorization: `token ${token}` } });
      if (answer.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || lab.exitCode !== null) {
      throw new Error("JupyterLab did not start");
    }
    await new Promise((done) => setTimeout(done, 300));
  }
}

async function stopLab() {
  if (lab && lab.exitCode === null) {
    const exited = new Promise((done) => lab.once("exit", done));
    lab.kill("SIGTERM");
    await Promise.race([exited, new Promise((done) => setTimeout(done, 15_000))]);
    if (lab.exitCode === null) {
      lab.kill("SIGKILL");
    }
  }
  lab = undefined;
}

async function lspStatus() {
  const answer = await fetch(`http://127.0.0.1:${port}/lsp/status`, { headers: { Authorization: `token ${token}` } });
  return answer.json();
}

async function waitForSession(name) {
  const deadline = Date.now() + 60_000;
  let last;
  while (Date.now() < deadline) {
    last = (await lspStatus()).sessions[name];
    if (last?.status === "started") {
      expect(true, `jupyter-lsp started ${name} for the notebook`);
      return;
    }
    await page.waitForTimeout(500);
  }
  throw new Error(`${name} was not started for the notebook: ${JSON.stringify(last)}`);
}

async function openNotebook() {
  await page.goto(`http://127.0.0.1:${port}/lab/tree/notebook.ipynb?token=${token}`);
  await page.locator(".jp-Notebook .jp-Cell").nth(2).waitFor();
  await page.locator(".jp-Notebook .jp-Cell .cm-content").first().waitFor();
}

/** Holds Control over `word` inside `text` in the cell `cell` until a hover mentioning `expected`
 * shows, and returns its text. */
async function hoverOver(cell, text, word, expected) {
  let seen = "";
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const point = await page.evaluate(
      ([cellIndex, text, word]) => {
        const content = document.querySelectorAll(".jp-Notebook .jp-Cell")[cellIndex]?.querySelector(".cm-content");
        for (const line of content?.querySelectorAll(".cm-line") ?? []) {
          const at = line.textContent.indexOf(text);
          if (at < 0) {
            continue;
          }
          // The offset of the word's middle, through the line's text nodes.
          let offset = at + text.indexOf(word) + Math.floor(word.length / 2);
          const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (offset < node.length) {
              const range = document.createRange();
              range.setStart(node, offset);
              range.setEnd(node, offset + 1);
              const box = range.getBoundingClientRect();
              return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
            }
            offset -= node.length;
          }
        }
        return null;
      },
      [cell, text, word],
    );
    if (!point) {
      throw new Error(`no "${text}" in cell ${cell + 1}`);
    }
    // As a user does: rest the mouse on the word (the hover is asked for, and the word marked as
    // having one), then press Control to show it.
    await page.keyboard.up("Control");
    if (attempt === 0) {
      // Into the cell's editor (edit mode), where jupyterlab-lsp listens for the key.
      await page.mouse.click(point.x, point.y);
    }
    await page.mouse.move(point.x - 2, point.y);
    await page.mouse.move(point.x, point.y);
    await page.locator(".cm-lsp-hover-available", { hasText: word }).first().waitFor({ timeout: 5_000 }).catch(() => {});
    await page.keyboard.down("Control");
    const tooltip = page.locator(".lsp-tooltip");
    if (await tooltip.first().isVisible({ timeout: 3_000 }).catch(() => false)) {
      seen = await tooltip.first().innerText();
      if (seen.includes(expected)) {
        return seen;
      }
    }
    await page.keyboard.up("Control");
    await page.mouse.move(5, 5);
    await page.waitForTimeout(1_000);
  }
  throw new Error(`no hover mentioning ${expected} appeared over "${word}" (last: ${seen})`);
}

function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}
