//! The ecosystem catalog: systems and their symbols, embedded at build time and indexed once.
//!
//! Read-only after construction and shared by `Arc`. Lookups are binary searches over sorted
//! names; nothing here parses TOML except user files (`load_user_dir`), whose problems come back
//! as values, never as panics, and never disable the built-in catalog.

pub mod schema;
mod search;

pub use search::search;

use std::path::{Path, PathBuf};

pub use schema::{CatalogFile, Related, Symbol, System};

static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catalog.postcard"));

pub type SystemIdx = u16;
pub type SymbolIdx = u32;

#[derive(Debug, Default)]
pub struct Catalog {
    systems: Vec<System>,
    symbols: Vec<Symbol>,
    symbol_system: Vec<SystemIdx>,
    /// Every name and alias, sorted, with the symbol it stands for.
    names: Vec<(String, SymbolIdx)>,
    /// Python module roots, C prefixes, headers and namespaces: sorted for binary search.
    python_modules: Vec<(String, SystemIdx)>,
    c_prefixes: Vec<(String, SystemIdx)>,
    headers: Vec<(String, SystemIdx)>,
    namespaces: Vec<(String, SystemIdx)>,
    /// For each symbol, the symbols doing the same job elsewhere, in both directions.
    equivalents: Vec<Vec<SymbolIdx>>,
}

