// The tensorlens extension: starts the language server and adds the kernel and catalog commands,
// read-only PTX and IR views and a status-bar item for the CUDA toolchain.
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RequestType,
  ServerOptions,
  State,
} from "vscode-languageclient/node";

import * as ext from "./lsp_ext";
import { findServer } from "./server";
import { PROGRAM_SETTINGS, USER_SETTINGS } from "./settings";
import { refreshTimings, showTimings } from "./timings_panel";

const PTX_SCHEME = "tensorlens-ptx";
const IR_SCHEME = "tensorlens-ir";
const searchCatalog = new RequestType<ext.SearchCatalogParams, ext.CatalogEntry[], void>(ext.SEARCH_CATALOG);
const kernelTimings = new RequestType<{ uri: string; kernel?: string }, ext.KernelTimings, void>(ext.KERNEL_TIMINGS);

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("tensorlens", { log: true });
  const ptxDocuments = new ReadOnlyDocuments(PTX_SCHEME);
  const irDocuments = new ReadOnlyDocuments(IR_SCHEME);
  const status = vscode.window.createStatusBarItem("tensorlens.toolchain", vscode.StatusBarAlignment.Right, 50);
  status.name = "tensorlens CUDA toolchain";
  context.subscriptions.push(
    output,
    status,
    vscode.workspace.registerTextDocumentContentProvider(PTX_SCHEME, ptxDocuments),
    vscode.workspace.registerTextDocumentContentProvider(IR_SCHEME, irDocuments),
    vscode.commands.registerCommand("tensorlens.analyzeKernelAtCursor", () => analyzeAtCursor()),
    vscode.commands.registerCommand("tensorlens.showPtxAtCursor", () => showPtxAtCursor(ptxDocuments)),
    // Also callable with the kind (and a 0-based config), e.g. from a keybinding's "args".
    vscode.commands.registerCommand("tensorlens.showIrAtCursor", (kind?: unknown, config?: unknown) =>
      showIrAtCursor(irDocuments, kind, config),
    ),
    vscode.commands.registerCommand("tensorlens.timeKernelAtCursor", () => timeAtCursor()),
    vscode.commands.registerCommand("tensorlens.showTimings", () => showDocumentTimings()),
    vscode.commands.registerCommand("tensorlens.searchCatalogPick", () => searchCatalogPick()),
    vscode.commands.registerCommand("tensorlens.showToolchain", () => showToolchain(status)),
    vscode.commands.registerCommand("tensorlens.restartServer", async () => {
      await stopClient();
      await startClient(context, output, ptxDocuments, irDocuments, status);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      // Both choose which binary runs (the second, through the environment it names).
      if (event.affectsConfiguration("tensorlens.server.path") || event.affectsConfiguration("python.defaultInterpreterPath")) {
        await vscode.commands.executeCommand("tensorlens.restartServer");
      } else if (event.affectsConfiguration("tensorlens")) {
        await sendSettings();
        await updateStatus(status);
      }
    }),
    // Granting trust restarts the server: in the workspace folder, with the workspace's program
    // settings, and timing on.
    vscode.workspace.onDidGrantWorkspaceTrust(() => vscode.commands.executeCommand("tensorlens.restartServer")),
    { dispose: () => void stopClient() },
  );
  await startClient(context, output, ptxDocuments, irDocuments, status);
}

export async function deactivate(): Promise<void> {
  await stopClient();
}

