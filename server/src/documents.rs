//! Open documents: text (ropey), tree (tree-sitter, edited incrementally) and what recognition
//! found in it. The sync handlers are the only writers; features read snapshots.
//!
//! Invariant: a document's tree and recognition always describe its current text. Edits are applied
//! in the order they arrive and never await in between, so concurrent handlers cannot reorder them.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use ropey::Rope;
use tree_sitter::{InputEdit, Tree};

use crate::c_window::Items;
use crate::catalog::Catalog;
use crate::kernels::document::DocumentKernels;
use crate::kernels::triton::TritonFile;
use crate::panics::Panic;
use crate::parse::{self, Language};
use crate::provisional::Segments;
use crate::recognize::{self, ImportBinding, Recognition, Role};
use crate::text::{self, LineCol, PositionEncoding};
use crate::values::workspace::UserModules;
use crate::values::ModuleValues;

/// Files above this size are kept as text but not parsed: recognition would stall the editor.
pub const MAX_PARSED_BYTES: usize = 8 * 1024 * 1024;

/// Why a change from the client was refused, or went wrong after it was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeError {
    NotOpen,
    Stale {
        version: i32,
        held: i32,
    },
    PastTheEnd {
        at: LineCol,
        lines: u32,
    },
    Inverted {
        start: LineCol,
        end: LineCol,
    },
    /// The change at `index` of a batch; none of the batch was applied.
    InBatch {
        index: usize,
        error: Box<ChangeError>,
    },
    /// The changes were applied but analysing the new text panicked: the document holds the new
    /// text without a tree or references until the next edit.
    Analysis(Panic),
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::NotOpen => write!(f, "the document is not open"),
            ChangeError::Stale { version, held } => write!(f, "version {version} is older than the {held} held"),
            ChangeError::PastTheEnd { at, lines } => {
                write!(f, "line {} is past the end of a document of {lines} lines", at.line)
            }
            ChangeError::Inverted { start, end } => {
                write!(f, "the range ends ({}:{}) before it starts ({}:{})", end.line, end.col, start.line, start.col)
            }
            ChangeError::InBatch { index, error } => write!(f, "change {index} of the batch: {error}"),
            ChangeError::Analysis(panic) => write!(f, "the change was applied but its analysis failed: {panic}"),
        }
    }
}

/// One change from the client: replace `range` (or everything) with `text`.
#[derive(Clone, Debug)]
pub struct Change {
    pub range: Option<(LineCol, LineCol)>,
    pub text: String,
}

#[derive(Clone)]
pub struct Document {
    pub uri: String,
    pub language: Option<Language>,
    pub version: i32,
    pub rope: Rope,
    pub tree: Option<Tree>,
    pub recognition: Arc<Recognition>,
    /// Cells of one notebook share their imports: the notebook's path, for `vscode-notebook-cell` URIs.
    pub notebook: Option<String>,
    /// Edits applied to the text since the last analysis, for incremental re-recognition.
    pending_edits: Vec<InputEdit>,
    /// The types of values (Python), worked out on first use after each analysis and shared by
    /// the snapshots of this version.
    values: Arc<std::sync::OnceLock<Option<Arc<ModuleValues>>>>,
    /// The kernels it defines, found on first use after each analysis.
    kernels: Arc<std::sync::OnceLock<Option<Arc<DocumentKernels>>>>,
    /// Its Triton kernels (Python), found on first use after each analysis.
    triton: Arc<std::sync::OnceLock<Option<Arc<TritonFile>>>>,
    outer_imports: Arc<[ImportBinding]>,
    /// The workspace modules its imports may name (`from model import GPT`).
    modules: Arc<UserModules>,
    /// The catalog its recognition was made against (`Catalog::id`).
    pub catalog_id: u64,
    /// Changes on every edit and analysis, so that work prepared from a copy can tell whether
    /// the document moved on meanwhile.
    stamp: u64,
    /// The stamp it had when its last analysis began (what `finish_open` compares).
    analysed_from: u64,
    /// Its analysis is behind its text (a big file just opened or just edited): the analysis runs
    /// off the request loop, and hovers meanwhile answer from a window of the text (`provisional`).
    /// The tree and recognition are the last analysis's, for the next one to start from.
    pending: bool,
    /// The top-level statements of a big Python document, moved along by each edit, for windows.
    segments: Option<Arc<Segments>>,
    /// The top-level items of a big C, C++ or CUDA document, the same way (`c_window`).
    items: Option<Arc<Items>>,
}

