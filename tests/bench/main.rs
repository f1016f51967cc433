//! The LSP benchmark of issue 15 ("instant on open and on every keystroke"): each moment of the
//! issue's table measured from the client's side, over LSP on stdio, the same way for tensorlens and
//! for the peer Python servers (basedpyright, Pyrefly, ty; `tests/bench/setup-peers` installs them),
//! in one run, on the same file, positions and edits, with the ratios. One table per file: a
//! generated 20,000-line training script and a generated 20,000-line `.cu` file, or any files given.
//!
//! Run: `cargo bench --bench lsp` (`-- --quick` for fewer samples). Options after `--`:
//!   --file PATH         measure this file instead of the generated one of its language (.py, .cu,
//!                       .cuh, .cpp; repeatable); --cu-file PATH is the same
//!   --servers a,b       any of tensorlens,basedpyright,pyrefly,ty (default: all)
//!   --quick             fewer samples
//!   --hovers N --edits N --lenses N   sample counts (steady hovers, one-character edits, lens requests)
//!   --timeout SECONDS   per request (default 60): a stuck server costs this, never the run
//!   --json              also one JSON line per measurement
//!   --open-only, --edit-only   in-process profiling helpers (profile.rs), not the benchmark

mod profile;
mod stdio;
mod workload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stdio::{file_uri, Incoming, Kind, Server};
use tensorlens::parse::Language;
use workload::{Target, Workload};

const LINES: usize = 20_000;
/// How long a first hover answered empty is asked again.
const EMPTY_RETRIES: Duration = Duration::from_secs(10);
const SERVERS: [&str; 4] = ["tensorlens", "basedpyright", "pyrefly", "ty"];

struct Options {
    files: Vec<PathBuf>,
    servers: Vec<String>,
    json: bool,
    hovers: usize,
    edits: usize,
    lenses: usize,
    timeout: Duration,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut options = Options {
        files: Vec::new(),
        servers: SERVERS.iter().map(|s| s.to_string()).collect(),
        json: false,
        hovers: if quick { 100 } else { 1_000 },
        edits: if quick { 10 } else { 40 },
        lenses: if quick { 20 } else { 200 },
        timeout: Duration::from_secs(60),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<usize>().unwrap_or_else(|_| panic!("{name} takes a number"));
        match arg.as_str() {
            "--file" | "--cu-file" => options.files.push(PathBuf::from(value(&arg))),
            "--servers" => {
                options.servers = value("--servers").split(',').map(|s| s.trim().to_string()).collect();
                for s in &options.servers {
                    assert!(SERVERS.contains(&s.as_str()), "unknown server {s:?}; known: {}", SERVERS.join(","));
                }
            }
            "--json" => options.json = true,
            "--hovers" => options.hovers = number("--hovers", value("--hovers")),
            "--edits" => options.edits = number("--edits", value("--edits")),
            "--lenses" => options.lenses = number("--lenses", value("--lenses")),
            "--timeout" => options.timeout = Duration::from_secs(number("--timeout", value("--timeout")) as u64),
            // `cargo bench` passes --bench to every bench binary.
            "--quick" | "--bench" => {}
            other => panic!("unknown option {other:?} (see tests/bench/main.rs)"),
        }
    }
    options
}

