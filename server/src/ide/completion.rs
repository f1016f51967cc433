//! Completion of members after a dot: `x.` on a tensor lists Tensor's methods, `torch.` the
//! module's names, `self.` a module's own attributes and what it inherits.

use crate::catalog::Catalog;
use crate::documents::Document;
use crate::values;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    Method,
    Function,
    Class,
    Module,
    Attribute,
    Constant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    /// The signature, or the qualified name.
    pub detail: Option<String>,
    /// Our one-line summary, when there is one.
    pub documentation: Option<String>,
}

/// Most classes have a few hundred members at most; a cap keeps a response small on odd input.
const MAX_ITEMS: usize = 2000;

pub fn completions(doc: &Document, catalog: &Catalog, offset: usize) -> Vec<Completion> {
    let Some(dot) = dot_before(doc, offset) else { return Vec::new() };
    let Some(values) = doc.values() else { return Vec::new() };
    let Some(members) = values::members_at(&values, catalog, dot) else { return Vec::new() };
    members
        .into_iter()
        .take(MAX_ITEMS)
        .map(|(label, symbol)| match symbol {
            Some(idx) => {
                let sym = catalog.symbol(idx);
                let kind = match sym.kind.as_ref() {
                    "method" => CompletionKind::Method,
                    "function" | "decorator" => CompletionKind::Function,
                    "class" | "enum" | "type" => CompletionKind::Class,
                    "module" => CompletionKind::Module,
                    "constant" => CompletionKind::Constant,
                    _ => CompletionKind::Attribute,
                };
                Completion {
                    label,
                    kind,
                    detail: Some(sym.signature.as_deref().unwrap_or(&sym.name).to_string()),
                    documentation: sym.is_curated().then(|| super::markdown::escape_markdown(&sym.summary)),
                }
            }
            None => Completion { label, kind: CompletionKind::Attribute, detail: None, documentation: None },
        })
        .collect()
}

/// The dot the identifier being typed at `offset` follows: `x.vi|` or `x.|`.
fn dot_before(doc: &Document, offset: usize) -> Option<usize> {
    let start = offset.saturating_sub(256);
    let text = doc.slice(start..offset);
    let typed = text.chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').map(char::len_utf8).sum::<usize>();
    let before = &text[..text.len() - typed];
    before.ends_with('.').then(|| start + before.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::{catalog, fixture};

    #[test]
    fn members_of_an_annotated_tensor() {
        let (doc, offset) = fixture("a.py", "import torch\ndef f(x: torch.Tensor):\n    x.vi$0\n");
        let items = completions(&doc, catalog(), offset);
        let view = items.iter().find(|c| c.label == "view").expect("view offered");
        assert_eq!(view.kind, CompletionKind::Method);
        assert!(items.iter().all(|c| !c.label.starts_with('_')));
    }

    #[test]
    fn nothing_after_an_unknown_receiver_or_without_a_dot() {
        let (doc, offset) = fixture("a.py", "def f(x):\n    x.$0\n");
        assert!(completions(&doc, catalog(), offset).is_empty());
        let (doc, offset) = fixture("a.py", "import torch\nx = torch$0\n");
        assert!(completions(&doc, catalog(), offset).is_empty());
    }
}