async function startClient(
  context: vscode.ExtensionContext,
  output: vscode.LogOutputChannel,
  ptxDocuments: ReadOnlyDocuments,
  irDocuments: ReadOnlyDocuments,
  status: vscode.StatusBarItem,
): Promise<void> {
  const server = await findServer(context);
  if (typeof server === "string") {
    output.error(server);
    const choice = await vscode.window.showErrorMessage(`tensorlens: ${server}`, "Open Settings");
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "tensorlens.server.path");
    }
    return;
  }
  for (const note of server.looked) {
    output.info(note);
  }
  for (const note of server.skipped) {
    output.warn(note);
  }
  output.info(`starting ${server.path} (${server.source}${server.detail ? `: ${server.detail}` : ""})`);
  // In an untrusted workspace the server starts outside it (the client would start it in the
  // workspace folder), so that relative PATH and LD_LIBRARY_PATH entries (an empty one means the
  // current folder) cannot lead the server to a program or library there.
  const cwd = vscode.workspace.isTrusted ? undefined : context.extensionPath;
  const serverOptions: ServerOptions = {
    run: { command: server.path, args: ["serve"], options: { cwd } },
    debug: { command: server.path, args: ["serve"], options: { cwd, env: { ...process.env, TENSORLENS_LOG: "debug" } } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "python" },
      { scheme: "untitled", language: "python" },
      // Notebook cells are synced one by one; the server joins cells of the same notebook.
      { scheme: "vscode-notebook-cell", language: "python" },
      { scheme: "file", language: "cuda-cpp" },
      { scheme: "file", language: "cpp" },
      { scheme: "file", language: "c" },
      { scheme: "file", pattern: "**/.tensorlens/catalog/*.toml" },
    ],
    initializationOptions: serverSettings(),
    outputChannel: output,
    middleware: {
      // Commands the server names in code lenses come back through here; the PTX answer is
      // opened as a read-only document and a failed analysis is shown, not swallowed.
      executeCommand: async (command, args, next) => {
        // Kernels run only in trusted workspaces (the server is told too, through timingEnabled).
        if (command === ext.TIME_KERNEL && !vscode.workspace.isTrusted) {
          void vscode.window.showWarningMessage("tensorlens: kernel timing runs code, so it is off in untrusted workspaces");
          return undefined;
        }
        const result: unknown = await next(command, args);
        if (command === ext.SHOW_PTX) {
          await openPtx(ptxDocuments, result as ext.PtxResult);
        } else if (command === ext.SHOW_IR) {
          await openIr(irDocuments, result as ext.IrResult);
        } else if (command === ext.ANALYZE_KERNEL) {
          reportAnalysis(result as ext.KernelAnalysis);
        } else if (command === ext.TIME_KERNEL) {
          await reportTiming(result as ext.TimingRecord | undefined, args);
        } else if (command === ext.SHOW_TIMING) {
          showTimings(result as ext.KernelTimings, "Kernel timings");
        }
        return result;
      },
    },
  };
  client = new LanguageClient("tensorlens", "tensorlens", serverOptions, clientOptions);
  client.onDidChangeState(async (event) => {
    if (event.newState === State.Running) {
      // Settings can arrive after activation (code-server loads user settings late): send what
      // is known now, and again on every change.
      await sendSettings();
      await updateStatus(status);
    } else if (event.newState === State.Stopped) {
      status.text = "$(circle-slash) tensorlens";
      status.tooltip = "The tensorlens server stopped; run “tensorlens: Restart server”.";
      status.command = "tensorlens.restartServer";
    }
  });
  try {
    await client.start();
  } catch (error) {
    output.error(`the server did not start: ${String(error)}`);
    void vscode.window.showErrorMessage(`tensorlens: the server did not start (${String(error)}); see the output channel`);
  }
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
  if (running?.isRunning()) {
    await running.stop();
  }
}

/** The settings the server reads (the table in server/src/settings.rs, via the generated
 * settings.ts), from this extension's configuration. In an untrusted workspace a setting that
 * names a program or a library comes from the user's own settings only, never the workspace's; and
 * the server is told, so that it also refuses such paths inside the workspace and keeps timing off. */
function serverSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration("tensorlens");
  const trusted = vscode.workspace.isTrusted;
  const settings: Record<string, unknown> = {};
  for (const key of USER_SETTINGS) {
    settings[key] = !trusted && PROGRAM_SETTINGS.includes(key) ? userValue(config, key) : config.get(key);
  }
  settings.timingEnabled = trusted;
  settings.workspaceTrusted = trusted;
  return settings;
}

/** A setting's value from the user's settings alone (or its default), ignoring workspace and
 * folder values. */
function userValue(config: vscode.WorkspaceConfiguration, key: string): unknown {
  const values = config.inspect(key);
  return values?.globalValue ?? values?.defaultValue;
}

async function sendSettings(): Promise<void> {
  if (client?.isRunning()) {
    await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { tensorlens: serverSettings() } });
  }
}

