//! The ecosystem catalog: systems and their symbols, curated words over harvested facts.
//!
//! The built-in part is an index the build embeds in the binary (see `index.rs`) and that is read in
//! place: a symbol is decoded when asked for, borrowing its text from the binary, so start-up and
//! memory stay flat however many facts are harvested. User files (`.tensorlens/catalog/*.toml`) are
//! parsed at run time and layered on top; their problems come back as values, never as panics, and
//! never disable the built-in catalog. Read-only after construction and shared by `Arc`.

pub mod index;
pub mod schema;
mod search;

pub use search::{search, CatalogEntry};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use schema::{CatalogFile, Fix, Param, Related, Symbol, System};

use index::Record;

static SYSTEMS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog_systems.postcard"));
static RECORDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog_records.bin"));
static OFFSETS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog_offsets.bin"));
static NAMES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog_names.bin"));
static NAME_INDEX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog_name_index.bin"));
static RECORD_META: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog_record_meta.bin"));

pub type SystemIdx = u16;
pub type SymbolIdx = u32;

fn u32_at(bytes: &[u8], idx: usize) -> u32 {
    u32::from_le_bytes(bytes[idx * 4..idx * 4 + 4].try_into().expect("four bytes"))
}

/// The embedded symbols, read in place.
struct Builtin;

impl Builtin {
    fn len(&self) -> usize {
        OFFSETS.len() / 4 - 1
    }

