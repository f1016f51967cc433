//! In-process profiling helpers of the LSP benchmark, for profilers (`perf`, heaptrack), not
//! measurements of what a user sees: `--open-only` analyses the generated file once, `--edit-only`
//! times one-character edits and the incremental parse alone, `--cu-parts` times the parts of a `.cu`
//! file's opening, its steady code lenses and its first-hover windows. The benchmark proper runs over LSP.

use std::time::{Duration, Instant};

use tensorlens::catalog::Catalog;
use tensorlens::documents::{Change, Document};
use tensorlens::text::{LineCol, PositionEncoding};

use crate::workload::training_script;

const LINES: usize = 20_000;

/// Runs a profiling mode if one is asked for; returns whether it did.
pub fn run() -> bool {
    if std::env::args().any(|a| a == "--open-only") {
        // For profilers: just the cost of analysing the file once.
        let text = training_script(LINES);
        let rss = || peak_rss(std::process::id()).unwrap_or(0) / 1024;
        let current = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
                / 1024
        };
        let catalog = Catalog::builtin();
        tensorlens::recognize::query(tensorlens::parse::Language::Python);
        println!("catalog + query: {} MB", current());
        let started = Instant::now();
        let rope = ropey::Rope::from_str(&text);
        let tree = tensorlens::parse::parse(tensorlens::parse::Language::Python, &rope, None);
        println!("+ rope and tree: {} MB, {}", current(), ms(started.elapsed()));
        let started = Instant::now();
        let rec = tensorlens::recognize::recognize(
            tensorlens::parse::Language::Python,
            &rope,
            tree.as_ref().unwrap(),
            &catalog,
            &[],
        );
        let took = started.elapsed();
        println!(
            "+ recognition: {} MB (peak {} MB), {} references, {}",
            current(),
            rss(),
            rec.references().count(),
            ms(took)
        );
        return true;
    }
    if std::env::args().any(|a| a == "--steady") {
        // The benchmark's steady hovers in process, in its order: which of them are slow.
        let text = training_script(LINES);
        let wl = crate::workload::Workload::new(
            "train_20k.py",
            tensorlens::parse::Language::Python,
            text.clone(),
            true,
            1000,
        );
        let catalog = Catalog::builtin();
        let mut doc = Document::new("file:///bench.py", "python", 0, &text);
        doc.analyze(&catalog, &[]).expect("analysis");
        let mut times: Vec<(Duration, String, u32)> = Vec::new();
        for target in &wl.hovers {
            let pos = LineCol { line: target.pos.line, col: target.pos.col };
            let offset = tensorlens::text::offset(&doc.rope, pos, PositionEncoding::Utf16).expect("in the file");
            let started = Instant::now();
            std::hint::black_box(tensorlens::ide::hover(&doc, &catalog, offset));
            times.push((started.elapsed(), target.token.clone(), target.pos.line));
        }
        let mut sorted: Vec<Duration> = times.iter().map(|t| t.0).collect();
        sorted.sort();
        println!(
            "p50 {} p99 {} max {}",
            ms(sorted[sorted.len() / 2]),
            ms(sorted[sorted.len() * 99 / 100]),
            ms(sorted[sorted.len() - 1])
        );
        times.sort_by_key(|t| std::cmp::Reverse(t.0));
        for (took, token, line) in times.iter().take(12) {
            println!("  {} {token} (line {})", ms(*took), line + 1);
        }
        return true;
    }
    if std::env::args().any(|a| a == "--hover-only") {
        // For profilers: a value hover on fresh values of the same version, many times.
        let text = training_script(LINES);
        let catalog = Catalog::builtin();
        let mut doc = Document::new("file:///bench.py", "python", 0, &text);
        doc.analyze(&catalog, &[]).expect("analysis");
        let at = text.find("loss.backward").expect("a loss.backward") + 6;
        let shared: std::sync::Arc<str> = std::sync::Arc::from(text.as_str());
        let mut times = Vec::new();
        for _ in 0..300 {
            let started = Instant::now();
            let m = tensorlens::values::ModuleValues::new(shared.clone(), doc.tree.clone().unwrap(), &[]);
            assert!(tensorlens::values::answer_at(&m, &catalog, at).is_some());
            times.push(started.elapsed());
        }
        println!("value hover on fresh values: median {}", ms(median(&times)));
        return true;
    }
    if std::env::args().any(|a| a == "--window-parts") {
        let text = training_script(LINES);
        let catalog = Catalog::builtin();
        let at = text.find("loss.backward").expect("a loss.backward") + 6;
        let rope = ropey::Rope::from_str(&text);
        tensorlens::recognize::query(tensorlens::parse::Language::Python);
        for _ in 0..4 {
            let mut t = Instant::now();
            let mut lap = |what: &str| {
                println!("{what}: {}", ms(t.elapsed()));
                t = Instant::now();
            };
            let copy = rope.to_string();
            lap("text copy");
            let ranges = tensorlens::provisional::window_ranges(&copy, at);
            lap("window ranges (segments, names)");
            let tree =
                tensorlens::parse::parse_within(tensorlens::parse::Language::Python, &rope, None, &ranges).unwrap();
            lap("parse within");
            let rec =
                tensorlens::recognize::recognize(tensorlens::parse::Language::Python, &rope, &tree, &catalog, &[]);
            lap("recognize the window");
            std::hint::black_box(rec);
            println!("window: {} ranges, {} bytes", ranges.len(), ranges.iter().map(|r| r.len()).sum::<usize>());
        }
        return true;
    }
    if std::env::args().any(|a| a == "--cu-parts") {
        // Where the time of a `.cu` file's opening goes, in process: parse, recognition,
        // kernels, diagnostics.
        let text = crate::workload::cuda_source(LINES);
        let catalog = Catalog::builtin();
        let lang = tensorlens::parse::Language::Cuda;
        let started = Instant::now();
        tensorlens::recognize::query(lang);
        println!("query: {}", ms(started.elapsed()));
        for _ in 0..3 {
            let mut t = Instant::now();
            let mut lap = |what: &str| {
                println!("{what}: {}", ms(t.elapsed()));
                t = Instant::now();
            };
            let mut doc = Document::new("file:///bench.cu", "cuda", 0, &text);
            lap("document");
            let tree = tensorlens::parse::parse(lang, &doc.rope, None).unwrap();
            lap("parse");
            let rec = tensorlens::recognize::recognize(lang, &doc.rope, &tree, &catalog, &[]);
            lap("recognize");
            std::hint::black_box(rec);
            doc.analyze(&catalog, &[]).unwrap();
            lap("analyze (both)");
            let kernels = doc.kernels().unwrap();
            lap("kernels");
            let diags = tensorlens::ide::diagnostics(&doc, &catalog);
            lap("diagnostics");
            println!("{} kernels, {} diagnostics", kernels.sites.len(), diags.len());
        }
        {
            // The steady code lenses, in their parts.
            let mut doc = Document::new("file:///bench.cu", "cuda", 0, &text);
            doc.analyze(&catalog, &[]).unwrap();
            let session = tensorlens::kernels::session::KernelSession::default();
            for _ in 0..3 {
                let mut t = Instant::now();
                let mut lap = |what: &str| {
                    println!("lenses, {what}: {}", ms(t.elapsed()));
                    t = Instant::now();
                };
                let kernels = doc.kernels().unwrap();
                lap("kernels (cached)");
                let lenses = session.lenses(&doc.uri, &kernels, None, true);
                lap("session lenses");
                let ranges: Vec<_> = lenses
                    .iter()
                    .map(|l| tensorlens::lsp::to_proto::range(&doc, &l.name_range, PositionEncoding::Utf16))
                    .collect();
                lap("ranges");
                let json = serde_json::to_string(&ranges).unwrap();
                lap("ranges as JSON");
                std::hint::black_box(json);
                let lenses: Vec<tower_lsp_server::ls_types::CodeLens> = lenses
                    .iter()
                    .zip(ranges)
                    .map(|(l, range)| tower_lsp_server::ls_types::CodeLens {
                        range,
                        command: None,
                        data: serde_json::to_value((0usize, l.kernel.clone(), 0usize)).ok(),
                    })
                    .collect();
                lap("code lenses with data");
                let value = serde_json::to_value(&lenses).unwrap();
                lap("as a JSON value");
                let bytes = serde_json::to_vec(&value).unwrap();
                lap("as bytes");
                println!("{} KB", bytes.len() / 1024);
            }
        }
        let wl = crate::workload::Workload::new("kernels_20k.cu", lang, text.clone(), true, 100);
        let fresh = Document::new("file:///bench.cu", "cuda", 0, &text);
        for (target, _) in [&wl.first_value, &wl.first_function].into_iter().flatten() {
            let pos = LineCol { line: target.pos.line, col: target.pos.col };
            let offset = tensorlens::text::offset(&fresh.rope, pos, PositionEncoding::Utf16).expect("in the file");
            for _ in 0..3 {
                let started = Instant::now();
                let window = fresh.provisional(offset, &catalog);
                let took = started.elapsed();
                let answer = window.as_ref().and_then(|w| tensorlens::ide::hover(w, &catalog, offset));
                println!(
                    "window at {}: {} ({})",
                    target.token,
                    ms(took),
                    if answer.is_some() { "answered" } else { "none" }
                );
            }
        }
        return true;
    }
    if std::env::args().any(|a| a == "--edit-only") {
        let (edit, hover, values) = in_process_edit(&training_script(LINES), 100);
        println!("edit median {}", ms(median(&edit)));
        println!("then the values of the file (text copy, module scope) median {}", ms(median(&values)));
        println!("then a value hover below median {}", ms(median(&hover)));
        let text = training_script(LINES);
        let mut rope = ropey::Rope::from_str(&text);
        let lang = tensorlens::parse::Language::Python;
        let mut tree = tensorlens::parse::parse(lang, &rope, None).unwrap();
        let mut times = Vec::new();
        for _ in 0..50 {
            let at = text.len() / 2;
            let point = tensorlens::text::point(&rope, at);
            rope.insert(rope.byte_to_char(at), "x");
            tree.edit(&tree_sitter::InputEdit {
                start_byte: at,
                old_end_byte: at,
                new_end_byte: at + 1,
                start_position: point,
                old_end_position: point,
                new_end_position: tree_sitter::Point { row: point.row, column: point.column + 1 },
            });
            let started = Instant::now();
            tree = tensorlens::parse::parse(lang, &rope, Some(&tree)).unwrap();
            times.push(started.elapsed());
        }
        println!("incremental parse alone: median {}", ms(median(&times)));
        return true;
    }
    false
}