fn main() {
    if profile::run() {
        return;
    }
    let options = options();
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/bench");
    std::fs::create_dir_all(&cache).unwrap();
    let cache = cache.canonicalize().unwrap();

    let mut workloads = Vec::new();
    for path in &options.files {
        let path = &resolve(path);
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let language = Language::from_path(&name).unwrap_or_else(|| panic!("{name}: not a Python, CUDA or C++ file"));
        workloads.push(Workload::new(&name, language, text, false, options.hovers));
    }
    let given = |language: Language| workloads.iter().any(|w: &Workload| same_kind(w.language, language));
    let (python_given, cuda_given) = (given(Language::Python), given(Language::Cuda));
    if !python_given {
        workloads.insert(
            0,
            Workload::new("train_20k.py", Language::Python, workload::training_script(LINES), true, options.hovers),
        );
    }
    if !cuda_given {
        workloads.push(Workload::new(
            "kernels_20k.cu",
            Language::Cuda,
            workload::cuda_source(LINES),
            true,
            options.hovers,
        ));
    }

    let specs: Vec<Spec> = options.servers.iter().map(|name| Spec::new(name, &cache)).collect();
    println!("# LSP benchmark (issue 15), over stdio from the client's side");
    println!();
    println!("- tensorlens {}", tensorlens_version());
    for spec in &specs {
        match &spec.command {
            Ok(_) if spec.name != "tensorlens" => println!("- {}", spec.version),
            Ok(_) => {}
            Err(reason) => println!("- {}: skipped ({reason})", spec.name),
        }
    }
    println!("- machine: {} cores, load average at start {}", cores(), load_average());

    let mut json_lines = Vec::new();
    for wl in &workloads {
        let root = cache.join(format!("ws-{}", wl.name.replace('.', "-")));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let path = root.join(&wl.name);
        std::fs::write(&path, &wl.text).unwrap();
        let uri = file_uri(&path);
        let edits = wl.edits(options.edits);
        let mut results: Vec<(String, Results)> = Vec::new();
        for spec in &specs {
            let result = match &spec.command {
                Err(reason) => Results::skipped(reason),
                Ok(_) if spec.python_only && wl.language != Language::Python => {
                    Results::skipped("n/a: a Python server")
                }
                Ok(_) => measure(spec, wl, &root, &uri, &edits, &options),
            };
            results.push((spec.name.to_string(), result));
        }
        print_table(wl, &results, &options, edits.len());
        for (server, result) in &results {
            for (key, ..) in rows(wl, &options, edits.len()) {
                let Some(cell) = result.cells.get(key) else { continue };
                json_lines.push(json!({
                    "bench": "lsp", "file": wl.name, "generated": wl.generated, "lines": wl.line_count(),
                    "server": server, "moment": key, "value": cell.value, "unit": cell.unit, "text": cell.text,
                    "samples": cell.samples, "extra": cell.extra,
                }));
            }
            if let Some(reason) = &result.skipped {
                json_lines.push(json!({ "bench": "lsp", "file": wl.name, "server": server, "skipped": reason }));
            }
        }
    }
    println!("\nload average at the end {}", load_average());
    if options.json {
        println!();
        for line in json_lines {
            println!("{line}");
        }
    }
}

/// A relative path given on the command line: from the shell's folder (cargo runs benches in the
/// package's folder, but keeps `PWD`), else from the repository's root.
fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let candidates =
        [std::env::var_os("PWD").map(PathBuf::from), Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))];
    candidates.into_iter().flatten().map(|dir| dir.join(path)).find(|p| p.exists()).unwrap_or(path.to_path_buf())
}

fn same_kind(a: Language, b: Language) -> bool {
    (a == Language::Python) == (b == Language::Python)
}

/// A server to measure: how to start it, or why it is skipped.
struct Spec {
    name: &'static str,
    command: Result<Command, String>,
    version: String,
    python_only: bool,
}

impl Spec {
    fn new(name: &str, cache: &Path) -> Spec {
        let venv = cache.join("venv");
        let bin = venv.join("bin");
        let env = |mut command: Command| {
            // The venv that has torch: each peer reads torch's own sources from it.
            command
                .env("VIRTUAL_ENV", &venv)
                .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
            command
        };
        let peer = |name: &'static str, program: &str, args: &[&str], version_program: &str| {
            let path = bin.join(program);
            if !path.exists() {
                return Spec {
                    name,
                    command: Err(format!("not installed: run tests/bench/setup-peers ({} missing)", path.display())),
                    version: String::new(),
                    python_only: true,
                };
            }
            let version = Command::new(bin.join(version_program))
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            let mut command = Command::new(path);
            command.args(args);
            Spec { name, command: Ok(env(command)), version, python_only: true }
        };
        match name {
            "tensorlens" => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_tensorlens"));
                command.arg("serve");
                Spec {
                    name: "tensorlens",
                    command: Ok(env(command)),
                    version: tensorlens_version(),
                    python_only: false,
                }
            }
            "basedpyright" => peer("basedpyright", "basedpyright-langserver", &["--stdio"], "basedpyright"),
            "pyrefly" => peer("pyrefly", "pyrefly", &["lsp"], "pyrefly"),
            "ty" => peer("ty", "ty", &["server"], "ty"),
            _ => unreachable!("checked in options"),
        }
    }

    fn start(&self, root: &Path, timeout: Duration) -> Result<(Server, Duration), String> {
        let command = self.command.as_ref().map_err(Clone::clone)?;
        let mut fresh = Command::new(command.get_program());
        fresh.args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => fresh.env(key, value),
                None => fresh.env_remove(key),
            };
        }
        Server::start(fresh, root, timeout)
    }
}