impl Document {
    pub fn new(uri: &str, language_id: &str, version: i32, text: &str) -> Document {
        Document {
            uri: uri.to_string(),
            language: Language::detect(language_id, uri),
            version,
            rope: Rope::from_str(text),
            tree: None,
            recognition: Arc::default(),
            notebook: notebook_of(uri),
            pending_edits: Vec::new(),
            values: Arc::default(),
            kernels: Arc::default(),
            triton: Arc::default(),
            outer_imports: Arc::from([]),
            modules: Arc::default(),
            catalog_id: 0,
            stamp: 0,
            analysed_from: 0,
            pending: false,
            segments: None,
            items: None,
        }
    }

    fn touch(&mut self) {
        static STAMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.stamp = STAMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The file this document is, on disk: a `file:` URI's path, or a notebook cell's notebook.
    pub fn path(&self) -> Option<PathBuf> {
        file_path(&self.uri)
    }

    pub fn text(&self) -> String {
        self.rope.to_string()
    }

    /// Applies one change to the text and the tree. A column past the end of its line means the
    /// line's end, as the protocol says; a line past the last one, or an end before the start, makes
    /// no sense and is refused with the document left as it was.
    pub fn apply(&mut self, change: &Change, encoding: PositionEncoding) -> Result<(), ChangeError> {
        let Some((start, end)) = change.range else {
            self.touch();
            self.rope = Rope::from_str(&change.text);
            self.tree = None;
            self.pending_edits.clear();
            self.segments = None;
            self.items = None;
            return Ok(());
        };
        let lines = self.rope.len_lines() as u32;
        let start_byte =
            text::offset(&self.rope, start, encoding).ok_or(ChangeError::PastTheEnd { at: start, lines })?;
        let end_byte = text::offset(&self.rope, end, encoding).ok_or(ChangeError::PastTheEnd { at: end, lines })?;
        if start_byte > end_byte {
            return Err(ChangeError::Inverted { start, end });
        }
        let start_position = text::point(&self.rope, start_byte);
        let old_end_position = text::point(&self.rope, end_byte);
        self.touch();
        let start_char = self.rope.byte_to_char(start_byte);
        let end_char = self.rope.byte_to_char(end_byte);
        self.rope.remove(start_char..end_char);
        self.rope.insert(start_char, &change.text);
        let new_end_byte = start_byte + change.text.len();
        if let Some(segments) = &self.segments {
            self.segments = Some(Arc::new(segments.edited(&self.rope, start_byte, end_byte, new_end_byte)));
        }
        if let Some(items) = &self.items {
            self.items = Some(Arc::new(items.edited(&self.rope, start_byte, end_byte, new_end_byte)));
        }
        if let Some(tree) = &mut self.tree {
            let edit = InputEdit {
                start_byte,
                old_end_byte: end_byte,
                new_end_byte,
                start_position,
                old_end_position,
                new_end_position: text::point(&self.rope, new_end_byte),
            };
            tree.edit(&edit);
            self.pending_edits.push(edit);
        }
        Ok(())
    }

    /// Re-parses (incrementally when a tree exists) and re-runs recognition. A panic in them leaves
    /// the text as it is and the document without a tree or references (features answer nothing
    /// for it until the next edit), and comes back as `Err`.
    pub fn analyze(&mut self, catalog: &Catalog, outer_imports: &[ImportBinding]) -> Result<(), Panic> {
        self.analysed_from = self.stamp;
        self.touch();
        self.catalog_id = catalog.id();
        self.pending = false;
        crate::panics::catch(|| self.analyze_unguarded(catalog, outer_imports)).inspect_err(|_| {
            self.tree = None;
            self.pending_edits.clear();
            self.recognition = Arc::default();
            self.values = Arc::default();
            self.kernels = Arc::default();
            self.triton = Arc::default();
        })
    }

    fn analyze_unguarded(&mut self, catalog: &Catalog, outer_imports: &[ImportBinding]) {
        let Some(language) = self.language else { return };
        self.values = Arc::default();
        self.kernels = Arc::default();
        self.triton = Arc::default();
        crate::panics::fault("analysis");
        self.outer_imports = Arc::from(outer_imports);
        if self.rope.len_bytes() > MAX_PARSED_BYTES {
            if self.tree.is_some() || self.version == 0 {
                tracing::warn!(
                    "{}: {} bytes is above the {} byte limit; not analysed",
                    self.uri,
                    self.rope.len_bytes(),
                    MAX_PARSED_BYTES
                );
            }
            self.tree = None;
            self.recognition = Arc::default();
            return;
        }
        if self.defers_analysis() && language == Language::Python && self.segments.is_none() {
            self.segments = Some(Arc::new(Segments::lex(&self.text())));
        }
        if self.defers_analysis() && language != Language::Python && self.items.is_none() {
            self.items = Some(Arc::new(Items::lex(&self.text())));
        }
        let old_tree = self.tree.take();
        let edits = std::mem::take(&mut self.pending_edits);
        self.tree = parse::parse(language, &self.rope, old_tree.as_ref());
        self.recognition = match (&self.tree, &old_tree) {
            (Some(tree), Some(_)) => {
                let changes = recognize::Changes { previous: &self.recognition, edits: &edits };
                Arc::new(recognize::recognize_incremental(
                    language,
                    &self.rope,
                    tree,
                    catalog,
                    outer_imports,
                    Some(changes),
                ))
            }
            (Some(tree), None) => Arc::new(recognize::recognize(language, &self.rope, tree, catalog, outer_imports)),
            (None, _) => Arc::default(),
        };
    }

    /// The imports of the notebook cells above this one (empty for files).
    pub fn outer_imports(&self) -> &[ImportBinding] {
        &self.outer_imports
    }

    /// Whether the document waits for its first analysis (see `DocumentStore::open_pending`).
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Documents at least this big are analysed off the request loop when opened and after each
    /// change: their analysis takes milliseconds, a window of them much less.
    pub const PENDING_BYTES: usize = 64 << 10;

    /// Whether this document is analysed off the request loop (see `PENDING_BYTES`).
    pub fn defers_analysis(&self) -> bool {
        self.language.is_some() && self.rope.len_bytes() >= Self::PENDING_BYTES
    }

    /// For a Python document waiting for its analysis: a copy analysed from the window of its text
    /// a request at `offset` needs (`provisional::python_window`), at the same offsets, to answer
    /// from until the whole file is analysed. `None` when the window would be a quarter of the
    /// file or more (module-level scripts), or the file is too big to analyse at all.
    pub fn provisional(&self, offset: usize, catalog: &Catalog) -> Option<Document> {
        self.window_at(offset, catalog, Some(4))
    }

    /// The window at `offset`, analysed; `None` when it is more than `1 / at_most` of the file.
    /// Only the window's statements are parsed (the tree holds nothing else), from the document's
    /// own text, so every offset is the document's.
    pub fn window_at(&self, offset: usize, catalog: &Catalog, at_most: Option<usize>) -> Option<Document> {
        if self.rope.len_bytes() > MAX_PARSED_BYTES {
            return None;
        }
        match self.language? {
            Language::Python => {}
            language => return self.c_window_at(language, offset, catalog, at_most),
        }
        let lexed;
        let segments = match &self.segments {
            Some(segments) => segments.as_ref(),
            None => {
                lexed = Segments::lex(&self.text());
                &lexed
            }
        };
        let ranges = segments.window(|range| self.rope.byte_slice(range).into(), offset, at_most)?;
        let mut window = self.clone();
        window.pending_edits.clear();
        (window.values, window.kernels, window.triton) = (Arc::default(), Arc::default(), Arc::default());
        window.catalog_id = catalog.id();
        window.pending = false;
        crate::panics::catch(|| {
            window.tree = parse::parse_within(Language::Python, &window.rope, None, &ranges);
            let tree = window.tree.as_ref()?;
            window.recognition =
                Arc::new(recognize::recognize(Language::Python, &window.rope, tree, catalog, &self.outer_imports));
            Some(())
        })
        .ok()
        .flatten()?;
        Some(window)
    }

    /// The window of a C, C++ or CUDA document at `offset` (`c_window`), analysed: the items under
    /// the cursor, then, for a name there whose answer depends on other items, the items that
    /// could define or launch it. `None` when the file's items are unknown (brackets that do not
    /// balance), the cursor is between items, the name is one whose items cannot be told, the
    /// window's text does not parse cleanly, or it is more than `1 / at_most` of the file.
    fn c_window_at(
        &self,
        language: Language,
        offset: usize,
        catalog: &Catalog,
        at_most: Option<usize>,
    ) -> Option<Document> {
        let text = self.text();
        let lexed;
        let items = match &self.items {
            Some(items) => items.as_ref(),
            None => {
                lexed = Items::lex(&text);
                &lexed
            }
        };
        let mut ranges = items.around(offset);
        if ranges.is_empty() {
            return None;
        }
        let first = self.analysed_window(language, &ranges, catalog)?;
        let Some(reference) = first.recognition.reference_at(offset) else { return Some(first) };
        let plain = |name: &str| {
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit()
        };
        let word = match reference.role {
            // Only plain names are ever the file's own (`Recognition::shadowed`).
            Role::Call | Role::Access if plain(&reference.name) => reference.name.to_string(),
            // A kernel defined or launched as `ops::scale` or `tiled<4>` is written with its last
            // name before `(` or `<`.
            Role::Launch | Role::KernelDefinition => {
                let head = reference.name.split('<').next().unwrap_or_default();
                let last = head.rsplit("::").next().unwrap_or_default().trim();
                if !plain(last) {
                    return None;
                }
                last.to_string()
            }
            _ => return Some(first),
        };
        let before = ranges.clone();
        for range in items.naming(&text, &word) {
            if !ranges.contains(&range) {
                ranges.push(range);
            }
        }
        if ranges == before {
            return Some(first);
        }
        ranges.sort_by_key(|r| r.start);
        let kept: usize = ranges.iter().map(|r| r.len()).sum();
        if at_most.is_some_and(|n| kept > items.total() / n) {
            return None;
        }
        self.analysed_window(language, &ranges, catalog)
    }

    /// A copy of this document with only `ranges` parsed and recognized, at the document's own
    /// offsets; `None` when they do not parse cleanly (then they might not parse as in the file).
    fn analysed_window(&self, language: Language, ranges: &[Range<usize>], catalog: &Catalog) -> Option<Document> {
        let mut window = self.clone();
        window.pending_edits.clear();
        (window.values, window.kernels, window.triton) = (Arc::default(), Arc::default(), Arc::default());
        window.catalog_id = catalog.id();
        window.pending = false;
        crate::panics::catch(|| {
            window.tree = parse::parse_within(language, &window.rope, None, ranges);
            let tree = window.tree.as_ref().filter(|tree| !tree.root_node().has_error())?;
            window.recognition = Arc::new(recognize::recognize(language, &window.rope, tree, catalog, &[]));
            Some(())
        })
        .ok()
        .flatten()?;
        Some(window)
    }

    /// The value types of a Python document, computed lazily for this version.
    pub fn values(&self) -> Option<Arc<ModuleValues>> {
        self.values
            .get_or_init(|| {
                let tree = self.tree.as_ref().filter(|_| self.language == Some(Language::Python))?;
                let path = self.path().map(|p| Arc::from(p.as_path()));
                let values = ModuleValues::new(Arc::from(self.text()), tree.clone(), &self.outer_imports)
                    .in_workspace(path, Some(self.modules.clone()));
                Some(Arc::new(values))
            })
            .clone()
    }

    /// The kernels of this version (CUDA files, and CUDA source in Python strings), found from
    /// the document's own tree where it has one.
    pub fn kernels(&self) -> Option<Arc<DocumentKernels>> {
        self.kernels
            .get_or_init(|| {
                let language = self.language?;
                let kernels = DocumentKernels::of_parsed(&self.text(), language, self.tree.as_ref());
                Some(Arc::new(kernels))
            })
            .clone()
    }

    /// The Triton kernels of a Python document, read from its tree with names resolved through
    /// its recognition (so `import triton.language as tl` and `from triton import jit` count).
    pub fn triton(&self) -> Option<Arc<TritonFile>> {
        self.triton
            .get_or_init(|| {
                let tree = self.tree.as_ref().filter(|_| self.language == Some(Language::Python))?;
                let text = self.text();
                if !text.contains("triton") {
                    return None;
                }
                let names: HashMap<usize, Arc<str>> =
                    self.recognition.references().map(|r| (r.range.end, r.name.clone())).collect();
                let file = TritonFile::find(&text, tree, &|end| names.get(&end).map(|n| n.to_string()));
                (!file.functions.is_empty()).then(|| Arc::new(file))
            })
            .clone()
    }

    pub fn offset(&self, pos: LineCol, encoding: PositionEncoding) -> Option<usize> {
        text::offset(&self.rope, pos, encoding)
    }

    pub fn position(&self, byte: usize, encoding: PositionEncoding) -> LineCol {
        text::position(&self.rope, byte, encoding)
    }

    pub fn range(&self, range: &Range<usize>, encoding: PositionEncoding) -> (LineCol, LineCol) {
        (self.position(range.start, encoding), self.position(range.end, encoding))
    }

    pub fn slice(&self, range: Range<usize>) -> String {
        let len = self.rope.len_bytes();
        let start = self.rope.byte_to_char(range.start.min(len));
        let end = self.rope.byte_to_char(range.end.min(len));
        self.rope.slice(start..end).to_string()
    }
}

/// `vscode-notebook-cell:/path/nb.ipynb#W0sZmlsZQ%3D%3D` -> `/path/nb.ipynb`.
fn notebook_of(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("vscode-notebook-cell:")?;
    Some(rest.split('#').next().unwrap_or(rest).to_string())
}

/// The path of a `file:` URI (percent-decoded), or of the notebook a `vscode-notebook-cell:` URI
/// is a cell of. Other schemes (untitled buffers) have none.
pub fn file_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://").or_else(|| uri.strip_prefix("vscode-notebook-cell:"))?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let rest = rest.split(['#', '?']).next().unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

/// Documents re-analysed against a new catalog, off the store, with the analysis stamps they had
/// when copied.
pub struct Reanalysis {
    catalog_id: u64,
    stamps: HashMap<String, u64>,
    docs: HashMap<String, Document>,
}

/// Every open document, keyed by URI.
#[derive(Default, Clone)]
pub struct DocumentStore {
    docs: HashMap<String, Document>,
    modules: Arc<UserModules>,
    /// Pending documents whose analysis off the loop is on its way (`Changed::Pending`).
    analysing: std::collections::HashSet<String>,
}

/// What a change left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Analysed at once: every answer is up to date.
    Analysed,
    /// A big document, left pending: its analysis runs off the request loop, started by the
    /// caller when `start` (else one on its way picks up the new text), finished by `finish_open`.
    Pending { start: bool },
}