    fn record(&self, idx: usize) -> Record<'static> {
        let bytes = &RECORDS[u32_at(OFFSETS, idx) as usize..u32_at(OFFSETS, idx + 1) as usize];
        postcard::from_bytes(bytes).expect("embedded catalog record is valid")
    }

    fn system(&self, idx: usize) -> SystemIdx {
        u16::from_le_bytes([RECORD_META[idx * 4], RECORD_META[idx * 4 + 1]])
    }

    fn kind(&self, idx: usize) -> &'static str {
        schema::KINDS.get(RECORD_META[idx * 4 + 2] as usize).copied().unwrap_or("function")
    }

    fn flags(&self, idx: usize) -> u8 {
        RECORD_META[idx * 4 + 3]
    }

    fn names_len(&self) -> usize {
        NAME_INDEX.len() / 12
    }

    /// The `pos`-th name in sorted order, as bytes: UTF-8 sorts the same as bytes, and lookups
    /// compare many names, so they are not validated as text on the way.
    fn name_bytes(&self, pos: usize) -> &'static [u8] {
        let (start, len) = (u32_at(NAME_INDEX, pos * 3) as usize, u32_at(NAME_INDEX, pos * 3 + 1) as usize);
        &NAMES[start..start + len]
    }

    /// The `pos`-th name in sorted order and the record it stands for.
    fn name(&self, pos: usize) -> (&'static str, u32) {
        let name = std::str::from_utf8(self.name_bytes(pos)).expect("embedded names are UTF-8");
        (name, u32_at(NAME_INDEX, pos * 3 + 2))
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        let pos = self.partition_point(name);
        (pos < self.names_len() && self.name_bytes(pos) == name.as_bytes()).then(|| u32_at(NAME_INDEX, pos * 3 + 2))
    }

    /// The first name position not less than `key`.
    fn partition_point(&self, key: &str) -> usize {
        let (mut lo, mut hi) = (0, self.names_len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.name_bytes(mid) < key.as_bytes() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// User symbols, owned, numbered after the built-in ones.
#[derive(Debug, Default)]
struct UserLayer {
    symbols: Vec<(Symbol<'static>, SystemIdx)>,
    names: Vec<(String, SymbolIdx)>,
    equivalents: HashMap<SymbolIdx, Vec<SymbolIdx>>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    /// Tells catalogs apart: a document records the one it was recognized against, since its
    /// symbol indices mean nothing in another.
    id: u64,
    systems: Vec<System<'static>>,
    user: UserLayer,
    /// Python module roots, C prefixes, headers and namespaces: sorted for binary search.
    python_modules: Vec<(String, SystemIdx)>,
    c_prefixes: Vec<(String, SystemIdx)>,
    headers: Vec<(String, SystemIdx)>,
    namespaces: Vec<(String, SystemIdx)>,
}

/// A problem in a user catalog file, to be shown as a diagnostic on that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFileProblem {
    pub path: PathBuf,
    /// Byte range in the file when it is known.
    pub span: Option<std::ops::Range<usize>>,
    pub message: String,
    /// Whether the file is loaded all the same: a refused link only leaves that link out, and
    /// problems across files leave both files in.
    pub file_loaded: bool,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn builtin() -> Catalog {
        Catalog::new(Vec::new())
    }

    /// The built-in catalog with user files layered on top: a user system replaces the built-in
    /// system of the same id, a user symbol the built-in symbol of the same name.
    pub fn new(user_files: Vec<CatalogFile<'static>>) -> Catalog {
        let mut systems: Vec<System<'static>> = postcard::from_bytes(SYSTEMS).expect("embedded systems are valid");
        let mut user = UserLayer::default();
        for file in user_files {
            let sys_idx = match systems.iter().position(|s| s.id == file.system.id) {
                Some(idx) => {
                    systems[idx] = file.system;
                    idx as SystemIdx
                }
                None => {
                    systems.push(file.system);
                    (systems.len() - 1) as SystemIdx
                }
            };
            for symbol in file.symbols {
                user.symbols.push((symbol, sys_idx));
            }
        }
        let base = Builtin.len() as SymbolIdx;
        for (idx, (symbol, _)) in user.symbols.iter().enumerate() {
            for name in std::iter::once(&symbol.name).chain(&symbol.aliases) {
                user.names.push((name.to_string(), base + idx as SymbolIdx));
            }
        }
        user.names.sort();
        user.names.dedup_by(|later, earlier| later.0 == earlier.0);
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut res = Catalog { id, systems, user, ..Default::default() };
        let mut equivalents: HashMap<SymbolIdx, Vec<SymbolIdx>> = HashMap::new();
        for (idx, (symbol, _)) in res.user.symbols.iter().enumerate() {
            let idx = base + idx as SymbolIdx;
            for target in symbol.equivalents.iter().filter_map(|t| res.lookup(t)) {
                equivalents.entry(idx).or_default().push(target);
                equivalents.entry(target).or_default().push(idx);
            }
        }
        res.user.equivalents = equivalents;
        for (idx, sys) in res.systems.iter().enumerate() {
            let idx = idx as SystemIdx;
            res.python_modules.extend(sys.python_modules.iter().map(|m| (m.to_string(), idx)));
            res.c_prefixes.extend(sys.c_prefixes.iter().map(|m| (m.to_string(), idx)));
            res.headers.extend(sys.headers.iter().map(|m| (m.to_string(), idx)));
            res.namespaces.extend(sys.namespaces.iter().map(|m| (m.to_string(), idx)));
        }
        for list in [&mut res.python_modules, &mut res.c_prefixes, &mut res.headers, &mut res.namespaces] {
            list.sort();
        }
        res
    }

    /// The built-in catalog plus every `*.toml` in `dir`; problems in user files are returned.
    pub fn with_user_dir(dir: &Path) -> (Catalog, Vec<UserFileProblem>) {
        let builtin = Catalog::builtin();
        let (files, problems) = load_user_dir(dir, &builtin);
        (Catalog::new(files), problems)
    }

    /// Unique to this catalog value (user catalog reloads make new ones).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn systems(&self) -> &[System<'static>] {
        &self.systems
    }

    /// Number of symbols, built-in and user (overridden built-in ones included).
    pub fn len(&self) -> usize {
        Builtin.len() + self.user.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every symbol that a name leads to (a built-in symbol a user file overrides is left out).
    pub fn symbols(&self) -> impl Iterator<Item = (SymbolIdx, Symbol<'_>)> + '_ {
        let overrides = !self.user.names.is_empty();
        (0..self.len() as SymbolIdx)
            .map(|idx| (idx, self.symbol(idx)))
            .filter(move |(idx, symbol)| !overrides || self.lookup(&symbol.name) == Some(*idx))
    }

    /// Whether the symbol is deprecated, without decoding it.
    pub fn is_deprecated(&self, idx: SymbolIdx) -> bool {
        match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.flags(idx as usize) & index::FLAG_DEPRECATED != 0,
            Some(user) => self.user.symbols[user].0.deprecated.is_some(),
        }
    }

    /// Whether the symbol returns a status code, without decoding it.
    pub fn returns_status(&self, idx: SymbolIdx) -> bool {
        match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.flags(idx as usize) & index::FLAG_RETURNS_STATUS != 0,
            Some(user) => self.user.symbols[user].0.returns_status(),
        }
    }

    /// Whether our own words describe the symbol, without decoding it.
    pub fn is_curated(&self, idx: SymbolIdx) -> bool {
        match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.flags(idx as usize) & index::FLAG_CURATED != 0,
            Some(user) => self.user.symbols[user].0.is_curated(),
        }
    }

    /// Every name and alias with the symbol it stands for, without decoding any symbol.
    pub fn names(&self) -> impl Iterator<Item = (&str, SymbolIdx)> + '_ {
        let overrides = !self.user.names.is_empty();
        (0..Builtin.names_len())
            .map(|pos| Builtin.name(pos))
            .filter(move |(name, _)| {
                !overrides || self.user.names.binary_search_by(|(n, _)| n.as_str().cmp(name)).is_err()
            })
            .chain(self.user.names.iter().map(|(n, idx)| (n.as_str(), *idx)))
    }

    /// A symbol's kind, without decoding the rest of it.
    pub fn kind_of(&self, idx: SymbolIdx) -> &str {
        match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.kind(idx as usize),
            Some(user) => &self.user.symbols[user].0.kind,
        }
    }

    pub fn symbol(&self, idx: SymbolIdx) -> Symbol<'_> {
        match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.record(idx as usize).symbol,
            Some(user) => self.user.symbols[user].0.reborrow(),
        }
    }

    pub fn system(&self, idx: SystemIdx) -> &System<'static> {
        &self.systems[idx as usize]
    }

    pub fn system_of(&self, idx: SymbolIdx) -> SystemIdx {
        match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.system(idx as usize),
            Some(user) => self.user.symbols[user].1,
        }
    }

    pub fn system_by_id(&self, id: &str) -> Option<SystemIdx> {
        self.systems.iter().position(|s| s.id == id).map(|idx| idx as SystemIdx)
    }

    /// Where the defaults or conventions of a symbol's equivalents differ from its own (the
    /// equivalence groups' `differences`), for the hover.
    pub fn differences(&self, idx: SymbolIdx) -> Option<String> {
        match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.record(idx as usize).differences,
            Some(_) => None,
        }
    }

    /// Symbols in other systems that do the same job, whichever side declared the equivalence.
    pub fn equivalents(&self, idx: SymbolIdx) -> Vec<SymbolIdx> {
        let mut res = match (idx as usize).checked_sub(Builtin.len()) {
            None => Builtin.record(idx as usize).equivalents,
            Some(_) => Vec::new(),
        };
        res.extend(self.user.equivalents.get(&idx).into_iter().flatten());
        // A built-in equivalent that a user symbol overrides is reached through the user symbol.
        if !self.user.names.is_empty() {
            res.retain(|&eq| self.lookup(&self.symbol(eq).name) == Some(eq));
        }
        res.sort();
        res.dedup();
        res
    }

    /// A symbol by its name or one of its aliases; user files win.
    pub fn lookup(&self, name: &str) -> Option<SymbolIdx> {
        if let Ok(pos) = self.user.names.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            return Some(self.user.names[pos].1);
        }
        Builtin.lookup(name)
    }

    /// The system owning a dotted Python name: the longest module root that is a prefix of it.
    pub fn python_system(&self, qualified: &str) -> Option<SystemIdx> {
        let mut prefix = qualified;
        loop {
            if let Ok(pos) = self.python_modules.binary_search_by(|(m, _)| m.as_str().cmp(prefix)) {
                return Some(self.python_modules[pos].1);
            }
            prefix = prefix.rsplit_once('.')?.0;
        }
    }

    /// Whether `module` is a Python module the catalog knows: a module root, or the parent of some
    /// catalog symbol.
    pub fn knows_python_module(&self, module: &str) -> bool {
        if self.python_modules.binary_search_by(|(m, _)| m.as_str().cmp(module)).is_ok() {
            return true;
        }
        self.names_with_prefix(&format!("{module}.")).next().is_some()
    }

    /// The direct public members `module.x` of a Python module (for `from module import *`).
    pub fn python_members(&self, module: &str) -> Vec<(String, SymbolIdx)> {
        let prefix = format!("{module}.");
        let mut res: Vec<(String, SymbolIdx)> = self
            .names_with_prefix(&prefix)
            .filter_map(|(name, idx)| {
                let rest = &name[prefix.len()..];
                (!rest.contains('.') && !rest.starts_with('_')).then(|| (rest.to_string(), idx))
            })
            .collect();
        res.sort();
        res.dedup_by(|later, earlier| later.0 == earlier.0);
        res
    }

    /// Names (built-in and user) starting with `prefix`, with the symbol each stands for.
    fn names_with_prefix<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (String, SymbolIdx)> + 'a {
        let start = Builtin.partition_point(prefix);
        let owned = prefix.to_string();
        let builtin =
            (start..Builtin.names_len()).map(|pos| Builtin.name(pos)).take_while(move |(n, _)| n.starts_with(&owned));
        let user_start = self.user.names.partition_point(|(n, _)| n.as_str() < prefix);
        let owned = prefix.to_string();
        let user = self.user.names[user_start..].iter().take_while(move |(n, _)| n.starts_with(&owned));
        builtin.map(|(n, idx)| (n.to_string(), idx)).chain(user.map(|(n, idx)| (n.clone(), *idx)))
    }

    /// The system owning a C identifier by prefix (`cublasFoo` -> cuBLAS): the prefix must be
    /// followed by an upper-case letter, and the longest prefix wins (`cublas` over `cu`). A
    /// snake-case name such as `cublas_gemm_ex` is a project's own helper, not the library's.
    pub fn c_system(&self, ident: &str) -> Option<SystemIdx> {
        self.c_prefixes
            .iter()
            .filter(|(prefix, _)| {
                let next = ident.strip_prefix(prefix.as_str()).and_then(|rest| rest.bytes().next());
                next.is_some_and(|b| b.is_ascii_uppercase())
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, idx)| *idx)
    }

    /// The system shipping an `#include`d header (`cublas_v2.h`, `CL/cl.h`, `cutlass/gemm/...`).
    pub fn header_system(&self, header: &str) -> Option<SystemIdx> {
        if let Ok(pos) = self.headers.binary_search_by(|(h, _)| h.as_str().cmp(header)) {
            return Some(self.headers[pos].1);
        }
        // A header inside a library's folder belongs to the library that ships that folder.
        let dir = header.split('/').next()?;
        self.headers.iter().find(|(h, _)| h.split('/').next() == Some(dir) && h.contains('/')).map(|(_, idx)| *idx)
    }

    /// The system owning a C++ namespace root (`thrust`, `cub`, `cutlass`).
    pub fn namespace_system(&self, root: &str) -> Option<SystemIdx> {
        self.namespaces.binary_search_by(|(n, _)| n.as_str().cmp(root)).ok().map(|pos| self.namespaces[pos].1)
    }
}

