// Which tensorlens binary the extension starts (editors/vscode/src/server.ts), against a stand-in of
// the `vscode` module: real files in a scratch folder (an interpreter's environment with
// bin/tensorlens, a workspace holding a planted .venv), the workspace trusted or not, the settings at
// user or workspace level, the Python extension's selected interpreter. The end-to-end test
// (tests/vscode/e2e.mjs) runs the trusted case in code-server; an untrusted one needs workspace
// trust, which that test turns off.
//
// Usage: node --test tests/vscode/unit/server.test.mjs   (tests/vscode/run runs it)
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const scratch = mkdtempSync(join(tmpdir(), "tensorlens-vscode-unit-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
// esbuild from the extension's own dependencies (npm ci in editors/vscode).
const { build } = createRequire(join(repo, "editors/vscode/package.json"))("esbuild");

// The module under test, bundled with `vscode` left to the stand-in below.
const bundle = join(scratch, "server.cjs");
await build({
  entryPoints: [join(repo, "editors/vscode/src/server.ts")],
  bundle: true,
  outfile: bundle,
  format: "cjs",
  platform: "node",
  external: ["vscode"],
  logLevel: "warning",
});

/** What the stand-in `vscode` module answers; each test sets it. */
const state = {};
const vscode = {
  workspace: {
    get isTrusted() {
      return state.trusted;
    },
    get workspaceFolders() {
      return [{ uri: { fsPath: workspace } }];
    },
    getConfiguration(section) {
      const levels = state.settings[section] ?? {};
      return {
        get: (key) => levels[key]?.workspace ?? levels[key]?.user,
        inspect: (key) => ({ globalValue: levels[key]?.user, workspaceValue: levels[key]?.workspace }),
      };
    },
  },
  extensions: {
    getExtension: (id) =>
      id === "ms-python.python" && state.selected
        ? { isActive: true, exports: { environments: { getActiveEnvironmentPath: () => ({ path: state.selected }) } } }
        : undefined,
  },
};
const require = createRequire(import.meta.url);
const Module = require("node:module");
const load = Module._load;
Module._load = (request, ...rest) => (request === "vscode" ? vscode : load(request, ...rest));
const { findServer } = require(bundle);

function executable(file) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, "#!/bin/sh\n");
  chmodSync(file, 0o755);
  return file;
}

// An environment outside the workspace, as pip lays it out; one inside it, as a cloned repository
// could bring; the extension's own bundled binary; a PATH entry into the workspace.
const outside = join(scratch, "env");
const outsideServer = executable(join(outside, "bin/tensorlens"));
executable(join(outside, "bin/python"));
const workspace = join(scratch, "workspace");
const planted = executable(join(workspace, ".venv/bin/tensorlens"));
executable(join(workspace, ".venv/bin/python"));
const extensionDir = join(scratch, "extension");
const bundled = executable(join(extensionDir, "server/tensorlens"));
const context = { asAbsolutePath: (relative) => join(extensionDir, relative) };
const noBundle = { asAbsolutePath: (relative) => join(scratch, "nothing", relative) };

function set({ trusted = true, selected, user, inWorkspace, serverPath } = {}) {
  state.trusted = trusted;
  state.selected = selected;
  state.settings = {
    python: { defaultInterpreterPath: { user, workspace: inWorkspace } },
    tensorlens: { "server.path": { workspace: serverPath } },
  };
}

test("the Python extension's selected interpreter: its environment's tensorlens, before the bundled one", async () => {
  set({ selected: join(outside, "bin/python") });
  const found = await findServer(context);
  assert.equal(found.path, outsideServer);
  assert.equal(found.source, "environment");
  assert.match(found.detail, /the Python extension's selected interpreter/);
});

test("python.defaultInterpreterPath when no interpreter is selected, ${workspaceFolder} expanded", async () => {
  set({ user: join(outside, "bin/python") });
  assert.equal((await findServer(context)).path, outsideServer);
  set({ inWorkspace: "${workspaceFolder}/.venv/bin/python" });
  assert.equal((await findServer(context)).path, planted, "a trusted workspace may name its own environment");
});

test("an environment without tensorlens is logged and passed over", async () => {
  const bare = join(scratch, "bare/bin/python");
  executable(bare);
  set({ user: bare });
  const found = await findServer(context);
  assert.equal(found.source, "bundled");
  assert.deepEqual(found.looked, [`no tensorlens beside ${bare} (python.defaultInterpreterPath)`]);
});

test("untrusted: the workspace's own python.defaultInterpreterPath is not read", async () => {
  set({ trusted: false, inWorkspace: join(outside, "bin/python") });
  const found = await findServer(context);
  assert.equal(found.source, "bundled");
  set({ trusted: false, user: join(outside, "bin/python"), inWorkspace: "${workspaceFolder}/.venv/bin/python" });
  assert.equal((await findServer(context)).path, outsideServer, "the user's value is");
});

test("untrusted: a tensorlens inside the workspace is not run, however it is reached", async () => {
  // The Python extension selecting the planted .venv (it may pick one a repository brings).
  set({ trusted: false, selected: join(workspace, ".venv/bin/python") });
  let found = await findServer(context);
  assert.equal(found.path, bundled);
  assert.equal(found.skipped.length, 1);
  assert.match(found.skipped[0], /\.venv\/bin\/tensorlens .*inside the workspace folder .*not trusted/);
  // The same through a link from outside.
  const link = join(scratch, "link-env");
  symlinkSync(join(workspace, ".venv"), link);
  set({ trusted: false, user: join(link, "bin/python") });
  found = await findServer(context);
  assert.equal(found.path, bundled, "a link into the workspace counts as inside");
  // And on PATH, when nothing else is there.
  const path = process.env.PATH;
  process.env.PATH = join(workspace, ".venv/bin");
  try {
    set({ trusted: false });
    found = await findServer(noBundle);
    assert.equal(typeof found, "string", "no binary is found");
    set({ trusted: true });
    assert.equal((await findServer(noBundle)).path, planted, "but a trusted workspace's PATH entry is used");
  } finally {
    process.env.PATH = path;
  }
});

test("untrusted: tensorlens.server.path from the workspace is not used either", async () => {
  set({ trusted: false, serverPath: planted });
  assert.equal((await findServer(context)).path, bundled);
  set({ trusted: true, serverPath: planted });
  assert.equal((await findServer(context)).source, "setting");
});
