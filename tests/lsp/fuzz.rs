//! Fuzz: the real `tensorlens` binary over stdio, fed a seeded random stream of valid and invalid
//! LSP traffic for a while. It keeps a model of each open document's text (the changes that make
//! sense, applied the way the protocol says) and checks the server's text against it; every request
//! must get an answer, nothing may panic, and the server must still answer and shut down cleanly.
//!
//! - `TENSORLENS_FUZZ_SECONDS`: how long to send (default 10; `run-tests` asks for more).
//! - `TENSORLENS_FUZZ_SEED`: the seed (default: from the clock; always printed).
//! - `TENSORLENS_FUZZ_MESSAGES`: stop after this many messages instead: with the seed a failing run
//!   prints, replays it message for message.
//! - `TENSORLENS_FUZZ_LOG`: the server's `TENSORLENS_LOG` (default `info`); its stderr is kept in a
//!   file the failure names.
//!
//! The stream only holds what the server is meant to survive. A body that is not a JSON-RPC message
//! (malformed JSON, no `jsonrpc`, an id that is no integer, JSON nested past serde's limit, bytes
//! that are not UTF-8) or a bad `Content-Length` ends tower-lsp-server's read loop; the second test
//! checks that each of those ends the session without a panic or a hang.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// How long one request may take before the server counts as hung (a debug build, a busy machine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests in flight at most; past it the driver waits for answers (a real editor's pace, roughly).
const MAX_IN_FLIGHT: usize = 12;
/// Documents above this size are edited down rather than up.
const MAX_DOC_BYTES: usize = 40_000;

// ---------------------------------------------------------------------------------------------
// Randomness: SplitMix64, so that a seed means the same stream on every machine.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Text: realistic fragments per language, and random characters.

const PYTHON: &[&str] = &[
    "import torch\n",
    "import torch.nn as nn\n",
    "import torch.nn.functional as F\n",
    "import jax\nimport jax.numpy as jnp\n",
    "import numpy as np\n",
    "from torch import nn, optim\n",
    "from model import GPT\n",
    "from . import utils\n",
    "x = torch.zeros(2, 3)\n",
    "y = x.view(3, 2)\n",
    "z = F.softmax(x, dim=-1)\n",
    "opt = torch.optim.AdamW(model.parameters(), lr=3e-4)\n",
    "with torch.cuda.amp.autocast():\n    out = model(x)\n",
    "@torch.compile\ndef step(x):\n    return x * 2\n",
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc1 = nn.Linear(4, 8)\n\n    def forward(self, x):\n        return self.fc1(x).relu()\n",
    "def f(x: torch.Tensor) -> torch.Tensor:\n    return x.",
    "jnp.matmul(a, b)\n",
    "jax.jit(f)(x)\n",
    "for i in range(10):\n    x = x + torch.randn_like(x)\n",
    "kernel = r'''\n__global__ void k(float* x) { x[threadIdx.x] = 0; }\n'''\n",
    "src = \"\"\"\nextern \"C\" __global__ void add(float* a) { a[0] += 1; }\n\"\"\"\n",
    "torch.",
    "x.",
    "F.",
    "torch.zeros(",
    "x.view(",
    "dtype=torch.float16",
    ", device='cuda'",
    "self.",
    "lambda t: t.sum()",
    "async def run():\n    await x\n",
    "match x:\n    case [a, *rest]:\n        pass\n",
    "if x is None:\n    raise ValueError('张量')\n",
    "    ",
    "\t",
    "# comment 🔥\n",
];

const CUDA: &[&str] = &[
    "#include <cuda_runtime.h>\n",
    "#include <cublas_v2.h>\n",
    "#include \"local.cuh\"\n",
    "#define CUDA_CHECK(call) do { cudaError_t e = (call); if (e != cudaSuccess) abort(); } while (0)\n",
    "// tensorlens: block=256 grid=(n+255)/256 n=1<<20\n",
    "__global__ void k(float* x, int n) {\n",
    "  int i = threadIdx.x + blockIdx.x * blockDim.x;\n",
    "  if (i < n) x[i] = 0.f;\n",
    "}\n",
    "template <typename T, int B>\n__global__ void reduce(const T* in, T* out) {\n  __shared__ T tile[B];\n  __syncthreads();\n}\n",
    "void launch(float* d, int n, cudaStream_t stream) {\n",
    "  cudaMalloc(&d, 4 * n);\n",
    "  cudaError_t e = cudaFree(d);\n",
    "  CUDA_CHECK(cudaDeviceSynchronize());\n",
    "  cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, stream);\n",
    "  k<<<(n + 255) / 256, 256, 0, stream>>>(d, n);\n",
    "  cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &a, A, m, B, k, &b, C, m);\n",
    "  cudaThreadSynchronize();\n",
    "  float v = __shfl_down_sync(0xffffffff, v, 16);\n",
    "<<<",
    ">>>",
    "cuda",
    "{",
    "}",
    "/* 张量 */",
    "#if 0\n",
    "#endif\n",
];

const TOML: &[&str] = &[
    "[system]\n",
    "id = \"mine\"\n",
    "name = \"Mine\"\n",
    "group = \"research\"\n",
    "maintainer = \"me\"\n",
    "summary = \"Mine.\"\n",
    "docs = \"https://example.com\"\n",
    "python_modules = [\"mine\"]\n",
    "\n[[symbols]]\n",
    "name = \"mine.f\"\n",
    "kind = \"function\"\n",
    "kind = \"gizmo\"\n",
    "signature = \"f(x, *, y=1)\"\n",
    "deprecated = \"old\"\n",
    "id = \n",
    "[system\n",
    "\"",
    "= [1, 2",
];

const ANYWHERE: &[&str] = &[
    "\n", "\r\n", "\r", " ", "(", ")", "[", "]", ",", ".", ":", "=", "\"", "'", "\\", "#", "张量", "🔥", "é",
    "\u{2028}", "\u{feff}", "\u{0}", "\u{200d}", "𝔁", "\r\r\n", "\n\r",
];