fn tensorlens_version() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        " (with uncommitted changes)"
    };
    format!("{} at commit {commit}{dirty}", env!("CARGO_PKG_VERSION"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One measured value: a number (for ratios and JSON) and how it prints.
struct Cell {
    value: Option<f64>,
    unit: &'static str,
    text: String,
    samples: usize,
    extra: Value,
}

#[derive(Default)]
struct Results {
    cells: HashMap<&'static str, Cell>,
    skipped: Option<String>,
}

impl Results {
    fn skipped(reason: &str) -> Results {
        Results { cells: HashMap::new(), skipped: Some(reason.to_string()) }
    }

    fn time(&mut self, key: &'static str, took: Duration, samples: usize) {
        let ms = took.as_secs_f64() * 1e3;
        self.cells.insert(key, Cell { value: Some(ms), unit: "ms", text: fmt_ms(ms), samples, extra: Value::Null });
    }

    fn note(&mut self, key: &'static str, text: String) {
        self.cells.insert(key, Cell { value: None, unit: "", text, samples: 0, extra: Value::Null });
    }

    fn percentiles(&mut self, p50: &'static str, p99: &'static str, samples: &[Duration], missed: usize) {
        if samples.is_empty() {
            self.note(p50, if missed > 0 { format!("time-out ({missed})") } else { "—".into() });
            return;
        }
        self.time(p50, percentile(samples, 0.5), samples.len());
        self.time(p99, percentile(samples, 0.99), samples.len());
        if missed > 0 {
            for key in [p50, p99] {
                let cell = self.cells.get_mut(key).unwrap();
                cell.text.push_str(&format!(" ({missed} timed out)"));
                cell.extra = json!({ "timed_out": missed });
            }
        }
    }
}

/// The moments of the table, in order: key, label, goal, whether a ratio is meaningful.
fn rows(wl: &Workload, options: &Options, edits: usize) -> Vec<(&'static str, String, &'static str, bool)> {
    let first = |t: &Option<(Target, &str)>| match t {
        Some((t, kind)) => format!("`{}` ({kind}, line {})", t.token, t.pos.line + 1),
        None => "(no such position in the file)".into(),
    };
    let hovers = wl.hovers.len().min(options.hovers);
    vec![
        ("startup", "start-up to `initialize` answered".into(), "< 30 ms", true),
        ("first_hover_value", format!("first hover after didOpen: {}", first(&wl.first_value)), "≤ 20 ms, x100", true),
        (
            "first_hover_function",
            format!("first hover after didOpen: {}", first(&wl.first_function)),
            "≤ 20 ms, x100",
            true,
        ),
        (
            "edit_hover_p50",
            format!("one-character edit → next hover answered, median of {edits}"),
            "< 2 ms, x100",
            true,
        ),
        ("edit_hover_p99", "one-character edit → next hover answered, p99".into(), "", true),
        ("edit_hovers_answered", "hovers after an edit answered with content".into(), "", false),
        ("edit_diagnostics_p50", format!("one-character edit → its diagnostics, median of {edits}"), "≤ 20 ms", true),
        ("edit_diagnostics_p99", "one-character edit → its diagnostics, p99".into(), "", true),
        ("edit_diagnostics_size", "diagnostics sent per edit, median (count)".into(), "only what changed", true),
        ("open_diagnostics", "didOpen → diagnostics (count)".into(), "", true),
        ("diagnostics_model", "diagnostics model".into(), "", false),
        ("steady_hover_p50", format!("steady hover p50 ({hovers} positions)"), "", true),
        ("steady_hover_p99", "steady hover p99".into(), "< 1 ms, x5", true),
        ("hovers_answered", "steady hovers answered with content".into(), "", false),
        ("lens_first", "code lenses, first request after didOpen (count)".into(), "≤ 30 ms", true),
        ("lens_steady_p50", format!("code lenses steady p50 ({} requests)", options.lenses), "", true),
        ("lens_steady_p99", "code lenses steady p99".into(), "≤ 5 ms", true),
        ("lens_resolve_p50", "code lens resolved (30 on screen, of a file past 200 lenses), p50".into(), "", true),
        ("lens_resolve_p99", "code lens resolved, p99".into(), "", true),
        ("peak_rss", "peak resident memory after all of that (process tree)".into(), "< 80 MB", true),
    ]
}

fn print_table(wl: &Workload, results: &[(String, Results)], options: &Options, edits: usize) {
    println!();
    println!(
        "## {} ({}: {} lines, {} KB)",
        wl.name,
        if wl.generated { "generated" } else { "given" },
        wl.line_count(),
        wl.text.len() / 1024
    );
    println!();
    let ours = results.iter().find(|(name, _)| name == "tensorlens").map(|(_, r)| r);
    let peers: Vec<&(String, Results)> = results.iter().filter(|(name, _)| name != "tensorlens").collect();
    let mut header = String::from("| moment |");
    let mut rule = String::from("|---|");
    for (name, _) in results {
        header.push_str(&format!(" {name} |"));
        rule.push_str("---|");
    }
    if ours.is_some() {
        for (name, _) in &peers {
            header.push_str(&format!(" {name} ÷ tensorlens |"));
            rule.push_str("---|");
        }
    }
    header.push_str(" goal |");
    rule.push_str("---|");
    println!("{header}\n{rule}");
    for (key, label, goal, ratio) in rows(wl, options, edits) {
        let mut line = format!("| {label} |");
        for (_, result) in results {
            let text = match (&result.skipped, result.cells.get(key)) {
                (Some(reason), _) if reason.starts_with("n/a") => "n/a".to_string(),
                (Some(_), _) => "skipped".to_string(),
                (None, Some(cell)) => cell.text.clone(),
                (None, None) => "—".to_string(),
            };
            line.push_str(&format!(" {text} |"));
        }
        if let Some(ours) = ours {
            for (_, peer) in &peers {
                let value = |r: &Results| r.cells.get(key).and_then(|c| c.value);
                let text = match (ratio, value(peer), value(ours)) {
                    (true, Some(theirs), Some(mine)) if mine > 0.0 => fmt_ratio(theirs / mine),
                    _ => String::new(),
                };
                line.push_str(&format!(" {text} |"));
            }
        }
        line.push_str(&format!(" {goal} |"));
        println!("{line}");
    }
    println!();
    println!(
        "{} steady hover positions; {} one-character edits (a character typed at the end of a name a statement binds, then deleted, at {} places spread over the file), each followed by a hover on the next position of the two first-hover kinds below it; a dash: the server does not offer it.",
        wl.hovers.len().min(options.hovers),
        edits,
        edits.div_ceil(2),
    );
    for (name, result) in results {
        if let Some(reason) = &result.skipped {
            if !reason.starts_with("n/a") {
                println!("{name}: skipped ({reason})");
            }
        }
        for (key, cell) in &result.cells {
            if let Some(note) = cell.extra.get("note").and_then(Value::as_str) {
                println!("{name}, {key}: {note}");
            }
        }
    }
}

/// All the moments for one server on one file: three sessions, so that each "first" is first.
fn measure(spec: &Spec, wl: &Workload, root: &Path, uri: &str, edits: &[workload::Edit], options: &Options) -> Results {
    let mut results = Results::default();
    eprintln!("{} on {}: opening, first hover, steady hovers, edits", spec.name, wl.name);
    if let Err(error) = main_session(spec, wl, root, uri, edits, options, &mut results) {
        eprintln!("{}: {error}", spec.name);
        results.note("startup", error);
        return results;
    }
    if let Some((target, _)) = &wl.first_function {
        eprintln!("{} on {}: first hover on {}", spec.name, wl.name, target.token);
        match spec.start(root, options.timeout) {
            Ok((mut server, _)) => {
                let opened = open(&mut server, wl, uri);
                first_hover(&mut server, uri, target, opened, options.timeout, &mut results, "first_hover_function");
                server.stop();
            }
            Err(error) => results.note("first_hover_function", error),
        }
    }
    eprintln!("{} on {}: what an editor asks on opening", spec.name, wl.name);
    match spec.start(root, options.timeout) {
        Ok((server, _)) => open_session(server, wl, uri, options, &mut results),
        Err(error) => results.note("open_diagnostics", error),
    }
    results
}

fn open(server: &mut Server, wl: &Workload, uri: &str) -> Instant {
    server.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": wl.language_id, "version": 1, "text": wl.text } }),
    )
}

fn pulls(server: &Server) -> bool {
    server.capabilities.get("diagnosticProvider").is_some_and(|d| !d.is_null())
}

fn has_lenses(server: &Server) -> bool {
    server.capabilities.get("codeLensProvider").is_some_and(|d| !d.is_null())
}

/// Whether the server wants the whole text on every change (`TextDocumentSyncKind::Full`).
fn full_sync(server: &Server) -> bool {
    let sync = &server.capabilities["textDocumentSync"];
    sync.as_i64().or_else(|| sync["change"].as_i64()) == Some(1)
}

fn hover(server: &mut Server, uri: &str, target: &Target) -> (i64, Instant) {
    server.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": { "line": target.pos.line, "character": target.pos.col } }),
    )
}

