//! Features as pure functions over a document and the catalog. Editor words (byte offsets, labels,
//! markdown), never LSP types: `lsp/` converts at the edge.

mod actions;
mod completion;
mod diagnostics;
pub mod fixes;
mod hover;
mod inlay;
mod links;
pub mod markdown;
mod signature;
#[cfg(test)]
mod snapshots;
mod value_hover;

use std::ops::Range;

pub use actions::{code_actions, Action, ActionKind};
pub use completion::{completions, Completion, CompletionKind};
pub use diagnostics::{diagnostics, Diagnostic, Severity};
pub use hover::{hover, reference_markdown, HoverResult};
pub use inlay::{inlay_hints, InlayHint};
pub use links::{document_links, Link};
pub use signature::{signature_help, SignatureHelp};

/// A replacement of a byte range of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextEdit {
    pub range: Range<usize>,
    pub new_text: String,
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixtures: minimal source text with `$0` marking the cursor, analysed with the built-in catalog.
    use std::sync::OnceLock;

    use crate::catalog::Catalog;
    use crate::documents::Document;

    pub fn catalog() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(Catalog::builtin)
    }

    /// Strips the `$0` marker and returns the analysed document and the marker's byte offset.
    pub fn fixture(path: &str, text: &str) -> (Document, usize) {
        let offset = text.find("$0").unwrap_or(0);
        let text = text.replacen("$0", "", 1);
        let mut doc = Document::new(path, "", 0, &text);
        doc.analyze(catalog(), &[]).expect("analysis");
        (doc, offset)
    }
}