/// Typing in the middle of the file: one character into a name inside a function body, then
/// taking it out again; each edit is timed, then the values it reset, then a hover on
/// `loss.backward` (a method on a value) in the same function.
fn in_process_edit(text: &str, runs: usize) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let catalog = Catalog::builtin();
    let mut doc = Document::new("file:///bench.py", "python", 0, text);
    doc.analyze(&catalog, &[]).expect("analysis");
    let middle = text.lines().count() / 2;
    let (line, col) = text
        .lines()
        .enumerate()
        .skip(middle)
        .find_map(|(idx, l)| l.find("loss.backward").map(|col| (idx as u32, col as u32 + 4)))
        .expect("a loss.backward line");
    let hover_at = text.lines().take(line as usize).map(|l| l.len() + 1).sum::<usize>() + col as usize + 6;
    let (mut hovers, mut values) = (Vec::new(), Vec::new());
    let edits = (0..runs)
        .map(|i| {
            let pos = LineCol { line, col };
            let change = if i % 2 == 0 {
                Change { range: Some((pos, pos)), text: "x".into() }
            } else {
                Change { range: Some((pos, LineCol { line, col: col + 1 })), text: String::new() }
            };
            let started = Instant::now();
            doc.apply(&change, PositionEncoding::Utf16).expect("a valid edit");
            doc.analyze(&catalog, &[]).expect("analysis");
            let took = started.elapsed();
            std::hint::black_box(&doc.recognition);
            if i % 2 == 1 {
                // The name is whole again.
                let started = Instant::now();
                std::hint::black_box(doc.values());
                values.push(started.elapsed());
                let started = Instant::now();
                let answer = tensorlens::ide::hover(&doc, &catalog, hover_at);
                hovers.push(started.elapsed());
                assert!(answer.is_some(), "a hover on loss.backward");
            }
            took
        })
        .collect();
    let started = Instant::now();
    let window = doc.window_at(hover_at, &catalog, None).expect("a window");
    let windowed = started.elapsed();
    let started = Instant::now();
    assert!(tensorlens::ide::hover(&window, &catalog, hover_at).is_some());
    println!("window at the hover {}, then its hover {}", ms(windowed), ms(started.elapsed()));
    (edits, hovers, values)
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Peak resident memory of this process (KiB).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}
