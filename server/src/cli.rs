//! Command-line features: the same analysis the server does, printed for people and scripts.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{format_err, Context};

use crate::catalog::{self, Catalog};
use crate::documents::Document;
use crate::ide;
use crate::text::PositionEncoding;

/// `tensorlens explain FILE...`
pub fn explain(files: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failures = 0;
    for path in files {
        match explain_file(path, &catalog, json, &mut out) {
            Ok(()) => {}
            Err(err) => {
                eprintln!("tensorlens: {}: {err:#}", path.display());
                failures += 1;
            }
        }
    }
    if failures > 0 {
        return Err(format_err!("{failures} of {} files could not be explained", files.len()));
    }
    Ok(())
}

fn explain_file(path: &Path, catalog: &Catalog, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| "cannot read the file".to_string())?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("tensorlens: {}: not valid UTF-8; invalid bytes shown as U+FFFD", path.display());
            String::from_utf8_lossy(err.as_bytes()).into_owned()
        }
    };
    let uri = format!("file://{}", path.display());
    let mut doc = Document::new(&uri, "", 0, &text);
    if doc.language.is_none() {
        return Err(format_err!("not a Python, CUDA or C/C++ file (by its extension)"));
    }
    doc.analyze(catalog, &[]);
    let diagnostics = ide::diagnostics(&doc, catalog);
    if !json {
        writeln!(out, "{}", path.display())?;
    }
    for reference in doc.recognition.references().filter(worth_printing) {
        // Columns for people: 1-based, counted in characters.
        let reference = &reference;
        let pos = doc.position(reference.range.start, PositionEncoding::Utf32);
        let symbol_value = reference.symbol.map(|idx| catalog.symbol(idx));
        let symbol = symbol_value.as_ref();
        let system = reference.system.map(|idx| catalog.system(idx).name.as_ref()).unwrap_or("");
        let is_root = reference.system.is_some_and(|idx| {
            let system = catalog.system(idx);
            system.python_modules.iter().any(|m| **m == *reference.name)
                || reference.role == crate::recognize::Role::Include
        });
        let summary = match (symbol, reference.role) {
            (Some(symbol), _) if symbol.is_curated() => symbol.summary.as_ref(),
            (Some(symbol), _) => symbol.signature.as_deref().unwrap_or("(signature only, no summary yet)"),
            (None, crate::recognize::Role::Launch) => "kernel launch",
            (None, crate::recognize::Role::KernelDefinition) => "CUDA kernel defined here",
            (None, _) if is_root => reference.system.map(|idx| catalog.system(idx).summary.as_ref()).unwrap_or(""),
            (None, _) => "(not in the catalog yet)",
        };
        if json {
            let value = serde_json::json!({
                "file": path.display().to_string(),
                "line": pos.line + 1,
                "column": pos.col + 1,
                "name": &*reference.name,
                "role": reference.role.label(),
                "system": system,
                "known": symbol.is_some(),
                "summary": summary,
                "docs": symbol.map(|s| s.docs.as_ref()),
            });
            writeln!(out, "{value}")?;
        } else {
            let location = format!("{}:{}", pos.line + 1, pos.col + 1);
            writeln!(
                out,
                "  {location:<8} {:<13} {:<40} {:<22} {summary}",
                reference.role.label(),
                reference.name,
                system
            )?;
        }
    }
    for diag in diagnostics {
        let pos = doc.position(diag.range.start, PositionEncoding::Utf32);
        if json {
            let value = serde_json::json!({
                "file": path.display().to_string(), "line": pos.line + 1, "column": pos.col + 1,
                "diagnostic": diag.code, "message": diag.message,
            });
            writeln!(out, "{value}")?;
        } else {
            writeln!(out, "  {:<8} {:<13} {}", format!("{}:{}", pos.line + 1, pos.col + 1), diag.code, diag.message)?;
        }
    }
    Ok(())
}

/// Leaves out the module prefixes of attribute chains (`torch`, `torch.nn` in `torch.nn.Linear`),
/// which would double the listing without saying anything.
fn worth_printing(reference: &crate::recognize::Reference) -> bool {
    reference.symbol.is_some() || reference.role != crate::recognize::Role::Access
}

/// `tensorlens catalog search QUERY`
pub fn catalog_search(query: &str, limit: usize, json: bool) -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let found = catalog::search(&catalog, query, limit);
    if found.is_empty() && !json {
        println!("nothing in the catalog matches {query:?}");
    }
    for idx in found {
        let entry = crate::lsp::to_proto::catalog_entry(&catalog, idx);
        if json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            println!("{:<45} {:<22} {}", entry.name, entry.system, entry.summary);
        }
    }
    Ok(())
}