impl DocumentStore {
    pub fn get(&self, uri: &str) -> Option<&Document> {
        self.docs.get(uri)
    }

    pub fn uris(&self) -> impl Iterator<Item = &String> {
        self.docs.keys()
    }

    /// Opens a document; it is kept (text and version) even when its analysis panics.
    pub fn open(&mut self, mut doc: Document, catalog: &Catalog) -> Result<(), Panic> {
        doc.modules = self.modules.clone();
        let outer = self.outer_imports(&doc);
        let analyzed = doc.analyze(catalog, &outer);
        let notebook = doc.notebook.clone();
        let uri = doc.uri.clone();
        self.docs.insert(uri.clone(), doc);
        self.refresh_notebook(notebook.as_deref(), &uri, catalog);
        analyzed
    }

    /// Opens a document without analysing it: the caller analyses a copy off the request loop
    /// and hands it to `finish_open`. Edits meanwhile change only the text.
    pub fn open_pending(&mut self, mut doc: Document) {
        doc.modules = self.modules.clone();
        doc.outer_imports = Arc::from(self.outer_imports(&doc));
        doc.pending = true;
        self.analysing.insert(doc.uri.clone());
        self.docs.insert(doc.uri.clone(), doc);
    }

    /// Puts in the analysis of a pending document's copy, when the document is still the one
    /// copied (same version, still pending) and the catalog the same; `false` means analyse a new
    /// copy.
    pub fn finish_open(&mut self, analyzed: Document, catalog: &Catalog) -> bool {
        match self.install_analysis(analyzed, catalog) {
            Some(uri) => {
                self.analysing.remove(&uri);
                true
            }
            None => false,
        }
    }

