//! Command-line features: the same analysis the server does, printed for people and scripts.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{format_err, Context};

use crate::catalog::{self, Catalog};
use crate::documents::Document;
use crate::ide;
use crate::kernels::analyze::{AnalyzeError, Analyzer, Severity};
use crate::kernels::document::{DocumentKernels, KernelSite};
use crate::kernels::ir::IrKind;
use crate::kernels::report::KernelReport;
use crate::kernels::session::{KernelSession, KernelTarget};
use crate::kernels::timing::{duration, timing_summary, timing_warnings, WorkerPool, WORKER_START_ALLOWANCE_SECONDS};
use crate::kernels::toolchain::{Settings, Toolchain};
use crate::kernels::worker::{Answer, Op};
use crate::kernels::Cancel;
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
    doc.analyze(catalog, &[]).map_err(|panic| format_err!("analysis failed: {panic}"))?;
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
        let entry = crate::catalog::CatalogEntry::new(&catalog, idx);
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

/// Reads a source file whose kernels the `kernel` commands work on.
fn kernel_document(path: &Path) -> anyhow::Result<(String, crate::parse::Language)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let language = crate::parse::Language::from_path(&path.display().to_string())
        .ok_or_else(|| format_err!("{}: not a CUDA, C/C++ or Python file (by its extension)", path.display()))?;
    Ok((text, language))
}

/// `tensorlens kernel analyze FILE [--kernel NAME] [--json]`: kernels are compiled in parallel,
/// reported in file order; the exit status says whether every one compiled.
pub fn kernel_analyze(path: &Path, only: Option<&str>, settings: &Settings, json: bool) -> anyhow::Result<()> {
    let opened = KernelFile::open(path)?;
    let text = opened.doc.text();
    let kernels = &opened.kernels;
    let triton: Vec<String> =
        opened.triton_kernels().into_iter().filter(|name| only.is_none_or(|want| want == name)).collect();
    let sites: Vec<&KernelSite> = match only {
        Some(_) if !triton.is_empty() => Vec::new(),
        Some(name) => vec![kernels.named(name).ok_or_else(|| opened.no_such_kernel(name))?],
        None if kernels.sites.is_empty() && triton.is_empty() => {
            return Err(format_err!("{}: no __global__ function or @triton.jit kernel in this file", path.display()))
        }
        None => kernels.sites.iter().collect(),
    };
    let toolchain = Toolchain::discover(settings);
    let analyzer = Analyzer::default();
    let file = path.display().to_string();
    let results =
        parallel_map(&sites, |site| kernels.analyze(site, &file, &analyzer, &toolchain, settings, &Cancel::default()));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0;
    for (site, result) in sites.iter().zip(results) {
        let line = text[..site.name_range.start].matches('\n').count() + 1;
        match result {
            Ok(analysis) if json => {
                let report = KernelReport::analyzed(kernels, site, &file, analysis);
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            }
            Ok(analysis) => {
                writeln!(out, "{file}:{line}: {}  {}", analysis.name_expression, analysis.summary())?;
                let mut detail = format!("    block {} ({})", analysis.block_size, analysis.block_size_origin());
                if let (Some(size), Some(o)) = (analysis.better_block_size, analysis.better_occupancy) {
                    detail += &format!("; block {size} would reach {:.0}%", o * 100.0);
                }
                writeln!(out, "{detail}")?;
                for placed in kernels.place(site, &analysis.warnings) {
                    let at = text[..placed.range.start].matches('\n').count() + 1;
                    writeln!(out, "    {file}:{at}: warning: {}", placed.message)?;
                }
            }
            Err(err) => {
                failed += 1;
                let messages = match &err {
                    AnalyzeError::Compile { messages, .. } => kernels.place(site, messages),
                    _ => Vec::new(),
                };
                if json {
                    let report = KernelReport::failed(kernels, site, &file, &err, &messages);
                    writeln!(out, "{}", serde_json::to_string(&report)?)?;
                } else {
                    writeln!(out, "{file}:{line}: {}: {err}", site.kernel.name)?;
                    for m in messages {
                        let at = text[..m.range.start].matches('\n').count() + 1;
                        writeln!(out, "    {file}:{at}: {}: {}", severity_label(m.severity), m.message)?;
                    }
                }
            }
        }
    }
    // Triton kernels one after another: the one worker compiles all of a kernel's configs at once.
    let session = KernelSession::default();
    for name in &triton {
        let answer = session
            .analyze(&opened.target(name), settings, &Cancel::default())
            .map_err(|err| format_err!("{file}: {err}"))?
            .ok_or_else(|| format_err!("cancelled"))?;
        let KernelReport::Triton(report) = answer.report else { continue };
        let config_failed = report.configs.iter().any(|c| c.get("error").is_some());
        failed += (report.error.is_some() || config_failed) as usize;
        if json {
            match &report.error {
                Some(error) if report.configs.iter().all(|c| c.get("error").is_some()) => {
                    let value = serde_json::json!({
                        "file": report.file, "line": report.line, "name": report.name, "language": "triton",
                        "error": error, "messages": report.messages,
                    });
                    writeln!(out, "{value}")?;
                }
                _ => {
                    for config in &report.configs {
                        writeln!(out, "{config}")?;
                    }
                }
            }
            continue;
        }
        writeln!(out, "{file}:{}: {}  {}", report.line, report.name, report.summary)?;
        for config in &report.configs {
            let label = config.get("summary").or_else(|| config.get("error")).and_then(|v| v.as_str()).unwrap_or("");
            let index = config.get("config").and_then(|v| v.as_u64()).unwrap_or(0);
            let constexprs = config.get("constexprs").map(|c| c.to_string()).unwrap_or_default();
            let warps = config.get("num_warps").map(|c| c.to_string()).unwrap_or_default();
            let stages = config.get("num_stages").map(|c| c.to_string()).unwrap_or_default();
            writeln!(out, "    [{index}] {constexprs} num_warps={warps} num_stages={stages}: {label}")?;
        }
        for m in &report.messages {
            writeln!(out, "    {file}:{}: {}: {}", m.line, severity_label(m.severity), m.message)?;
        }
        if let Some(missing) = answer.missing {
            eprintln!("tensorlens: {missing}");
        }
    }
    let total = sites.len() + triton.len();
    if failed > 0 {
        return Err(format_err!("{failed} of {total} kernels could not be analyzed"));
    }
    Ok(())
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Hint => "hint",
    }
}