fn random_char(rng: &mut Rng) -> char {
    loop {
        let code = match rng.below(6) {
            0 => rng.below(0x20) as u32,
            1 => 0x20 + rng.below(0x5f) as u32,
            2 => 0x80 + rng.below(0x780) as u32,
            3 => 0x4e00 + rng.below(0x5000) as u32,
            4 => 0x1f300 + rng.below(0x300) as u32,
            _ => rng.below(0x11_0000) as u32,
        };
        if let Some(c) = char::from_u32(code) {
            return c;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    Python,
    Cuda,
    Toml,
    Plain,
}

fn fragment(rng: &mut Rng, lang: Lang) -> String {
    match rng.below(10) {
        0..=5 => match lang {
            Lang::Python => rng.pick(PYTHON).to_string(),
            Lang::Cuda => rng.pick(CUDA).to_string(),
            Lang::Toml => rng.pick(TOML).to_string(),
            Lang::Plain => rng.pick(PYTHON).to_string(),
        },
        6..=7 => rng.pick(ANYWHERE).to_string(),
        8 => (0..1 + rng.below(6)).map(|_| random_char(rng)).collect(),
        // Another language's words in this one.
        _ => {
            let other = if rng.chance(50) { PYTHON } else { CUDA };
            rng.pick(other).to_string()
        }
    }
}

fn random_text(rng: &mut Rng, lang: Lang, pieces: usize) -> String {
    (0..pieces).map(|_| fragment(rng, lang)).collect()
}

// ---------------------------------------------------------------------------------------------
// The model: what the server's text must be, from the changes that make sense.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16,
}

impl Encoding {
    fn units(self, c: char) -> u64 {
        match self {
            Encoding::Utf8 => c.len_utf8() as u64,
            Encoding::Utf16 => c.len_utf16() as u64,
        }
    }
}

/// Each line's start and the end of its content (before `\n`, `\r\n` or `\r`), as LSP counts lines.
fn lines(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push((start, i));
                i += 1;
                start = i;
            }
            b'\r' => {
                out.push((start, i));
                i += if bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push((start, bytes.len()));
    out
}

/// A position's byte offset: `None` past the last line; a column past the line's end is the end,
/// a column inside a character is that character's start.
fn offset(text: &str, line: u64, col: u64, encoding: Encoding) -> Option<usize> {
    let lines = lines(text);
    let &(start, end) = lines.get(usize::try_from(line).ok()?)?;
    let mut units = 0;
    for (i, c) in text[start..end].char_indices() {
        let width = encoding.units(c);
        if units + width > col {
            return Some(start + i);
        }
        units += width;
    }
    Some(end)
}

/// The line and column of a byte offset (a character boundary).
fn position(text: &str, byte: usize, encoding: Encoding) -> (u64, u64) {
    let lines = lines(text);
    let line = lines.iter().rposition(|&(start, _)| start <= byte).unwrap_or(0);
    let (start, end) = lines[line];
    let col = text[start..byte.min(end).max(start)].chars().map(|c| encoding.units(c)).sum();
    (line as u64, col)
}

/// One change event as sent: `None` range for a whole-text replacement.
#[derive(Clone, Debug)]
struct ChangeEvent {
    range: Option<((u64, u64), (u64, u64))>,
    text: String,
}

/// The batch applied to `text` as the server must apply it, or `None` when it is refused whole.
fn apply_batch(text: &str, changes: &[ChangeEvent], encoding: Encoding) -> Option<String> {
    let mut text = text.to_string();
    for change in changes {
        match change.range {
            None => text = change.text.clone(),
            Some(((sl, sc), (el, ec))) => {
                let start = offset(&text, sl, sc, encoding)?;
                let end = offset(&text, el, ec, encoding)?;
                if start > end {
                    return None;
                }
                text.replace_range(start..end, &change.text);
            }
        }
    }
    Some(text)
}

#[derive(Clone)]
struct Doc {
    version: i64,
    text: String,
}

/// A URI the stream uses, and the language it is opened as.
struct Target {
    uri: String,
    language_id: &'static str,
    lang: Lang,
}

// ---------------------------------------------------------------------------------------------
// The connection: framing by hand (so that odd framing can be sent), a reader thread, a watchdog.

enum Incoming {
    Message(Value),
    NotJson(String),
}

struct Connection {
    /// Shared with the watchdog, which kills it through this handle (never by a bare pid).
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    incoming: Receiver<Incoming>,
    /// Milliseconds since `started` of the last sign of life; the watchdog kills a server that stops.
    alive: Arc<AtomicU64>,
    started: Instant,
    stderr_path: PathBuf,
    /// The last messages sent, for the report of a failure.
    recent: VecDeque<String>,
    sent: u64,
}

impl Connection {
    fn start(stderr_path: &Path, log: &str) -> Connection {
        let stderr = std::fs::File::create(stderr_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tensorlens"))
            .arg("serve")
            .env("TENSORLENS_LOG", log)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the tensorlens binary starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let started = Instant::now();
        let alive = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let reader_alive = alive.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.unwrap_or(0)];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                reader_alive.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                let message = match serde_json::from_slice(&body) {
                    Ok(value) => Incoming::Message(value),
                    Err(_) => Incoming::NotJson(String::from_utf8_lossy(&body).into_owned()),
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
        Connection {
            child: Arc::new(Mutex::new(child)),
            stdin,
            incoming: rx,
            alive,
            started,
            stderr_path: stderr_path.to_path_buf(),
            recent: VecDeque::new(),
            sent: 0,
        }
    }

    fn touch(&self) {
        self.alive.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Writes bytes as they are, in pieces now and then (a pipe may deliver a message in parts).
    fn write_raw(&mut self, bytes: &[u8], rng: &mut Rng) -> std::io::Result<()> {
        if bytes.len() > 8 && rng.chance(5) {
            let cut = 1 + rng.below(bytes.len() - 1);
            self.stdin.write_all(&bytes[..cut])?;
            self.stdin.flush()?;
            std::thread::sleep(Duration::from_millis(1));
            self.stdin.write_all(&bytes[cut..])?;
        } else {
            self.stdin.write_all(bytes)?;
        }
        self.stdin.flush()?;
        self.touch();
        Ok(())
    }

    fn remember(&mut self, what: String) {
        self.sent += 1;
        let mut what = what;
        if what.len() > 600 {
            let mut cut = 600;
            while !what.is_char_boundary(cut) {
                cut -= 1;
            }
            what = format!("{}… ({} bytes)", &what[..cut], what.len());
        }
        self.recent.push_back(what);
        if self.recent.len() > 40 {
            self.recent.pop_front();
        }
    }

    fn send_body(&mut self, body: &str, rng: &mut Rng) -> std::io::Result<()> {
        let framed = frame(body, rng);
        self.remember(body.to_string());
        self.write_raw(&framed, rng)
    }

    fn try_wait(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().unwrap()
    }

    fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Kills the server if it shows no sign of life for `limit` while the driver waits on it, so
    /// that a hang fails the test with its seed instead of wedging the whole run.
    fn watchdog(&self, limit: Duration) -> Arc<std::sync::atomic::AtomicBool> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (alive, started, child, stop2) = (self.alive.clone(), self.started, self.child.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let quiet = started.elapsed().saturating_sub(Duration::from_millis(alive.load(Ordering::Relaxed)));
                if quiet > limit && !stop2.load(Ordering::Relaxed) {
                    eprintln!("fuzz: the server was silent for {quiet:?}; killing it");
                    let _ = child.lock().unwrap().kill();
                    return;
                }
            }
        });
        stop
    }
}

