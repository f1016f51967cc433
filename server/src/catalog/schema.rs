//! The catalog's file format (see catalog/README.md) and its validation rules.
//!
//! Shared with `server/build.rs` through `#[path]`, so it depends on serde only: no LSP, no IO.
//! Keep every struct free of `skip_serializing_if`: the embedded index is postcard, which is not
//! self-describing and needs every field written.

use serde::{Deserialize, Serialize};

pub const GROUPS: &[&str] =
    &["research", "production", "low-level", "edge", "usability", "cloud", "compilers", "ecosystem"];
pub const KINDS: &[&str] = &[
    "module",
    "function",
    "class",
    "method",
    "attribute",
    "constant",
    "decorator",
    "type",
    "enum",
    "macro",
    "qualifier",
    "builtin",
    "namespace",
    "header",
];
pub const LANGUAGES: &[&str] = &["python", "cuda", "cpp"];

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub system: System,
    #[serde(default)]
    pub symbols: Vec<Symbol>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub id: String,
    pub name: String,
    pub group: String,
    pub maintainer: String,
    pub summary: String,
    #[serde(default)]
    pub about: Option<String>,
    pub docs: String,
    #[serde(default)]
    pub guide: Option<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub python_modules: Vec<String>,
    #[serde(default)]
    pub c_prefixes: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub part_of: Option<String>,
    #[serde(default)]
    pub related: Vec<Related>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Related {
    pub system: String,
    pub how: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Symbol {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub signature: Option<String>,
    pub summary: String,
    pub docs: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub equivalents: Vec<String>,
    #[serde(default)]
    pub deprecated: Option<String>,
    #[serde(default)]
    pub replacement: Option<String>,
    #[serde(default)]
    pub returns: Option<String>,
}

/// Checks one file on its own: fields, values, URLs. `stem` is the file name without `.toml`.
pub fn check_file(stem: &str, file: &CatalogFile) -> Vec<String> {
    let mut problems = Vec::new();
    let sys = &file.system;
    if sys.id != stem {
        problems.push(format!("system.id {:?} differs from the file name {stem:?}", sys.id));
    }
    for (field, value) in [("name", &sys.name), ("maintainer", &sys.maintainer), ("summary", &sys.summary)] {
        if value.trim().is_empty() {
            problems.push(format!("system.{field} is empty"));
        }
    }
    if !GROUPS.contains(&sys.group.as_str()) {
        problems.push(format!("system.group {:?} is not one of {GROUPS:?}", sys.group));
    }
    for lang in &sys.languages {
        if !LANGUAGES.contains(&lang.as_str()) {
            problems.push(format!("language {lang:?} is not one of {LANGUAGES:?}"));
        }
    }
    for (field, url) in [("docs", Some(&sys.docs)), ("guide", sys.guide.as_ref())] {
        if let Some(url) = url {
            if !url.starts_with("https://") {
                problems.push(format!("system.{field} {url:?} is not an https URL"));
            }
        }
    }
    if sys.summary.contains('\n') {
        problems.push("system.summary spans several lines".to_string());
    }
    for sym in &file.symbols {
        let label = format!("symbol {:?}", sym.name);
        if sym.name.trim().is_empty() {
            problems.push("a symbol has an empty name".to_string());
        }
        if !KINDS.contains(&sym.kind.as_str()) {
            problems.push(format!("{label}: kind {:?} is not one of {KINDS:?}", sym.kind));
        }
        if sym.summary.trim().is_empty() {
            problems.push(format!("{label}: summary is empty"));
        }
        if sym.summary.contains('\n') {
            problems.push(format!("{label}: summary spans several lines"));
        }
        if !sym.docs.starts_with("https://") {
            problems.push(format!("{label}: docs {:?} is not an https URL", sym.docs));
        }
        if sym.replacement.is_some() && sym.deprecated.is_none() {
            problems.push(format!("{label}: replacement without deprecated"));
        }
    }
    problems
}

/// Checks what spans files: unique ids and names, and that every cross-reference resolves.
/// Returns `(file stem, problem)` pairs.
pub fn check_catalog(files: &[CatalogFile]) -> Vec<(String, String)> {
    use std::collections::HashMap;
    let mut problems = Vec::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    for file in files {
        let id = file.system.id.as_str();
        if ids.insert(id, 0).is_some() {
            problems.push((id.to_string(), format!("system id {id:?} is defined twice")));
        }
        for sym in &file.symbols {
            for name in std::iter::once(&sym.name).chain(&sym.aliases) {
                if let Some(prev) = names.insert(name, id) {
                    problems.push((id.to_string(), format!("name {name:?} is already defined in {prev}.toml")));
                }
            }
        }
    }
    for file in files {
        let id = file.system.id.as_str();
        if let Some(parent) = &file.system.part_of {
            if !ids.contains_key(parent.as_str()) {
                problems.push((id.to_string(), format!("part_of {parent:?} is not a system")));
            }
        }
        for rel in &file.system.related {
            if !ids.contains_key(rel.system.as_str()) {
                problems.push((id.to_string(), format!("related system {:?} is not a system", rel.system)));
            }
        }
        for sym in &file.symbols {
            for target in sym.equivalents.iter().chain(&sym.replacement) {
                if !names.contains_key(target.as_str()) {
                    problems.push((
                        id.to_string(),
                        format!("symbol {:?} refers to {target:?}, which is not in the catalog", sym.name),
                    ));
                }
            }
        }
    }
    problems
}
