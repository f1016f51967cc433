//! Builds the embedded catalog index from the curated TOML files and the harvested facts.
//!
//! Shared with `server/build.rs` through `#[path]`: pure data work (serde, postcard, JSON), no IO.
//! The result is a handful of byte blobs that the binary embeds and reads in place at run time:
//! nothing is parsed at start-up beyond the small list of systems.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::schema::{is_safe_link, CatalogFile, Param, Symbol, System, Text, KINDS};

pub const FLAG_CURATED: u8 = 1;
pub const FLAG_DEPRECATED: u8 = 2;
pub const FLAG_RETURNS_STATUS: u8 = 4;

/// One symbol as stored in the index: the symbol, its system and the symbols equivalent to it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Record<'a> {
    #[serde(borrow)]
    pub symbol: Symbol<'a>,
    pub system: u16,
    /// Equivalences are symmetric here: declared on either side, stored on both.
    pub equivalents: Vec<u32>,
    /// Where the defaults or conventions of its equivalence groups differ, in our words.
    pub differences: Option<String>,
}

/// The header line of a facts file (catalog/facts/*.jsonl).
#[derive(Deserialize, Debug, Clone)]
pub struct FactsHeader {
    pub package: String,
    pub version: String,
    #[serde(default)]
    pub language: Option<String>,
    /// For C libraries, whose names carry no module path: the catalog system they belong to.
    #[serde(default)]
    pub system: Option<String>,
}

/// One harvested symbol: facts only, no prose.
#[derive(Deserialize, Debug, Clone)]
pub struct Fact {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub docs: String,
    /// `kind = "reexport"`: the other package's name this one re-exports (flax.linen.relu is
    /// jax.nn.relu); the name becomes an alias of that symbol.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub deprecated: bool,
    /// The version the package's own deprecation notice names, when it names one.
    #[serde(default)]
    pub deprecated_since: Option<String>,
    /// The qualified type a call gives (or an attribute holds), from the package's annotations.
    #[serde(default)]
    pub returns: Option<String>,
    /// Classes: qualified base classes, nearest first.
    #[serde(default)]
    pub bases: Vec<String>,
    #[serde(default)]
    pub params: Vec<FactParam>,
}

/// A harvested parameter: name, annotation and default as written in the package.
#[derive(Deserialize, Debug, Clone)]
pub struct FactParam {
    pub name: String,
    #[serde(default)]
    pub annotation: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
}

/// A group of symbols across frameworks that do the same job (catalog/equivalents/*.toml).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// A short id: `matmul`, `softmax`, `all_reduce`.
    pub name: String,
    pub members: Vec<String>,
    /// Where the members' defaults or conventions differ (`tf.nn.gelu` is exact by default,
    /// `jax.nn.gelu` approximates), in our words; `catalog/tools/facts_check.py` asks for it.
    #[serde(default)]
    pub differences: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct OperationsFile {
    #[serde(default, rename = "operation")]
    pub operations: Vec<Operation>,
}

pub struct FactsFile {
    pub header: FactsHeader,
    pub facts: Vec<Fact>,
}

/// The kind of a fact that only names another package's symbol (its `target`).
pub const REEXPORT: &str = "reexport";

/// Parses a facts file; lines that do not parse are reported and skipped.
pub fn parse_facts(text: &str) -> Result<(FactsFile, Vec<String>), String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: FactsHeader =
        serde_json::from_str(lines.next().ok_or("empty facts file")?).map_err(|err| format!("header line: {err}"))?;
    let mut facts = Vec::new();
    let mut problems = Vec::new();
    for (idx, line) in lines.enumerate() {
        match serde_json::from_str::<Fact>(line) {
            Ok(fact) if fact.kind == REEXPORT => match fact.target {
                Some(_) => facts.push(fact),
                None => problems.push(format!("line {}: {}: a reexport without a target", idx + 2, fact.name)),
            },
            Ok(fact) if !KINDS.contains(&fact.kind.as_str()) => {
                problems.push(format!("line {}: {}: unknown kind {:?}", idx + 2, fact.name, fact.kind))
            }
            Ok(fact) if !is_safe_link(&fact.docs) => {
                problems.push(format!("line {}: {}: docs is not a plain https URL", idx + 2, fact.name))
            }
            Ok(fact) => facts.push(fact),
            Err(err) => problems.push(format!("line {}: {err}", idx + 2)),
        }
    }
    Ok((FactsFile { header, facts }, problems))
}