/// A body framed with a Content-Length, sometimes with the optional headers a client may send.
fn frame(body: &str, rng: &mut Rng) -> Vec<u8> {
    let headers = match rng.below(20) {
        0 => {
            format!("Content-Length: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n", body.len())
        }
        1 => {
            format!("Content-Type: application/vscode-jsonrpc; charset=utf8\r\nContent-Length: {}\r\n\r\n", body.len())
        }
        2 => format!("Content-Length: {}\r\nX-Unknown-Header: yes\r\n\r\n", body.len()),
        _ => format!("Content-Length: {}\r\n\r\n", body.len()),
    };
    let mut out = headers.into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// What a request's answer is checked against.
enum Expect {
    /// Any answer, an error included.
    Anything,
    /// `tensorlens/viewFileText`: the model's document when the request was sent (`None`: not open).
    Text(Option<Doc>),
    /// An error with this code.
    ErrorCode(i64),
}

struct Pending {
    method: String,
    expect: Expect,
    sent_at: Instant,
}

#[derive(Default)]
struct Stats {
    by_method: BTreeMap<String, u64>,
    refused_batches: u64,
    applied_batches: u64,
    text_checks: u64,
    error_answers: u64,
    server_requests: u64,
}

struct Fuzz {
    rng: Rng,
    conn: Connection,
    encoding: Encoding,
    targets: Vec<Target>,
    docs: BTreeMap<String, Doc>,
    pending: Vec<(Value, Pending)>,
    next_id: i64,
    recent_ids: VecDeque<Value>,
    stats: Stats,
    seed: u64,
    root: PathBuf,
}

/// Ids the driver gives its requests, in several shapes JSON-RPC allows.
fn id_value(n: i64, rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => json!(format!("req-{n}")),
        1 => json!(format!("张-{n}")),
        2 => json!(-n),
        _ => json!(n),
    }
}

impl Fuzz {
    fn fail(&mut self, message: &str) -> ! {
        self.conn.kill();
        let recent: Vec<String> = self.conn.recent.iter().cloned().collect();
        let stderr = self.conn.stderr();
        let tail: String =
            stderr.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!(
            "fuzz failed: {message}\n\nreproduce with TENSORLENS_FUZZ_SEED={} TENSORLENS_FUZZ_MESSAGES={} \
             cargo test --test fuzz\n\nthe last messages sent:\n{}\n\nthe server's stderr (last lines, all in {}):\n{tail}",
            self.seed,
            self.conn.sent,
            recent.join("\n"),
            self.conn.stderr_path.display(),
        );
    }

    fn send(&mut self, message: Value) {
        let body = serde_json::to_string(&message).unwrap();
        if let Err(err) = self.conn.send_body(&body, &mut self.rng) {
            self.fail(&format!("writing to the server failed ({err}): it died or stopped reading"));
        }
    }

