//! Catalog search for `workspace/symbol` and `tensorlens catalog search`.

use super::{Catalog, SymbolIdx};

/// Symbols matching `query`, best first: by the last name segment (exact, prefix, substring), then
/// the full name, then the equivalents of the best matches, so `matmul` also finds `cublasSgemm`.
pub fn search(catalog: &Catalog, query: &str, limit: usize) -> Vec<SymbolIdx> {
    let query = query.trim().to_ascii_lowercase();
    if query.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(u8, usize, SymbolIdx)> = Vec::new();
    for (idx, sym) in catalog.symbols() {
        let best = std::iter::once(&sym.name).chain(&sym.aliases).filter_map(|name| score(name, &query)).min();
        if let Some(score) = best {
            scored.push((score, sym.name.len(), idx));
        }
    }
    scored.sort();
    let direct: Vec<SymbolIdx> = scored.iter().map(|(_, _, idx)| *idx).collect();
    let mut res: Vec<SymbolIdx> = Vec::new();
    let push = |idx: SymbolIdx, res: &mut Vec<SymbolIdx>| {
        if !res.contains(&idx) {
            res.push(idx);
        }
    };
    for (score, _, idx) in &scored {
        if *score <= 1 {
            push(*idx, &mut res);
        }
    }
    // Equivalents of the exact and prefix hits come before weaker textual matches.
    let strong: Vec<SymbolIdx> = res.clone();
    for idx in strong {
        for eq in catalog.equivalents(idx) {
            push(eq, &mut res);
        }
    }
    for idx in direct {
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