/// The text a hover answer shows (empty for null, or for contents with no text).
fn hover_text(result: &Value) -> String {
    fn collect(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => out.push_str(s),
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(map) => {
                if let Some(value) = map.get("value") {
                    collect(value, out)
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    collect(&result["contents"], &mut out);
    out.trim().to_string()
}

/// Time from didOpen to the first hover answer with content. A server may answer empty while it
/// loads: the hover is then asked again, as a user would, for up to `EMPTY_RETRIES` from didOpen,
/// and the time still runs from didOpen; a server that still answers empty has no answer there.
fn first_hover(
    server: &mut Server,
    uri: &str,
    target: &Target,
    opened: Instant,
    timeout: Duration,
    results: &mut Results,
    key: &'static str,
) {
    let deadline = opened + timeout;
    let mut asked = 0;
    loop {
        let (id, _) = hover(server, uri, target);
        asked += 1;
        let Some(answer) = server.response(id, deadline) else {
            results.note(key, format!("time-out ({} s)", timeout.as_secs()));
            return;
        };
        let Kind::Response { result, error, .. } = &answer.kind else { unreachable!() };
        if error.is_none() && !hover_text(result).is_empty() {
            results.time(key, answer.at - opened, 1);
            if asked > 1 {
                let cell = results.cells.get_mut(key).unwrap();
                cell.extra = json!({ "asked": asked, "note": format!("answered empty {} times first", asked - 1) });
            }
            return;
        }
        if answer.at >= opened + EMPTY_RETRIES.min(timeout) {
            let first = fmt_ms((answer.at - opened).as_secs_f64() * 1e3);
            results.note(key, format!("empty ({asked} answers in {first})"));
            return;
        }
        // As a pointer that stays: asked again shortly, not in a busy loop.
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main_session(
    spec: &Spec,
    wl: &Workload,
    root: &Path,
    uri: &str,
    edits: &[workload::Edit],
    options: &Options,
    results: &mut Results,
) -> Result<(), String> {
    let timeout = options.timeout;
    let (mut server, startup) = spec.start(root, timeout)?;
    results.time("startup", startup, 1);
    let pull = pulls(&server);
    results.note("diagnostics_model", if pull { "pull".into() } else { "push".into() });
    let opened = open(&mut server, wl, uri);
    if let Some((target, _)) = &wl.first_value {
        first_hover(&mut server, uri, target, opened, timeout, results, "first_hover_value");
    }

    // Ready before the steady rows: the diagnostics of the opened version are out.
    let mut result_id = None;
    let mut pulled_count = 0;
    if pull {
        let (id, sent) = server.request("textDocument/diagnostic", json!({ "textDocument": { "uri": uri } }));
        if let Some(Incoming { kind: Kind::Response { result, .. }, .. }) = server.response(id, sent + timeout) {
            result_id = result["resultId"].as_str().map(str::to_string);
            pulled_count = result["items"].as_array().map_or(0, Vec::len);
        }
    } else {
        server.published(uri, 1, opened, Instant::now() + timeout);
    }

    eprintln!("  steady hovers ({})", wl.hovers.len().min(options.hovers));
    let mut steady = Vec::new();
    let mut answered = 0;
    let mut missed = 0;
    for target in wl.hovers.iter().take(options.hovers) {
        let (id, sent) = hover(&mut server, uri, target);
        match server.response(id, sent + timeout) {
            Some(Incoming { at, kind: Kind::Response { result, .. }, .. }) => {
                steady.push(at - sent);
                answered += usize::from(!hover_text(&result).is_empty());
            }
            _ => {
                missed += 1;
                if missed >= 3 {
                    break;
                }
            }
        }
    }
    results.percentiles("steady_hover_p50", "steady_hover_p99", &steady, missed);
    results.note("hovers_answered", format!("{answered}/{}", steady.len() + missed));

    eprintln!("  one-character edits ({})", edits.len());
    let full = full_sync(&server);
    let mut text = wl.text.clone();
    let mut version = 1;
    let (mut after_edit, mut diagnosed, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut hover_missed, mut diag_missed, mut edit_answered) = (0, 0, 0);
    for edit in edits {
        version += 1;
        let start = json!({ "line": edit.at.line, "character": edit.at.col });
        let end = json!({ "line": edit.at.line, "character": edit.at.col + u32::from(edit.insert.is_none()) });
        let inserted = edit.insert.map(String::from).unwrap_or_default();
        apply(&mut text, edit);
        let change = if full {
            json!({ "text": text })
        } else {
            json!({ "range": { "start": start, "end": end }, "text": inserted })
        };
        let changed = server.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [change] }),
        );
        let target = wl.hover_after(edit).cloned();
        let hovered = target.as_ref().map(|t| hover(&mut server, uri, t).0);
        let pulled = pull.then(|| {
            server
                .request(
                    "textDocument/diagnostic",
                    json!({ "textDocument": { "uri": uri }, "previousResultId": result_id }),
                )
                .0
        });
        let deadline = changed + timeout;
        if let Some(id) = hovered {
            match server.response(id, deadline) {
                Some(answer) => {
                    after_edit.push(answer.at - changed);
                    if let Kind::Response { result, .. } = &answer.kind {
                        edit_answered += usize::from(!hover_text(result).is_empty());
                    }
                }
                None => hover_missed += 1,
            }
        }
        let seen = match pulled {
            Some(id) => server.response(id, deadline).map(|answer| {
                let Kind::Response { result, .. } = &answer.kind else { unreachable!() };
                result_id = result["resultId"].as_str().map(str::to_string).or(result_id.take());
                // "unchanged": the client keeps what it has, and only this answer was sent.
                let count = match result["items"].as_array() {
                    Some(items) => items.len(),
                    None => pulled_count,
                };
                pulled_count = count;
                stdio::Seen { at: answer.at, bytes: answer.bytes, count }
            }),
            None => server.published(uri, version, changed, deadline),
        };
        match seen {
            Some(seen) => {
                diagnosed.push(seen.at - changed);
                sizes.push((seen.bytes, seen.count));
            }
            None => diag_missed += 1,
        }
        if hover_missed + diag_missed >= 3 {
            eprintln!("  {}: three time-outs, edits stopped", spec.name);
            break;
        }
    }
    results.percentiles("edit_hover_p50", "edit_hover_p99", &after_edit, hover_missed);
    results.note("edit_hovers_answered", format!("{edit_answered}/{}", after_edit.len() + hover_missed));
    results.percentiles("edit_diagnostics_p50", "edit_diagnostics_p99", &diagnosed, diag_missed);
    if !sizes.is_empty() {
        sizes.sort();
        let (bytes, count) = sizes[sizes.len() / 2];
        results.cells.insert(
            "edit_diagnostics_size",
            Cell {
                value: Some(bytes as f64 / 1024.0),
                unit: "KB",
                text: format!("{} ({count})", fmt_kb(bytes)),
                samples: sizes.len(),
                extra: json!({ "bytes": bytes, "diagnostics": count }),
            },
        );
    }

    if has_lenses(&server) {
        eprintln!("  code lenses ({})", options.lenses);
        let mut lenses = Vec::new();
        let mut missed = 0;
        let mut last = Value::Null;
        for _ in 0..options.lenses {
            let (id, sent) = server.request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }));
            match server.response(id, sent + timeout) {
                Some(answer) => {
                    lenses.push(answer.at - sent);
                    if let Kind::Response { result, .. } = answer.kind {
                        last = result;
                    }
                }
                None => {
                    missed += 1;
                    break;
                }
            }
        }
        results.percentiles("lens_steady_p50", "lens_steady_p99", &lenses, missed);
        // Lenses sent without their commands: what an editor resolves for the ones on screen.
        let shown: Vec<Value> =
            last.as_array().into_iter().flatten().filter(|l| l.get("command").is_none()).take(30).cloned().collect();
        let (mut resolved, mut missed) = (Vec::new(), 0);
        for lens in shown {
            let (id, sent) = server.request("codeLens/resolve", lens);
            match server.response(id, sent + timeout) {
                Some(answer) => resolved.push(answer.at - sent),
                None => missed += 1,
            }
        }
        if !resolved.is_empty() || missed > 0 {
            results.percentiles("lens_resolve_p50", "lens_resolve_p99", &resolved, missed);
        }
    }
    if let Some(kib) = server.peak_rss_kib() {
        let mb = kib as f64 / 1024.0;
        results
            .cells
            .insert("peak_rss", Cell { value: Some(mb), unit: "MB", text: fmt_mb(mb), samples: 1, extra: Value::Null });
    }
    server.stop();
    Ok(())
}