    fn send_raw_body(&mut self, body: &str) {
        if let Err(err) = self.conn.send_body(body, &mut self.rng) {
            self.fail(&format!("writing to the server failed ({err}): it died or stopped reading"));
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        *self.stats.by_method.entry(method.to_string()).or_default() += 1;
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn request(&mut self, method: &str, params: Value, expect: Expect) -> Value {
        *self.stats.by_method.entry(method.to_string()).or_default() += 1;
        let id = id_value(self.next_id, &mut self.rng);
        self.next_id += 1;
        let mut message = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        // `params` may be left out of a request altogether.
        if !(params.is_null() && self.rng.chance(50)) {
            message["params"] = params;
        }
        self.send(message);
        self.pending.push((id.clone(), Pending { method: method.to_string(), expect, sent_at: Instant::now() }));
        self.recent_ids.push_back(id.clone());
        if self.recent_ids.len() > 16 {
            self.recent_ids.pop_front();
        }
        id
    }

    /// Handles everything the server has sent; waits while too many requests are in flight.
    fn drain(&mut self, until_in_flight: usize) {
        loop {
            let wait = self.pending.len() > until_in_flight;
            let message = if wait {
                match self.conn.incoming.recv_timeout(Duration::from_millis(200)) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => self.fail("the server closed its output"),
                }
            } else {
                self.conn.incoming.try_recv().ok()
            };
            match message {
                Some(Incoming::Message(m)) => self.handle(m),
                Some(Incoming::NotJson(body)) => self.fail(&format!("the server sent a body that is not JSON: {body}")),
                None if !wait => return,
                None => {}
            }
            if let Some((id, p)) = self.pending.iter().find(|(_, p)| p.sent_at.elapsed() > ANSWER_TIMEOUT) {
                let message = format!("no answer to {} (id {id}) within {ANSWER_TIMEOUT:?}", p.method);
                self.fail(&message);
            }
        }
    }

    fn handle(&mut self, message: Value) {
        let id = message.get("id").cloned();
        if let Some(method) = message.get("method").and_then(Value::as_str) {
            if let Some(id) = id {
                // A request from the server: answer as an editor would, now and then with an error.
                self.stats.server_requests += 1;
                let result = match method {
                    "window/showDocument" => json!({ "success": true }),
                    _ => Value::Null,
                };
                let reply = if self.rng.chance(10) {
                    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32603, "message": "the editor says no" } })
                } else {
                    json!({ "jsonrpc": "2.0", "id": id, "result": result })
                };
                self.send(reply);
            } else if method == "textDocument/publishDiagnostics" {
                for d in message["params"]["diagnostics"].as_array().into_iter().flatten() {
                    check_range(&d["range"]).unwrap_or_else(|e| self.fail(&format!("diagnostic {d}: {e}")));
                }
            } else if method == "window/showMessage"
                && message["params"]["message"].as_str().is_some_and(|m| m.contains("failed ("))
            {
                self.fail(&format!("the server told the user a feature failed: {message}"));
            }
            return;
        }
        let Some(id) = id else { self.fail(&format!("a message that is neither request nor answer: {message}")) };
        let Some(at) = self.pending.iter().position(|(pending, _)| *pending == id) else {
            if id.is_null() {
                // The answer to a message that could not be parsed: none is sent in this stream.
                self.fail(&format!("an answer with a null id: {message}"));
            }
            self.fail(&format!("an answer to no request in flight (or a second answer): {message}"));
        };
        let (_, pending) = self.pending.swap_remove(at);
        if let Some(error) = message.get("error") {
            self.stats.error_answers += 1;
            if !error["code"].is_i64() || !error["message"].is_string() {
                self.fail(&format!("a malformed error answer to {}: {message}", pending.method));
            }
        } else if message.get("result").is_none() {
            self.fail(&format!("an answer to {} without result or error: {message}", pending.method));
        }
        let cancelled = message["error"]["code"] == json!(-32800);
        match &pending.expect {
            Expect::Anything => {}
            Expect::ErrorCode(code) => {
                if message["error"]["code"] != json!(code) {
                    self.fail(&format!("{} should fail with code {code}: {message}", pending.method));
                }
            }
            Expect::Text(_) if cancelled => {}
            Expect::Text(expected) => {
                self.stats.text_checks += 1;
                let result = &message["result"];
                match expected {
                    None if result.is_null() => {}
                    None => self.fail(&format!("viewFileText of a closed document answered {result}")),
                    Some(doc) => {
                        if result["version"] != json!(doc.version) || result["text"].as_str() != Some(&doc.text) {
                            let got = result["text"].as_str().unwrap_or("<none>").to_string();
                            let at = first_difference(&got, &doc.text);
                            self.fail(&format!(
                                "the server's text differs from the model: version {} (model {}), first difference at \
                                 byte {at}\nserver: {:?}\nmodel:  {:?}",
                                result["version"],
                                doc.version,
                                around(&got, at),
                                around(&doc.text, at),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(range) = message["result"].get("range").filter(|r| r.is_object()) {
            check_range(range).unwrap_or_else(|e| self.fail(&format!("{} answered {range}: {e}", pending.method)));
        }
    }

    // --- Generators ------------------------------------------------------------------------

    fn target(&mut self) -> usize {
        self.rng.below(self.targets.len())
    }

    /// A URI: mostly one in use, sometimes one never opened or one no server knows how to read.
    fn uri(&mut self) -> String {
        match self.rng.below(20) {
            0 => format!("file://{}/never-opened.py", self.root.display()),
            1 => self.rng.pick(&["untitled:Untitled-9", "zzz:/x", "file:///", "http://example.com/a.py"]).to_string(),
            _ => {
                let open: Vec<String> = self.docs.keys().cloned().collect();
                if !open.is_empty() && self.rng.chance(85) {
                    self.rng.pick(&open).clone()
                } else {
                    let i = self.target();
                    self.targets[i].uri.clone()
                }
            }
        }
    }

    /// A position in `text`: mostly at a character, sometimes inside one, past a line's end, past
    /// the last line, or at the limits of the number type.
    fn position_in(&mut self, text: &str) -> (u64, u64) {
        let lines = lines(text);
        match self.rng.below(20) {
            0 => (lines.len() as u64 + self.rng.below(3) as u64, self.rng.below(5) as u64),
            1 => (self.rng.below(lines.len()) as u64, u32::MAX as u64),
            2 => (u32::MAX as u64, 0),
            3 => (self.rng.below(lines.len()) as u64, self.rng.below(200) as u64),
            4 => {
                // Inside a character of several units, where there is one.
                let wide: Vec<usize> = text
                    .char_indices()
                    .filter(|(_, c)| self.encoding.units(*c) > 1 && *c != '\n' && *c != '\r')
                    .map(|(i, _)| i)
                    .collect();
                if wide.is_empty() {
                    (0, 0)
                } else {
                    let at = *self.rng.pick(&wide);
                    let (line, col) = position(text, at, self.encoding);
                    (line, col + 1)
                }
            }
            _ => {
                let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
                let at = *self.rng.pick(&boundaries);
                position(text, at, self.encoding)
            }
        }
    }

    fn text_of(&self, uri: &str) -> String {
        self.docs.get(uri).map(|d| d.text.clone()).unwrap_or_default()
    }

    fn position_json(&mut self, uri: &str) -> Value {
        let text = self.text_of(uri);
        let (line, character) = self.position_in(&text);
        json!({ "line": line, "character": character })
    }

    fn range_json(&mut self, uri: &str) -> Value {
        json!({ "start": self.position_json(uri), "end": self.position_json(uri) })
    }

    /// Params of the wrong shape for any method.
    fn junk(&mut self) -> Value {
        match self.rng.below(14) {
            0 => Value::Null,
            1 => json!(42),
            2 => json!("textDocument"),
            3 => json!([]),
            4 => json!({}),
            5 => json!({ "textDocument": 5, "position": "here" }),
            6 => json!({ "textDocument": { "uri": "file:///a.py" }, "position": { "line": -1, "character": 0 } }),
            7 => json!({ "textDocument": { "uri": "file:///a.py" }, "position": { "line": 1e300, "character": 1.5 } }),
            8 => serde_json::from_str(
                r#"{"textDocument":{"uri":"file:///a.py"},"position":{"line":123456789012345678901234567890,"character":0}}"#,
            )
            .unwrap(),
            9 => json!({ "textDocument": { "uri": "not a uri at all" }, "position": { "line": 0, "character": 0 } }),
            10 => {
                // Nested arrays, below serde_json's recursion limit (past it, the session ends).
                let depth = 1 + self.rng.below(100);
                serde_json::from_str(&format!("{}{}", "[".repeat(depth), "]".repeat(depth))).unwrap()
            }
            11 => json!({ "query": 7, "command": [], "arguments": "x", "uri": null }),
            12 => json!([{ "uri": "file:///a.py" }, 1, "two", null]),
            _ => json!({ "textDocument": { "uri": random_text(&mut self.rng, Lang::Plain, 1) } }),
        }
    }

    fn open(&mut self) {
        let i = self.target();
        let (uri, language_id, lang) = (self.targets[i].uri.clone(), self.targets[i].language_id, self.targets[i].lang);
        let pieces = match self.rng.below(20) {
            0 => 0,
            1 => 200,
            _ => 1 + self.rng.below(25),
        };
        let text = random_text(&mut self.rng, lang, pieces);
        let version = match self.rng.below(10) {
            0 => -5,
            1 => i32::MAX as i64,
            _ => self.rng.below(5) as i64,
        };
        let language_id = if self.rng.chance(5) { "klingon" } else { language_id };
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": language_id, "version": version, "text": text } }),
        );
        self.docs.insert(uri, Doc { version, text });
    }

    fn change(&mut self) {
        let uri = self.uri();
        let held = self.docs.get(&uri).cloned();
        let mut text = held.as_ref().map(|d| d.text.clone()).unwrap_or_default();
        let most = if self.rng.chance(20) { 6 } else { 2 };
        let count = 1 + self.rng.below(most);
        let mut changes = Vec::new();
        let lang = self.targets.iter().find(|t| t.uri == uri).map_or(Lang::Plain, |t| t.lang);
        for _ in 0..count {
            let insert = if self.rng.chance(30) {
                String::new()
            } else {
                let pieces = 1 + self.rng.below(3);
                random_text(&mut self.rng, lang, pieces)
            };
            let change = match self.rng.below(40) {
                0 => {
                    let pieces = 1 + self.rng.below(20);
                    ChangeEvent { range: None, text: random_text(&mut self.rng, lang, pieces) }
                }
                _ => {
                    let start = self.position_in(&text);
                    let end = if text.len() > MAX_DOC_BYTES || self.rng.chance(30) {
                        self.position_in(&text)
                    } else if self.rng.chance(50) {
                        start
                    } else {
                        // A short span after the start, as typing and deleting make.
                        (start.0, start.1 + self.rng.below(8) as u64)
                    };
                    ChangeEvent { range: Some((start, end)), text: insert }
                }
            };
            // Later changes of a batch are positioned in the text the earlier ones made.
            if let Some(next) = apply_batch(&text, std::slice::from_ref(&change), self.encoding) {
                text = next;
            }
            changes.push(change);
        }
        let version = match (&held, self.rng.below(20)) {
            (Some(doc), 0) => doc.version - 1 - self.rng.below(3) as i64,
            (Some(doc), 1) => doc.version,
            (Some(doc), 2) => doc.version + 1000,
            (Some(doc), _) => doc.version + 1,
            (None, _) => self.rng.below(10) as i64,
        };
        let events: Vec<Value> = changes
            .iter()
            .map(|c| match c.range {
                None if self.rng.chance(50) => json!({ "text": c.text }),
                None => json!({ "range": null, "text": c.text }),
                Some(((sl, sc), (el, ec))) => {
                    let mut e = json!({ "range": { "start": { "line": sl, "character": sc }, "end": { "line": el, "character": ec } }, "text": c.text });
                    if self.rng.chance(10) {
                        e["rangeLength"] = json!(self.rng.below(10)); // deprecated, and ignored
                    }
                    e
                }
            })
            .collect();
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": events }),
        );
        // The model: a version outside i32 does not deserialize; the rest as the server's rules say.
        let Some(doc) = held else { return };
        let fits = i32::try_from(version).is_ok()
            && changes.iter().all(|c| {
                c.range.is_none_or(|((sl, sc), (el, ec))| [sl, sc, el, ec].iter().all(|&n| n <= u32::MAX as u64))
            });
        if !fits || version < doc.version {
            self.stats.refused_batches += 1;
            return;
        }
        match apply_batch(&doc.text, &changes, self.encoding) {
            Some(text) => {
                self.stats.applied_batches += 1;
                self.docs.insert(uri, Doc { version, text });
            }
            None => self.stats.refused_batches += 1,
        }
    }

    /// A didChange the server cannot read: dropped whole, the document kept.
    fn malformed_change(&mut self) {
        let uri = self.uri();
        let params = match self.rng.below(6) {
            0 => json!({ "textDocument": { "uri": uri, "version": "7" }, "contentChanges": [{ "text": "x" }] }),
            1 => json!({ "textDocument": { "uri": uri, "version": 1_i64 << 40 }, "contentChanges": [{ "text": "x" }] }),
            2 => {
                json!({ "textDocument": { "uri": uri, "version": 99 }, "contentChanges": [{ "range": { "start": { "line": -1, "character": 0 }, "end": { "line": 0, "character": 0 } }, "text": "x" }] })
            }
            3 => {
                json!({ "textDocument": { "uri": uri, "version": 99 }, "contentChanges": [{ "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } } }] })
            }
            4 => json!({ "textDocument": { "uri": uri, "version": 99 }, "contentChanges": { "text": "x" } }),
            _ => json!({ "textDocument": { "uri": uri, "version": 99 }, "contentChanges": [{ "text": 5 }] }),
        };
        self.notify("textDocument/didChange", params);
    }

    fn close(&mut self) {
        let uri = self.uri();
        self.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
        self.docs.remove(&uri);
    }

    fn check_text(&mut self) {
        let uri = self.uri();
        let expected = self.docs.get(&uri).cloned();
        self.request("tensorlens/viewFileText", json!({ "uri": uri }), Expect::Text(expected));
    }

    fn text_document_position(&mut self) -> Value {
        let uri = self.uri();
        json!({ "textDocument": { "uri": uri }, "position": self.position_json(&uri) })
    }

    fn feature_request(&mut self) {
        let junk = self.rng.chance(8);
        let method = *self.rng.pick(&[
            "textDocument/hover",
            "textDocument/hover",
            "textDocument/hover",
            "textDocument/completion",
            "textDocument/completion",
            "textDocument/signatureHelp",
            "textDocument/signatureHelp",
            "textDocument/codeAction",
            "textDocument/documentLink",
            "textDocument/codeLens",
            "workspace/symbol",
            "tensorlens/searchCatalog",
            "tensorlens/kernelTimings",
            "workspace/executeCommand",
        ]);
        let params = if junk {
            self.junk()
        } else {
            match method {
                "textDocument/hover" | "textDocument/signatureHelp" => self.text_document_position(),
                "textDocument/completion" => {
                    let mut p = self.text_document_position();
                    if self.rng.chance(50) {
                        p["context"] = json!({ "triggerKind": 2, "triggerCharacter": "." });
                    }
                    p
                }
                "textDocument/codeAction" => {
                    let uri = self.uri();
                    let only = if self.rng.chance(30) { json!(["quickfix"]) } else { Value::Null };
                    json!({ "textDocument": { "uri": uri }, "range": self.range_json(&uri),
                            "context": { "diagnostics": [], "only": only } })
                }
                "textDocument/documentLink" | "textDocument/codeLens" => {
                    json!({ "textDocument": { "uri": self.uri() } })
                }
                "workspace/symbol" | "tensorlens/searchCatalog" => {
                    let pieces = self.rng.below(3);
                    let query = random_text(&mut self.rng, Lang::Plain, pieces);
                    let limit = self.rng.pick(&[json!(null), json!(0), json!(5), json!(100_000)]).clone();
                    json!({ "query": query, "limit": limit })
                }
                "tensorlens/kernelTimings" => {
                    json!({ "uri": self.uri(), "kernel": *self.rng.pick(&["k", "reduce", ""]) })
                }
                _ => self.command_params(),
            }
        };
        self.request(method, params, Expect::Anything);
    }

    fn command_params(&mut self) -> Value {
        let command = *self.rng.pick(&[
            "tensorlens.openUrl",
            "tensorlens.searchCatalog",
            "tensorlens.analyzeKernel",
            "tensorlens.showPtx",
            "tensorlens.kernelToolchain",
            "tensorlens.timeKernel",
            "tensorlens.showTiming",
            "tensorlens.nope",
            "",
        ]);
        let uri = self.uri();
        let arguments = match self.rng.below(8) {
            0 => json!([]),
            1 => json!(null),
            2 => json!([42, "x"]),
            3 => json!(["https://pytorch.org/docs"]),
            4 => json!([random_text(&mut self.rng, Lang::Plain, 2)]),
            5 => json!([{ "uri": uri, "kernel": "k" }]),
            6 => json!([{ "uri": uri, "range": self.range_json(&uri) }]),
            _ => json!([{ "uri": uri, "position": self.position_json(&uri) }]),
        };
        let mut params = json!({ "command": command, "arguments": arguments });
        if self.rng.chance(20) {
            params["workDoneToken"] = json!(format!("token-{}", self.next_id));
        }
        params
    }

    fn other_notification(&mut self) {
        match self.rng.below(9) {
            0 => {
                let uri = self.uri();
                let text = if self.rng.chance(50) { json!(self.text_of(&uri)) } else { Value::Null };
                self.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri }, "text": text }));
            }
            1 => {
                let settings = match self.rng.below(4) {
                    0 => json!({ "tensorlens": { "catalogPaths": [self.root.join("team")] } }),
                    1 => json!({ "tensorlens": { "catalogPaths": 3 } }),
                    2 => json!({ "tensorlens": null }),
                    _ => json!({ "other": { "x": 1 } }),
                };
                self.notify("workspace/didChangeConfiguration", json!({ "settings": settings }));
            }
            2 => {
                let uri = *self.rng.pick(&["model.py", ".tensorlens/catalog/team.toml", "gone.py"]);
                let uri = format!("file://{}/{uri}", self.root.display());
                let kind = 1 + self.rng.below(3);
                self.notify("workspace/didChangeWatchedFiles", json!({ "changes": [{ "uri": uri, "type": kind }] }));
            }
            3 => {
                let id = if !self.recent_ids.is_empty() && self.rng.chance(80) {
                    let ids: Vec<Value> = self.recent_ids.iter().cloned().collect();
                    self.rng.pick(&ids).clone()
                } else {
                    json!(987_654_321)
                };
                self.notify("$/cancelRequest", json!({ "id": id }));
            }
            4 => {
                let value = *self.rng.pick(&["off", "verbose", "loud"]);
                self.notify("$/setTrace", json!({ "value": value }));
            }
            5 => self.notify("$/someExtension", json!({ "x": 1 })),
            6 => self.notify("window/workDoneProgress/cancel", json!({ "token": "token-1" })),
            7 => {
                let method = *self.rng.pick(&["textDocument/didOpen", "textDocument/didClose", "textDocument/didSave"]);
                let junk = self.junk();
                self.notify(method, junk);
            }
            _ => self.notify("initialized", json!({})),
        }
    }

    /// JSON-RPC the server must answer (or ignore) and survive.
    fn odd_message(&mut self) {
        match self.rng.below(9) {
            0 => {
                let method = *self.rng.pick(&[
                    "textDocument/definition",
                    "textDocument/documentSymbol",
                    "textDocument/formatting",
                    "completionItem/resolve",
                    "codeLens/resolve",
                    "tensorlens/nothing",
                    "$/weird",
                    "",
                ]);
                let params = self.junk();
                self.request(method, params, Expect::Anything);
            }
            1 => {
                // A request without an id is a notification: no answer.
                let params = self.text_document_position();
                self.notify("textDocument/hover", params);
            }
            2 => {
                // The client answering a request the server never sent.
                let id = format!("never-sent-{}", self.rng.below(1000));
                self.send(json!({ "jsonrpc": "2.0", "id": id, "result": null }));
            }
            3 => {
                // Initialize again: refused with an error.
                self.request("initialize", json!({ "capabilities": {} }), Expect::ErrorCode(-32600));
            }
            4 => self.send_raw_body(""), // an empty body is skipped
            5 => {
                // Ids at the ends of i64.
                let id = *self.rng.pick(&[i64::MAX, i64::MIN, 0]);
                *self.stats.by_method.entry("textDocument/hover".into()).or_default() += 1;
                let params = self.text_document_position();
                self.send(json!({ "jsonrpc": "2.0", "id": id, "method": "textDocument/hover", "params": params }));
                self.pending.push((
                    json!(id),
                    Pending { method: "hover (extreme id)".into(), expect: Expect::Anything, sent_at: Instant::now() },
                ));
                // Only one of each in flight at a time.
                self.drain(0);
            }
            6 => {
                // Two messages in one write.
                let a = serde_json::to_string(&json!({ "jsonrpc": "2.0", "method": "$/x", "params": {} })).unwrap();
                let b = serde_json::to_string(&json!({ "jsonrpc": "2.0", "method": "$/y" })).unwrap();
                let mut bytes = frame(&a, &mut self.rng);
                bytes.extend(frame(&b, &mut self.rng));
                self.conn.remember(format!("{a}{b}"));
                if let Err(err) = self.conn.write_raw(&bytes, &mut self.rng) {
                    self.fail(&format!("writing to the server failed ({err})"));
                }
            }
            7 => {
                // Huge numbers and deep nesting inside params of a request: an error answer.
                let depth = 50 + self.rng.below(70);
                let params = format!(
                    r#"{{"textDocument":{{"uri":"file:///a.py"}},"position":{{"line":{},"character":1e308}}}}"#,
                    "[".repeat(depth) + &"]".repeat(depth)
                );
                let id = self.next_id;
                self.next_id += 1;
                let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"textDocument/hover","params":{params}}}"#);
                *self.stats.by_method.entry("textDocument/hover".into()).or_default() += 1;
                self.send_raw_body(&body);
                self.pending.push((
                    json!(id),
                    Pending {
                        method: "hover (nested)".into(),
                        expect: Expect::ErrorCode(-32602),
                        sent_at: Instant::now(),
                    },
                ));
            }
            _ => {
                let params = self.junk();
                self.request("tensorlens/viewFileText", params, Expect::Anything);
            }
        }
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=11 => self.open(),
            12..=41 => self.change(),
            42..=43 => self.malformed_change(),
            44..=46 => self.close(),
            47..=54 => self.check_text(),
            55..=84 => self.feature_request(),
            85..=91 => self.other_notification(),
            _ => self.odd_message(),
        }
    }
}

