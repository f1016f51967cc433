//! Benchmarks against the budgets in DESIGN.md, on a generated 20,000-line training script:
//! hover latency (p50/p99) over LSP, one-character edit to updated references (in process and over
//! LSP), start-up to `initialize` answered, and peak resident memory. When basedpyright is installed
//! (`tests/bench/setup-peers`), the same hovers go to it and the ratio is printed.
//!
//! Run: `cargo bench --bench lsp` (add `-- --quick` for fewer samples).

#[path = "../lsp/client.rs"]
mod client;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use client::Client;
use serde_json::{json, Value};
use tensorlens::catalog::Catalog;
use tensorlens::documents::{Change, Document};
use tensorlens::text::{LineCol, PositionEncoding};

const LINES: usize = 20_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
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
        return;
    }
    if std::env::args().any(|a| a == "--edit-only") {
        let edit = in_process_edit(&training_script(LINES), 100);
        println!("edit median {}", ms(median(&edit)));
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
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/bench");
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join("train_20k.py");
    let text = training_script(LINES);
    std::fs::write(&path, &text).unwrap();
    let uri = format!("file://{}", path.canonicalize().unwrap().display());
    let targets = hover_targets(&text, if quick { 200 } else { 2_000 });
    println!("file: {} lines, {} bytes; {} hover positions", text.lines().count(), text.len(), targets.len());

    let startup = startup_times(if quick { 5 } else { 30 });
    println!("\n== tensorlens");
    println!("start-up to initialize answered: median {}  (budget 30 ms)", ms(median(&startup)));

    let (parse, full) = open_costs(&text);
    println!("open: full parse {}, parse + full recognition {}", ms(parse), ms(full));
    let edit = in_process_edit(&text, if quick { 50 } else { 300 });
    println!(
        "one-character edit to updated references, in process: median {}  p99 {}  (budget 2 ms)",
        ms(median(&edit)),
        ms(p99(&edit))
    );

    let ours = lsp_session(Client::start(json!({}), None).0, &uri, &text, &targets, true);
    ours.print("tensorlens");

    match basedpyright() {
        Some(command) => {
            println!("\n== basedpyright (same file, same positions)");
            let (client, _) = Client::spawn(command, json!({}), Some(&root));
            let peer_targets: Vec<(u32, u32)> = targets.iter().copied().take(if quick { 20 } else { 100 }).collect();
            let peer = lsp_session(client, &uri, &text, &peer_targets, false);
            peer.print("basedpyright");
            println!("\n== ratio (basedpyright / tensorlens)");
            println!("first hover after open: {:.0}x", peer.first_hover.as_secs_f64() / ours.first_hover.as_secs_f64());
            println!("hover after an edit:    {:.0}x", peer.after_edit.as_secs_f64() / ours.after_edit.as_secs_f64());
            println!(
                "steady hover p50:       {:.0}x",
                median(&peer.hovers).as_secs_f64() / median(&ours.hovers).as_secs_f64()
            );
            println!(
                "steady hover p99:       {:.0}x",
                p99(&peer.hovers).as_secs_f64() / p99(&ours.hovers).as_secs_f64()
            );
        }
        None => println!("\nbasedpyright not installed: run tests/bench/setup-peers to compare (skipped)"),
    }
}

struct Session {
    first_hover: Duration,
    after_edit: Duration,
    value_after_edit: Option<Duration>,
    hovers: Vec<Duration>,
    edit_round_trip: Vec<Duration>,
    peak_rss_kib: Option<u64>,
}

impl Session {
    fn print(&self, who: &str) {
        println!("{who}: first hover after open {}", ms(self.first_hover));
        println!("{who}: hover right after a one-character edit {}", ms(self.after_edit));
        if let Some(value) = self.value_after_edit {
            println!("{who}: hover on a value (loss.backward) right after an edit {}", ms(value));
        }
        println!(
            "{who}: steady hovers ({}) p50 {}  p99 {}  (budget p99 1 ms)",
            self.hovers.len(),
            ms(median(&self.hovers)),
            ms(p99(&self.hovers))
        );
        if !self.edit_round_trip.is_empty() {
            println!(
                "{who}: didChange + hover round trip p50 {}  p99 {}",
                ms(median(&self.edit_round_trip)),
                ms(p99(&self.edit_round_trip))
            );
        }
        if let Some(kib) = self.peak_rss_kib {
            println!("{who}: peak resident memory {:.1} MB  (budget 60 MB)", kib as f64 / 1024.0);
        }
    }
}