/// Reads user catalog files from `dir`. A file that fails to parse or validate is skipped whole
/// and reported; the others load. Cross-references may point into `builtin`.
pub fn load_user_dir(dir: &Path, builtin: &Catalog) -> (Vec<CatalogFile<'static>>, Vec<UserFileProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (files, problems);
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    let mut texts = Vec::new();
    for path in paths {
        let text = match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    problems.push(UserFileProblem {
                        path,
                        span: None,
                        message: "file is not valid UTF-8".into(),
                        file_loaded: false,
                    });
                    continue;
                }
            },
            Err(err) => {
                problems.push(UserFileProblem {
                    path,
                    span: None,
                    message: format!("cannot read: {err}"),
                    file_loaded: false,
                });
                continue;
            }
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let (file, file_problems) = parse_user_file(&stem, &text);
        let file_loaded = file.is_some();
        problems.extend(file_problems.into_iter().map(|(span, message)| UserFileProblem {
            path: path.clone(),
            span,
            message,
            file_loaded,
        }));
        if let Some(file) = file {
            files.push(file);
            texts.push((path, text));
        }
    }
    let known = |name: &str| builtin.lookup(name).is_some() || builtin.system_by_id(name).is_some();
    let ids: Vec<String> = files.iter().map(|f| f.system.id.to_string()).collect();
    for (id, message) in schema::check_catalog(&files, &known) {
        let idx = ids.iter().position(|i| *i == id);
        let (path, span) = match idx {
            Some(idx) => {
                let (path, text) = &texts[idx];
                (path.clone(), span_of_problem(text, &message))
            }
            None => (dir.join(format!("{id}.toml")), None),
        };
        problems.push(UserFileProblem { path, span, message, file_loaded: idx.is_some() });
    }
    (files, problems)
}

