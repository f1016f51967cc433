//! tensorlens: a language server for deep-learning and GPU code.
//!
//! Layers, lowest first; each depends only on the ones above it in this list:
//! `text` (positions) · `parse` (tree-sitter) · `catalog` · `recognize` · `values` (types of
//! Python values) · `documents` · `ide`
//! (features as pure functions) · `lsp` (protocol glue) · `cli`. `settings` (the settings table and
//! the `Config` read from it) and `kernels` stand beside them.

pub mod catalog;
pub mod cli;
pub mod documents;
pub mod ide;
pub mod kernels;
pub mod lsp;
pub mod panics;
pub mod parse;
pub mod recognize;
pub mod settings;
pub mod text;
pub mod values;
