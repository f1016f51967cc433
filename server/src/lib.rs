//! tensorlens: a language server for deep-learning and GPU code.
//!
//! Layers, lowest first; each depends only on the ones above it in this list:
//! `text` (positions) · `parse` (tree-sitter) · `catalog` · `recognize` · `values` (types of
//! Python values) · `documents` · `ide`
//! (features as pure functions) · `lsp` (protocol glue) · `cli`. `settings` (the settings table and
//! the `Config` read from it) and `kernels` stand beside them.

pub mod c_window;
pub mod catalog;
pub mod cli;
pub mod documents;
pub mod ide;
pub mod kernels;
pub mod lsp;
pub mod panics;
pub mod parse;
pub mod provisional;
pub mod recognize;
pub mod settings;
pub mod shapes;
pub mod text;
pub mod values;
pub mod workspace;

/// Invariants of the code map (ARCHITECTURE.md) that a test can keep true.
#[cfg(test)]
mod tidy {
    fn sources(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }

    #[test]
    fn only_lsp_knows_lsp_types_and_nothing_below_it_imports_it() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 30);
        for (path, text) in files {
            let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            if rel.starts_with("lsp/") || rel == "lib.rs" || rel == "main.rs" {
                continue;
            }
            for needle in ["tower_lsp_server", "ls_types", "crate::lsp", "super::lsp"] {
                assert!(!text.contains(needle), "{rel} uses `{needle}`: only lsp/ may");
            }
        }
    }
}
