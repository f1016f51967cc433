//! A language-server client for the benchmark, over the server's stdio as an editor speaks to it.
//! Every message is stamped with the instant its last byte was read, before it is parsed, and with
//! its size; requests from the server (`workspace/configuration`, `client/registerCapability`, ...)
//! are answered at once from the reading thread, so no server waits on the benchmark; every wait has
//! a deadline, so a stuck server costs its time-out, never the run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the benchmark keeps of a message from the server.
pub struct Incoming {
    pub at: Instant,
    /// Bytes of the JSON body.
    pub bytes: usize,
    pub kind: Kind,
}

pub enum Kind {
    Response {
        id: i64,
        result: Value,
        error: Option<Value>,
    },
    /// Only a summary: some servers publish megabytes per version.
    Diagnostics {
        uri: String,
        version: Option<i64>,
        count: usize,
    },
}

#[derive(Clone, Copy)]
pub struct Seen {
    pub at: Instant,
    pub bytes: usize,
    pub count: usize,
}

pub struct Server {
    child: Child,
    stdin: Arc<Mutex<ChildStdin>>,
    incoming: Receiver<Incoming>,
    next_id: i64,
    responses: HashMap<i64, Incoming>,
    diagnostics: Vec<(String, Option<i64>, Seen)>,
    pub capabilities: Value,
}

/// The client capabilities every server is given: the same for all, as a current editor offers
/// them (pull diagnostics included, as VS Code does; a server that offers pull is pulled).
fn client_capabilities() -> Value {
    json!({
        "general": { "positionEncodings": ["utf-16"] },
        "textDocument": {
            "synchronization": { "dynamicRegistration": false, "didSave": true },
            "hover": { "contentFormat": ["markdown", "plaintext"] },
            "publishDiagnostics": { "versionSupport": true, "relatedInformation": true },
            "diagnostic": { "dynamicRegistration": false, "relatedDocumentSupport": false },
            "codeLens": { "dynamicRegistration": false }
        },
        "workspace": { "configuration": true, "workspaceFolders": true },
        "window": { "workDoneProgress": false }
    })
}

