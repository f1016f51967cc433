// tensorlens' own commands and requests: the client side of server/src/lsp/ext.rs.

/** Server command: compile a kernel, report resources and occupancy. Argument: KernelTarget. */
export const ANALYZE_KERNEL = "tensorlens.analyzeKernel";
/** Server command: the kernel's PTX. Argument: KernelTarget. */
export const SHOW_PTX = "tensorlens.showPtx";
/** Server command: which NVRTC, ptxas, headers and GPU the server uses. No arguments. */
export const KERNEL_TOOLCHAIN = "tensorlens.kernelToolchain";
/** Server command: open a URL in the browser. Argument: the URL. */
export const OPEN_URL = "tensorlens.openUrl";
/** Custom request: catalog search. */
export const SEARCH_CATALOG = "tensorlens/searchCatalog";

export interface LspPosition {
  line: number;
  character: number;
}

export interface KernelTarget {
  uri: string;
  range?: { start: LspPosition; end: LspPosition };
  position?: LspPosition;
  kernel?: string;
}

/** The answer to ANALYZE_KERNEL: an analysis, or an error with compiler messages. A Triton
 * kernel's answer (`KernelReport::Triton`) has `configs`, one per configuration compiled, and no
 * `registers` of its own; `error` only when no configuration compiled. */
export interface KernelAnalysis {
  name: string;
  qualified_name: string;
  /** The 1-based line of the kernel's name. */
  line?: number;
  summary?: string;
  markdown?: string;
  registers?: number;
  occupancy?: number | null;
  error?: string;
  /** Document lines are 1-based, as in `tensorlens kernel analyze --json`. */
  messages?: { line: number; severity: string; message: string }[];
  configs?: TritonConfig[];
}

/** One configuration of a Triton kernel's analysis (`TritonAnalysis::reports`): what was compiled,
 * and its resources, or `error` when it did not compile. */
export interface TritonConfig {
  name: string;
  language: "triton";
  constexprs: Record<string, unknown>;
  num_warps: number;
  num_stages: number;
  assumed: string[];
  summary?: string;
  registers?: number;
  spill_stores?: number;
  spill_loads?: number;
  shared_bytes?: number;
  occupancy?: number | null;
  error?: string;
}

/** Server command: a kernel's IR. Argument: ShowIrArgs. Answers IrResult. */
export const SHOW_IR = "tensorlens.showIr";

/** The IR kinds: CUDA kernels have ptx and sass, Triton kernels all five. */
export type IrKind = "ptx" | "sass" | "ttir" | "ttgir" | "llir";

export interface ShowIrArgs extends KernelTarget {
  ir: IrKind;
  /** 0-based index into the kernel's configurations (Triton); the first when left out. */
  config?: number;
}

/** The answer to SHOW_IR: the text with its language (`ptx`, `sass`, `mlir` for ttir and ttgir,
 * `llvm` for llir) and the Triton configuration it was compiled for (its label, or the object), or
 * an error. */
export interface IrResult {
  kernel: string;
  ir: IrKind;
  config?: string | Partial<TritonConfig> | null;
  /** Every configuration of a Triton kernel, by label. */
  configs?: string[];
  languageId?: string;
  text?: string;
  uri?: string | null;
  error?: string;
}

export interface PtxResult {
  kernel: string;
  text?: string;
  uri?: string | null;
  error?: string;
}

export interface Toolchain {
  nvrtc: { Ok?: { path: string; version: string }; Err?: string };
  ptxas: { Ok?: string; Err?: string };
  include_dirs: string[];
  gpu: { name: string; arch: string } | null;
  /** Programs and libraries inside an untrusted workspace that were not used, with why. */
  ignored?: string[];
  summary: string;
  arch: string;
}

export interface SearchCatalogParams {
  query: string;
  limit?: number;
}

export interface CatalogEntry {
  name: string;
  kind: string;
  system: string;
  summary: string;
  signature: string | null;
  docs: string;
  equivalents: string[];
}

/** Server command: time a kernel on the GPU through the worker. Argument: KernelTarget. */
export const TIME_KERNEL = "tensorlens.timeKernel";
/** Server command (the timing lens): a kernel's history. Argument: {uri, kernel}. */
export const SHOW_TIMING = "tensorlens.showTiming";
/** Custom request: timing history of a document's kernels. */
export const KERNEL_TIMINGS = "tensorlens/kernelTimings";

export interface TimingSummary {
  samples: number;
  median: number;
  min: number;
  max: number;
  mean: number;
  noise: number;
}

export interface Timing {
  device: { name: string; arch: string; peak_bandwidth_gbs: number };
  summary: TimingSummary;
  stop: "converged" | "timed_out";
  batch: number;
  cold: boolean;
  bandwidth_gbs: number;
  bandwidth_fraction: number;
  flops_per_second: number | null;
  samples: number[];
}

/** One timing run: the answer to TIME_KERNEL and an entry of a kernel's history. */
export interface TimingRecord {
  kernel: string;
  at: number;
  summary: string;
  change_percent: number | null;
  warnings: string[];
  error?: string | null;
  timing?: Timing | null;
  spec?: { explained: string[] } | null;
}

export interface KernelTimings {
  kernels: { kernel: string; history: TimingRecord[] }[];
}