/// A problem in a user catalog file, to be shown as a diagnostic on that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFileProblem {
    pub path: PathBuf,
    /// Byte range in the file when the parser could say where.
    pub span: Option<std::ops::Range<usize>>,
    pub message: String,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn builtin() -> Catalog {
        Catalog::new(Catalog::builtin_files())
    }

    /// The files the binary was built with, for merging with user files.
    pub fn builtin_files() -> Vec<CatalogFile> {
        postcard::from_bytes(EMBEDDED).expect("embedded catalog is valid postcard")
    }

    /// Builds the indices. Later files win over earlier ones for the same system id or symbol name,
    /// which is how user files override built-in entries.
    pub fn new(files: Vec<CatalogFile>) -> Catalog {
        let mut res = Catalog::default();
        let mut by_id: std::collections::HashMap<String, SystemIdx> = Default::default();
        let mut by_name: std::collections::HashMap<String, SymbolIdx> = Default::default();
        for file in files {
            let sys_idx = match by_id.get(&file.system.id) {
                Some(&idx) => {
                    res.systems[idx as usize] = file.system;
                    idx
                }
                None => {
                    let idx = res.systems.len() as SystemIdx;
                    by_id.insert(file.system.id.clone(), idx);
                    res.systems.push(file.system);
                    idx
                }
            };
            for sym in file.symbols {
                match by_name.get(&sym.name) {
                    Some(&idx) => {
                        res.symbols[idx as usize] = sym;
                        res.symbol_system[idx as usize] = sys_idx;
                    }
                    None => {
                        by_name.insert(sym.name.clone(), res.symbols.len() as SymbolIdx);
                        res.symbols.push(sym);
                        res.symbol_system.push(sys_idx);
                    }
                }
            }
        }
        for (idx, sym) in res.symbols.iter().enumerate() {
            for name in std::iter::once(&sym.name).chain(&sym.aliases) {
                res.names.push((name.clone(), idx as SymbolIdx));
            }
        }
        res.names.sort();
        res.names.dedup_by(|a, b| a.0 == b.0);
        for (idx, sys) in res.systems.iter().enumerate() {
            let idx = idx as SystemIdx;
            res.python_modules.extend(sys.python_modules.iter().map(|m| (m.clone(), idx)));
            res.c_prefixes.extend(sys.c_prefixes.iter().map(|m| (m.clone(), idx)));
            res.headers.extend(sys.headers.iter().map(|m| (m.clone(), idx)));
            res.namespaces.extend(sys.namespaces.iter().map(|m| (m.clone(), idx)));
        }
        for list in [&mut res.python_modules, &mut res.c_prefixes, &mut res.headers, &mut res.namespaces] {
            list.sort();
        }
        res.equivalents = vec![Vec::new(); res.symbols.len()];
        for idx in 0..res.symbols.len() {
            for target in res.symbols[idx].equivalents.clone() {
                if let Some(target) = res.lookup(&target) {
                    if target as usize != idx {
                        res.equivalents[idx].push(target);
                        res.equivalents[target as usize].push(idx as SymbolIdx);
                    }
                }
            }
        }
        for list in &mut res.equivalents {
            list.sort();
            list.dedup();
        }
        res
    }

    /// The built-in catalog plus every `*.toml` in `dir`; problems in user files are returned.
    pub fn with_user_dir(dir: &Path) -> (Catalog, Vec<UserFileProblem>) {
        let mut files = Catalog::builtin_files();
        let (user_files, problems) = load_user_dir(dir, &files);
        files.extend(user_files);
        (Catalog::new(files), problems)
    }

    pub fn systems(&self) -> &[System] {
        &self.systems
    }

    pub fn symbols(&self) -> impl Iterator<Item = (SymbolIdx, &Symbol)> {
        self.symbols.iter().enumerate().map(|(idx, sym)| (idx as SymbolIdx, sym))
    }

    pub fn symbol(&self, idx: SymbolIdx) -> &Symbol {
        &self.symbols[idx as usize]
    }

    pub fn system(&self, idx: SystemIdx) -> &System {
        &self.systems[idx as usize]
    }

    pub fn system_of(&self, idx: SymbolIdx) -> SystemIdx {
        self.symbol_system[idx as usize]
    }

    pub fn system_by_id(&self, id: &str) -> Option<SystemIdx> {
        self.systems.iter().position(|s| s.id == id).map(|idx| idx as SystemIdx)
    }

    /// Symbols in other systems that do the same job, whichever side declared the equivalence.
    pub fn equivalents(&self, idx: SymbolIdx) -> &[SymbolIdx] {
        &self.equivalents[idx as usize]
    }

    /// A symbol by its name or one of its aliases.
    pub fn lookup(&self, name: &str) -> Option<SymbolIdx> {
        self.names.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|pos| self.names[pos].1)
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

    /// Whether `module` is a Python module the catalog knows: a module root, a symbol of kind
    /// module, or the parent of some catalog symbol.
    pub fn knows_python_module(&self, module: &str) -> bool {
        if self.python_modules.binary_search_by(|(m, _)| m.as_str().cmp(module)).is_ok() {
            return true;
        }
        self.names_with_prefix(&format!("{module}.")).next().is_some()
    }

    /// The direct members `module.x` of a Python module (for `from module import *`).
    pub fn python_members<'a>(&'a self, module: &str) -> impl Iterator<Item = (&'a str, SymbolIdx)> + 'a {
        let prefix = format!("{module}.");
        let prefix_len = prefix.len();
        self.names_with_prefix(&prefix)
            .map(move |(name, idx)| (&name[prefix_len..], idx))
            .filter(|(rest, _)| !rest.contains('.') && !rest.starts_with('_'))
    }

    fn names_with_prefix<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (&'a str, SymbolIdx)> + 'a {
        let start = self.names.partition_point(|(n, _)| n.as_str() < prefix);
        let prefix = prefix.to_string();
        self.names[start..].iter().take_while(move |(n, _)| n.starts_with(&prefix)).map(|(n, idx)| (n.as_str(), *idx))
    }

    /// The system owning a C identifier by prefix (`cublasFoo` -> cuBLAS): the prefix must be
    /// followed by an upper-case letter or `_`, and the longest prefix wins (`cublas` over `cu`).
    pub fn c_system(&self, ident: &str) -> Option<SystemIdx> {
        self.c_prefixes
            .iter()
            .filter(|(prefix, _)| {
                let next = ident.strip_prefix(prefix.as_str()).and_then(|rest| rest.bytes().next());
                next.is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
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
/// and reported; the others load.
pub fn load_user_dir(dir: &Path, builtin: &[CatalogFile]) -> (Vec<CatalogFile>, Vec<UserFileProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (files, problems);
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    for path in paths {
        let text = match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    problems.push(UserFileProblem { path, span: None, message: "file is not valid UTF-8".into() });
                    continue;
                }
            },
            Err(err) => {
                problems.push(UserFileProblem { path, span: None, message: format!("cannot read: {err}") });
                continue;
            }
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let (file, file_problems) = parse_user_file(&stem, &text);
        problems.extend(file_problems.into_iter().map(|(span, message)| UserFileProblem {
            path: path.clone(),
            span,
            message,
        }));
        if let Some(file) = file {
            files.push(file);
        }
    }
    // Cross-references may point into the built-in catalog.
    let mut all: Vec<CatalogFile> =
        builtin.iter().filter(|b| !files.iter().any(|f| f.system.id == b.system.id)).cloned().collect();
    all.extend(files.iter().cloned());
    let user_ids: Vec<String> = files.iter().map(|f| f.system.id.clone()).collect();
    for (id, message) in schema::check_catalog(&all) {
        if user_ids.contains(&id) && !message.contains("already defined") {
            problems.push(UserFileProblem { path: dir.join(format!("{id}.toml")), span: None, message });
        }
    }
    (files, problems)
}

/// A problem in one file's text: where, when known, and what.
pub type FileProblem = (Option<std::ops::Range<usize>>, String);

/// Parses and checks one user file's text. Returns the file when it is usable.
pub fn parse_user_file(stem: &str, text: &str) -> (Option<CatalogFile>, Vec<FileProblem>) {
    match toml::from_str::<CatalogFile>(text) {
        Ok(file) => {
            let problems: Vec<_> = schema::check_file(stem, &file).into_iter().map(|p| (None, p)).collect();
            let usable = problems.is_empty();
            (usable.then_some(file), problems)
        }
        Err(err) => (None, vec![(err.span(), err.message().to_string())]),
    }
}

#[cfg(test)]
mod tests;