async function executeServerCommand<T>(
  command: string,
  args: unknown[],
  token?: vscode.CancellationToken,
): Promise<T | undefined> {
  if (!client?.isRunning()) {
    void vscode.window.showErrorMessage("tensorlens: the server is not running");
    return undefined;
  }
  try {
    return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token)) as T;
  } catch (error) {
    // A request the user cancelled (the progress notification's Cancel) is not an error.
    if (!token?.isCancellationRequested) {
      void vscode.window.showErrorMessage(`tensorlens: ${errorMessage(error)}`);
    }
    return undefined;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The active editor's document and selection, as the kernel commands take them. */
function kernelTarget(): ext.KernelTarget | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor || !client) {
    void vscode.window.showWarningMessage("tensorlens: open a CUDA, C++ or Python file and put the cursor in a kernel");
    return undefined;
  }
  return {
    uri: editor.document.uri.toString(),
    range: client.code2ProtocolConverter.asRange(editor.selection),
  };
}

async function analyzeAtCursor(): Promise<void> {
  const target = kernelTarget();
  if (!target) {
    return;
  }
  const result = await executeServerCommand<ext.KernelAnalysis>(ext.ANALYZE_KERNEL, [target]);
  if (result) {
    reportAnalysis(result);
  }
}

/** An analysis: an error is shown; a result goes to the status bar (the lens above the kernel
 * shows it too, the hover on its name the details). Of a Triton kernel's configurations, the ones
 * that did not compile are named. */
function reportAnalysis(result: ext.KernelAnalysis | undefined): void {
  if (!result) {
    return;
  }
  if (result.error) {
    void vscode.window.showErrorMessage(`tensorlens: ${result.error}`);
    return;
  }
  if (result.summary) {
    vscode.window.setStatusBarMessage(`$(check) ${result.qualified_name}: ${result.summary}`, 8000);
  }
  const configs = result.configs ?? [];
  const failed = configs.filter((config) => config.error);
  if (failed.length > 0) {
    void vscode.window.showWarningMessage(
      `tensorlens: ${result.name}: ${failed.length} of ${configs.length} configurations did not compile ` +
        `(${configLabel(failed[0])}: ${firstLine(failed[0].error)}); see the diagnostics`,
    );
  }
}

function firstLine(text: string | undefined): string {
  return text?.split("\n")[0] ?? "";
}

/** `BLOCK_SIZE=1024 num_warps=4 num_stages=3`, as the server labels a configuration. */
function configLabel(config: Partial<ext.TritonConfig>): string {
  const parts = Object.entries(config.constexprs ?? {}).map(([name, value]) => `${name}=${String(value)}`);
  if (config.num_warps !== undefined) {
    parts.push(`num_warps=${config.num_warps}`);
  }
  if (config.num_stages !== undefined) {
    parts.push(`num_stages=${config.num_stages}`);
  }
  return parts.join(" ");
}

async function timeAtCursor(): Promise<void> {
  const target = kernelTarget();
  if (!target) {
    return;
  }
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage("tensorlens: kernel timing runs code, so it is off in untrusted workspaces");
    return;
  }
  const result = await executeServerCommand<ext.TimingRecord>(ext.TIME_KERNEL, [target]);
  await reportTiming(result, [target]);
}

/** A timing result: its line in the status bar, an error with the way out, the panel updated. */
async function reportTiming(result: ext.TimingRecord | undefined, args: unknown[]): Promise<void> {
  if (!result) {
    return;
  }
  if (result.error) {
    const choice = await vscode.window.showErrorMessage(`tensorlens: ${result.error}`, "Set a timing launcher");
    if (choice) {
      await vscode.commands.executeCommand("workbench.action.openSettings", "tensorlens.timingLauncher");
    }
  } else {
    vscode.window.setStatusBarMessage(`${result.kernel}: ${result.summary}`, 10000);
  }
  const target = args[0] as ext.KernelTarget | undefined;
  if (target && client?.isRunning()) {
    refreshTimings(await client.sendRequest(kernelTimings, { uri: target.uri }));
  }
}

async function showDocumentTimings(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || !client?.isRunning()) {
    return;
  }
  const timings = await client.sendRequest(kernelTimings, { uri: editor.document.uri.toString() });
  showTimings(timings, `Kernel timings: ${vscode.workspace.asRelativePath(editor.document.uri)}`);
}

async function showPtxAtCursor(ptxDocuments: ReadOnlyDocuments): Promise<void> {
  const target = kernelTarget();
  if (!target) {
    return;
  }
  const result = await executeServerCommand<ext.PtxResult>(ext.SHOW_PTX, [target]);
  await openPtx(ptxDocuments, result);
}