    /// `finish_open` without the bookkeeping: the URI when done, `None` to analyse a new copy.
    fn install_analysis(&mut self, analyzed: Document, catalog: &Catalog) -> Option<String> {
        let Some(doc) = self.docs.get_mut(&analyzed.uri) else { return Some(analyzed.uri) };
        if !doc.pending {
            return Some(analyzed.uri); // analysed meanwhile (a catalog reload does that)
        }
        if doc.stamp != analyzed.analysed_from || analyzed.catalog_id != catalog.id() {
            return None; // edited since the copy was taken, or another catalog
        }
        let notebook = analyzed.notebook.clone();
        let uri = analyzed.uri.clone();
        *doc = Document { modules: self.modules.clone(), ..analyzed };
        self.refresh_notebook(notebook.as_deref(), &uri, catalog);
        Some(uri)
    }

    /// A copy of a pending document, for its analysis off the loop; `None` when it is not
    /// pending (any more: a catalog reload analyses every document), which ends that analysis.
    pub fn pending_copy(&mut self, uri: &str) -> Option<Document> {
        match self.docs.get(uri) {
            Some(doc) if doc.pending => Some(doc.clone()),
            _ => {
                self.analysing.remove(uri);
                None
            }
        }
    }

    pub fn close(&mut self, uri: &str) -> Option<Document> {
        self.analysing.remove(uri);
        self.docs.remove(uri)
    }

