//! Diagnostics: deprecated APIs in use, and status codes of CUDA-family calls that are dropped.

use std::ops::Range;

use super::fixes;
use crate::catalog::Catalog;
use crate::documents::Document;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    #[allow(dead_code)] // Kept for features to come (kernel analysis).
    Warning,
    Information,
    Hint,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub range: Range<usize>,
    pub severity: Severity,
    pub message: String,
    /// Stable identifier, also used to find the matching quick fix.
    pub code: &'static str,
    pub deprecated: bool,
}

pub const CODE_DEPRECATED: &str = "deprecated-api";
pub const CODE_UNCHECKED_STATUS: &str = "unchecked-status";

pub fn diagnostics(doc: &Document, catalog: &Catalog) -> Vec<Diagnostic> {
    let mut res = Vec::new();
    for reference in doc.recognition.references() {
        let Some(symbol) = reference.symbol.filter(|&idx| catalog.is_deprecated(idx)).map(|idx| catalog.symbol(idx))
        else {
            continue;
        };
        let Some(plan) = fixes::plan(doc, catalog, &reference) else { continue };
        let message = fixes::message(&symbol, &plan);
        res.push(Diagnostic {
            range: reference.range.clone(),
            severity: Severity::Hint,
            message,
            code: CODE_DEPRECATED,
            deprecated: true,
        });
    }
    for call in doc.recognition.discarded_calls() {
        let symbol = catalog.symbol(call.symbol);
        let Some(status) = symbol.returns.as_ref().filter(|_| symbol.returns_status()) else { continue };
        if in_preprocessor_definition(doc, call.call_range.start) {
            continue;
        }
        res.push(Diagnostic {
            range: call.call_range.clone(),
            severity: Severity::Information,
            message: format!("The {status} returned by {} is ignored; an error here would go unnoticed", symbol.name),
            code: CODE_UNCHECKED_STATUS,
            deprecated: false,
        });
    }
    res.sort_by_key(|d| (d.range.start, d.range.end));
    res
}

/// Calls inside a `#define` are the check macro's own body, not code that drops a status.
fn in_preprocessor_definition(doc: &Document, offset: usize) -> bool {
    let Some(tree) = &doc.tree else { return false };
    let mut node = tree.root_node().descendant_for_byte_range(offset, offset);
    while let Some(current) = node {
        if current.kind().starts_with("preproc_def") || current.kind() == "preproc_function_def" {
            return true;
        }
        node = current.parent();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::{catalog, fixture};

    #[test]
    fn flags_dropped_status_but_not_checked_ones() {
        let src = "void f(float* d) {\n  cudaMalloc(&d, 4);\n  cudaError_t e = cudaFree(d);\n  if (cudaDeviceSynchronize() != cudaSuccess) {}\n}\n";
        let (doc, _) = fixture("a.cu", src);
        let diags = diagnostics(&doc, catalog());
        let flagged: Vec<String> =
            diags.iter().filter(|d| d.code == CODE_UNCHECKED_STATUS).map(|d| doc.slice(d.range.clone())).collect();
        assert_eq!(flagged, ["cudaMalloc(&d, 4)"]);
    }

    #[test]
    fn flags_deprecated_calls() {
        let (doc, _) = fixture("a.cu", "void f() { cudaThreadSynchronize(); }\n");
        let diags = diagnostics(&doc, catalog());
        assert!(
            diags.iter().any(|d| d.code == CODE_DEPRECATED && d.message.contains("cudaDeviceSynchronize")),
            "{diags:?}"
        );
    }
}