async function openPtx(ptxDocuments: ReadOnlyDocuments, result: ext.PtxResult | undefined): Promise<void> {
  if (!result) {
    return;
  }
  if (result.error || result.text === undefined) {
    void vscode.window.showErrorMessage(`tensorlens: ${result.error ?? "no PTX"}`);
    return;
  }
  await showReadOnly(ptxDocuments.put(`${safeName(result.kernel)}.ptx`, result.text), "ptx");
}

interface IrKindPick extends vscode.QuickPickItem {
  ir: ext.IrKind;
}

/** The IR kinds in the order a kernel is lowered: Triton kernels have all five, CUDA kernels the
 * last two. */
const TRITON_IR: IrKindPick[] = [
  { ir: "ttir", label: "TTIR", description: "ttir", detail: "Triton IR, as the kernel was written (MLIR)" },
  { ir: "ttgir", label: "TTGIR", description: "ttgir", detail: "Triton GPU IR: layouts, shared memory, pipelining (MLIR)" },
  { ir: "llir", label: "LLVM IR", description: "llir", detail: "what Triton hands to LLVM's NVPTX back end" },
];
const CUDA_IR: IrKindPick[] = [
  { ir: "ptx", label: "PTX", description: "ptx", detail: "NVIDIA's virtual instruction set" },
  { ir: "sass", label: "SASS", description: "sass", detail: "the machine code ptxas made for the target architecture" },
];

interface ConfigPick extends vscode.QuickPickItem {
  index: number;
}

/** "Show kernel IR...": the kinds the kernel at the cursor has (PTX and SASS; Triton's five in a
 * Python file), then which configuration when a Triton kernel has several, and the text opens
 * beside the kernel as a read-only document. In a Python file the kernel is analysed first (an
 * answer from the server's cache when it was analysed before): that says whether it is a Triton
 * kernel and gives its configurations as they are now. `kind` and `config` (0-based) skip the picks. */
async function showIrAtCursor(irDocuments: ReadOnlyDocuments, kind?: unknown, config?: unknown): Promise<void> {
  const target = kernelTarget();
  const editor = vscode.window.activeTextEditor;
  if (!target || !editor) {
    return;
  }
  let analysis: ext.KernelAnalysis | undefined;
  if (editor.document.languageId === "python") {
    // Quick when the kernel was analysed before, so in the status bar rather than a notification.
    analysis = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "tensorlens: reading the kernel's configurations" },
      () => executeServerCommand<ext.KernelAnalysis>(ext.ANALYZE_KERNEL, [target]),
    );
    if (!analysis) {
      return;
    }
    if (analysis.error && !analysis.configs?.length) {
      // Nothing compiled, so there is no IR either; the picker shows a config that failed.
      void vscode.window.showErrorMessage(`tensorlens: ${analysis.error}`);
      return;
    }
  }
  const configs = analysis?.configs ?? [];
  const triton = analysis?.configs !== undefined;
  const kinds = triton ? [...TRITON_IR, ...CUDA_IR] : CUDA_IR;
  let chosen = kinds.find((k) => k.ir === kind);
  if (kind !== undefined && !chosen) {
    const has = kinds.map((k) => k.ir).join(", ");
    void vscode.window.showErrorMessage(`tensorlens: no IR ${JSON.stringify(kind)} for this kernel; it has ${has}`);
    return;
  }
  const name = analysis?.name ?? "the kernel";
  chosen ??= await vscode.window.showQuickPick(kinds, {
    title: `tensorlens: IR of ${name}`,
    placeHolder: triton ? "Which IR of the Triton kernel" : "Which IR of the kernel",
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!chosen) {
    return;
  }
  let index = typeof config === "number" && Number.isInteger(config) && config >= 0 ? config : undefined;
  if (index === undefined && configs.length > 1) {
    const picked = await vscode.window.showQuickPick<ConfigPick>(
      configs.map((c, i) => ({
        index: i,
        label: configLabel(c),
        description: `config ${i + 1} of ${configs.length}`,
        detail: c.error ? `✗ ${firstLine(c.error)}` : c.summary,
      })),
      { title: `tensorlens: ${chosen.label} of ${name}`, placeHolder: "Which configuration" },
    );
    if (!picked) {
      return;
    }
    index = picked.index;
  }
  const args: ext.ShowIrArgs = { ...target, ir: chosen.ir, ...(index !== undefined ? { config: index } : {}) };
  const which = index !== undefined && configs.length > 1 ? ` (config ${index + 1} of ${configs.length})` : "";
  const result = await withCancellableProgress(`tensorlens: compiling ${name} to ${chosen.label}${which}`, (token) =>
    executeServerCommand<ext.IrResult>(ext.SHOW_IR, [args], token),
  );
  await openIr(irDocuments, result);
}

