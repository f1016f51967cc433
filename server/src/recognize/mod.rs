//! Recognition: a parsed document in, the framework and CUDA references in it out.
//!
//! Pure: no IO, no LSP, no shared state beyond the read-only catalog and the compiled queries.
//! The queries in grammars/ pick the nodes; python.rs and c_family.rs give them meaning.
//!
//! Work is done per top-level item ("chunk": a statement, function or class; in C++ a function or
//! declaration, looking inside namespaces and `extern "C"` blocks). Each chunk's results are kept with
//! offsets relative to its start, so after an edit only the chunks the edit touched are recognized
//! again and the others are reused as they are, wherever they moved. Python names that a chunk does
//! not bind itself are resolved against the module's imports in a second, cheap pass, which is only
//! repeated for untouched chunks when the module's imports changed.

mod c_family;
pub mod captures;
mod python;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use tree_sitter::{InputEdit, Node, Query, Tree};

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
    pub name: Arc<str>,
    pub role: Role,
    pub symbol: Option<SymbolIdx>,
    pub system: Option<SystemIdx>,
}

/// A `__global__` function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub name: Arc<str>,
    pub name_range: Range<usize>,
    pub range: Range<usize>,
}

/// A kernel launch `k<<<config>>>(args)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub kernel: Arc<str>,
    pub kernel_range: Range<usize>,
    pub range: Range<usize>,
    /// The launch configuration as written: grid, block, then optional shared bytes and stream.
    pub config: Vec<Arc<str>>,
}

/// A call written as a statement of its own, so its result is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscardedCall {
    pub symbol: SymbolIdx,
    /// The called name, as written.
    pub name: Arc<str>,
    pub call_range: Range<usize>,
}

/// What one chunk holds, with every range relative to the chunk's start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkData {
    pub references: Vec<Reference>,
    pub kernels: Vec<Kernel>,
    pub launches: Vec<Launch>,
    pub discarded_calls: Vec<DiscardedCall>,
    /// C family: catalogued names this chunk defines or declares as its own functions or macros.
    pub defines: Vec<Arc<str>>,
}

#[derive(Clone, Debug)]
struct Chunk {
    start: usize,
    len: usize,
    /// The node's kind: a reused chunk must be the same kind of statement over the same text.
    kind: u16,
    /// Error recovery can parse the same text differently depending on what follows it, so a chunk
    /// with a syntax error is never reused.
    has_error: bool,
    /// Python: what the chunk binds and leaves unresolved. Empty for C++.
    facts: Arc<python::Facts>,
    data: Arc<ChunkData>,
}

#[derive(Clone, Debug, Default)]
pub struct Recognition {
    chunks: Vec<Chunk>,
    /// Module-level imports, which other cells of the same notebook can see.
    pub module_imports: Vec<ImportBinding>,
    /// Names bound by some module-level import. An edit that binds none of them and imports
    /// nothing leaves the resolution of untouched chunks as it was.
    imported: Arc<std::collections::HashSet<Arc<str>>>,
    /// The other cells' imports this was resolved with.
    outer: Vec<ImportBinding>,
    /// C family: catalogued names the file defines itself (`__device__ float __expf(float)`,
    /// `#define cudaMalloc ...`). Their uses anywhere in the file are the file's own, so they are
    /// left out of every answer; kept per file because a definition in one chunk decides for all.
    shadowed: Arc<std::collections::HashSet<Arc<str>>>,
}

impl PartialEq for Recognition {
    /// Equal when they describe the same findings, however they are split into chunks.
    fn eq(&self, other: &Self) -> bool {
        self.references().eq(other.references())
            && self.kernels().eq(other.kernels())
            && self.launches().eq(other.launches())
            && self.discarded_calls().eq(other.discarded_calls())
            && self.module_imports == other.module_imports
    }
}

impl Eq for Recognition {}

fn shift(range: &Range<usize>, by: usize) -> Range<usize> {
    range.start + by..range.end + by
}

