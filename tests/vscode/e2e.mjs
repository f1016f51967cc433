// End to end in real VS Code: installs the packaged .vsix into code-server, opens a workspace in
// headless Chromium (playwright-core) and works as a user would: hovers, a document link, a quick
// fix, kernel analysis from the command palette, a notebook cell, the status bar, a Triton kernel
// compiled by the real Triton, the server of the interpreter's environment. Screenshots go to the
// folder printed first. Any step that does not happen fails the run.
//
// Usage: node tests/vscode/e2e.mjs VSIX TOOLKIT PYTHON   (tests/vscode/run passes them; PYTHON has
// triton installed, from tests/triton/setup)
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const require = createRequire(join(repo, "editors/vscode/package.json"));
const { chromium } = require("playwright-core");

const [vsix, toolkit, python] = process.argv.slice(2);
if (!vsix || !toolkit || !python) {
  console.error("usage: e2e.mjs VSIX TOOLKIT PYTHON");
  process.exit(2);
}
const codeServer = join(repo, ".cache/code-server/node_modules/code-server/out/node/entry.js");
const scratch = mkdtempSync(join(tmpdir(), "tensorlens-vscode-"));
const shots = join(scratch, "screenshots");
mkdirSync(shots);
console.log(`screenshots: ${shots}`);

// A copy of the workspace, since the quick fix edits and saves a file.
const workspace = join(scratch, "workspace");
cpSync(join(here, "workspace"), workspace, { recursive: true });
// The Triton fixture, as it is: one launch, so one configuration until the test adds a second.
const tritonFixture = readFileSync(join(repo, "tests/triton/fixtures/vector_add.py"), "utf8");
writeFileSync(join(workspace, "vector_add.py"), tritonFixture);
const tritonLine = (text) => tritonFixture.split("\n").findIndex((line) => line.includes(text)) + 1;
// The Python with Triton lies outside the workspace (in the repository's .cache), and comes from
// the user settings, where an untrusted workspace would take it from too.
if (resolve(python).startsWith(workspace)) {
  throw new Error(`the Triton Python ${python} must lie outside the test workspace ${workspace}`);
}
const userData = join(scratch, "user-data");
const extensions = join(scratch, "extensions");
mkdirSync(join(userData, "User"), { recursive: true });
writeFileSync(
  join(userData, "User/settings.json"),
  JSON.stringify({
    "security.workspace.trust.enabled": false,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "update.mode": "none",
    "telemetry.telemetryLevel": "off",
    "editor.hover.delay": 200,
    "editor.codeLens": true,
    "git.enabled": false,
    "tensorlens.nvrtcPath": toolkit,
    "tensorlens.pythonPath": python,
    "chat.disableAIFeatures": true,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
  }),
);

// The Python extension's stand-in, packaged with the extension's own vsce.
const standIn = join(scratch, "python-stand-in.vsix");
const packed = spawnSync(
  process.execPath,
  [join(repo, "editors/vscode/node_modules/@vscode/vsce/vsce"), "package", "--no-dependencies",
    "--allow-missing-repository", "-o", standIn],
  { cwd: join(here, "python-stand-in"), encoding: "utf8" },
);
if (packed.status !== 0) {
  console.error(`packaging the Python extension stand-in failed:\n${packed.stdout}\n${packed.stderr}`);
  process.exit(1);
}
const install = spawnSync(
  process.execPath,
  [codeServer, "--user-data-dir", userData, "--extensions-dir", extensions, "--install-extension", vsix,
    "--install-extension", standIn],
  { encoding: "utf8" },
);
if (install.status !== 0 || (install.stdout + install.stderr).match(/successfully installed/gi)?.length !== 2) {
  console.error(`installing ${vsix} into code-server failed:\n${install.stdout}\n${install.stderr}`);
  process.exit(1);
}
console.log(install.stdout.trim().split("\n").pop());