/** Runs `work` under a notification with a Cancel button, which cancels the request. */
function withCancellableProgress<T>(
  title: string,
  work: (token: vscode.CancellationToken) => Promise<T | undefined>,
): Thenable<T | undefined> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    (_progress, token) => work(token),
  );
}

async function openIr(irDocuments: ReadOnlyDocuments, result: ext.IrResult | undefined): Promise<void> {
  if (!result) {
    return;
  }
  if (result.error || result.text === undefined) {
    void vscode.window.showErrorMessage(`tensorlens: ${result.error ?? `no ${result.ir ?? "IR"}`}`);
    return;
  }
  const label = typeof result.config === "string" ? result.config : result.config ? configLabel(result.config) : "";
  const name = `${safeName(result.kernel)}${label ? ` (${safeName(label, " =")})` : ""}.${result.ir}`;
  // "sass" is the CSS preprocessor's language id (the Sass extensions): NVIDIA's SASS has its own.
  const languageId = result.languageId === "sass" ? "nvidia-sass" : result.languageId;
  await showReadOnly(irDocuments.put(name, result.text), languageId);
  if (label) {
    vscode.window.setStatusBarMessage(`$(file-code) ${result.kernel} ${result.ir}: ${label}`, 8000);
  }
}

/** A name fit for a document path: letters, digits, `_` and the characters `keep` allows. */
function safeName(name: string, keep = ""): string {
  return [...name].map((c) => (/[A-Za-z0-9_]/.test(c) || keep.includes(c) ? c : "_")).join("");
}

/** Opens one of our read-only documents beside the editor, in its language when VS Code has it. */
async function showReadOnly(uri: vscode.Uri, languageId: string | undefined): Promise<void> {
  let document = await vscode.workspace.openTextDocument(uri);
  if (languageId && document.languageId !== languageId) {
    // An id no extension contributes is refused; the text then stays plain.
    document = await vscode.languages.setTextDocumentLanguage(document, languageId).then(
      (changed) => changed,
      () => document,
    );
  }
  await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

/** PTX and IR shown as read-only documents: text served by this provider cannot be edited. */
class ReadOnlyDocuments implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private readonly changes = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changes.event;

  constructor(private readonly scheme: string) {}

  put(fileName: string, text: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: this.scheme, path: `/${fileName}` });
    this.texts.set(uri.toString(), text);
    this.changes.fire(uri);
    return uri;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? "";
  }
}

interface CatalogPick extends vscode.QuickPickItem {
  entry?: ext.CatalogEntry;
}

const equivalentsButton: vscode.QuickInputButton = {
  iconPath: new vscode.ThemeIcon("arrow-swap"),
  tooltip: "Equivalents in other frameworks",
};

/** Catalog search: a query, then its results in the server's order (curated symbols and their
 * equivalents first); Enter opens the docs, the button lists equivalents to search next. */
