//! What a kernel analysis says to the outside, in one shape for the CLI's `--json` and the LSP
//! commands' answers, so the two cannot drift. Lines are 1-based, as compilers print them.

use serde::Serialize;

use super::analyze::{Analysis, AnalyzeError, Severity};
use super::document::{DocumentKernels, KernelSite, PlacedMessage};

/// One kernel's analysis, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum KernelReport {
    Analyzed(Analyzed),
    Failed(Failed),
    Triton(TritonReport),
}

/// A Triton kernel: every configuration's object (`TritonAnalysis::reports`) under `configs`,
/// with the summary and hover of them all; `error` when none compiled.
#[derive(Debug, Clone, Serialize)]
pub struct TritonReport {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub qualified_name: String,
    pub summary: String,
    pub markdown: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub messages: Vec<LineMessage>,
    pub configs: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analyzed {
    pub file: String,
    /// The line of the kernel's name.
    pub line: usize,
    #[serde(flatten)]
    pub analysis: Box<Analysis>,
    pub summary: String,
    pub markdown: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub qualified_name: String,
    pub error: String,
    pub messages: Vec<LineMessage>,
}

/// A compiler message on a document line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineMessage {
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl KernelReport {
    pub fn analyzed(kernels: &DocumentKernels, site: &KernelSite, file: &str, analysis: Analysis) -> KernelReport {
        KernelReport::Analyzed(Analyzed {
            file: file.to_string(),
            line: kernels.line_of(site.name_range.start) + 1,
            summary: analysis.summary(),
            markdown: analysis.markdown(),
            analysis: Box::new(analysis),
        })
    }

    /// `messages` are the error's compiler messages already placed in the document.
    pub fn failed(
        kernels: &DocumentKernels,
        site: &KernelSite,
        file: &str,
        error: &AnalyzeError,
        messages: &[PlacedMessage],
    ) -> KernelReport {
        KernelReport::Failed(Failed {
            file: file.to_string(),
            line: kernels.line_of(site.name_range.start) + 1,
            name: site.kernel.name.clone(),
            qualified_name: site.kernel.qualified_name.clone(),
            error: error.to_string(),
            messages: messages
                .iter()
                .map(|m| LineMessage {
                    line: kernels.line_of(m.range.start) + 1,
                    severity: m.severity,
                    message: m.message.clone(),
                })
                .collect(),
        })
    }
}
