//! LSP values into editor terms. Every position conversion goes through `text` via `Document`.

use std::ops::Range;

use tower_lsp_server::ls_types::*;

use crate::documents::{Change, Document};
use crate::text::{LineCol, PositionEncoding};

pub fn line_col(pos: Position) -> LineCol {
    LineCol { line: pos.line, col: pos.character }
}

/// A byte offset, or `None` when the position lies past the last line.
pub fn offset(doc: &Document, pos: Position, encoding: PositionEncoding) -> Option<usize> {
    doc.offset(line_col(pos), encoding)
}

/// A byte range; an inverted range is put the right way round, positions past the end clamp.
pub fn range(doc: &Document, range: Range_, encoding: PositionEncoding) -> Range<usize> {
    let end_of_doc = doc.rope.len_bytes();
    let start = offset(doc, range.start, encoding).unwrap_or(end_of_doc);
    let end = offset(doc, range.end, encoding).unwrap_or(end_of_doc);
    start.min(end)..start.max(end)
}

/// The LSP range type, renamed to keep it apart from `std::ops::Range`.
pub type Range_ = tower_lsp_server::ls_types::Range;

pub fn change(event: TextDocumentContentChangeEvent) -> Change {
    Change { range: event.range.map(|r| (line_col(r.start), line_col(r.end))), text: event.text }
}
