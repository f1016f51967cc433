//! A minimal LSP client over the real binary's stdio: framing, requests with ids, notifications
//! kept for later inspection, and time-outs so a wedged server fails the test instead of hanging it.
#![allow(dead_code)] // Shared by the tests and the benchmark, which use different parts.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Client {
    pub child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    pub notifications: Vec<Value>,
}

impl Client {
    /// Starts `tensorlens serve` and initializes it with the given client capabilities.
    pub fn start(capabilities: Value, root: Option<&std::path::Path>) -> (Client, Value) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tensorlens"));
        command.arg("serve");
        Client::spawn(command, capabilities, root)
    }

    /// Starts any language server command and initializes it.
    pub fn spawn(command: Command, capabilities: Value, root: Option<&std::path::Path>) -> (Client, Value) {
        Client::spawn_with_options(command, capabilities, root, Value::Null)
    }

    /// Starts a server and initializes it with `initializationOptions`.
    pub fn spawn_with_options(
        mut command: Command,
        capabilities: Value,
        root: Option<&std::path::Path>,
        options: Value,
    ) -> (Client, Value) {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TENSORLENS_TEST_STDERR").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("the tensorlens binary starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
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
                let mut body = vec![0; length.expect("Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                if tx.send(serde_json::from_slice(&body).expect("server sends JSON")).is_err() {
                    return;
                }
            }
        });
        let mut client = Client { child, stdin, incoming: rx, next_id: 1, notifications: Vec::new() };
        let root_uri = root.map(|r| format!("file://{}", r.display()));
        let folders = root_uri.as_ref().map(|u| json!([{ "uri": u, "name": "ws" }]));
        let init = client.request(
            "initialize",
            json!({ "processId": null, "rootUri": root_uri, "capabilities": capabilities, "workspaceFolders": folders,
                    "initializationOptions": options }),
        );
        client.notify("initialized", json!({}));
        (client, init)
    }

    pub fn send(&mut self, message: &Value) {
        let body = serde_json::to_string(message).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Writes bytes as they are: framing of any kind, several messages at once.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and waits for its response; answers server-to-client requests with null.
    /// Returns the whole response object (`result` or `error`).
    pub fn request_raw(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let message =
                self.recv_until(deadline).unwrap_or_else(|| panic!("no answer to {method} within {TIMEOUT:?}"));
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                return message;
            }
            self.handle_other(message);
        }
    }

    /// Sends a request without waiting; its response is collected with `response_to`.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Whether the response to request `id` has arrived already (while waiting for something else).
    pub fn has_response(&self, id: i64) -> bool {
        self.notifications.iter().any(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none())
    }

    /// Waits for the response to a request sent with `send_request`.
    pub fn response_to(&mut self, id: i64) -> Value {
        self.wait_for(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none())
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.request_raw(method, params);
        assert!(response.get("error").is_none(), "{method} failed: {response}");
        response["result"].clone()
    }

    fn recv_until(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        // A time-out and a server that closed its output both mean no message.
        self.incoming.recv_timeout(left).ok()
    }

    fn handle_other(&mut self, message: Value) {
        if let (Some(id), Some(_)) = (message.get("id"), message.get("method")) {
            // A request from the server (showDocument, ...): record it and answer.
            let reply = json!({ "jsonrpc": "2.0", "id": id, "result": if message["method"] == "window/showDocument" { json!({"success": true}) } else { Value::Null } });
            self.notifications.push(message);
            self.send(&reply);
        } else {
            self.notifications.push(message);
        }
    }

    /// Waits for a notification matching `pred` (already received ones count).
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.notifications.iter().rev().find(|n| pred(n)) {
            return found.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let message = self.recv_until(deadline).expect("the awaited notification arrives");
            let matched = pred(&message);
            self.handle_other(message.clone());
            if matched {
                return message;
            }
        }
    }

    pub fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": language, "version": 1, "text": text } }),
        );
    }

    pub fn hover(&mut self, uri: &str, line: u32, character: u32) -> Value {
        self.request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } }),
        )
    }

    pub fn hover_text(&mut self, uri: &str, line: u32, character: u32) -> String {
        self.hover(uri, line, character)["contents"]["value"].as_str().unwrap_or_default().to_string()
    }

    /// Shuts down, and kills a server that does not exit (for peers in benchmarks).
    pub fn shutdown_or_kill(mut self) {
        let _ = self.request_raw("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Shuts the server down politely and checks it exits on its own.
    pub fn shutdown(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "server exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("server did not exit after shutdown/exit");
    }
}

/// Line and UTF-16 column of the first occurrence of `needle` in `text` (plus `delta` characters).
pub fn find(text: &str, needle: &str, delta: u32) -> (u32, u32) {
    let offset = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in fixture"));
    let line = text[..offset].matches('\n').count() as u32;
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = text[line_start..offset].encode_utf16().count() as u32;
    (line, col + delta)
}

pub fn fixture(name: &str) -> (String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name);
    let path = path.canonicalize().unwrap();
    (format!("file://{}", path.display()), std::fs::read_to_string(&path).unwrap())
}
