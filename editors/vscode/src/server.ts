// Finding the server binary: the setting, else the one bundled in the extension, else PATH.
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";

import { CLIENT_PROGRAM_SETTINGS } from "./settings";

export interface ServerBinary {
  path: string;
  source: "setting" | "bundled" | "PATH";
}

export function findServer(context: vscode.ExtensionContext): ServerBinary | string {
  // In an untrusted workspace the binary comes from the user's settings only, never the workspace's.
  const config = vscode.workspace.getConfiguration("tensorlens");
  const key = "server.path";
  const untrusted = !vscode.workspace.isTrusted && CLIENT_PROGRAM_SETTINGS.includes(key);
  const configured = untrusted ? config.inspect<string | null>(key)?.globalValue : config.get<string | null>(key);
  if (configured) {
    const resolved = configured.startsWith("~") ? path.join(process.env.HOME ?? "", configured.slice(1)) : configured;
    return isExecutable(resolved)
      ? { path: resolved, source: "setting" }
      : `the tensorlens.server.path setting names ${configured}, which is not an executable file`;
  }
  const bundled = context.asAbsolutePath(path.join("server", process.platform === "win32" ? "tensorlens.exe" : "tensorlens"));
  if (isExecutable(bundled)) {
    return { path: bundled, source: "bundled" };
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "tensorlens");
    if (dir && isExecutable(candidate)) {
      return { path: candidate, source: "PATH" };
    }
  }
  return "no tensorlens binary: this extension has none for your platform and there is none on PATH. Install it (`cargo install --path server` from the repository) or set tensorlens.server.path";
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