// The tensorlens that `pip install tensorlens` put in the environment of the interpreter the Python
// extension selected runs before the one bundled in the extension. The Python extension is a stand-in
// here (tests/vscode/python-stand-in), which selects the interpreter python.defaultInterpreterPath
// names; that environment's bin/tensorlens notes each start, then runs the bundled binary.
const env = join(scratch, "env");
mkdirSync(join(env, "bin"), { recursive: true });
symlinkSync(python, join(env, "bin/python"));
const envStarts = join(scratch, "env-tensorlens-started");
const installed = readdirSync(extensions).find((name) => name.startsWith("tensorlens."));
const bundled = join(extensions, installed ?? "missing", "server/tensorlens");
if (!existsSync(bundled)) {
  console.error(`the installed extension has no ${bundled}`);
  process.exit(1);
}
writeFileSync(join(env, "bin/tensorlens"), `#!/bin/sh\necho "$*" >> '${envStarts}'\nexec '${bundled}' "$@"\n`, { mode: 0o755 });
// Settings of machine scope (these paths) go in the machine's settings too: code-server's extension
// host reads those from disk as it starts, while the user's reach it only some time later (at times
// not within a minute and a half), and the first server start must see them.
const machineSettings = {
  "tensorlens.nvrtcPath": toolkit,
  "tensorlens.pythonPath": python,
  "python.defaultInterpreterPath": join(env, "bin/python"),
};
const userSettings = join(userData, "User/settings.json");
writeFileSync(userSettings, JSON.stringify({ ...JSON.parse(readFileSync(userSettings, "utf8")), ...machineSettings }));
mkdirSync(join(userData, "Machine"), { recursive: true });
writeFileSync(join(userData, "Machine/settings.json"), JSON.stringify(machineSettings));

const port = await freePort();
const server = spawn(
  process.execPath,
  [codeServer, "--auth", "none", "--bind-addr", `127.0.0.1:${port}`, "--user-data-dir", userData,
    "--extensions-dir", extensions, "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"],
  { stdio: ["ignore", "pipe", "pipe"] },
);
let serverLog = "";
server.stdout.on("data", (d) => (serverLog += d));
server.stderr.on("data", (d) => (serverLog += d));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1500, height: 950 } });
// This machine has no internet: documentation pages are answered locally, so a followed link
// lands on its real address.
await context.route(/^https:\/\/(docs\.nvidia\.com|pytorch\.org)\//, (route) =>
  route.fulfill({ status: 200, contentType: "text/html", body: "<title>documentation</title>" }),
);
const page = await context.newPage();
page.setDefaultTimeout(30_000);
let failed = false;
let step = 0;

