//! Document links: imports, includes and catalog symbols link to their documentation.

use std::ops::Range;

use crate::catalog::schema::is_safe_link;
use crate::catalog::Catalog;
use crate::documents::Document;
use crate::recognize::Role;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub range: Range<usize>,
    pub target: String,
    pub tooltip: String,
}

pub fn document_links(doc: &Document, catalog: &Catalog) -> Vec<Link> {
    let mut res = Vec::new();
    for reference in doc.recognition.references() {
        // Every `torch.` in a file would be a link otherwise: modules link where they are imported.
        let module_use =
            reference.role != Role::Import && reference.symbol.is_some_and(|s| catalog.kind_of(s) == "module");
        if module_use {
            continue;
        }
        let (target, what) = match (reference.symbol, reference.system) {
            (Some(symbol), _) => (catalog.symbol(symbol).docs.to_string(), reference.name.to_string()),
            // Module roots and headers stand for their system.
            (None, Some(system)) if matches!(reference.role, Role::Import | Role::Include) => {
                let system = catalog.system(system);
                let is_root =
                    reference.role == Role::Include || system.python_modules.iter().any(|m| **m == *reference.name);
                if !is_root {
                    continue;
                }
                (system.docs.to_string(), system.name.to_string())
            }
            _ => continue,
        };
        // Only plain https links leave the server: a user catalog's `command:` or `javascript:`
        // link was refused when it loaded, and this keeps anything else from slipping through.
        if !is_safe_link(&target) {
            continue;
        }
        res.push(Link { range: reference.range, target, tooltip: format!("Open documentation for {what}") });
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::{catalog, fixture};

    #[test]
    fn links_imports_and_calls() {
        let (doc, _) =
            fixture("a.py", "import torch\nimport jax.numpy as jnp\nx = jnp.zeros(3)\ny = torch.unknown_thing\n");
        let links = document_links(&doc, catalog());
        let linked: Vec<String> = links.iter().map(|l| doc.slice(l.range.clone())).collect();
        assert_eq!(linked, ["torch", "jax", "numpy", "jnp", "zeros"]);
        assert!(links.iter().all(|l| l.target.starts_with("https://")));
    }

    #[test]
    fn links_includes() {
        let (doc, _) = fixture("a.cu", "#include <cublas_v2.h>\n#include \"mine.h\"\n");
        let links = document_links(&doc, catalog());
        assert_eq!(links.len(), 1);
        assert_eq!(doc.slice(links[0].range.clone()), "<cublas_v2.h>");
    }
}