impl Recognition {
    /// Every reference, sorted by start, never overlapping.
    pub fn references(&self) -> impl Iterator<Item = Reference> + '_ {
        self.chunks.iter().flat_map(|c| {
            c.data
                .references
                .iter()
                .filter(|r| !self.is_shadowed(r))
                .map(move |r| Reference { range: shift(&r.range, c.start), ..r.clone() })
        })
    }

    fn is_shadowed(&self, r: &Reference) -> bool {
        !self.shadowed.is_empty() && matches!(r.role, Role::Call | Role::Access) && self.shadowed.contains(&r.name)
    }

    pub fn kernels(&self) -> impl Iterator<Item = Kernel> + '_ {
        self.chunks.iter().flat_map(|c| {
            c.data.kernels.iter().map(move |k| Kernel {
                name: k.name.clone(),
                name_range: shift(&k.name_range, c.start),
                range: shift(&k.range, c.start),
            })
        })
    }

    pub fn launches(&self) -> impl Iterator<Item = Launch> + '_ {
        self.chunks.iter().flat_map(|c| {
            c.data.launches.iter().map(move |l| Launch {
                kernel: l.kernel.clone(),
                kernel_range: shift(&l.kernel_range, c.start),
                range: shift(&l.range, c.start),
                config: l.config.clone(),
            })
        })
    }

    pub fn discarded_calls(&self) -> impl Iterator<Item = DiscardedCall> + '_ {
        self.chunks.iter().flat_map(|c| {
            c.data.discarded_calls.iter().filter(|d| !self.shadowed.contains(&d.name)).map(move |d| DiscardedCall {
                symbol: d.symbol,
                name: d.name.clone(),
                call_range: shift(&d.call_range, c.start),
            })
        })
    }

    /// The reference covering `offset` (a cursor just after a name still counts).
    pub fn reference_at(&self, offset: usize) -> Option<Reference> {
        // The chunk containing the offset, or the one ending right at it.
        let idx = self.chunks.partition_point(|c| c.start + c.len < offset);
        self.chunks[idx.min(self.chunks.len())..].iter().take(2).find_map(|chunk| {
            let rel = offset.checked_sub(chunk.start)?;
            let refs = &chunk.data.references;
            let pos = refs.partition_point(|r| r.range.end < rel);
            let r = refs.get(pos).filter(|r| r.range.start <= rel && rel <= r.range.end && !self.is_shadowed(r))?;
            Some(Reference { range: shift(&r.range, chunk.start), ..r.clone() })
        })
    }
}

/// Recognizes everything in `tree`. `outer_imports` are names imported elsewhere that this text
/// can see (other cells of a notebook).
pub fn recognize(
    language: Language,
    source: &(impl SourceText + ?Sized),
    tree: &Tree,
    catalog: &Catalog,
    outer_imports: &[ImportBinding],
) -> Recognition {
    recognize_incremental(language, source, tree, catalog, outer_imports, None)
}

/// What changed since `previous` was computed: the edits applied to the text, in order.
pub struct Changes<'a> {
    pub previous: &'a Recognition,
    pub edits: &'a [InputEdit],
}

/// Like `recognize`, reusing the chunks of `changes.previous` that no edit touched.
pub fn recognize_incremental(
    language: Language,
    source: &(impl SourceText + ?Sized),
    tree: &Tree,
    catalog: &Catalog,
    outer_imports: &[ImportBinding],
    changes: Option<Changes>,
) -> Recognition {
    // Where each surviving chunk of the previous result sits now.
    let mut survivors: HashMap<(usize, usize), &Chunk> = HashMap::new();
    if let Some(changes) = &changes {
        'chunks: for chunk in &changes.previous.chunks {
            let mut start = chunk.start;
            for edit in changes.edits {
                let end = start + chunk.len;
                if end < edit.start_byte {
                    continue;
                } else if start > edit.old_end_byte {
                    start = start + edit.new_end_byte - edit.old_end_byte;
                } else {
                    continue 'chunks;
                }
            }
            // Error-free text at the top level parses the same, so matching start, length and kind
            // after the edits is enough; tree-sitter's changed ranges would cost a walk of the tree.
            if !chunk.has_error {
                survivors.insert((start, chunk.len), chunk);
            }
        }
    }
    let mut chunks = Vec::new();
    let mut fresh = Vec::new();
    // One cursor for all chunks: creating one allocates, and files can have tens of thousands.
    let mut cursor = tree_sitter::QueryCursor::new();
    let mut reused: std::collections::HashSet<*const python::Facts> = Default::default();
    for node in chunk_nodes(language, tree.root_node()) {
        let (start, len, kind) = (node.start_byte(), node.end_byte() - node.start_byte(), node.kind_id());
        let has_error = node.has_error();
        if let Some(old) = survivors.get(&(start, len)).filter(|old| old.kind == kind && !has_error) {
            reused.insert(Arc::as_ptr(&old.facts));
            chunks.push(Chunk { start, len, kind, has_error, facts: old.facts.clone(), data: old.data.clone() });
            continue;
        }
        fresh.push(chunks.len());
        let bytes = source.bytes(node.byte_range());
        let source = Source { bytes: &bytes, base: start };
        let (facts, data) = match language {
            Language::Python => (python::collect(node, &source, catalog, &mut cursor), ChunkData::default()),
            Language::Cuda | Language::Cpp => {
                (Default::default(), c_family::collect(language, node, &source, catalog, &mut cursor))
            }
        };
        chunks.push(Chunk { start, len, kind, has_error, facts: Arc::new(facts), data: Arc::new(data) });
    }
    let shadowed = chunks.iter().flat_map(|c| c.data.defines.iter().cloned()).collect();
    let mut res = Recognition { chunks, shadowed: Arc::new(shadowed), ..Default::default() };
    if language == Language::Python {
        let previous = changes.as_ref().map(|c| c.previous);
        let removed: Vec<&python::Facts> = previous
            .map(|p| p.chunks.iter().filter(|c| !reused.contains(&Arc::as_ptr(&c.facts))).map(|c| &*c.facts).collect())
            .unwrap_or_default();
        python::resolve(&mut res, &fresh, previous, &removed, catalog, outer_imports);
    }
    res
}