    /// Applies a batch of changes for `version`, all or none: a batch with a change that makes no
    /// sense, for a document that is not open or for an older version leaves everything as it was
    /// (the client's next full sync repairs it).
    pub fn change(
        &mut self,
        uri: &str,
        version: i32,
        changes: &[Change],
        encoding: PositionEncoding,
        catalog: &Catalog,
    ) -> Result<Changed, ChangeError> {
        let Some(doc) = self.docs.get_mut(uri) else {
            return Err(ChangeError::NotOpen);
        };
        if version < doc.version {
            return Err(ChangeError::Stale { version, held: doc.version });
        }
        let imports_before = doc.recognition.module_imports.clone();
        // Cheap copies (a rope and a tree share their nodes) to put back if a later change fails.
        let before =
            (doc.rope.clone(), doc.tree.clone(), doc.pending_edits.len(), doc.segments.clone(), doc.items.clone());
        for (index, change) in changes.iter().enumerate() {
            if let Err(error) = doc.apply(change, encoding) {
                (doc.rope, doc.tree, doc.segments, doc.items) = (before.0, before.1, before.3, before.4);
                doc.pending_edits.truncate(before.2);
                return Err(ChangeError::InBatch { index, error: Box::new(error) });
            }
        }
        doc.version = version;
        if doc.pending || doc.defers_analysis() {
            // The analysis off the loop (on its way, or started by the caller) starts from this
            // text; until it is in, hovers answer from windows.
            doc.pending = true;
            return Ok(Changed::Pending { start: self.analysing.insert(uri.to_string()) });
        }
        let mut doc = self.docs.remove(uri).expect("present above");
        let outer = self.outer_imports(&doc);
        let analyzed = doc.analyze(catalog, &outer);
        let notebook = doc.notebook.clone();
        let imports_changed = doc.recognition.module_imports != imports_before;
        self.docs.insert(uri.to_string(), doc);
        if imports_changed {
            self.refresh_notebook(notebook.as_deref(), uri, catalog);
        }
        analyzed.map(|()| Changed::Analysed).map_err(ChangeError::Analysis)
    }