/// Where in a file a validation problem is: the quoted value the message names, found in the text.
/// Messages about a symbol name the symbol first, then the offending value, which is looked for
/// after the symbol's name so that it lands on that symbol's line.
fn span_of_problem(text: &str, message: &str) -> Option<std::ops::Range<usize>> {
    let mut quoted = message.split('"').skip(1).step_by(2);
    let first = format!("\"{}\"", quoted.next()?);
    let first_at = text.find(&first)?;
    if message.starts_with("symbol \"") {
        if let Some(second) = quoted.next().map(|q| format!("\"{q}\"")) {
            if let Some(rel) = text[first_at..].find(&second) {
                let start = first_at + rel;
                return Some(start..start + second.len());
            }
        }
    }
    Some(first_at..first_at + first.len())
}

/// A problem in one file's text: where, when known, and what.
pub type FileProblem = (Option<std::ops::Range<usize>>, String);

/// Parses and checks one user file's text. Returns the file when it is usable: a link that is not
/// a plain https URL is taken out and reported, and leaves the rest of the file usable; any other
/// problem makes the whole file unusable.
pub fn parse_user_file(stem: &str, text: &str) -> (Option<CatalogFile<'static>>, Vec<FileProblem>) {
    match toml::from_str::<CatalogFile>(text) {
        Ok(file) => {
            let mut file = into_owned(file);
            let refused = schema::refuse_unsafe_links(&mut file);
            let fields = schema::check_fields(stem, &file);
            let usable = fields.is_empty();
            let problems: Vec<FileProblem> =
                fields.into_iter().chain(refused).map(|p| (span_of_problem(text, &p), p)).collect();
            (usable.then_some(file), problems)
        }
        Err(err) => (None, vec![(err.span(), err.message().to_string())]),
    }
}