try {
  await waitForServer(port);
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator(".monaco-workbench").waitFor();
  await page.locator(".statusbar").waitFor();
  await dismissNotifications();

  // 1. Hover `torch.compile` in a Python file.
  await openFile("model.py");
  await goTo(16, 15);
  let hover = await showHover("torch.compile");
  expect(hover.includes("torch.compile"), `hover on torch.compile shows it: ${hover}`);
  expect(/jax\.jit|TorchScript|graph/i.test(hover), `the hover explains and relates it: ${hover}`);
  await shot("hover-torch-compile");
  await page.keyboard.press("Escape");
  const starts = existsSync(envStarts) ? readFileSync(envStarts, "utf8") : "";
  expect(starts.includes("serve"), `the server runs from ${join(env, "bin/tensorlens")}, the selected interpreter's environment`);
  hover = await showHover("torch.compile");
  expect(hover.includes("torch.compile"), "and that server answers the hover");
  await page.keyboard.press("Escape");

  // 2. The status bar names the CUDA toolchain the server found.
  const status = page.locator(".statusbar-item", { hasText: /NVRTC 13\.\d+/ });
  // The server finds the toolchain after start-up (loading NVRTC); a loaded machine is slow at it.
  await status.waitFor({ timeout: 90_000 });
  const statusText = await status.innerText();
  expect(/NVRTC 13\.\d+/.test(statusText) && statusText.includes("ptxas"), `status bar: ${statusText}`);

  // 3. Hover a CUDA call.
  await openFile("vector_add.cu");
  await goTo(13, 7);
  hover = await showHover("cudaMalloc");
  expect(hover.includes("cudaMalloc"), `hover on cudaMalloc: ${hover}`);
  await shot("hover-cuda-malloc");
  await page.keyboard.press("Escape");

  // 4. Analyze the kernel from the command palette with the cursor in it; the lens shows the result.
  await goTo(7, 10);
  await runCommand("tensorlens: Analyze kernel");
  const lens = page.locator(".codelens-decoration", { hasText: "regs" });
  await lens.first().waitFor({ timeout: 60_000 });
  const lensText = await lens.first().innerText();
  expect(/sm_90 · \d+ regs · .* occupancy \d+%/.test(lensText), `kernel lens: ${lensText}`);
  await shot("kernel-analysis-lens");

  // 5. Show PTX opens a read-only PTX document.
  await runCommand("tensorlens: Show PTX");
  const ptxTab = page.locator(".tab", { hasText: "vector_add.ptx" });
  await ptxTab.waitFor();
  await page.locator(".view-line", { hasText: ".entry" }).first().waitFor();
  await shot("show-ptx");
  await runCommand("View: Close Editor");

  // 5b. Time the kernel: this machine has no GPU, and the message says so and what to set.
  await openFile("vector_add.cu");
  await goTo(7, 10);
  await runCommand("tensorlens: Time kernel");
  const noGpu = page.locator(".notification-toast", { hasText: "no NVIDIA driver" });
  await noGpu.first().waitFor({ timeout: 30_000 });
  const noGpuText = await noGpu.first().innerText();
  expect(noGpuText.includes("timingLauncher"), `timing without a GPU: ${noGpuText}`);
  await page.locator(".codelens-decoration", { hasText: "⏱ ✗ no NVIDIA driver" }).first().waitFor();
  await shot("time-kernel-without-gpu");
  await runCommand("tensorlens: Show kernel timings");
  await page.locator(".tab", { hasText: "Kernel timings" }).waitFor();
  // Webviews are nested frames; the panel lists the run that failed for want of a GPU.
  const panelText = page.frameLocator("iframe.webview").frameLocator("#active-frame").locator("body");
  await panelText.locator("h2", { hasText: "vector_add" }).waitFor();
  const panelBody = await panelText.innerText();
  expect(panelBody.includes("no NVIDIA driver"), `timings panel: ${panelBody.replace(/\s+/g, " ").slice(0, 120)}`);
  await shot("timings-panel");
  await runCommand("View: Close Editor");
  await dismissNotifications();

  // 6. Follow a document link: Open Link at the include asks to open the docs site.
  await openFile("vector_add.cu");
  await goTo(3, 12);
  const popup = context.waitForEvent("page", { timeout: 20_000 }).catch(() => null);
  await runCommand("Open Link");
  const openButton = page.locator(".monaco-dialog-box .monaco-button", { hasText: /^Open$/ });
  if (await openButton.isVisible({ timeout: 5_000 }).catch(() => false)) {
    await shot("open-link-dialog");
    await openButton.click();
  }
  const opened = await popup;
  await opened?.waitForLoadState().catch(() => {});
  const openedUrl = opened ? opened.url() : "";
  expect(/nvidia\.com/.test(openedUrl), `the link opened NVIDIA's documentation: ${openedUrl || "no page opened"}`);
  if (opened) {
    await opened.close();
  }

  // 7. Quick fix: wrap the unchecked cudaMalloc in a status check, save, read the file back.
  await page.bringToFront();
  await goTo(13, 7);
  await page.keyboard.press("Control+.");
  const fix = page.locator(".action-widget .monaco-list-row", { hasText: "Check the cudaError_t of cudaMalloc" });
  await fix.first().waitFor();
  await shot("quick-fix-menu");
  await fix.first().click();
  await page.keyboard.press("Control+S");
  await waitFor(() => readFileSync(join(workspace, "vector_add.cu"), "utf8").includes("CUDA_CHECK(cudaMalloc(&a"), "the fixed file is saved");
  const fixed = readFileSync(join(workspace, "vector_add.cu"), "utf8");
  expect(fixed.includes("#define CUDA_CHECK"), "the fix added a CUDA_CHECK macro");

  // 8. Hover in a notebook cell: `torch` was imported in another cell.
  await openFile("cells.ipynb");
  const cellWord = page.locator(".notebook-editor .view-line span", { hasText: /^softmax$/ }).first();
  await cellWord.waitFor();
  await cellWord.hover();
  const cellHover = page.locator(".monaco-hover-content", { hasText: "torch.softmax" }).first();
  await cellHover.waitFor();
  hover = await cellHover.innerText();
  expect(hover.includes("torch.softmax"), `notebook hover: ${hover}`);
  await shot("notebook-hover");

  // 9. The catalog search quick pick.
  await runCommand("tensorlens: Search catalog");
  const search = page.locator('.quick-input-widget input[placeholder^="Search PyTorch"]');
  await search.waitFor();
  await search.fill("matmul");
  await page.keyboard.press("Enter");
  const first = page.locator(".quick-input-list .monaco-list-row").first();
  await first.waitFor();
  const firstText = await first.innerText();
  expect(/^(cupy|torch|jax\.numpy|tensorflow\.linalg|mlx\.core)\.matmul/.test(firstText), `search keeps the server's ranking: ${firstText}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: "jax.numpy.matmul" });
  await row.first().waitFor();
  await shot("catalog-search");
  await page.keyboard.press("Escape");

  // 10. A Triton kernel: the Analyze lens on the @triton.jit function, clicked, compiles it with the
  // real Triton in the worker; the result lens has its registers and occupancy.
  await openFile("vector_add.py");
  const tritonAnalyze = page.locator(".codelens-decoration a", { hasText: /^Analyze$/ });
  await tritonAnalyze.first().waitFor({ timeout: 30_000 });
  expect((await tritonAnalyze.count()) === 1, "one Analyze lens, on add_kernel");
  await tritonAnalyze.first().click();
  const tritonResult = page.locator(".codelens-decoration a", { hasText: /regs|✗/ });
  await tritonResult.first().waitFor({ timeout: 120_000 });
  const tritonText = await tritonResult.first().innerText();
  expect(/^sm_90 · \d+ regs · 0 B spill · .* smem · occupancy \d+%/.test(tritonText), `Triton lens: ${tritonText}`);
  const tritonStatus = page.locator(".statusbar-item", { hasText: "add_kernel: sm_90" });
  await tritonStatus.first().waitFor({ timeout: 10_000 });
  expect((await tritonStatus.first().innerText()).includes(tritonText), `the status bar says it too: ${await tritonStatus.first().innerText()}`);
  await shot("triton-analysis-lens");
  hover = await hoverWord(/^add_kernel$/, "(Triton)");
  expect(/BLOCK_SIZE=1024 num_warps=4 num_stages=3\s+\d+\s/.test(hover), `the hover has the config's registers: ${hover}`);
  await page.keyboard.press("Escape");

  // 11. A second launch with other meta-parameters is a second configuration: typed, saved, and the
  // server analyses the kernel again on save; the lens compares the two.
  await goTo(tritonLine("BLOCK_SIZE=1024)"), 1);
  await page.keyboard.press("End");
  await page.keyboard.press("Escape");
  await page.keyboard.press("Enter");
  await page.keyboard.insertText("add_kernel[(triton.cdiv(n, 256),)](x, y, out, n, BLOCK_SIZE=256, num_warps=2)");
  await page.keyboard.press("Escape");
  await page.keyboard.press("Control+S");
  const secondLaunch = "\n    add_kernel[(triton.cdiv(n, 256),)](x, y, out, n, BLOCK_SIZE=256, num_warps=2)\n";
  await waitFor(() => readFileSync(join(workspace, "vector_add.py"), "utf8").includes(secondLaunch), "the second launch is saved");
  const twoConfigs = page.locator(".codelens-decoration a", { hasText: /^2 configs/ });
  await twoConfigs.first().waitFor({ timeout: 120_000 });
  const twoText = await twoConfigs.first().innerText();
  expect(
    /^2 configs · best \d+% .* \((BLOCK_SIZE=\d+ num_warps=\d num_stages=3)\) · worst \d+% .* \((BLOCK_SIZE=\d+ num_warps=\d num_stages=3)\)$/.test(twoText) &&
      twoText.includes("num_warps=2") && twoText.includes("num_warps=4"),
    `the lens after the save compares both configs: ${twoText}`,
  );
  await shot("triton-two-configs");

  // 12. Show kernel IR...: the kinds a Triton kernel has, then which of its two configurations; the
  // TTGIR of the second opens read-only beside the kernel, compiled for its num_warps=2.
  await goTo(tritonLine("tl.store"), 5);
  await runCommand("tensorlens: Show kernel IR...");
  const rows = page.locator(".quick-input-list .monaco-list-row");
  await rows.filter({ hasText: "TTGIR" }).first().waitFor({ timeout: 60_000 });
  const kindRows = await rows.allInnerTexts();
  expect(
    ["TTIR", "TTGIR", "LLVM IR", "PTX", "SASS"].every((kind) => kindRows.some((row) => row.startsWith(kind))),
    `the five kinds of a Triton kernel are offered: ${kindRows.map((row) => row.split("\n")[0]).join(", ")}`,
  );
  await rows.filter({ hasText: "TTGIR" }).first().click();
  await rows.filter({ hasText: "BLOCK_SIZE=256 num_warps=2" }).first().waitFor();
  const configRows = await rows.allInnerTexts();
  expect(
    configRows.length === 2 && configRows.every((row) => /config \d of 2[\s\S]*sm_90 · \d+ regs/.test(row)),
    `then its two configurations, with their registers: ${configRows.join(" | ").replace(/\s+/g, " ")}`,
  );
  await shot("triton-ir-configs");
  await rows.filter({ hasText: "BLOCK_SIZE=256 num_warps=2" }).first().click();
  await page.locator(".tab", { hasText: "add_kernel (BLOCK_SIZE=256 num_warps=2 num_stages=3).ttgir" }).waitFor({ timeout: 120_000 });
  const ttgir = await irText('"ttg.num-warps"');
  expect(ttgir.includes("tt.func") && ttgir.includes("#ttg."), `it is TTGIR (tt.func, #ttg layouts): ${firstMatch(ttgir, /tt\.func[^\n]*/)}`);
  expect(ttgir.includes('"ttg.num-warps" = 2'), `compiled for that configuration: ${firstMatch(ttgir, /"ttg\.num-warps" = \d+/)}`);
  await expectLanguage("MLIR");
  const progress = page.locator(".notification-toast", { hasText: "compiling add_kernel to TTGIR (config 2 of 2)" });
  const gone = await progress.waitFor({ state: "detached", timeout: 10_000 }).then(() => true, () => false);
  expect(gone, "the progress notification is gone once the TTGIR is open");
  await shot("triton-ttgir");
  await runCommand("View: Close Editor");

  // 13. The SASS of the first configuration: machine code, with loads and the kernel's EXIT.
  await openFile("vector_add.py");
  await goTo(tritonLine("tl.store"), 5);
  await runCommand("tensorlens: Show kernel IR...");
  await rows.filter({ hasText: "SASS" }).first().waitFor({ timeout: 60_000 });
  await rows.filter({ hasText: "SASS" }).first().click();
  await rows.filter({ hasText: "BLOCK_SIZE=1024 num_warps=4" }).first().waitFor();
  await rows.filter({ hasText: "BLOCK_SIZE=1024 num_warps=4" }).first().click();
  await page.locator(".tab", { hasText: "add_kernel (BLOCK_SIZE=1024 num_warps=4 num_stages=3).sass" }).waitFor({ timeout: 120_000 });
  for (const opcode of ["LDG", "STG", "EXIT"]) {
    const count = await findInEditor(opcode);
    expect(/^\d+ of \d+$/.test(count), `the SASS has ${opcode}: ${count}`);
  }
  await expectLanguage("SASS (NVIDIA)");
  await shot("triton-sass");
  await runCommand("View: Close Editor");

} catch (error) {
  failed = true;
  console.error(`FAILED at step ${step}: ${error.stack ?? error}`);
  await shot("failure").catch(() => {});
  // The extension's log (which binary it started, and why) as the user would open it.
  await (async () => {
    await runCommand("Output: Show Output Channels...");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "tensorlens" }).first().click();
    await page.waitForTimeout(1_500);
    await shot("failure-log");
  })().catch(() => {});
} finally {
  await browser.close().catch(() => {});
  server.kill();
}
if (failed) {
  console.error(`code-server log:\n${serverLog.slice(-4000)}`);
  process.exit(1);
}
console.log(`all VS Code steps passed; screenshots in ${shots}`);

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

