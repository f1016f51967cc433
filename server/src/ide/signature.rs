//! Signature help inside a call of a catalog function, method or class: its signature with the
//! parameter being written highlighted, and our words on it.

use std::ops::Range;

use crate::catalog::Catalog;
use crate::documents::Document;
use crate::values::{self, ActiveArgument};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHelp {
    pub label: String,
    pub documentation: Option<String>,
    /// Each parameter's range in `label`, and its own-words summary.
    pub parameters: Vec<(Range<usize>, Option<String>)>,
    pub active_parameter: Option<usize>,
}

pub fn signature_help(doc: &Document, catalog: &Catalog, offset: usize) -> Option<SignatureHelp> {
    let values = doc.values()?;
    let site = values::call_at(&values, catalog, offset)?;
    let symbol = catalog.symbol(site.callee);
    let label = symbol.signature.as_deref()?.to_string();
    let params = values::signature_params(&label);
    let open = label.find('(')?;
    let mut parameters = Vec::new();
    let mut search = open + 1;
    for param in &params {
        let Some(rel) = find_word(&label[search..], &param.name) else { break };
        let start = search + rel;
        let end = start + param.name.len();
        let summary = symbol.params.iter().find(|p| p.name == param.name).map(|p| p.summary.to_string());
        parameters.push((start..end, summary.filter(|s| !s.is_empty())));
        search = end;
    }
    // Positional arguments fill the parameters written before the first `*` or `*args`.
    let keyword_only = keyword_only_start(&label).unwrap_or(usize::MAX);
    let active_parameter = match &site.active {
        ActiveArgument::Keyword(name) => params.iter().position(|p| p.name == *name),
        ActiveArgument::Positional(idx) => {
            let positional = parameters.iter().take_while(|(range, _)| range.start < keyword_only).count();
            (*idx < positional).then_some(*idx)
        }
    };
    Some(SignatureHelp {
        label,
        documentation: symbol.is_curated().then(|| symbol.summary.to_string()),
        parameters,
        active_parameter,
    })
}

/// Where the keyword-only parameters start: after a bare `*` or `*args`.
fn keyword_only_start(label: &str) -> Option<usize> {
    let open = label.find('(')?;
    let inner = &label[open + 1..];
    inner.find('*').map(|at| open + 1 + at)
}

/// The first occurrence of `word` as a whole word.
fn find_word(haystack: &str, word: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(rel) = haystack[from..].find(word) {
        let at = from + rel;
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + word.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::{catalog, fixture};

    #[test]
    fn active_parameter_follows_the_cursor() {
        let (doc, offset) = fixture("a.py", "import torch\ntorch.zeros(3, 4, dtype=$0)\n");
        let help = signature_help(&doc, catalog(), offset).expect("signature help");
        assert!(help.label.starts_with("torch.zeros("), "{}", help.label);
        let active = help.active_parameter.expect("an active parameter");
        let (range, _) = &help.parameters[active];
        assert_eq!(&help.label[range.clone()], "dtype");
    }

    #[test]
    fn no_help_outside_calls_or_for_unknown_callees() {
        let (doc, offset) = fixture("a.py", "import torch\nx = 1$0\n");
        assert_eq!(signature_help(&doc, catalog(), offset), None);
        let (doc, offset) = fixture("a.py", "def f(a): pass\nf($0)\n");
        assert_eq!(signature_help(&doc, catalog(), offset), None);
    }
}