/// A kernel file opened as the server opens it, so that its CUDA and Triton kernels are found the
/// same way: parsed, and recognised (Triton's decorators are known through the imports).
struct KernelFile {
    doc: Document,
    kernels: std::sync::Arc<DocumentKernels>,
    /// The file name compilers report: the path as given.
    file: String,
}

impl KernelFile {
    fn open(path: &Path) -> anyhow::Result<KernelFile> {
        let (text, _) = kernel_document(path)?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut doc = Document::new(&format!("file://{}", absolute.display()), "", 0, &text);
        doc.analyze(&Catalog::builtin(), &[]).map_err(|panic| format_err!("analysis failed: {panic}"))?;
        let kernels = doc
            .kernels()
            .ok_or_else(|| format_err!("{}: kernels live in CUDA, C/C++ and Python files", path.display()))?;
        Ok(KernelFile { doc, kernels, file: path.display().to_string() })
    }

    /// The Triton kernels (not their helpers), in file order.
    fn triton_kernels(&self) -> Vec<String> {
        self.doc.triton().map(|t| t.kernels().map(|f| f.name.clone()).collect()).unwrap_or_default()
    }

    fn target(&self, kernel: &str) -> KernelTarget {
        KernelTarget {
            uri: self.doc.uri.clone(),
            path: self.file.clone(),
            kernels: self.kernels.clone(),
            triton: self.doc.triton().map(|file| (file, std::sync::Arc::from(self.doc.text()))),
            selection: None,
            kernel: Some(kernel.to_string()),
        }
    }

    fn no_such_kernel(&self, name: &str) -> anyhow::Error {
        let mut names: Vec<String> = self.kernels.sites.iter().map(|s| s.kernel.qualified_name.clone()).collect();
        names.extend(self.triton_kernels());
        if names.is_empty() {
            format_err!("{}: no kernel named `{name}`; the file has no __global__ or @triton.jit kernel", self.file)
        } else {
            format_err!("{}: no kernel named `{name}`; its kernels: {}", self.file, names.join(", "))
        }
    }
}

/// `tensorlens kernel ptx|sass|ttir|ttgir|llir FILE --kernel NAME [--config N]`
pub fn kernel_ir(
    path: &Path,
    name: &str,
    kind: IrKind,
    config: Option<usize>,
    settings: &Settings,
) -> anyhow::Result<()> {
    let file = KernelFile::open(path)?;
    let is_triton = file.triton_kernels().iter().any(|k| k == name);
    if !is_triton && file.kernels.named(name).is_none() {
        return Err(file.no_such_kernel(name));
    }
    let session = KernelSession::default();
    let answer = session
        .ir(&file.target(name), kind, config, settings, &Cancel::default())
        .map_err(|err| format_err!("{}: {err}", file.file))?
        .ok_or_else(|| format_err!("cancelled"))?;
    if let Some(config) = &answer.config {
        eprintln!("tensorlens: {name} with {config}");
    }
    match (answer.text, answer.error) {
        (Some(text), _) => {
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(())
        }
        (None, error) => Err(format_err!("{name}: {}", error.unwrap_or_else(|| format!("no {kind}")))),
    }
}