async function openFile(name) {
  await page.keyboard.press("Control+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(name);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor();
  await page.keyboard.press("Enter");
  await page.locator(".tab.active", { hasText: name }).waitFor();
  await page.waitForTimeout(500);
}

async function goTo(line, column) {
  await page.keyboard.press("Control+G");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`:${line}:${column}`);
  await page.keyboard.press("Enter");
  await page.waitForTimeout(200);
}

async function runCommand(title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
  await page.keyboard.press("Enter");
}

/** Shows the hover at the cursor until it mentions `expected` (the server may still be starting),
 * and returns the text of all its parts. */
async function showHover(expected) {
  let text = "";
  for (let attempt = 0; attempt < 10; attempt += 1) {
    await runCommand("Show or Focus Hover");
    const parts = page.locator(".monaco-hover");
    if (await parts.first().isVisible({ timeout: 3_000 }).catch(() => false)) {
      await page.waitForTimeout(300);
      text = await page.evaluate(() =>
        [...document.querySelectorAll(".monaco-hover")].map((e) => e.innerText).join("\n"),
      );
      if (text.includes(expected)) {
        return text;
      }
    }
    await page.keyboard.press("Escape");
    await page.waitForTimeout(1_000);
  }
  throw new Error(`no hover mentioning ${expected} appeared (last: ${text})`);
}