/// What an editor asks for right after opening a file: its code lenses and, from a server that is
/// pulled, its diagnostics; each timed from didOpen.
fn open_session(mut server: Server, wl: &Workload, uri: &str, options: &Options, results: &mut Results) {
    let timeout = options.timeout;
    let opened = open(&mut server, wl, uri);
    let lens = has_lenses(&server)
        .then(|| server.request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } })).0);
    let pulled =
        pulls(&server).then(|| server.request("textDocument/diagnostic", json!({ "textDocument": { "uri": uri } })).0);
    let deadline = opened + timeout;
    if let Some(id) = lens {
        match server.response(id, deadline) {
            Some(answer) => {
                let Kind::Response { result, .. } = &answer.kind else { unreachable!() };
                let count = result.as_array().map_or(0, Vec::len);
                results.time("lens_first", answer.at - opened, 1);
                results.cells.get_mut("lens_first").unwrap().text.push_str(&format!(" ({count})"));
            }
            None => results.note("lens_first", format!("time-out ({} s)", timeout.as_secs())),
        }
    }
    let seen = match pulled {
        Some(id) => server.response(id, deadline).map(|answer| {
            let Kind::Response { result, .. } = &answer.kind else { unreachable!() };
            stdio::Seen { at: answer.at, bytes: answer.bytes, count: result["items"].as_array().map_or(0, Vec::len) }
        }),
        None => server.published(uri, 1, opened, deadline),
    };
    match seen {
        Some(seen) => {
            results.time("open_diagnostics", seen.at - opened, 1);
            let cell = results.cells.get_mut("open_diagnostics").unwrap();
            cell.text.push_str(&format!(" ({}, {})", seen.count, fmt_kb(seen.bytes)));
            cell.extra = json!({ "bytes": seen.bytes, "diagnostics": seen.count });
        }
        None => results.note("open_diagnostics", format!("time-out ({} s)", timeout.as_secs())),
    }
    server.stop();
}