    /// The workspace modules now on disk: every document's value types are worked out again
    /// against them (recognition does not depend on them and is kept).
    pub fn set_modules(&mut self, modules: Arc<UserModules>) {
        if self.modules.same_as(&modules) {
            return; // keeps the value types already worked out
        }
        self.modules = modules;
        for doc in self.docs.values_mut() {
            doc.modules = self.modules.clone();
            doc.values = Arc::default();
        }
    }

    pub fn modules(&self) -> &Arc<UserModules> {
        &self.modules
    }

    /// The open Python documents that are files: what the workspace loader starts from.
    pub fn python_files(&self) -> Vec<crate::values::workspace::Seed> {
        self.docs
            .values()
            .filter(|d| d.language == Some(Language::Python))
            // A pending document's tree is its last analysis's, not its text's.
            .filter(|d| !d.pending)
            .filter_map(|d| {
                Some(crate::values::workspace::Seed {
                    path: d.path()?,
                    text: Arc::from(d.text()),
                    tree: d.tree.clone()?,
                })
            })
            .collect()
    }

    /// Re-analyses every document from scratch after the catalog changed: what was recognized
    /// with the old catalog cannot be reused.
    pub fn reanalyze_all(&mut self, catalog: &Catalog) {
        let uris: Vec<String> = self.docs.keys().cloned().collect();
        for uri in uris {
            let mut doc = self.docs.remove(&uri).expect("listed above");
            doc.recognition = Arc::default();
            let outer = self.outer_imports(&doc);
            if let Err(panic) = doc.analyze(catalog, &outer) {
                tracing::error!("{uri}: analysis failed: {panic}\n{}", panic.backtrace);
            }
            self.docs.insert(uri, doc);
        }
    }

    /// The documents re-analysed against `catalog`, worked out on a copy (documents are cheap to
    /// copy) so that the store's owner need not hold its lock meanwhile; `install` puts them in.
    pub fn reanalyzed(mut self, catalog: &Catalog) -> Reanalysis {
        let stamps = self.docs.iter().map(|(uri, doc)| (uri.clone(), doc.stamp)).collect();
        self.reanalyze_all(catalog);
        Reanalysis { catalog_id: catalog.id(), stamps, docs: self.docs }
    }

    /// Installs documents re-analysed against `catalog`: those that did not change since the copy
    /// was taken are swapped in; any other (edited or opened meanwhile) is analysed again here.
    /// Afterwards every document is recognized against `catalog`.
    pub fn install(&mut self, reanalysis: Reanalysis, catalog: &Catalog) {
        debug_assert_eq!(reanalysis.catalog_id, catalog.id());
        let Reanalysis { stamps, mut docs, .. } = reanalysis;
        let mut stale = Vec::new();
        for (uri, doc) in self.docs.iter_mut() {
            let unchanged = stamps.get(uri) == Some(&doc.stamp);
            match docs.remove(uri) {
                Some(mut fresh) if unchanged && fresh.catalog_id == catalog.id() => {
                    if !Arc::ptr_eq(&fresh.modules, &self.modules) {
                        fresh.modules = self.modules.clone();
                        fresh.values = Arc::default();
                    }
                    *doc = fresh;
                }
                _ => stale.push(uri.clone()),
            }
        }
        for uri in stale {
            let mut doc = self.docs.remove(&uri).expect("listed above");
            doc.recognition = Arc::default();
            let outer = self.outer_imports(&doc);
            if let Err(panic) = doc.analyze(catalog, &outer) {
                tracing::error!("{uri}: analysis failed: {panic}\n{}", panic.backtrace);
            }
            self.docs.insert(uri, doc);
        }
    }