/** Moves the mouse over the first word of the editor matching `word` until the hover mentions
 * `expected`, and returns the hover's text. */
async function hoverWord(word, expected) {
  const span = page.locator(".monaco-editor .view-line span span", { hasText: word }).first();
  let text = "";
  for (let attempt = 0; attempt < 10; attempt += 1) {
    await page.mouse.move(0, 0);
    await span.hover();
    const shown = page.locator(".monaco-hover-content", { hasText: expected }).first();
    if (await shown.waitFor({ timeout: 3_000 }).then(() => true, () => false)) {
      return shown.innerText();
    }
    text = await page.evaluate(() => [...document.querySelectorAll(".monaco-hover")].map((e) => e.innerText).join("\n"));
  }
  throw new Error(`no hover mentioning ${expected} appeared over ${word} (last: ${text})`);
}

/** The text of the active editor's visible lines once one of them holds `marker` (Monaco renders
 * spaces as no-break spaces; they are turned back). */
async function irText(marker) {
  const editor = page.locator(".editor-group-container.active .monaco-editor .view-lines");
  await editor.locator(".view-line", { hasText: marker }).first().waitFor();
  return (await editor.innerText()).replace(/\u00a0/g, " ");
}

function firstMatch(text, pattern) {
  return text.match(pattern)?.[0] ?? `no match for ${pattern} in: ${text.slice(0, 200)}`;
}