/// The embedded index, as bytes.
#[derive(Default)]
pub struct Blobs {
    /// postcard `Vec<System>`.
    pub systems: Vec<u8>,
    /// Concatenated postcard `Record`s, sorted by symbol name.
    pub records: Vec<u8>,
    /// `u32` little-endian start of each record, plus the end.
    pub offsets: Vec<u8>,
    /// Every name and alias, concatenated.
    pub names: Vec<u8>,
    /// Sorted by name: `u32` start in `names`, `u32` length, `u32` record, little-endian.
    pub name_index: Vec<u8>,
    /// Per record, for lookups that need no decoding: `u16` system (little-endian), `u8` kind
    /// (position in `KINDS`), `u8` flags (`FLAG_*`).
    pub record_meta: Vec<u8>,
}

/// What the build reports besides the blobs.
#[derive(Default, Debug)]
pub struct BuildReport {
    pub curated: usize,
    pub facts: usize,
    /// Facts whose name a curated entry already describes (the curated entry wins).
    pub facts_merged: usize,
    pub facts_without_system: usize,
    pub warnings: Vec<String>,
}

fn fact_param(p: &FactParam) -> Param<'static> {
    Param {
        name: Cow::Owned(p.name.clone()),
        annotation: p.annotation.clone().map(Cow::Owned),
        default: p.default.clone().map(Cow::Owned),
        summary: Cow::Borrowed(""),
    }
}

/// A fact fills in what a curated entry of the same name leaves out: its signature, return type,
/// bases, and the annotations and defaults of its parameters (our words on a parameter stay).
fn fill_from_fact(symbol: &mut Symbol<'_>, fact: &Fact) {
    if symbol.signature.is_none() {
        symbol.signature = fact.signature.clone().map(Cow::Owned);
    }
    if symbol.returns.is_none() {
        symbol.returns = fact.returns.clone().map(Cow::Owned);
    }
    if symbol.bases.is_empty() {
        symbol.bases = fact.bases.iter().map(|b| Cow::Owned(b.clone())).collect();
    }
    let curated = std::mem::take(&mut symbol.params);
    let mut params: Vec<Param> = fact.params.iter().map(fact_param).collect();
    for own in curated {
        match params.iter_mut().find(|p| p.name == own.name) {
            Some(p) => {
                p.summary = own.summary;
                if own.annotation.is_some() {
                    p.annotation = own.annotation;
                }
                if own.default.is_some() {
                    p.default = own.default;
                }
            }
            None => params.push(own),
        }
    }
    symbol.params = params;
}

/// Merges curated files and facts into the index. Curated entries win over facts of the same name;
/// a fact only fills in a curated entry's missing signature.
pub fn build(curated: &[CatalogFile<'_>], facts: &[FactsFile], operations: &[Operation]) -> (Blobs, BuildReport) {
    let mut report = BuildReport::default();
    let systems: Vec<System> = curated.iter().map(|f| f.system.clone()).collect();
    let mut table = read_curated(curated, &mut report);
    let reexports = read_facts(&mut table, &systems, facts, &mut report);
    resolve_reexports(&mut table, &reexports, &mut report);
    let (mut sorted, names) = sort_by_name(table);
    link_equivalents(&mut sorted, &names, operations, &mut report);
    (write_blobs(&systems, &sorted, &names), report)
}

/// Records in the order they were read, and the record each name or alias stands for.
struct Table<'a> {
    records: Vec<Record<'a>>,
    by_name: HashMap<String, usize>,
}

impl<'a> Table<'a> {
    /// Adds a record under its names; a name already taken keeps its record.
    fn push<'n>(&mut self, record: Record<'a>, names: impl Iterator<Item = &'n str>) {
        let idx = self.records.len();
        for name in names {
            self.by_name.entry(name.to_string()).or_insert(idx);
        }
        self.records.push(record);
    }
}