impl Server {
    /// Starts `command` in its own process group (so the whole tree can be ended), sends
    /// `initialize` and `initialized`, and returns the server with the time `initialize` took.
    pub fn start(mut command: Command, root: &Path, timeout: Duration) -> Result<(Server, Duration), String> {
        let mut child = command
            .current_dir(root)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TENSORLENS_BENCH_STDERR").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        let stdin = Arc::new(Mutex::new(child.stdin.take().unwrap()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let replies = stdin.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some((at, body)) = read_message(&mut reader) {
                let Ok(message) = serde_json::from_slice::<Value>(&body) else { continue };
                let bytes = body.len();
                if let Some(method) = message.get("method").and_then(Value::as_str) {
                    if let Some(id) = message.get("id") {
                        let result = answer(method, &message["params"]);
                        let reply = json!({ "jsonrpc": "2.0", "id": id, "result": result });
                        let _ = write_message(&replies, &reply);
                    } else if method == "textDocument/publishDiagnostics" {
                        let params = &message["params"];
                        let kind = Kind::Diagnostics {
                            uri: params["uri"].as_str().unwrap_or_default().to_string(),
                            version: params["version"].as_i64(),
                            count: params["diagnostics"].as_array().map_or(0, Vec::len),
                        };
                        if tx.send(Incoming { at, bytes, kind }).is_err() {
                            return;
                        }
                    }
                } else if let Some(id) = message.get("id").and_then(Value::as_i64) {
                    let kind = Kind::Response {
                        id,
                        result: message.get("result").cloned().unwrap_or(Value::Null),
                        error: message.get("error").cloned(),
                    };
                    if tx.send(Incoming { at, bytes, kind }).is_err() {
                        return;
                    }
                }
            }
        });
        let mut server = Server {
            child,
            stdin,
            incoming: rx,
            next_id: 1,
            responses: HashMap::new(),
            diagnostics: Vec::new(),
            capabilities: Value::Null,
        };
        let root_uri = file_uri(root);
        let (id, sent) = server.request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "clientInfo": { "name": "tensorlens-bench" },
                "rootUri": root_uri,
                "rootPath": root.display().to_string(),
                "capabilities": client_capabilities(),
                "workspaceFolders": [{ "uri": root_uri, "name": "bench" }],
            }),
        );
        let Some(answer) = server.response(id, sent + timeout) else {
            server.kill();
            return Err(format!("no answer to initialize within {} s", timeout.as_secs()));
        };
        let took = answer.at - sent;
        if let Kind::Response { result, error, .. } = answer.kind {
            if let Some(error) = error {
                server.kill();
                return Err(format!("initialize failed: {error}"));
            }
            server.capabilities = result["capabilities"].clone();
        }
        server.notify("initialized", json!({}));
        Ok((server, took))
    }

    /// Sends a notification; returns the instant just before it was written.
    pub fn notify(&mut self, method: &str, params: Value) -> Instant {
        let at = Instant::now();
        let _ = write_message(&self.stdin, &json!({ "jsonrpc": "2.0", "method": method, "params": params }));
        at
    }

    /// Sends a request without waiting; returns its id and the instant just before it was written.
    pub fn request(&mut self, method: &str, params: Value) -> (i64, Instant) {
        let id = self.next_id;
        self.next_id += 1;
        let at = Instant::now();
        let _ = write_message(&self.stdin, &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        (id, at)
    }

    /// Waits until `deadline` for the response to request `id`.
    pub fn response(&mut self, id: i64, deadline: Instant) -> Option<Incoming> {
        loop {
            if let Some(found) = self.responses.remove(&id) {
                return Some(found);
            }
            if !self.receive(deadline) {
                return None;
            }
        }
    }

    /// Waits until `deadline` for diagnostics of `uri` published for `version`, or, from a server
    /// that publishes no version, the first published after `since`.
    pub fn published(&mut self, uri: &str, version: i64, since: Instant, deadline: Instant) -> Option<Seen> {
        loop {
            let found = self.diagnostics.iter().find(|(u, v, seen)| {
                u == uri
                    && match v {
                        Some(v) => *v == version,
                        None => seen.at >= since,
                    }
            });
            if let Some((_, _, seen)) = found {
                return Some(*seen);
            }
            if !self.receive(deadline) {
                return None;
            }
        }
    }

    /// Takes one message from the reader (false at the deadline or when the server has gone).
    fn receive(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok(Incoming { at, bytes, kind: Kind::Diagnostics { uri, version, count } }) => {
                self.diagnostics.push((uri, version, Seen { at, bytes, count }));
                true
            }
            Ok(message @ Incoming { kind: Kind::Response { .. }, .. }) => {
                let Kind::Response { id, .. } = message.kind else { unreachable!() };
                self.responses.insert(id, message);
                true
            }
            Err(_) => false,
        }
    }

    /// Peak resident memory (KiB) of the server and every process under it (node under
    /// basedpyright's launcher), each process's own peak, added up.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss(self.child.id())
    }

    /// `shutdown` and `exit`, then the whole process group is ended if it has not gone.
    pub fn stop(mut self) {
        let (id, sent) = self.request("shutdown", Value::Null);
        let _ = self.response(id, sent + Duration::from_secs(5));
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    fn kill(&mut self) {
        // The group this benchmark started the server in: its id is the server's pid.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// What the client answers a server's request with.
fn answer(method: &str, params: &Value) -> Value {
    match method {
        // One (empty) setting per item asked: each server's defaults.
        "workspace/configuration" => Value::Array(vec![Value::Null; params["items"].as_array().map_or(0, Vec::len)]),
        "workspace/workspaceFolders" => Value::Null,
        "window/showDocument" => json!({ "success": false }),
        _ => Value::Null,
    }
}

fn read_message(reader: &mut impl BufRead) -> Option<(Instant, Vec<u8>)> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    Some((Instant::now(), body))
}

fn write_message(stdin: &Mutex<ChildStdin>, message: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).unwrap();
    let mut stdin = stdin.lock().unwrap_or_else(|e| e.into_inner());
    write!(stdin, "Content-Length: {}\r\n\r\n", body.len())?;
    stdin.write_all(&body)?;
    stdin.flush()
}

pub fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.display().to_string().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => uri.push(byte as char),
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri
}

/// Peak resident memory of a process and its descendants.
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