/** Searches the active editor with its find widget and returns the widget's count ("1 of 3",
 * or "No results"). */
async function findInEditor(word) {
  await page.keyboard.press("Control+F");
  const input = page.locator('.editor-group-container.active .find-widget textarea[aria-label="Find"]');
  await input.waitFor();
  await input.fill(word);
  const count = page.locator(".editor-group-container.active .find-widget .matchesCount");
  await page.waitForTimeout(500);
  const text = (await count.innerText()).trim();
  await page.keyboard.press("Escape");
  return text;
}

/** The language the status bar names for the active editor is `name`. */
async function expectLanguage(name) {
  const mode = page.locator('[id="status.editor.mode"]');
  let text = "";
  await waitFor(async () => (text = (await mode.innerText().catch(() => "")).trim()) === name, `the language mode is ${name}`, 10_000).catch(
    () => {
      throw new Error(`the language mode is ${text}, not ${name}`);
    },
  );
}

async function dismissNotifications() {
  await page.waitForTimeout(1_000);
  const close = page.locator(".notifications-toasts .codicon-notifications-clear-all, .notification-toast .codicon-close");
  for (const button of await close.all()) {
    await button.click().catch(() => {});
  }
}

async function waitFor(check, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await check()) {
      console.log(`  ok: ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out: ${what}`);
}

async function waitForServer(port) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (response.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not start:\n${serverLog}`);
}

function freePort() {
  return new Promise((resolvePort) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}
