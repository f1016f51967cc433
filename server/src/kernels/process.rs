//! A worker process spoken to in JSON lines, one request and one answer per line, matched by
//! `id`: started when first needed, kept warm between requests, killed when a request runs past
//! its time-out or is cancelled, noticed when it dies (with the last lines it wrote to stderr), and
//! started fresh next time. The timing worker and the Triton compile worker are both this.
//! Also the one-shot tools (ptxas, nvdisasm): run in a scratch folder, killed when cancelled.
//! Blocking; callers run it off the request loop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Cancel;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProcessError {
    #[error("could not start the {what} `{command}`: {error}")]
    Start { what: &'static str, command: String, error: String },
    #[error("no answer within {seconds:.0} s; the {what} was stopped and the next request starts a fresh one")]
    TimedOut { what: &'static str, seconds: f64 },
    #[error("the {what} died ({status}){}; the next request starts a fresh one", tail(.stderr))]
    Died { what: &'static str, status: String, stderr: String },
    #[error("cancelled")]
    Cancelled,
}

fn tail(stderr: &str) -> String {
    let last: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
    if last.is_empty() {
        String::new()
    } else {
        format!(": {}", last.join(" / "))
    }
}

pub struct LineWorker {
    /// What it is, for messages: "timing worker".
    what: &'static str,
    /// The whole command, launcher prefix included.
    command: Vec<String>,
    /// Extra environment for the process.
    env: Vec<(String, String)>,
    running: Option<Running>,
    next_id: u64,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

#[derive(Deserialize)]
struct Id {
    id: u64,
}

impl LineWorker {
    pub fn new(what: &'static str, command: Vec<String>) -> LineWorker {
        LineWorker { what, command, env: Vec::new(), running: None, next_id: 1 }
    }

    pub fn with_env(mut self, env: Vec<(String, String)>) -> LineWorker {
        self.env = env;
        self
    }

    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// Sends the line `request(id)` makes and waits, at most `timeout`, for the line that answers
    /// that id. Lines that are not JSON with an id are logged and skipped.
    pub fn exchange(
        &mut self,
        request: impl FnOnce(u64) -> String,
        timeout: Duration,
        cancel: &Cancel,
    ) -> Result<String, ProcessError> {
        if self.running.is_none() {
            self.running = Some(self.start()?);
        }
        let id = self.next_id;
        self.next_id += 1;
        let line = request(id);
        let running = self.running.as_mut().expect("just started");
        if writeln!(running.stdin, "{line}").and_then(|_| running.stdin.flush()).is_err() {
            return Err(self.died());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if cancel.is_cancelled() {
                self.stop();
                return Err(ProcessError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stop();
                return Err(ProcessError::TimedOut { what: self.what, seconds: timeout.as_secs_f64() });
            }
            let running = self.running.as_mut().expect("running while waiting");
            match running.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => match serde_json::from_str::<Id>(&line) {
                    Ok(answer) if answer.id == id => return Ok(line),
                    Ok(_) => continue,
                    Err(_) => tracing::debug!("{} said: {line}", self.what),
                },
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(self.died()),
            }
        }
    }

    fn start(&self) -> Result<Running, ProcessError> {
        let what = self.what;
        let (program, args) = self.command.split_first().ok_or_else(|| ProcessError::Start {
            what,
            command: String::new(),
            error: "the command is empty".into(),
        })?;
        let mut child = Command::new(program)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| ProcessError::Start { what, command: self.command.join(" "), error: err.to_string() })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr_pipe = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                // Keep the end: that is where the reason is.
                if kept.len() > 16_384 {
                    let cut = kept.len() - 8_192;
                    let cut = (cut..kept.len()).find(|&i| kept.is_char_boundary(i)).unwrap_or(kept.len());
                    kept.drain(..cut);
                }
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        Ok(Running { child, stdin, lines, stderr })
    }

    /// The process is gone: collect how it ended, and forget it.
    fn died(&mut self) -> ProcessError {
        let what = self.what;
        let Some(mut running) = self.running.take() else {
            return ProcessError::Died { what, status: "not running".into(), stderr: String::new() };
        };
        let status = wait_briefly(&mut running.child);
        // Give the stderr reader a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(20));
        let stderr = running.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
        ProcessError::Died { what, status, stderr }
    }

    /// Kills the process (a hung kernel or compile, a cancelled request).
    pub fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

impl Drop for LineWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_briefly(child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return describe_exit(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return "did not exit; killed".into();
            }
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// A private temporary folder, removed with everything in it when dropped: the one-shot tools
/// read and write files only.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new() -> std::io::Result<Scratch> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("tensorlens-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)?;
        Ok(Scratch(path))
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// Runs `command` to the end with stdout and stderr in files of this folder (so a long output
    /// can never fill a pipe and stall it), polling so that a cancelled request kills it.
    /// `Ok(None)` means cancelled.
    pub fn run(&self, mut command: Command, cancel: &Cancel) -> std::io::Result<Option<Finished>> {
        let (out_path, err_path) = (self.path("stdout"), self.path("stderr"));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(&err_path)?)
            .spawn()?;
        let status = loop {
            if cancel.is_cancelled() {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            match child.try_wait()? {
                Some(status) => break status,
                None => std::thread::sleep(Duration::from_micros(500)),
            }
        };
        let read = |path| String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        Ok(Some(Finished { success: status.success(), stdout: read(&out_path), stderr: read(&err_path) }))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a one-shot tool ended.
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}
