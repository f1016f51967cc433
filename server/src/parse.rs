//! Tree-sitter parsing per language, full and incremental. Never fails: a parser that gives up
//! (time-out, cancellation) leaves the previous tree in place and the caller carries on.
//!
//! This module knows grammars and trees, not LSP and not the catalog.

use std::cell::RefCell;

use ropey::Rope;
use tree_sitter::{Parser, Tree};

/// The source languages tensorlens understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    Python,
    Cuda,
    Cpp,
}

impl Language {
    /// From an LSP `languageId` first, else from the file extension of the URI or path. A `.cu` or
    /// `.cuh` file is CUDA whatever the client calls it: Helix sends `cpp` for them, and some
    /// clients send one language id for every file of a server.
    pub fn detect(language_id: &str, path: &str) -> Option<Language> {
        if Language::from_path(path) == Some(Language::Cuda) {
            return Some(Language::Cuda);
        }
        match language_id {
            "python" => return Some(Language::Python),
            "cuda" | "cuda-cpp" | "cuda-c" => return Some(Language::Cuda),
            "c" | "cpp" | "objective-c" | "objective-cpp" => return Some(Language::Cpp),
            _ => {}
        }
        Language::from_path(path)
    }

    pub fn from_path(path: &str) -> Option<Language> {
        // Notebook cells (`vscode-notebook-cell:/x.ipynb#W1`) are named by the notebook.
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let ext = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())?;
        match ext.as_str() {
            "py" | "pyi" | "ipynb" => Some(Language::Python),
            "cu" | "cuh" => Some(Language::Cuda),
            "c" | "cc" | "cpp" | "cxx" | "h" | "hh" | "hpp" | "hxx" | "cl" => Some(Language::Cpp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Cuda => "cuda",
            Language::Cpp => "cpp",
        }
    }

    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Cuda => tree_sitter_cuda::LANGUAGE.into(),
            Language::Cpp => tree_sitter_cpp::LANGUAGE.into(),
        }
    }
}

thread_local! {
    // Parsers are cheap to keep and not Sync; one per thread per language.
    static PARSERS: RefCell<Vec<(Language, Parser)>> = const { RefCell::new(Vec::new()) };
}

/// Parses a string held whole (kernel sources, strings embedded in Python), without a previous tree.
pub fn parse_str(language: Language, text: &str) -> Option<Tree> {
    parse(language, &Rope::from_str(text), None)
}

/// Parses `rope`, reusing `old_tree` (already edited to match) when given.
pub fn parse(language: Language, rope: &Rope, old_tree: Option<&Tree>) -> Option<Tree> {
    parse_within(language, rope, old_tree, &[])
}

/// Parses only the given byte ranges of `rope` (whole statements, in order), as if the rest were
/// not there; nodes keep the rope's offsets. Empty `ranges`: all of it.
pub fn parse_within(
    language: Language,
    rope: &Rope,
    old_tree: Option<&Tree>,
    ranges: &[std::ops::Range<usize>],
) -> Option<Tree> {
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let idx = match parsers.iter().position(|(lang, _)| *lang == language) {
            Some(idx) => idx,
            None => {
                let mut parser = Parser::new();
                if let Err(err) = parser.set_language(&language.grammar()) {
                    tracing::error!("cannot load the {} grammar: {err}", language.name());
                    return None;
                }
                parsers.push((language, parser));
                parsers.len() - 1
            }
        };
        let parser = &mut parsers[idx].1;
        let included: Vec<tree_sitter::Range> = ranges
            .iter()
            .map(|r| tree_sitter::Range {
                start_byte: r.start,
                end_byte: r.end,
                start_point: crate::text::point(rope, r.start),
                end_point: crate::text::point(rope, r.end),
            })
            .collect();
        if parser.set_included_ranges(&included).is_err() {
            return None;
        }
        let mut read = |byte: usize, _point: tree_sitter::Point| -> &[u8] {
            if byte >= rope.len_bytes() {
                return &[];
            }
            let (chunk, chunk_start, _, _) = rope.chunk_at_byte(byte);
            &chunk.as_bytes()[byte - chunk_start..]
        };
        let tree = parser.parse_with_options(&mut read, old_tree, None);
        if !included.is_empty() {
            // The parser is kept for the next file: all of it, by default.
            let _ = parser.set_included_ranges(&[]);
        }
        tree
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_files_are_cuda_whatever_the_client_calls_them() {
        assert_eq!(Language::detect("cpp", "file:///k/gemm.cu"), Some(Language::Cuda));
        assert_eq!(Language::detect("python", "file:///k/gemm.cuh"), Some(Language::Cuda));
        assert_eq!(Language::detect("cpp", "file:///k/gemm.cpp"), Some(Language::Cpp));
        assert_eq!(Language::detect("python", "vscode-notebook-cell:/n.ipynb#W1"), Some(Language::Python));
    }

    #[test]
    fn detects_languages() {
        assert_eq!(Language::detect("python", "file:///a.txt"), Some(Language::Python));
        assert_eq!(Language::detect("", "file:///k.cuh"), Some(Language::Cuda));
        assert_eq!(Language::detect("cuda-cpp", "untitled:1"), Some(Language::Cuda));
        assert_eq!(Language::detect("", "vscode-notebook-cell:/n.ipynb#W1sZmlsZQ%3D%3D"), Some(Language::Python));
        assert_eq!(Language::detect("", "file:///x.HPP"), Some(Language::Cpp));
        assert_eq!(Language::detect("plaintext", "file:///README"), None);
    }

    #[test]
    fn parses_each_language() {
        for (lang, src) in [
            (Language::Python, "import torch\n"),
            (Language::Cuda, "__global__ void k(float* x) { x[threadIdx.x] = 0; }\nint main() { k<<<1, 32>>>(0); }\n"),
            (Language::Cpp, "#include <CL/cl.h>\nint main() { return 0; }\n"),
        ] {
            let tree = parse(lang, &Rope::from_str(src), None).unwrap();
            assert!(!tree.root_node().has_error(), "{lang:?}: {}", tree.root_node().to_sexp());
        }
    }
}