fn check_range(range: &Value) -> Result<(), String> {
    let at = |p: &Value| (p["line"].as_u64(), p["character"].as_u64());
    match (at(&range["start"]), at(&range["end"])) {
        ((Some(sl), Some(sc)), (Some(el), Some(ec))) if (sl, sc) <= (el, ec) => Ok(()),
        ((Some(_), Some(_)), (Some(_), Some(_))) => Err("the range ends before it starts".into()),
        _ => Err("not a range".into()),
    }
}

fn first_difference(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}

fn around(text: &str, at: usize) -> String {
    let mut start = at.saturating_sub(40);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 40).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    text[start..end].to_string()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// A workspace with a module to import and a catalog file, so that the loaders have work to do.
fn workspace(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join(".tensorlens/catalog")).unwrap();
    std::fs::create_dir_all(root.join("team")).unwrap();
    std::fs::write(root.join("model.py"), "import torch\nclass GPT(torch.nn.Module):\n    pass\n").unwrap();
    std::fs::write(
        root.join(".tensorlens/catalog/team.toml"),
        "[system]\nid = \"team\"\nname = \"Team\"\ngroup = \"research\"\nmaintainer = \"us\"\nsummary = \"Ours.\"\n\
         docs = \"https://example.com\"\npython_modules = [\"team\"]\n",
    )
    .unwrap();
    root
}