/// Step 1: every curated entry, in file order; the first file to use a name keeps it.
fn read_curated<'a>(curated: &[CatalogFile<'a>], report: &mut BuildReport) -> Table<'a> {
    let mut table = Table { records: Vec::new(), by_name: HashMap::new() };
    for (file_idx, file) in curated.iter().enumerate() {
        for symbol in &file.symbols {
            let names: Vec<&str> = std::iter::once(&symbol.name).chain(&symbol.aliases).map(|n| n.as_ref()).collect();
            let record =
                Record { symbol: symbol.clone(), system: file_idx as u16, equivalents: Vec::new(), differences: None };
            table.push(record, names.into_iter());
            report.curated += 1;
        }
    }
    table
}

/// The system a dotted Python name belongs to: the one with the longest module root it starts with.
fn python_system_finder<'s>(systems: &'s [System<'_>]) -> impl Fn(&str) -> Option<u16> + 's {
    let mut modules: Vec<(&str, u16)> = systems
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.python_modules.iter().map(move |m| (m.as_ref(), i as u16)))
        .collect();
    modules.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    move |name: &str| {
        modules.iter().find(|(m, _)| name == *m || name.starts_with(&format!("{m}."))).map(|(_, idx)| *idx)
    }
}

/// Step 2: the harvested facts. A fact under a curated name fills that entry in; any other fact
/// becomes a record of its own, in the system its header names or its module root says. Facts
/// that only re-export another name are returned, to resolve once every file is read.
fn read_facts<'f>(
    table: &mut Table<'_>,
    systems: &[System<'_>],
    facts: &'f [FactsFile],
    report: &mut BuildReport,
) -> Vec<&'f Fact> {
    let system_idx: HashMap<&str, u16> = systems.iter().enumerate().map(|(i, s)| (s.id.as_ref(), i as u16)).collect();
    let python_system = python_system_finder(systems);
    let mut reexports: Vec<&Fact> = Vec::new();
    for file in facts {
        let source = format!("{} {}", file.header.package, file.header.version);
        let fixed_system = file.header.system.as_deref().and_then(|id| system_idx.get(id).copied());
        for fact in &file.facts {
            if fact.kind == REEXPORT {
                reexports.push(fact); // after every file: the target may come from a later one
                continue;
            }
            let known = std::iter::once(&fact.name).chain(&fact.aliases).find_map(|n| table.by_name.get(n.as_str()));
            if let Some(&idx) = known {
                let record = &mut table.records[idx];
                // The same object under another of its names (flax.linen.max_pool is listed as
                // flax.nnx.max_pool) fills in as well.
                if record.symbol.name == fact.name || fact.aliases.iter().any(|a| *a == record.symbol.name) {
                    fill_from_fact(&mut record.symbol, fact);
                }
                report.facts_merged += 1;
                continue;
            }
            let Some(system) = fixed_system.or_else(|| python_system(&fact.name)) else {
                report.facts_without_system += 1;
                continue;
            };
            let record =
                Record { symbol: fact_symbol(fact, &source), system, equivalents: Vec::new(), differences: None };
            table.push(record, std::iter::once(fact.name.as_str()).chain(fact.aliases.iter().map(String::as_str)));
            report.facts += 1;
        }
    }
    reexports
}

/// A harvested fact as a symbol of its own: no words of ours, its source named.
fn fact_symbol(fact: &Fact, source: &str) -> Symbol<'static> {
    let owned = |s: &String| -> Text<'static> { Cow::Owned(s.clone()) };
    Symbol {
        name: owned(&fact.name),
        kind: owned(&fact.kind),
        signature: fact.signature.as_ref().map(owned),
        summary: Cow::Borrowed(""),
        docs: owned(&fact.docs),
        aliases: fact.aliases.iter().map(owned).collect(),
        equivalents: Vec::new(),
        deprecated: fact.deprecated.then(|| match &fact.deprecated_since {
            Some(since) => Cow::Owned(format!("Marked deprecated since {since} in {source}.")),
            None => Cow::Owned(format!("Marked deprecated in {source}.")),
        }),
        replacement: None,
        fix: None,
        returns: fact.returns.as_ref().map(owned),
        bases: fact.bases.iter().map(owned).collect(),
        params: fact.params.iter().map(fact_param).collect(),
        source: Some(Cow::Owned(source.to_string())),
    }
}

