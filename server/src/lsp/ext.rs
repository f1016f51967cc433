//! tensorlens' own commands and methods. Editor plugins mirror this file
//! (editors/vscode/src/lsp_ext.ts, editors/neovim/lua/tensorlens/commands.lua).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{Position, Range, Uri};

use crate::kernels::ir::IrKind;
use crate::kernels::session::LensAction;

/// Opens a URL in the user's browser (the server asks the client through `window/showDocument`).
/// Arguments: `[url]`.
pub const OPEN_URL: &str = "tensorlens.openUrl";
/// Searches the catalog. Arguments: `[query]`. Returns `[CatalogEntry]`.
pub const SEARCH_CATALOG_COMMAND: &str = "tensorlens.searchCatalog";

/// Compiles a kernel with NVRTC and reports resources and occupancy. Arguments:
/// `[{"uri", and "range" | "position" | "kernel"}]`. Returns the same JSON as `tensorlens kernel
/// analyze --json` (`kernels::report::KernelReport`): the analysis with `file`, `line`, `summary`
/// and `markdown`, or `{"file", "line", "name", "qualified_name", "error", "messages"}`; lines
/// are 1-based.
pub const ANALYZE_KERNEL: &str = "tensorlens.analyzeKernel";
/// The kernel's PTX. Same arguments; returns `{"kernel", "text", "languageId": "ptx", "uri"}`
/// where `uri` is a file holding the same text, or `{"error"}`.
pub const SHOW_PTX: &str = "tensorlens.showPtx";
/// One compiler form of a kernel. Arguments: `[{"uri", and "range" | "position" | "kernel",
/// "ir": "ttir" | "ttgir" | "llir" | "ptx" | "sass", "config"?: 0-based index}]` (CUDA kernels
/// have ptx and sass; Triton kernels all five, per configuration, the first by default). Returns
/// `{"kernel", "ir", "config", "configs", "languageId", "text", "uri"}` where `uri` is a file
/// holding the same text and `configs` names every configuration of a Triton kernel, or
/// `{"kernel", "ir", "configs", "error"}`.
pub const SHOW_IR: &str = "tensorlens.showIr";
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
    &[OPEN_URL, SEARCH_CATALOG_COMMAND, ANALYZE_KERNEL, SHOW_PTX, SHOW_IR, KERNEL_TOOLCHAIN, TIME_KERNEL, SHOW_TIMING];

/// A `workspace/executeCommand`, parsed once: the name and its arguments, checked.
#[derive(Debug)]
pub enum Command {
    OpenUrl(String),
    SearchCatalog(String),
    AnalyzeKernel(KernelArgs),
    ShowPtx(KernelArgs),
    ShowIr(IrArgs),
    KernelToolchain,
    TimeKernel(KernelArgs),
    ShowTiming(KernelTimingsParams),
}

/// Arguments of the kernel commands: a document and a selection (or position) in it, or a
/// kernel by name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelArgs {
    pub uri: Uri,
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub position: Option<Position>,
    #[serde(default)]
    pub kernel: Option<String>,
}

/// Arguments of `tensorlens.showIr`: the kernel, which form, and which Triton configuration.
#[derive(Debug, Deserialize)]
pub struct IrArgs {
    #[serde(flatten)]
    pub target: KernelArgs,
    pub ir: IrKind,
    #[serde(default)]
    pub config: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct KernelTimingsParams {
    pub uri: Uri,
    #[serde(default)]
    pub kernel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Unknown(String),
    BadArguments { command: &'static str, expected: &'static str, error: String },
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Unknown(name) => {
                write!(f, "unknown command: {name} (this server runs {})", COMMANDS.join(", "))
            }
            CommandError::BadArguments { command, expected, error } => {
                write!(f, "{command} takes {expected}: {error}")
            }
        }
    }
}

const KERNEL_ARGS: &str = "one argument, {\"uri\", and \"range\", \"position\" or \"kernel\"}";
const IR_ARGS: &str = "one argument, {\"uri\", \"range\", \"position\" or \"kernel\", \"ir\": ttir, ttgir, llir, ptx or sass, \"config\"?}";

