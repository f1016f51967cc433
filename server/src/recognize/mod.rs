//! Recognition: a parsed document in, the framework and CUDA references in it out.
//!
//! Pure: no IO, no LSP, no shared state beyond the read-only catalog and the compiled queries.
//! The queries in grammars/ pick the nodes; python.rs and c_family.rs give them meaning.

mod c_family;
pub mod captures;
mod python;

use std::ops::Range;
use std::sync::OnceLock;

use tree_sitter::{Query, Tree};

use crate::catalog::{Catalog, SymbolIdx, SystemIdx};
use crate::parse::Language;

pub use python::ImportBinding;

/// What a reference does at its place in the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Import,
    Call,
    Decorator,
    Access,
    Type,
    Include,
    Qualifier,
    /// The kernel named in `k<<<...>>>(...)`.
    Launch,
    /// The name of a `__global__` function defined here.
    KernelDefinition,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Import => "import",
            Role::Call => "call",
            Role::Decorator => "decorator",
            Role::Access => "reference",
            Role::Type => "type",
            Role::Include => "include",
            Role::Qualifier => "qualifier",
            Role::Launch => "kernel launch",
            Role::KernelDefinition => "kernel",
        }
    }
}

/// One recognized name in a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Byte range of the name in the document.
    pub range: Range<usize>,
    /// Fully qualified: `torch.nn.functional.relu`, `cudaMalloc`, `thrust::sort`, `cublas_v2.h`.
    pub name: Box<str>,
    pub role: Role,
    pub symbol: Option<SymbolIdx>,
    pub system: Option<SystemIdx>,
}

/// A `__global__` function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub name: Box<str>,
    pub name_range: Range<usize>,
    pub range: Range<usize>,
}

/// A kernel launch `k<<<config>>>(args)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub kernel: Box<str>,
    pub kernel_range: Range<usize>,
    pub range: Range<usize>,
    /// The launch configuration as written: grid, block, then optional shared bytes and stream.
    pub config: Vec<Box<str>>,
}

/// A call written as a statement of its own, so its result is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscardedCall {
    pub symbol: SymbolIdx,
    pub call_range: Range<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recognition {
    /// Sorted by start, never overlapping.
    pub references: Vec<Reference>,
    pub kernels: Vec<Kernel>,
    pub launches: Vec<Launch>,
    pub discarded_calls: Vec<DiscardedCall>,
    /// Module-level imports, which other cells of the same notebook can see.
    pub module_imports: Vec<ImportBinding>,
}

impl Recognition {
    /// The reference covering `offset` (a cursor just after a name still counts).
    pub fn reference_at(&self, offset: usize) -> Option<&Reference> {
        let idx = self.references.partition_point(|r| r.range.end < offset);
        self.references.get(idx).filter(|r| r.range.start <= offset && offset <= r.range.end)
    }
}

/// Recognizes everything in `tree`. `outer_imports` are names imported elsewhere that this text
/// can see (other cells of a notebook).
pub fn recognize(
    language: Language,
    source: &[u8],
    tree: &Tree,
    catalog: &Catalog,
    outer_imports: &[ImportBinding],
) -> Recognition {
    let mut res = match language {
        Language::Python => python::recognize(source, tree, catalog, outer_imports),
        Language::Cuda | Language::Cpp => c_family::recognize(language, source, tree, catalog),
    };
    res.references.sort_by_key(|r| (r.range.start, r.range.end));
    res.references.dedup_by(|b, a| b.range.start < a.range.end);
    res
}

const PYTHON_QUERY: &str = include_str!("../../../grammars/python/references.scm");
const CPP_QUERY: &str = include_str!("../../../grammars/cpp/references.scm");
const CUDA_QUERY: &str = include_str!("../../../grammars/cuda/references.scm");

/// The query source for a language, with `; inherits:` expanded.
pub fn query_source(language: Language) -> String {
    let own = match language {
        Language::Python => PYTHON_QUERY,
        Language::Cpp => CPP_QUERY,
        Language::Cuda => CUDA_QUERY,
    };
    match own.lines().next().and_then(|line| line.strip_prefix("; inherits:")) {
        Some(parent) if parent.trim() == "cpp" => format!("{CPP_QUERY}\n{own}"),
        _ => own.to_string(),
    }
}

/// The compiled query per language; the queries ship in the binary, so failing to compile is a bug
/// caught by the tests.
pub fn query(language: Language) -> &'static Query {
    static QUERIES: OnceLock<[Query; 3]> = OnceLock::new();
    let queries = QUERIES.get_or_init(|| {
        [Language::Python, Language::Cuda, Language::Cpp]
            .map(|lang| Query::new(&lang.grammar(), &query_source(lang)).expect("built-in query compiles"))
    });
    match language {
        Language::Python => &queries[0],
        Language::Cuda => &queries[1],
        Language::Cpp => &queries[2],
    }
}

/// The text of a node, or "" when the source does not hold valid UTF-8 there.
pub(crate) fn node_text<'a>(node: tree_sitter::Node, source: &'a [u8]) -> &'a str {
    std::str::from_utf8(&source[node.byte_range()]).unwrap_or("")
}

#[cfg(test)]
mod tests;