/// The text after `edit`, for servers that take the whole text on each change.
fn apply(text: &mut String, edit: &workload::Edit) {
    let line_start = text.split_inclusive('\n').take(edit.at.line as usize).map(str::len).sum::<usize>();
    let line = &text[line_start..];
    let mut units = 0;
    let mut offset = line.len();
    for (i, c) in line.char_indices() {
        if units >= edit.at.col as usize {
            offset = i;
            break;
        }
        units += c.len_utf16();
    }
    let at = line_start + offset;
    match edit.insert {
        Some(c) => text.insert(at, c),
        None => {
            text.remove(at);
        }
    }
}

fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} ms", thousands(ms.round() as u64))
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn fmt_kb(bytes: usize) -> String {
    let kb = bytes as f64 / 1024.0;
    if kb >= 100.0 {
        format!("{} KB", thousands(kb.round() as u64))
    } else {
        format!("{kb:.1} KB")
    }
}

fn fmt_mb(mb: f64) -> String {
    if mb >= 1000.0 {
        format!("{} MB", thousands(mb.round() as u64))
    } else {
        format!("{mb:.1} MB")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{}x", thousands(r.round() as u64))
    } else if r >= 0.1 {
        format!("{r:.1}x")
    } else {
        format!("{r:.3}x")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