async function searchCatalogPick(initial = ""): Promise<void> {
  if (!client?.isRunning()) {
    void vscode.window.showErrorMessage("tensorlens: the server is not running");
    return;
  }
  const query = await vscode.window.showInputBox({
    title: "tensorlens: Search catalog",
    prompt: "A name or a word: matmul, compile, cudaMemcpy, attention",
    placeHolder: "Search PyTorch, JAX, TensorFlow, CUDA, cuBLAS...",
    value: initial,
  });
  if (!query?.trim()) {
    return;
  }
  let entries: ext.CatalogEntry[];
  try {
    entries = await client.sendRequest(searchCatalog, { query, limit: 100 });
  } catch (error) {
    void vscode.window.showErrorMessage(`tensorlens: ${errorMessage(error)}`);
    return;
  }
  const pick = vscode.window.createQuickPick<CatalogPick>();
  pick.title = `${entries.length} catalog symbols for “${query}”`;
  pick.placeholder = "Enter opens the documentation; type to narrow";
  pick.matchOnDescription = true;
  pick.matchOnDetail = true;
  pick.items = entries.map((entry) => ({
    label: entry.name,
    description: `${entry.system} · ${entry.kind}`,
    detail: entry.summary || entry.signature || undefined,
    entry,
    buttons: entry.equivalents.length > 0 ? [equivalentsButton] : [],
  }));
  pick.onDidAccept(async () => {
    const entry = pick.selectedItems[0]?.entry;
    pick.hide();
    if (entry?.docs) {
      await vscode.env.openExternal(vscode.Uri.parse(entry.docs));
    }
  });
  pick.onDidTriggerItemButton(async (event) => {
    const entry = event.item.entry;
    if (!entry) {
      return;
    }
    pick.hide();
    const chosen = await vscode.window.showQuickPick(entry.equivalents, { placeHolder: `Equivalents of ${entry.name}` });
    if (chosen) {
      await searchCatalogPick(chosen);
    }
  });
  pick.onDidHide(() => pick.dispose());
  pick.show();
}

async function fetchToolchain(): Promise<ext.Toolchain | undefined> {
  if (!client?.isRunning()) {
    return undefined;
  }
  try {
    return (await client.sendRequest(ExecuteCommandRequest.type, {
      command: ext.KERNEL_TOOLCHAIN,
      arguments: [],
    })) as ext.Toolchain;
  } catch {
    return undefined;
  }
}

/** The status bar names NVRTC / ptxas / GPU state, and leads to the fix when a piece is missing.
 * A missing piece is asked about again a few times: settings may reach the server after the first
 * question (code-server loads user settings late, and the server handles messages concurrently). */
async function updateStatus(status: vscode.StatusBarItem, retries = 5): Promise<void> {
  const toolchain = await fetchToolchain();
  if (!toolchain) {
    status.hide();
    return;
  }
  const missing = !toolchain.nvrtc.Ok || !toolchain.ptxas.Ok;
  status.text = `${missing ? "$(warning)" : "$(chip)"} ${toolchain.summary}`;
  status.tooltip = toolchainText(toolchain);
  status.command = "tensorlens.showToolchain";
  status.show();
  if (missing && retries > 0) {
    setTimeout(() => void updateStatus(status, retries - 1), 1000);
  }
}

function toolchainText(toolchain: ext.Toolchain): string {
  const lines = [
    toolchain.nvrtc.Ok ? `NVRTC ${toolchain.nvrtc.Ok.version}: ${toolchain.nvrtc.Ok.path}` : `NVRTC: ${toolchain.nvrtc.Err}`,
    toolchain.ptxas.Ok ? `ptxas: ${toolchain.ptxas.Ok}` : `ptxas: ${toolchain.ptxas.Err}`,
    toolchain.include_dirs.length > 0 ? `headers: ${toolchain.include_dirs.join(", ")}` : "headers: no CUDA include folder",
    toolchain.gpu ? `GPU: ${toolchain.gpu.name} (${toolchain.gpu.arch})` : `GPU: none; compiling for ${toolchain.arch}`,
    ...(toolchain.ignored ?? []).map((note) => `ignored: ${note}`),
  ];
  return lines.join("\n");
}

async function showToolchain(status: vscode.StatusBarItem): Promise<void> {
  const toolchain = await fetchToolchain();
  await updateStatus(status);
  if (!toolchain) {
    void vscode.window.showErrorMessage("tensorlens: the server is not running");
    return;
  }
  const missing = !toolchain.nvrtc.Ok || !toolchain.ptxas.Ok;
  const message = `tensorlens: ${toolchainText(toolchain).replace(/\n/g, " · ")}`;
  const actions = missing ? ["Open Settings", "Copy install command"] : ["Open Settings"];
  const choice = missing
    ? await vscode.window.showWarningMessage(message, ...actions)
    : await vscode.window.showInformationMessage(message, ...actions);
  if (choice === "Open Settings") {
    await vscode.commands.executeCommand("workbench.action.openSettings", "tensorlens");
  } else if (choice === "Copy install command") {
    await vscode.env.clipboard.writeText("pip install nvidia-cuda-nvrtc nvidia-cuda-nvcc nvidia-cuda-runtime");
  }
}