/// The top-level items of a file. C++ containers (namespaces, `extern "C"`, `#if` blocks) are
/// opened so that one edit inside a namespace does not redo the whole file.
fn chunk_nodes(language: Language, root: Node) -> Vec<Node> {
    let mut res = Vec::new();
    let mut stack: Vec<Node> = vec![root];
    while let Some(node) = stack.pop() {
        let mut walker = node.walk();
        let children: Vec<Node> = node.named_children(&mut walker).collect();
        for child in children.into_iter().rev() {
            let container = language != Language::Python
                && matches!(
                    child.kind(),
                    "namespace_definition"
                        | "linkage_specification"
                        | "declaration_list"
                        | "preproc_if"
                        | "preproc_ifdef"
                        | "preproc_else"
                        | "preproc_elif"
                );
            if container {
                stack.push(child);
            } else {
                res.push(child);
            }
        }
        // Children of a container come out in document order: sort once at the end.
    }
    res.sort_by_key(|n| n.start_byte());
    // Containers' own leading tokens (`namespace x {`) are not chunks; nested containers never
    // overlap their children, since only leaves are kept.
    res
}

/// Sorts a chunk's references and drops any that overlap an earlier one.
fn finish_references(references: &mut Vec<Reference>) {
    references.sort_by_key(|r| (r.range.start, r.range.end));
    references.dedup_by(|later, earlier| later.range.start < earlier.range.end);
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
    static QUERIES: [OnceLock<Query>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let idx = match language {
        Language::Python => 0,
        Language::Cuda => 1,
        Language::Cpp => 2,
    };
    QUERIES[idx]
        .get_or_init(|| Query::new(&language.grammar(), &query_source(language)).expect("built-in query compiles"))
}

/// Compiles a language's query on a background thread. Compiling takes tens of milliseconds,
/// which the first opened file would otherwise wait for. The C++ and CUDA queries cost about 14 MB
/// of memory to compile, so they are left to the first file that needs them.
pub fn warm_up(language: Language) {
    let spawned = std::thread::Builder::new().name("tensorlens-queries".into()).spawn(move || {
        query(language);
    });
    if let Err(err) = spawned {
        tracing::debug!("queries will compile on first use: {err}");
    }
}

/// Where the bytes of a document come from. Recognition copies out only the chunks it reads.
pub trait SourceText {
    fn bytes(&self, range: Range<usize>) -> std::borrow::Cow<'_, [u8]>;
}

impl SourceText for [u8] {
    fn bytes(&self, range: Range<usize>) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self[range])
    }
}

impl SourceText for ropey::Rope {
    fn bytes(&self, range: Range<usize>) -> std::borrow::Cow<'_, [u8]> {
        let slice = self.byte_slice(range);
        match slice.as_str() {
            Some(text) => std::borrow::Cow::Borrowed(text.as_bytes()),
            None => {
                let mut bytes = Vec::with_capacity(slice.len_bytes());
                slice.chunks().for_each(|chunk| bytes.extend_from_slice(chunk.as_bytes()));
                std::borrow::Cow::Owned(bytes)
            }
        }
    }
}

/// The bytes of one chunk, addressed by document offsets.
pub(crate) struct Source<'a> {
    bytes: &'a [u8],
    base: usize,
}

impl<'a> Source<'a> {
    /// The text of a node, or "" when the source does not hold valid UTF-8 there.
    pub(crate) fn text(&self, node: Node) -> &'a str {
        let range = node.start_byte() - self.base..node.end_byte() - self.base;
        self.bytes.get(range).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
    }

    /// For tree-sitter, which reads node text only to evaluate query predicates.
    fn provider(&self) -> impl tree_sitter::TextProvider<&'a [u8]> + 'a {
        let (bytes, base) = (self.bytes, self.base);
        move |node: Node| std::iter::once(bytes.get(node.start_byte() - base..node.end_byte() - base).unwrap_or(&[]))
    }
}

#[cfg(test)]
mod tests;