#[test]
fn random_traffic_keeps_the_server_alive_and_the_text_right() {
    let seed = env_u64("TENSORLENS_FUZZ_SEED")
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64);
    let seconds = env_u64("TENSORLENS_FUZZ_SECONDS").unwrap_or(10);
    let max_messages = env_u64("TENSORLENS_FUZZ_MESSAGES");
    eprintln!(
        "fuzz: seed {seed}, {seconds} s{} (TENSORLENS_FUZZ_SEED={seed} replays it)",
        max_messages.map(|m| format!(", at most {m} messages")).unwrap_or_default()
    );
    let root = workspace("fuzz-ws");
    let mut rng = Rng(seed);
    let stderr_path = root.join("server-stderr.log");
    let log = std::env::var("TENSORLENS_FUZZ_LOG").unwrap_or_else(|_| "info".into());
    let conn = Connection::start(&stderr_path, &log);
    let r = root.display().to_string();
    let targets = vec![
        Target { uri: format!("file://{r}/train.py"), language_id: "python", lang: Lang::Python },
        Target { uri: format!("file://{r}/model.py"), language_id: "python", lang: Lang::Python },
        Target { uri: format!("file://{r}/%E5%BC%A0%20%F0%9F%94%A5.py"), language_id: "python", lang: Lang::Python },
        Target {
            uri: format!("vscode-notebook-cell:{r}/nb.ipynb#W0sZmlsZQ%3D%3D"),
            language_id: "python",
            lang: Lang::Python,
        },
        Target {
            uri: format!("vscode-notebook-cell:{r}/nb.ipynb#W1sZmlsZQ%3D%3D"),
            language_id: "python",
            lang: Lang::Python,
        },
        Target { uri: "untitled:Untitled-1".into(), language_id: "python", lang: Lang::Python },
        Target { uri: format!("file://{r}/gemm.cu"), language_id: "cuda-cpp", lang: Lang::Cuda },
        Target { uri: format!("file://{r}/tile.cuh"), language_id: "cuda-cpp", lang: Lang::Cuda },
        Target { uri: format!("file://{r}/host.cpp"), language_id: "cpp", lang: Lang::Cuda },
        Target { uri: format!("file://{r}/.tensorlens/catalog/mine.toml"), language_id: "toml", lang: Lang::Toml },
        Target { uri: format!("file://{r}/notes.txt"), language_id: "plaintext", lang: Lang::Plain },
    ];
    // Which encodings the client offers decides the server's; the model follows the answer.
    let offered = rng.pick(&[json!(["utf-8", "utf-16"]), json!(["utf-16"]), json!(["utf-32"]), Value::Null]).clone();
    let mut fuzz = Fuzz {
        rng,
        conn,
        encoding: Encoding::Utf16,
        targets,
        docs: BTreeMap::new(),
        pending: Vec::new(),
        next_id: 1,
        recent_ids: VecDeque::new(),
        stats: Stats::default(),
        seed,
        root: root.clone(),
    };
    let watchdog = fuzz.conn.watchdog(ANSWER_TIMEOUT + Duration::from_secs(10));
    let capabilities = json!({
        "general": { "positionEncodings": offered },
        "workspace": { "didChangeWatchedFiles": { "dynamicRegistration": true }, "codeLens": { "refreshSupport": true } },
        "window": { "workDoneProgress": true, "showDocument": { "support": true } },
    });
    let root_uri = format!("file://{r}");
    fuzz.request(
        "initialize",
        json!({ "processId": null, "rootUri": root_uri, "capabilities": capabilities,
                "workspaceFolders": [{ "uri": root_uri, "name": "ws" }] }),
        Expect::Anything,
    );
    let init = loop {
        match fuzz.conn.incoming.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Incoming::Message(m)) if m.get("result").is_some() => break m,
            Ok(_) => {}
            Err(_) => fuzz.fail("no answer to initialize"),
        }
    };
    fuzz.pending.clear();
    fuzz.encoding = match init["result"]["capabilities"]["positionEncoding"].as_str() {
        Some("utf-8") => Encoding::Utf8,
        Some("utf-16") => Encoding::Utf16,
        other => fuzz.fail(&format!("unexpected position encoding {other:?}")),
    };
    eprintln!("fuzz: the client offers {offered}, the server counts columns in {:?}", fuzz.encoding);
    fuzz.notify("initialized", json!({}));

    let deadline = Instant::now() + Duration::from_secs(seconds);
    while max_messages.map_or(Instant::now() < deadline, |max| fuzz.conn.sent < max) {
        fuzz.step();
        fuzz.drain(MAX_IN_FLIGHT);
    }
    // Every request answered, then every document's text checked.
    let started_waiting = Instant::now();
    fuzz.drain(0);
    let waited = started_waiting.elapsed();
    let uris: Vec<String> = fuzz.docs.keys().cloned().collect();
    for uri in uris {
        let expected = fuzz.docs.get(&uri).cloned();
        fuzz.request("tensorlens/viewFileText", json!({ "uri": uri }), Expect::Text(expected));
    }
    fuzz.drain(0);
    // Still answering as it should.
    let uri = format!("file://{r}/final.py");
    fuzz.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": "import torch\ntorch.zeros(1)\n" } }),
    );
    let hover_id = fuzz.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": { "line": 1, "character": 8 } }),
        Expect::Anything,
    );
    let hover = loop {
        match fuzz.conn.incoming.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Incoming::Message(m)) if m.get("id") == Some(&hover_id) && m.get("method").is_none() => break m,
            Ok(Incoming::Message(m)) if m.get("id").is_some() && m.get("method").is_some() => fuzz.handle(m),
            Ok(_) => {}
            Err(_) => fuzz.fail("no answer to the final hover"),
        }
    };
    let markdown = hover["result"]["contents"]["value"].as_str().unwrap_or_default().to_string();
    if !markdown.starts_with("**torch.zeros**") {
        fuzz.fail(&format!("the final hover answered {hover}"));
    }
    fuzz.pending.clear();
    // A clean shutdown.
    let shutdown_id = fuzz.request("shutdown", Value::Null, Expect::Anything);
    loop {
        match fuzz.conn.incoming.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Incoming::Message(m)) if m.get("id") == Some(&shutdown_id) && m.get("method").is_none() => {
                if m.get("error").is_some() {
                    fuzz.fail(&format!("shutdown failed: {m}"));
                }
                break;
            }
            Ok(_) => {}
            Err(_) => fuzz.fail("no answer to shutdown"),
        }
    }
    fuzz.notify("exit", Value::Null);
    let exit_deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = fuzz.conn.try_wait() {
            break status;
        }
        if Instant::now() > exit_deadline {
            fuzz.fail("the server did not exit after shutdown and exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    watchdog.store(true, Ordering::Relaxed);
    if !status.success() {
        fuzz.fail(&format!("the server exited with {status}"));
    }
    let stderr = fuzz.conn.stderr();
    if let Some(line) = stderr.lines().find(|l| l.contains("panicked")) {
        fuzz.fail(&format!("the server panicked: {line}"));
    }
    let s = &fuzz.stats;
    eprintln!(
        "fuzz: seed {seed}: {} messages, {} change batches applied, {} refused, {} text checks, {} error answers, \
         {} requests from the server answered, {waited:.1?} to drain at the end\nfuzz: by method: {:?}",
        fuzz.conn.sent,
        s.applied_batches,
        s.refused_batches,
        s.text_checks,
        s.error_answers,
        s.server_requests,
        s.by_method
    );
    assert!(s.text_checks > 0 && s.applied_batches > 0, "the stream did exercise the model");
    let _ = std::fs::remove_dir_all(&root);
}

/// Input that ends tower-lsp-server's read loop: the server stops without a panic, promptly.
#[test]
fn input_that_ends_the_session_ends_it_cleanly() {
    let framed = |body: &[u8]| [format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(), body].concat();
    let nested = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"textDocument/hover","params":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed JSON", framed(b"{not json")),
        ("JSON that is no message", framed(br#"{"foo":1}"#)),
        ("an array", framed(b"[1, 2]")),
        ("jsonrpc 1.0", framed(br#"{"jsonrpc":"1.0","id":5,"method":"foo"}"#)),
        ("no jsonrpc", framed(br#"{"id":5,"method":"foo"}"#)),
        ("an id past i64", framed(br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"x"}"#)),
        ("a fractional id", framed(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#)),
        ("a lone surrogate in a string", framed(br#"{"jsonrpc":"2.0","method":"$/x","params":"\ud800"}"#)),
        ("JSON nested past serde's limit", framed(nested.as_bytes())),
        ("not UTF-8", framed(b"\xff\xfe")),
        ("a Content-Length that is no number", b"Content-Length: abc\r\n\r\n{}".to_vec()),
        ("no Content-Length", b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}".to_vec()),
        (
            "a charset other than UTF-8",
            b"Content-Length: 2\r\nContent-Type: text/plain; charset=latin1\r\n\r\n{}".to_vec(),
        ),
    ];
    let root = workspace("fuzz-ends");
    let mut rng = Rng(1);
    for (name, bytes) in &cases {
        let mut conn = Connection::start(&root.join("stderr.log"), "info");
        let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "capabilities": {} } });
        conn.send_body(&init.to_string(), &mut rng).unwrap();
        let answered = conn.incoming.recv_timeout(ANSWER_TIMEOUT);
        assert!(matches!(answered, Ok(Incoming::Message(ref m)) if m.get("result").is_some()), "{name}: initialize");
        conn.send_body(&json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }).to_string(), &mut rng)
            .unwrap();
        let open = json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": { "textDocument": {
            "uri": "file:///tmp/ends.py", "languageId": "python", "version": 1, "text": "import torch\ntorch.zeros(1)\n" } } });
        conn.send_body(&open.to_string(), &mut rng).unwrap();
        conn.stdin.write_all(bytes).unwrap();
        conn.stdin.flush().unwrap();
        // Whatever follows is not read.
        let _ = conn.stdin.write_all(b"Content-Length: 2\r\n\r\n{}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = conn.try_wait() {
                break status;
            }
            assert!(Instant::now() < deadline, "{name}: the server neither survived nor ended");
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = conn.stderr();
        assert!(status.code().is_some(), "{name}: ended by a signal ({status}):\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name}: a panic:\n{stderr}");
        assert!(stderr.contains("failed to decode message"), "{name}: the log says why:\n{stderr}");
    }
    let _ = std::fs::remove_dir_all(&root);
}