impl Command {
    pub fn parse(name: &str, arguments: Vec<serde_json::Value>) -> Result<Command, CommandError> {
        let mut arguments = arguments.into_iter();
        let mut first = |command: &'static str, expected: &'static str| -> Result<serde_json::Value, CommandError> {
            arguments.next().ok_or(CommandError::BadArguments { command, expected, error: "no argument".into() })
        };
        fn typed<T: DeserializeOwned>(
            value: serde_json::Value,
            command: &'static str,
            expected: &'static str,
        ) -> Result<T, CommandError> {
            serde_json::from_value(value).map_err(|err| CommandError::BadArguments {
                command,
                expected,
                error: err.to_string(),
            })
        }
        Ok(match name {
            OPEN_URL => {
                Command::OpenUrl(typed(first(OPEN_URL, "one argument, the URL")?, OPEN_URL, "one argument, the URL")?)
            }
            SEARCH_CATALOG_COMMAND => {
                let query = arguments.next().unwrap_or_default();
                Command::SearchCatalog(if query.is_null() {
                    String::new()
                } else {
                    typed(query, SEARCH_CATALOG_COMMAND, "one argument, the query")?
                })
            }
            ANALYZE_KERNEL => {
                Command::AnalyzeKernel(typed(first(ANALYZE_KERNEL, KERNEL_ARGS)?, ANALYZE_KERNEL, KERNEL_ARGS)?)
            }
            SHOW_PTX => Command::ShowPtx(typed(first(SHOW_PTX, KERNEL_ARGS)?, SHOW_PTX, KERNEL_ARGS)?),
            SHOW_IR => Command::ShowIr(typed(first(SHOW_IR, IR_ARGS)?, SHOW_IR, IR_ARGS)?),
            TIME_KERNEL => Command::TimeKernel(typed(first(TIME_KERNEL, KERNEL_ARGS)?, TIME_KERNEL, KERNEL_ARGS)?),
            KERNEL_TOOLCHAIN => Command::KernelToolchain,
            SHOW_TIMING => {
                let expected = "one argument, {\"uri\", \"kernel\"?}";
                Command::ShowTiming(typed(first(SHOW_TIMING, expected)?, SHOW_TIMING, expected)?)
            }
            other => return Err(CommandError::Unknown(other.to_string())),
        })
    }
}

/// The command a kernel lens runs.
pub fn lens_command(action: LensAction) -> &'static str {
    match action {
        LensAction::Analyze => ANALYZE_KERNEL,
        LensAction::Time => TIME_KERNEL,
        LensAction::ShowTimings => SHOW_TIMING,
        LensAction::ShowPtx => SHOW_PTX,
    }
}

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

pub use crate::catalog::CatalogEntry;

/// The text the server holds for a document, to check that client and server agree (as
/// rust-analyzer's `viewFileText`). Params: `TextDocumentIdentifier`.
pub const VIEW_FILE_TEXT: &str = "tensorlens/viewFileText";

#[derive(Debug, Serialize, Deserialize)]
pub struct ViewFileTextResult {
    pub version: i32,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_are_parsed_once_with_clear_errors() {
        let args = vec![json!({ "uri": "file:///k.cu", "kernel": "add" })];
        assert!(
            matches!(Command::parse(ANALYZE_KERNEL, args), Ok(Command::AnalyzeKernel(a)) if a.kernel.as_deref() == Some("add"))
        );
        assert!(
            matches!(Command::parse(SEARCH_CATALOG_COMMAND, vec![]), Ok(Command::SearchCatalog(q)) if q.is_empty())
        );
        assert!(matches!(Command::parse(KERNEL_TOOLCHAIN, vec![json!(1)]), Ok(Command::KernelToolchain)));
        let unknown = Command::parse("tensorlens.nope", vec![]).unwrap_err();
        assert!(unknown.to_string().starts_with("unknown command: tensorlens.nope"), "{unknown}");
        let missing = Command::parse(SHOW_PTX, vec![]).unwrap_err().to_string();
        assert!(missing.contains("takes one argument") && missing.contains("no argument"), "{missing}");
        let wrong = Command::parse(OPEN_URL, vec![json!(3)]).unwrap_err().to_string();
        assert!(wrong.starts_with("tensorlens.openUrl takes one argument, the URL"), "{wrong}");
        let ir = vec![json!({ "uri": "file:///k.py", "kernel": "add", "ir": "ttgir", "config": 2 })];
        assert!(
            matches!(Command::parse(SHOW_IR, ir), Ok(Command::ShowIr(a)) if a.ir == IrKind::Ttgir && a.config == Some(2) && a.target.kernel.as_deref() == Some("add"))
        );
        let bad_kind =
            Command::parse(SHOW_IR, vec![json!({ "uri": "file:///k.py", "ir": "asm" })]).unwrap_err().to_string();
        assert!(bad_kind.contains("unknown variant `asm`") && bad_kind.contains("ttgir"), "{bad_kind}");
        let bad_uri = Command::parse(TIME_KERNEL, vec![json!({ "kernel": "k" })]).unwrap_err().to_string();
        assert!(bad_uri.contains("missing field `uri`"), "{bad_uri}");
    }
}
