//! Catalog search for `workspace/symbol` and `tensorlens catalog search`.

use serde::{Deserialize, Serialize};

use super::{Catalog, SymbolIdx};

/// One catalog symbol, as plugins show it in a picker and `tensorlens catalog search --json`
/// prints it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    pub name: String,
    pub kind: String,
    pub system: String,
    pub summary: String,
    pub signature: Option<String>,
    pub docs: String,
    pub equivalents: Vec<String>,
}

impl CatalogEntry {
    pub fn new(catalog: &Catalog, idx: SymbolIdx) -> CatalogEntry {
        let symbol = catalog.symbol(idx);
        CatalogEntry {
            name: symbol.name.to_string(),
            kind: symbol.kind.to_string(),
            system: catalog.system(catalog.system_of(idx)).name.to_string(),
            summary: symbol.summary.to_string(),
            signature: symbol.signature.as_deref().map(str::to_string),
            docs: if super::schema::is_safe_link(&symbol.docs) { symbol.docs.to_string() } else { String::new() },
            equivalents: catalog.equivalents(idx).into_iter().map(|eq| catalog.symbol(eq).name.to_string()).collect(),
        }
    }
}

/// Symbols matching `query`, best first. Names are scored by their last segment (exact, prefix,
/// substring) and then the full name; within a score, described symbols come before harvested
/// facts, and shallow names before deep ones. The equivalents of the best described matches follow
/// them, so `matmul` also finds `cublasSgemm`. Only the name table is read until the end.
pub fn search(catalog: &Catalog, query: &str, limit: usize) -> Vec<SymbolIdx> {
    let query = query.trim().to_ascii_lowercase();
    if query.is_empty() || limit == 0 {
        return Vec::new();
    }
    // (score, harvested, depth, length, symbol): smaller is better.
    let mut scored: Vec<(u8, bool, usize, usize, SymbolIdx)> = Vec::new();
    for (name, idx) in catalog.names() {
        if let Some(score) = score(name, &query) {
            let depth = name.matches(['.', ':']).count();
            scored.push((score, !catalog.is_curated(idx), depth, name.len(), idx));
        }
    }
    scored.sort();
    let mut res: Vec<SymbolIdx> = Vec::new();
    let push = |idx: SymbolIdx, res: &mut Vec<SymbolIdx>| {
        if !res.contains(&idx) {
            res.push(idx);
        }
    };
    let best: Vec<SymbolIdx> = scored.iter().filter(|s| s.0 == 0 && !s.1).map(|s| s.4).collect();
    for &idx in &best {
        push(idx, &mut res);
    }
    for &idx in &best {
        for eq in catalog.equivalents(idx) {
            push(eq, &mut res);
        }
        if res.len() >= limit {
            break;
        }
    }
    for (_, _, _, _, idx) in scored {
        if res.len() >= limit {
            break;
        }
        push(idx, &mut res);
    }
    res.truncate(limit);
    res
}

fn score(name: &str, query: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase();
    let last = lower.rsplit(['.', ':']).next().unwrap_or(&lower);
    if last == query {
        Some(0)
    } else if last.starts_with(query) {
        Some(1)
    } else if last.contains(query) {
        Some(2)
    } else if lower.contains(query) {
        Some(3)
    } else {
        None
    }
}
