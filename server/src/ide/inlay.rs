//! Inlay hints: the shape of each tensor an assignment binds, after its target.

use std::ops::Range;

use crate::catalog::Catalog;
use crate::documents::Document;
use crate::shapes;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlayHint {
    /// The byte offset the hint sits at: the end of the assignment's target.
    pub offset: usize,
    /// `: Tensor[4, 64, 128]`.
    pub label: String,
}

/// The hints for the assignments that start in `range`.
pub fn inlay_hints(doc: &Document, catalog: &Catalog, range: Range<usize>) -> Vec<InlayHint> {
    let Some(values) = doc.values() else { return Vec::new() };
    shapes::hints(&values, catalog, range)
        .into_iter()
        .map(|h| InlayHint { offset: h.offset, label: format!(": {}", h.label) })
        .collect()
}