/// TOML text is gone after parsing, so everything borrowed from it is copied.
pub(crate) fn into_owned(file: CatalogFile<'_>) -> CatalogFile<'static> {
    fn own(t: std::borrow::Cow<'_, str>) -> schema::Text<'static> {
        std::borrow::Cow::Owned(t.into_owned())
    }
    fn own_all(list: Vec<std::borrow::Cow<'_, str>>) -> Vec<schema::Text<'static>> {
        list.into_iter().map(own).collect()
    }
    let s = file.system;
    CatalogFile {
        system: System {
            id: own(s.id),
            name: own(s.name),
            group: own(s.group),
            maintainer: own(s.maintainer),
            summary: own(s.summary),
            about: s.about.map(own),
            docs: own(s.docs),
            guide: s.guide.map(own),
            languages: own_all(s.languages),
            python_modules: own_all(s.python_modules),
            c_prefixes: own_all(s.c_prefixes),
            headers: own_all(s.headers),
            namespaces: own_all(s.namespaces),
            domains: own_all(s.domains),
            part_of: s.part_of.map(own),
            related: s.related.into_iter().map(|r| Related { system: own(r.system), how: own(r.how) }).collect(),
        },
        symbols: file
            .symbols
            .into_iter()
            .map(|y| Symbol {
                name: own(y.name),
                kind: own(y.kind),
                signature: y.signature.map(own),
                summary: own(y.summary),
                docs: own(y.docs),
                aliases: own_all(y.aliases),
                equivalents: own_all(y.equivalents),
                deprecated: y.deprecated.map(own),
                replacement: y.replacement.map(own),
                fix: y.fix.map(|f| Fix {
                    kind: own(f.kind),
                    template: f.template.map(own),
                    params: own_all(f.params),
                    safe: f.safe,
                    note: f.note.map(own),
                }),
                returns: y.returns.map(own),
                bases: own_all(y.bases),
                params: y
                    .params
                    .into_iter()
                    .map(|p| Param {
                        name: own(p.name),
                        annotation: p.annotation.map(own),
                        default: p.default.map(own),
                        summary: own(p.summary),
                    })
                    .collect(),
                source: y.source.map(own),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
