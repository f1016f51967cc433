//! tensorlens' own commands and methods. Editor plugins mirror this file
//! (editors/vscode/src/lsp_ext.ts, editors/neovim/lua/tensorlens/commands.lua).

use serde::{Deserialize, Serialize};

/// Opens a URL in the user's browser (the server asks the client through `window/showDocument`).
/// Arguments: `[url]`.
pub const OPEN_URL: &str = "tensorlens.openUrl";
/// Searches the catalog. Arguments: `[query]`. Returns `[CatalogEntry]`.
pub const SEARCH_CATALOG_COMMAND: &str = "tensorlens.searchCatalog";

/// Compiles a kernel with NVRTC and reports resources and occupancy. Arguments:
/// `[{"uri", and "range" | "position" | "kernel"}]`. Returns the analysis (the JSON of
/// `tensorlens kernel analyze --json`, plus `summary` and `markdown`), or `{"error", "messages"}`.
pub const ANALYZE_KERNEL: &str = "tensorlens.analyzeKernel";
/// The kernel's PTX. Same arguments; returns `{"kernel", "text", "languageId": "ptx", "uri"}`
/// where `uri` is a file holding the same text, or `{"error"}`.
pub const SHOW_PTX: &str = "tensorlens.showPtx";
/// Which NVRTC, ptxas, headers and GPU the server uses. No arguments.
pub const KERNEL_TOOLCHAIN: &str = "tensorlens.kernelToolchain";

/// Times a kernel on the GPU through the worker. Same arguments as ANALYZE_KERNEL; returns the
/// run's record: `summary`, `timing` (device, median/min/max/noise, bandwidth, ...), `spec`,
/// `change_percent`, `warnings`, or `error`.
pub const TIME_KERNEL: &str = "tensorlens.timeKernel";
/// What the timing lens runs: the kernel's history (`{"kernels": [{"kernel", "history"}]}`).
/// Arguments: `[{"uri", "kernel"}]`. Editors may show it their own way (a panel, a table).
pub const SHOW_TIMING: &str = "tensorlens.showTiming";

pub const COMMANDS: &[&str] =
    &[OPEN_URL, SEARCH_CATALOG_COMMAND, ANALYZE_KERNEL, SHOW_PTX, KERNEL_TOOLCHAIN, TIME_KERNEL, SHOW_TIMING];

/// Custom request with a document's timing history. Params: `{"uri", "kernel"?}`.
pub const KERNEL_TIMINGS: &str = "tensorlens/kernelTimings";

/// Custom request with the same answer as the search command, for plugins that prefer requests.
pub const SEARCH_CATALOG: &str = "tensorlens/searchCatalog";

#[derive(Debug, Serialize, Deserialize)]
pub struct SearchCatalogParams {
    pub query: String,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One catalog symbol, as plugins show it in a picker.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    pub name: String,
    pub kind: String,
    pub system: String,
    pub summary: String,
    pub signature: Option<String>,
    pub docs: String,
    pub equivalents: Vec<String>,
}

/// The text the server holds for a document, to check that client and server agree (as
/// rust-analyzer's `viewFileText`). Params: `TextDocumentIdentifier`.
pub const VIEW_FILE_TEXT: &str = "tensorlens/viewFileText";

#[derive(Debug, Serialize, Deserialize)]
pub struct ViewFileTextResult {
    pub version: i32,
    pub text: String,
}