    /// Imports made at module level in the other cells of the same notebook.
    fn outer_imports(&self, doc: &Document) -> Vec<ImportBinding> {
        let Some(notebook) = &doc.notebook else { return Vec::new() };
        self.docs
            .values()
            .filter(|other| other.uri != doc.uri && other.notebook.as_ref() == Some(notebook))
            .flat_map(|other| other.recognition.module_imports.iter().cloned())
            .collect()
    }

    /// Re-analyses the other cells of a notebook after one cell's imports changed.
    fn refresh_notebook(&mut self, notebook: Option<&str>, changed: &str, catalog: &Catalog) {
        let Some(notebook) = notebook else { return };
        let siblings: Vec<String> = self
            .docs
            .values()
            .filter(|d| d.uri != changed && d.notebook.as_deref() == Some(notebook))
            .map(|d| d.uri.clone())
            .collect();
        for uri in siblings {
            let mut doc = self.docs.remove(&uri).expect("listed above");
            let outer = self.outer_imports(&doc);
            if let Err(panic) = doc.analyze(catalog, &outer) {
                tracing::error!("{uri}: analysis failed: {panic}\n{}", panic.backtrace);
            }
            self.docs.insert(uri, doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::catalog;
    use proptest::prelude::*;

    const BASE: &str = "import torch.nn.functional as F\r\nimport jax.numpy as jnp  # 张量 🔥\n\ndef f(x):\n    return F.relu(jnp.ones(3)) + torch.zeros(1)\n";

    /// An edit as the client would send it: positions in UTF-16, replacing a range with text.
    fn edit_strategy() -> impl Strategy<Value = (u32, u32, u32, u32, String)> {
        let text = proptest::collection::vec(
            prop_oneof![
                Just("torch."),
                Just("F"),
                Just("jnp"),
                Just("张"),
                Just("🔥"),
                Just("\n"),
                Just("\r\n"),
                Just(" "),
                Just("import torch\n"),
                Just("("),
                Just(")"),
                Just("x"),
                Just("é"),
            ],
            0..4,
        )
        .prop_map(|parts| parts.concat());
        (0u32..8, 0u32..50, 0u32..8, 0u32..50, text)
    }

    fn utf16_offset_to_byte(text: &str, line: u32, col: u32) -> Option<usize> {
        // An independent model of the conversion: walk the string.
        let rope = Rope::from_str(text);
        text::offset(&rope, LineCol { line, col }, PositionEncoding::Utf16)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Incremental edits leave text, tree and references as a full parse of the final text would.
        #[test]
        fn incremental_matches_full_reparse(edits in proptest::collection::vec(edit_strategy(), 1..25)) {
            let mut doc = Document::new("file:///a.py", "python", 0, BASE);
            doc.analyze(catalog(), &[]).unwrap();
            let mut model = BASE.to_string();
            for (l1, c1, l2, c2, text) in edits {
                let a = utf16_offset_to_byte(&model, l1, c1);
                let b = utf16_offset_to_byte(&model, l2, c2);
                let change = Change { range: Some((LineCol { line: l1, col: c1 }, LineCol { line: l2, col: c2 })), text: text.clone() };
                let applied = doc.apply(&change, PositionEncoding::Utf16);
                match (a, b) {
                    (Some(start), Some(end)) if start <= end => {
                        prop_assert!(applied.is_ok());
                        model.replace_range(start..end, &text);
                    }
                    // Past the last line or inverted: refused, the text as it was.
                    _ => prop_assert!(applied.is_err()),
                }
                doc.analyze(catalog(), &[]).unwrap();
            }
            prop_assert_eq!(doc.text(), model.clone());
            let mut fresh = Document::new("file:///a.py", "python", 0, &model);
            fresh.analyze(catalog(), &[]).unwrap();
            prop_assert_eq!(doc.tree.as_ref().unwrap().root_node().to_sexp(), fresh.tree.as_ref().unwrap().root_node().to_sexp());
            prop_assert_eq!(&doc.recognition, &fresh.recognition);
        }
    }

    /// Regression: error recovery parsed the same text differently once the text after it changed,
    /// and a chunk with a syntax error was reused from before (found by the property test above).
    #[test]
    fn chunks_with_syntax_errors_are_recognized_again() {
        let mut doc = Document::new("file:///a.py", "python", 0, BASE);
        doc.analyze(catalog(), &[]).unwrap();
        let lc = |line, col| LineCol { line, col };
        for (start, end, text) in
            [(lc(0, 13), lc(1, 0), "F🔥x"), (lc(0, 28), lc(0, 28), ""), (lc(1, 0), lc(1, 0), "🔥")]
        {
            doc.apply(&Change { range: Some((start, end)), text: text.into() }, PositionEncoding::Utf16).unwrap();
            doc.analyze(catalog(), &[]).unwrap();
        }
        let mut fresh = Document::new("file:///a.py", "python", 0, &doc.text());
        fresh.analyze(catalog(), &[]).unwrap();
        assert_eq!(doc.recognition, fresh.recognition);
    }

    #[test]
    fn stale_and_unknown_changes_are_refused() {
        let mut store = DocumentStore::default();
        store.open(Document::new("file:///a.py", "python", 5, "import torch\n"), catalog()).unwrap();
        let change = [Change { range: None, text: "x".into() }];
        assert_eq!(
            store.change("file:///a.py", 4, &change, PositionEncoding::Utf16, catalog()),
            Err(ChangeError::Stale { version: 4, held: 5 })
        );
        assert_eq!(
            store.change("file:///missing.py", 9, &change, PositionEncoding::Utf16, catalog()),
            Err(ChangeError::NotOpen)
        );
        assert_eq!(store.get("file:///a.py").unwrap().text(), "import torch\n");
    }

    #[test]
    fn a_batch_with_a_change_that_makes_no_sense_is_refused_whole() {
        let mut store = DocumentStore::default();
        let text = "import torch\ntorch.zeros(1)\n";
        store.open(Document::new("file:///a.py", "python", 1, text), catalog()).unwrap();
        let lc = |line, col| LineCol { line, col };
        let fine = Change { range: Some((lc(1, 0), lc(1, 5))), text: "jax".into() };
        for bad in [
            Change { range: Some((lc(1, 9), lc(0, 2))), text: String::new() },
            Change { range: Some((lc(0, 0), lc(7, 0))), text: "x".into() },
        ] {
            let got = store.change("file:///a.py", 2, &[fine.clone(), bad], PositionEncoding::Utf16, catalog());
            assert!(matches!(got, Err(ChangeError::InBatch { index: 1, .. })), "{got:?}");
            let doc = store.get("file:///a.py").unwrap();
            assert_eq!((doc.text().as_str(), doc.version), (text, 1));
        }
        // The tree still matches the text: a later valid edit parses as a fresh document would.
        assert!(store.change("file:///a.py", 3, &[fine], PositionEncoding::Utf16, catalog()).is_ok());
        let doc = store.get("file:///a.py").unwrap();
        let mut fresh = Document::new("file:///a.py", "python", 0, &doc.text());
        fresh.analyze(catalog(), &[]).unwrap();
        assert_eq!(
            doc.tree.as_ref().unwrap().root_node().to_sexp(),
            fresh.tree.as_ref().unwrap().root_node().to_sexp()
        );
        assert_eq!(doc.recognition, fresh.recognition);
    }

    #[test]
    fn notebook_cells_share_imports() {
        let mut store = DocumentStore::default();
        let cell = |n: &str| format!("vscode-notebook-cell:/w/train.ipynb#W{n}sZmlsZQ%3D%3D");
        store.open(Document::new(&cell("0"), "python", 1, "import torch.nn.functional as F\n"), catalog()).unwrap();
        store.open(Document::new(&cell("1"), "python", 1, "y = F.gelu(x)\n"), catalog()).unwrap();
        let names: Vec<_> =
            store.get(&cell("1")).unwrap().recognition.references().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["torch.nn.functional", "torch.nn.functional.gelu"]);
        // Removing the import in the first cell updates the second.
        let change = [Change { range: None, text: "\n".into() }];
        assert!(store.change(&cell("0"), 2, &change, PositionEncoding::Utf16, catalog()).is_ok());
        assert!(store.get(&cell("1")).unwrap().recognition.references().next().is_none());
        // Another notebook does not see them.
        store
            .open(Document::new("vscode-notebook-cell:/w/other.ipynb#W0", "python", 1, "F.gelu(x)\n"), catalog())
            .unwrap();
        assert!(store.get("vscode-notebook-cell:/w/other.ipynb#W0").unwrap().recognition.references().next().is_none());
    }

    #[test]
    fn huge_files_are_kept_but_not_parsed() {
        let text = "x = 1\n".repeat(MAX_PARSED_BYTES / 6 + 10);
        let mut doc = Document::new("file:///big.py", "python", 0, &text);
        doc.analyze(catalog(), &[]).unwrap();
        assert!(doc.tree.is_none());
        assert_eq!(doc.rope.len_bytes(), text.len());
    }
}
