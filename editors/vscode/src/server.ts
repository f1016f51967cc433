// Finding the server binary: the setting, else the one pip installed beside the Python interpreter
// this workspace uses (`pip install tensorlens`), else the one bundled in the extension, else PATH.
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";

import { CLIENT_PROGRAM_SETTINGS } from "./settings";

export interface ServerBinary {
  path: string;
  source: "setting" | "environment" | "bundled" | "PATH";
  /** What led to it, for the log: the interpreter whose environment holds it. */
  detail?: string;
  /** Binaries passed over, each with why (an untrusted workspace's own environment). */
  skipped: string[];
  /** Environments looked in that hold no tensorlens, for the log. */
  looked: string[];
}

export async function findServer(context: vscode.ExtensionContext): Promise<ServerBinary | string> {
  // In an untrusted workspace the binary comes from the user's settings only, never the workspace's.
  const config = vscode.workspace.getConfiguration("tensorlens");
  const key = "server.path";
  const untrusted = !vscode.workspace.isTrusted && CLIENT_PROGRAM_SETTINGS.includes(key);
  const configured = untrusted ? config.inspect<string | null>(key)?.globalValue : config.get<string | null>(key);
  if (configured) {
    const resolved = expandHome(configured);
    return isExecutable(resolved)
      ? { path: resolved, source: "setting", skipped: [], looked: [] }
      : `the tensorlens.server.path setting names ${configured}, which is not an executable file`;
  }
  const skipped: string[] = [];
  const looked: string[] = [];
  const folders = (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath);
  for (const interpreter of await interpreters(!vscode.workspace.isTrusted)) {
    const candidate = besideInterpreter(interpreter.path);
    if (!candidate) {
      looked.push(`no tensorlens beside ${interpreter.path} (${interpreter.source})`);
      continue;
    }
    const folder = vscode.workspace.isTrusted ? undefined : folderHolding(candidate, folders);
    if (folder !== undefined) {
      skipped.push(
        `${candidate} (the environment of ${interpreter.path}, from ${interpreter.source}) lies inside the workspace folder ${folder}, which is not trusted, so it was not run`,
      );
      continue;
    }
    return { path: candidate, source: "environment", detail: `${interpreter.path}, from ${interpreter.source}`, skipped, looked };
  }
  const bundled = context.asAbsolutePath(path.join("server", process.platform === "win32" ? "tensorlens.exe" : "tensorlens"));
  if (isExecutable(bundled)) {
    return { path: bundled, source: "bundled", skipped, looked };
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "tensorlens");
    if (dir && isExecutable(candidate)) {
      // In an untrusted workspace a PATH entry into it is passed over too.
      const folder = vscode.workspace.isTrusted ? undefined : folderHolding(candidate, folders);
      if (folder !== undefined) {
        skipped.push(`${candidate} (on PATH) lies inside the workspace folder ${folder}, which is not trusted, so it was not run`);
        continue;
      }
      return { path: candidate, source: "PATH", skipped, looked };
    }
  }
  return "no tensorlens binary: this extension has none for your platform, and none was found in the Python environment of this workspace or on PATH. Install it (`pip install tensorlens` into the environment you use) or set tensorlens.server.path";
}

interface Interpreter {
  path: string;
  source: string;
}

/** The Python interpreters whose environments may hold tensorlens, in order: the one the Python
 * extension has selected for this workspace, then `python.defaultInterpreterPath` (the user's own
 * value only, in an untrusted workspace). */
async function interpreters(untrusted: boolean): Promise<Interpreter[]> {
  const found: Interpreter[] = [];
  const python = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (python) {
    try {
      const api = python.isActive ? python.exports : await python.activate();
      const active = api.environments?.getActiveEnvironmentPath(vscode.workspace.workspaceFolders?.[0]?.uri);
      if (active?.path) {
        found.push({ path: active.path, source: "the Python extension's selected interpreter" });
      }
    } catch {
      // An older or failing Python extension: the setting below still applies.
    }
  }
  const config = vscode.workspace.getConfiguration("python");
  const key = "defaultInterpreterPath";
  const configured = untrusted ? config.inspect<string>(key)?.globalValue : config.get<string>(key);
  // "python" is the setting's default: a bare name, which says nothing about an environment.
  if (configured && configured !== "python" && configured.includes("/")) {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
    const expanded = expandHome(configured.replace(/\$\{workspaceFolder\}/g, folder));
    found.push({ path: expanded, source: "python.defaultInterpreterPath" });
  }
  return found;
}

/** The part of the Python extension's API used here (`@vscode/python-extension`). */
interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
  };
}

/** `<env>/bin/tensorlens` for the interpreter `<env>/bin/python` (or the environment folder itself,
 * which the Python extension gives for some environments); undefined when there is none. The
 * interpreter's link is not followed: a virtual environment's python links to the base one. */
export function besideInterpreter(interpreter: string): string | undefined {
  const name = process.platform === "win32" ? "tensorlens.exe" : "tensorlens";
  const candidates = isDirectory(interpreter)
    ? [path.join(interpreter, "bin", name), path.join(interpreter, "Scripts", name)]
    : [path.join(path.dirname(interpreter), name)];
  return candidates.find(isExecutable);
}

/** The workspace folder that `file` lies in, as spelled or where its links lead, if any. */
export function folderHolding(file: string, folders: string[]): string | undefined {
  const spellings = [path.resolve(file), realpath(file)];
  return folders.find((folder) => {
    const roots = [path.resolve(folder), realpath(folder)];
    return spellings.some((spelled) => roots.some((root) => spelled === root || spelled.startsWith(root + path.sep)));
  });
}

function realpath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

function expandHome(file: string): string {
  return file.startsWith("~") ? path.join(process.env.HOME ?? "", file.slice(1)) : file;
}

function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