fn lsp_session(mut client: Client, uri: &str, text: &str, targets: &[(u32, u32)], edits: bool) -> Session {
    let (line, col) = targets[0];
    client.open(uri, "python", text);
    let started = Instant::now();
    // Some servers answer null until their analysis is ready; the first real answer counts.
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.hover(uri, line, col).is_null() && Instant::now() < deadline {}
    let first_hover = started.elapsed();

    let mut version = 2;
    let insert_line = text.lines().count() as u32 - 2;
    let edit = |client: &mut Client, version: i32, insert: bool| {
        let range = if insert {
            json!({ "start": { "line": insert_line, "character": 0 }, "end": { "line": insert_line, "character": 0 } })
        } else {
            json!({ "start": { "line": insert_line, "character": 0 }, "end": { "line": insert_line, "character": 1 } })
        };
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "range": range, "text": if insert { "#" } else { "" } }] }),
        );
    };
    edit(&mut client, version, true);
    version += 1;
    let started = Instant::now();
    let answered: Value = client.hover(uri, line, col);
    let after_edit = started.elapsed();
    assert!(!answered.is_null(), "hover after edit answered");
    edit(&mut client, version, false);
    version += 1;
    // The first hover on a value after an edit: the value types of the new version are worked out.
    let value_target = targets.iter().copied().find(|&(l, c)| {
        text.lines()
            .nth(l as usize)
            .is_some_and(|line| line.get(..c as usize + 2).is_some_and(|s| s.ends_with("loss.backward")))
    });
    let mut value_after_edit = None;
    if let Some((vl, vc)) = value_target {
        edit(&mut client, version, true);
        version += 1;
        let started = Instant::now();
        let answered = client.hover(uri, vl, vc);
        value_after_edit = Some(started.elapsed());
        std::hint::black_box(answered);
        edit(&mut client, version, false);
        version += 1;
    }

    let mut hovers = Vec::with_capacity(targets.len());
    for &(line, col) in targets {
        let started = Instant::now();
        let res = client.hover(uri, line, col);
        hovers.push(started.elapsed());
        std::hint::black_box(res);
    }
    let mut edit_round_trip = Vec::new();
    if edits {
        for i in 0..200 {
            let started = Instant::now();
            edit(&mut client, version, i % 2 == 0);
            version += 1;
            client.hover(uri, line, col);
            edit_round_trip.push(started.elapsed());
        }
    }
    let peak_rss_kib = peak_rss(client.child.id());
    client.shutdown_or_kill();
    Session { first_hover, after_edit, value_after_edit, hovers, edit_round_trip, peak_rss_kib }
}

fn startup_times(runs: usize) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let (client, _) = Client::start(json!({}), None);
            let took = started.elapsed();
            client.shutdown();
            took
        })
        .collect()
}

fn open_costs(text: &str) -> (Duration, Duration) {
    let catalog = Catalog::builtin();
    let rope = ropey::Rope::from_str(text);
    let started = Instant::now();
    std::hint::black_box(tensorlens::parse::parse(tensorlens::parse::Language::Python, &rope, None));
    let parse = started.elapsed();
    let started = Instant::now();
    let mut doc = Document::new("file:///bench.py", "python", 0, text);
    doc.analyze(&catalog, &[]).expect("analysis");
    (parse, started.elapsed())
}

/// Typing in the middle of the file: one character into a name inside a function body, then
/// taking it out again.
fn in_process_edit(text: &str, runs: usize) -> Vec<Duration> {
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
    (0..runs)
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
            took
        })
        .collect()
}

/// A realistic script: imports with aliases once, then many model, data and training blocks.
fn training_script(lines: usize) -> String {
    let mut out = String::from(
        "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nfrom torch.utils.data import DataLoader\nimport numpy as np\nimport jax\nfrom jax import numpy as jnp\n\n",
    );
    let mut i = 0;
    let mut written = out.lines().count();
    while written < lines {
        let block = format!(
            r#"
class Block{i}(nn.Module):
    def __init__(self, dim: int = {dim}):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 8, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        h = self.norm(x)
        a, _ = self.attn(h, h, h)
        x = x + F.dropout(a, p=0.1, training=self.training)
        return x + self.mlp(F.layer_norm(x, x.shape[-1:]))


@torch.no_grad()
def evaluate_{i}(model, loader, device="cuda"):
    total, correct = 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        correct += (torch.argmax(logits, dim=-1) == y).sum().item()
        total += y.numel()
    return correct / max(total, 1)


def train_{i}(model, data, epochs=2, lr=3e-4):
    loader = DataLoader(data, batch_size=64, shuffle=True, num_workers=2)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for epoch in range(epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        sched.step()
    torch.save(model.state_dict(), f"block{i}.pt")
    return math.exp(loss.item())


@jax.jit
def reference_{i}(w, x):
    return jnp.mean(jnp.square(jnp.matmul(x, w) - jnp.ones_like(x)))

"#,
            dim = 64 + (i % 8) * 32
        );
        written += block.matches('\n').count();
        out.push_str(&block);
        i += 1;
    }
    out
}

/// Positions (line, UTF-16 column) on the last segment of framework calls, spread over the file.
fn hover_targets(text: &str, n: usize) -> Vec<(u32, u32)> {
    let needles = [
        "F.dropout",
        "torch.argmax",
        "nn.LayerNorm",
        "torch.optim.AdamW",
        "jnp.matmul",
        "F.cross_entropy",
        "torch.save",
        // Reached through values: a method on a tensor and on an optimizer, a keyword argument.
        "loss.backward",
        "opt.zero_grad",
        "weight_decay",
    ];
    let mut all = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        for needle in needles {
            if let Some(col) = line.find(needle) {
                all.push((line_idx as u32, (col + needle.len() - 2) as u32));
            }
        }
    }
    let step = (all.len() / n).max(1);
    all.into_iter().step_by(step).take(n).collect()
}

fn basedpyright() -> Option<Command> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/bench/venv");
    let server = venv.join("bin/basedpyright-langserver");
    if !server.exists() {
        return None;
    }
    let mut command = Command::new(server);
    command.arg("--stdio");
    // Point it at the venv that has torch installed, so it reads torch's own stubs.
    command
        .env("VIRTUAL_ENV", &venv)
        .env("PATH", format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default()));
    Some(command)
}

/// Peak resident memory of a process and its descendants (peers start node from a launcher).
fn peak_rss(pid: u32) -> Option<u64> {
    let proc = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let own: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut children = 0;
    for task in std::fs::read_dir(proc.join("task")).ok()?.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in list.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
            children += peak_rss(child).unwrap_or(0);
        }
    }
    Some(own + children)
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 0.5)
}

fn p99(samples: &[Duration]) -> Duration {
    percentile(samples, 0.99)
}

fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