/// `tensorlens kernel time FILE --kernel NAME`: the same worker and numbers as the editor's.
pub fn kernel_time(
    path: &Path,
    name: &str,
    n: Option<u64>,
    timeout: Option<f64>,
    settings: &Settings,
    json: bool,
) -> anyhow::Result<()> {
    let (text, language) = kernel_document(path)?;
    let kernels = DocumentKernels::new(&text, language);
    let site = kernels.named(name).ok_or_else(|| no_such_kernel(&kernels, name, path))?;
    let toolchain = Toolchain::discover(settings);
    let file = path.display().to_string();
    let cancel = Cancel::default();
    let (request, analysis) = kernels
        .timing_request(site, &file, &Analyzer::default(), &toolchain, settings, n, &cancel)
        .map_err(|message| format_err!("{message}"))?;
    let command = WorkerPool::command_for(&settings.timing_launcher, settings.timing_worker.as_deref());
    let mut pool = WorkerPool::new(command);
    let budget = std::time::Duration::from_secs_f64(
        timeout.unwrap_or(request.rule.timeout_seconds + WORKER_START_ALLOWANCE_SECONDS).max(0.1),
    );
    let spec = request.spec.clone();
    let answer = pool.request(Op::Time(Box::new(request)), budget, &cancel);
    let timing = match answer {
        Ok(Answer::Timing(timing)) => timing,
        Ok(other) => return Err(format_err!("the worker answered something else: {other:?}")),
        Err(err) => {
            if json {
                println!("{}", serde_json::json!({ "name": name, "error": err.to_string(), "spec": spec }));
            }
            return Err(format_err!("{}: {err}", analysis.name_expression));
        }
    };
    if json {
        let mut value = serde_json::to_value(&*timing)?;
        value["name"] = analysis.name_expression.clone().into();
        value["spec"] = serde_json::to_value(&spec)?;
        value["summary_text"] = timing_summary(&timing).into();
        println!("{value}");
        return Ok(());
    }
    println!(
        "{} on {} ({}): {}",
        analysis.name_expression,
        timing.device.name,
        timing.device.arch,
        timing_summary(&timing)
    );
    let s = &timing.summary;
    println!(
        "    median {} · min {} · max {} · {} samples{} · L2 {}",
        duration(s.median),
        duration(s.min),
        duration(s.max),
        s.samples,
        if timing.batch > 1 { format!(" of {} launches each", timing.batch) } else { String::new() },
        if timing.cold { "cleared before each sample" } else { "warm" }
    );
    for warning in timing_warnings(&timing) {
        println!("    warning: {warning}");
    }
    for line in &spec.explained {
        println!("    {line}");
    }
    Ok(())
}

/// `tensorlens settings [--json]`: the settings table.
pub fn settings(json: bool) -> anyhow::Result<()> {
    use crate::settings::{Access, Source, SETTINGS};
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for setting in SETTINGS {
        if json {
            writeln!(out, "{}", setting.to_json())?;
            continue;
        }
        let access = match setting.access {
            Access::None => "",
            Access::ReadsFiles => " · reads files",
            Access::RunsProgram => " · runs a program or loads a library",
        };
        let source = if setting.source == Source::Editor { " · sent by the editor" } else { "" };
        writeln!(out, "{:<20}{} (default {}){access}{source}", setting.key, setting.kind.describe(), setting.default)?;
        writeln!(out, "{:<20}{}", "", setting.description)?;
    }
    Ok(())
}

/// `tensorlens kernel toolchain [--json]`
pub fn kernel_toolchain(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let toolchain = Toolchain::discover(settings);
    if json {
        println!("{}", serde_json::to_string(&toolchain)?);
        return Ok(());
    }
    match &toolchain.nvrtc {
        Ok(nvrtc) => println!("NVRTC    {} ({})", nvrtc.version, nvrtc.path.display()),
        Err(err) => println!("NVRTC    missing: {err}"),
    }
    match &toolchain.ptxas {
        Ok(path) => println!("ptxas    {}", path.display()),
        Err(err) => println!("ptxas    missing: {err}"),
    }
    match &toolchain.nvdisasm {
        Ok(path) => println!("nvdisasm {}", path.display()),
        Err(err) => println!("nvdisasm missing: {err}"),
    }
    if toolchain.include_dirs.is_empty() {
        println!("headers  missing: no CUDA include folder (cuda_fp16.h) beside NVRTC, under CUDA_HOME or in settings");
    }
    for dir in &toolchain.include_dirs {
        println!("headers  {}", dir.display());
    }
    match &toolchain.gpu {
        Some(gpu) => println!("GPU      {} ({})", gpu.name, gpu.arch),
        None => println!("GPU      none (compiling for {})", toolchain.target_arch(settings)),
    }
    for note in &toolchain.ignored {
        println!("ignored  {note}");
    }
    Ok(())
}

fn no_such_kernel(kernels: &DocumentKernels, name: &str, path: &Path) -> anyhow::Error {
    let names: Vec<&str> = kernels.sites.iter().map(|s| s.kernel.qualified_name.as_str()).collect();
    if names.is_empty() {
        format_err!("{}: no __global__ function in this file", path.display())
    } else {
        format_err!("{}: no kernel named `{name}`; the file has: {}", path.display(), names.join(", "))
    }
}

/// Runs `f` over `items` on as many threads as there are cores, keeping the order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let idx = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(idx) else { break };
                let result = f(item);
                slots.lock().unwrap_or_else(|e| e.into_inner())[idx] = Some(result);
            });
        }
    });
    results.into_iter().map(|r| r.expect("every item was processed")).collect()
}