/// Step 3: a re-exported name (and its aliases) becomes another name of its target's record.
fn resolve_reexports(table: &mut Table<'_>, reexports: &[&Fact], report: &mut BuildReport) {
    for fact in reexports {
        let Some(&idx) = fact.target.as_deref().and_then(|t| table.by_name.get(t)) else {
            report.facts_without_system += 1;
            continue;
        };
        for name in std::iter::once(&fact.name).chain(&fact.aliases) {
            table.by_name.entry(name.clone()).or_insert(idx);
        }
        report.facts_merged += 1;
    }
}

/// Step 4: records sorted by name, and the name table, sorted, renumbered to match.
fn sort_by_name(table: Table<'_>) -> (Vec<Record<'_>>, Vec<(String, u32)>) {
    let Table { records, by_name } = table;
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| records[a].symbol.name.cmp(&records[b].symbol.name));
    let mut new_idx = vec![0u32; records.len()];
    for (new, &old) in order.iter().enumerate() {
        new_idx[old] = new as u32;
    }
    let sorted: Vec<Record> = order.iter().map(|&old| records[old].clone()).collect();
    let mut names: Vec<(String, u32)> = by_name.into_iter().map(|(name, old)| (name, new_idx[old])).collect();
    names.sort();
    (sorted, names)
}

/// Step 5: equivalences, declared on either side or by an operation group, stored on both sides.
fn link_equivalents(
    sorted: &mut [Record<'_>],
    names: &[(String, u32)],
    operations: &[Operation],
    report: &mut BuildReport,
) {
    let lookup = |name: &str| names.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|pos| names[pos].1);
    let mut equivalents: Vec<Vec<u32>> = vec![Vec::new(); sorted.len()];
    for (idx, record) in sorted.iter().enumerate() {
        for target in record.symbol.equivalents.iter() {
            match lookup(target) {
                Some(other) if other as usize != idx => {
                    equivalents[idx].push(other);
                    equivalents[other as usize].push(idx as u32);
                }
                Some(_) => {}
                None => {
                    report.warnings.push(format!("{}: equivalent {target} is not in the catalog", record.symbol.name))
                }
            }
        }
    }
    // An operation makes every pair of its members equivalent.
    for operation in operations {
        let members: Vec<u32> = operation
            .members
            .iter()
            .filter_map(|m| {
                let found = lookup(m);
                if found.is_none() {
                    report.warnings.push(format!("operation {}: {m} is not in the catalog", operation.name));
                }
                found
            })
            .collect();
        for &a in &members {
            equivalents[a as usize].extend(members.iter().copied().filter(|&b| b != a));
            if let Some(text) = &operation.differences {
                let record = &mut sorted[a as usize];
                record.differences = Some(match record.differences.take() {
                    Some(prev) => format!("{prev} {text}"),
                    None => text.clone(),
                });
            }
        }
    }
    for (record, mut list) in sorted.iter_mut().zip(equivalents) {
        list.sort();
        list.dedup();
        record.equivalents = list;
    }
}

/// Step 6: the bytes the binary embeds.
fn write_blobs(systems: &[System<'_>], sorted: &[Record<'_>], names: &[(String, u32)]) -> Blobs {
    let mut blobs = Blobs { systems: postcard::to_allocvec(systems).expect("systems serialize"), ..Default::default() };
    for record in sorted {
        blobs.record_meta.extend_from_slice(&record.system.to_le_bytes());
        let kind = KINDS.iter().position(|k| *k == record.symbol.kind).unwrap_or(0);
        let flags = (record.symbol.is_curated() as u8 * FLAG_CURATED)
            | (record.symbol.deprecated.is_some() as u8 * FLAG_DEPRECATED)
            | (record.symbol.returns_status() as u8 * FLAG_RETURNS_STATUS);
        blobs.record_meta.extend_from_slice(&[kind as u8, flags]);
        blobs.offsets.extend_from_slice(&(blobs.records.len() as u32).to_le_bytes());
        blobs.records.extend(postcard::to_allocvec(record).expect("records serialize"));
    }
    blobs.offsets.extend_from_slice(&(blobs.records.len() as u32).to_le_bytes());
    for (name, record) in names {
        let start = blobs.names.len() as u32;
        blobs.names.extend_from_slice(name.as_bytes());
        for value in [start, name.len() as u32, *record] {
            blobs.name_index.extend_from_slice(&value.to_le_bytes());
        }
    }
    blobs
}