/// `tensorlens catalog check DIR`
pub fn catalog_check(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Err(format_err!("{} is not a folder", dir.display()));
    }
    let builtin = Catalog::builtin();
    let (files, problems) = catalog::load_user_dir(dir, &builtin);
    for problem in &problems {
        let at = problem.span.as_ref().map(|s| format!(" (byte {})", s.start)).unwrap_or_default();
        println!("{}{at}: {}", problem.path.display(), problem.message);
    }
    println!("{} files loaded, {} problems", files.len(), problems.len());
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format_err!("the catalog folder has problems"))
    }
}

/// `tensorlens catalog systems`
pub fn catalog_systems() -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let mut counts = vec![0usize; catalog.systems().len()];
    for (idx, _) in catalog.symbols() {
        counts[catalog.system_of(idx) as usize] += 1;
    }
    for (idx, system) in catalog.systems().iter().enumerate() {
        println!("{:<26} {:<12} {:>5} symbols  {}", system.id, system.group, counts[idx], system.summary);
    }
    Ok(())
}

/// `tensorlens catalog stats`: coverage per system.
pub fn catalog_stats() -> anyhow::Result<()> {
    #[derive(Default)]
    struct Row {
        symbols: usize,
        signature: usize,
        curated: usize,
        equivalents: usize,
        deprecated: usize,
        sources: std::collections::BTreeSet<String>,
    }
    let catalog = Catalog::builtin();
    let mut rows: Vec<Row> = (0..catalog.systems().len()).map(|_| Row::default()).collect();
    for (idx, symbol) in catalog.symbols() {
        let row = &mut rows[catalog.system_of(idx) as usize];
        row.symbols += 1;
        row.signature += symbol.signature.is_some() as usize;
        row.curated += symbol.is_curated() as usize;
        row.equivalents += !catalog.equivalents(idx).is_empty() as usize;
        row.deprecated += symbol.deprecated.is_some() as usize;
        if let Some(source) = &symbol.source {
            row.sources.insert(source.to_string());
        }
    }
    let pct =
        |n: usize, of: usize| if of == 0 { "-".to_string() } else { format!("{:.0}%", 100.0 * n as f64 / of as f64) };
    println!(
        "{:<26} {:>7} {:>9} {:>8} {:>6} {:>6} {:>6}  harvested from",
        "system", "symbols", "signature", "summary", "url", "equiv", "depr"
    );
    let mut total = Row::default();
    for (system, row) in catalog.systems().iter().zip(&rows) {
        let sources: Vec<&str> = row.sources.iter().map(String::as_str).collect();
        println!(
            "{:<26} {:>7} {:>9} {:>8} {:>6} {:>6} {:>6}  {}",
            system.id,
            row.symbols,
            pct(row.signature, row.symbols),
            row.curated,
            pct(row.symbols, row.symbols),
            pct(row.equivalents, row.symbols),
            row.deprecated,
            if sources.is_empty() { "(curated only)".to_string() } else { sources.join(", ") }
        );
        total.symbols += row.symbols;
        total.signature += row.signature;
        total.curated += row.curated;
        total.equivalents += row.equivalents;
        total.deprecated += row.deprecated;
    }
    println!(
        "{:<26} {:>7} {:>9} {:>8} {:>6} {:>6} {:>6}",
        "all",
        total.symbols,
        pct(total.signature, total.symbols),
        total.curated,
        pct(total.symbols, total.symbols),
        pct(total.equivalents, total.symbols),
        total.deprecated
    );
    Ok(())
}

/// `tensorlens catalog show NAME...`: everything the catalog holds about names, as hover shows it.
pub fn catalog_show(names: &[String]) -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let mut missing = Vec::new();
    for name in names {
        match catalog.lookup(name) {
            Some(idx) => {
                let reference = crate::recognize::Reference {
                    range: 0..0,
                    name: name.as_str().into(),
                    role: crate::recognize::Role::Access,
                    symbol: Some(idx),
                    system: Some(catalog.system_of(idx)),
                };
                println!("{}", crate::ide::reference_markdown(&reference, &catalog, "text"));
            }
            None => missing.push(name.as_str()),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format_err!("not in the catalog: {}", missing.join(", ")))
    }
}

/// `tensorlens catalog export`: every symbol as one JSON object per line, for tools and checks.
pub fn catalog_export() -> anyhow::Result<()> {
    let catalog = Catalog::builtin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (idx, symbol) in catalog.symbols() {
        let value = serde_json::json!({
            "name": symbol.name,
            "kind": symbol.kind,
            "system": catalog.system(catalog.system_of(idx)).id,
            "signature": symbol.signature,
            "curated": symbol.is_curated(),
            "source": symbol.source,
            "docs": symbol.docs,
        });
        writeln!(out, "{value}")?;
    }
    Ok(())
}
