//! The server's side of timing: starts the worker on demand (through a launcher prefix such as
//! `ssh gpu-host` or `srun --gres=gpu:1` when one is set), keeps it warm between requests, kills
//! it when a request runs past its time-out or is cancelled, notices when it dies, and starts a
//! fresh one next time. Blocking; callers run it off the request loop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::worker::{Answer, Op, Request, Response, WorkerError};
use super::Cancel;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimingError {
    #[error("could not start the timing worker `{command}`: {error}")]
    Start { command: String, error: String },
    #[error(
        "the kernel did not finish within {seconds:.0} s (an endless loop?); its worker was stopped and the next run \
         starts a fresh one"
    )]
    TimedOut { seconds: f64 },
    #[error("the timing worker died ({status}){}; the next run starts a fresh one", tail(.stderr))]
    Died { status: String, stderr: String },
    #[error("{}", .0.message)]
    Worker(WorkerError),
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

/// One worker process at a time, started when first needed.
pub struct WorkerPool {
    /// The whole command: launcher prefix, then the worker (`tensorlens kernel worker`).
    command: Vec<String>,
    running: Option<Running>,
    next_id: u64,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl WorkerPool {
    pub fn new(command: Vec<String>) -> WorkerPool {
        WorkerPool { command, running: None, next_id: 1 }
    }

    /// The default command: this very binary's `kernel worker`, after the launcher, if any. Through
    /// a launcher the worker runs on another host, where `remote` names the binary.
    pub fn command_for(launcher: &[String], remote: Option<&str>) -> Vec<String> {
        let local = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "tensorlens".into());
        let program = match (launcher.is_empty(), remote) {
            (_, Some(remote)) => remote.to_string(),
            (true, None) => local,
            (false, None) => "tensorlens".to_string(),
        };
        launcher.iter().cloned().chain([program, "kernel".into(), "worker".into()]).collect()
    }

    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// Sends one request and waits for its answer, at most `timeout`.
    pub fn request(&mut self, op: Op, timeout: Duration, cancel: &Cancel) -> Result<Answer, TimingError> {
        if self.running.is_none() {
            self.running = Some(self.start()?);
        }
        let id = self.next_id;
        self.next_id += 1;
        let line = serde_json::to_string(&Request { id, op }).expect("requests serialize");
        let running = self.running.as_mut().expect("just started");
        if writeln!(running.stdin, "{line}").and_then(|_| running.stdin.flush()).is_err() {
            return Err(self.died());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if cancel.is_cancelled() {
                self.stop();
                return Err(TimingError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stop();
                return Err(TimingError::TimedOut { seconds: timeout.as_secs_f64() });
            }
            let running = self.running.as_mut().expect("running while waiting");
            match running.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => {
                    let Ok(response) = serde_json::from_str::<Response>(&line) else {
                        tracing::debug!("worker said: {line}");
                        continue;
                    };
                    if response.id != id {
                        continue;
                    }
                    return match (response.ok, response.error) {
                        (Some(answer), _) => Ok(answer),
                        (None, Some(error)) => Err(TimingError::Worker(error)),
                        (None, None) => Err(TimingError::Worker(WorkerError {
                            kind: "request".into(),
                            message: "the worker answered nothing".into(),
                        })),
                    };
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(self.died()),
            }
        }
    }

    fn start(&self) -> Result<Running, TimingError> {
        let (program, args) = self.command.split_first().ok_or_else(|| TimingError::Start {
            command: String::new(),
            error: "the worker command is empty".into(),
        })?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| TimingError::Start { command: self.command.join(" "), error: err.to_string() })?;
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
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
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

    /// The worker is gone: collect how it ended, and forget it.
    fn died(&mut self) -> TimingError {
        let Some(mut running) = self.running.take() else {
            return TimingError::Died { status: "not running".into(), stderr: String::new() };
        };
        let status = wait_briefly(&mut running.child);
        // Give the stderr reader a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(20));
        let stderr = running.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
        TimingError::Died { status, stderr }
    }

    /// Kills the worker (a hung kernel, a cancelled request).
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

impl Drop for WorkerPool {
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

/// What the worker may need beyond a measurement: starting, loading the module, warming up.
pub const WORKER_START_ALLOWANCE_SECONDS: f64 = 30.0;

/// `41.2 µs ±0.3% · 812 GB/s (24% of peak)`, the line lenses and the CLI show.
pub fn timing_summary(timing: &super::worker::Timing) -> String {
    let mut text = format!("⏱ {} ±{:.1}%", duration(timing.summary.median), timing.summary.noise * 100.0);
    if timing.bytes > 0.0 {
        text += &format!(" · {:.0} GB/s ({:.0}% of peak)", timing.bandwidth_gbs, timing.bandwidth_fraction * 100.0);
    }
    if let Some(flops) = timing.flops_per_second {
        text += &format!(" · {:.1} TFLOP/s", flops / 1e12);
    }
    text
}

pub fn timing_warnings(timing: &super::worker::Timing) -> Vec<String> {
    let mut warnings = Vec::new();
    if timing.noisy {
        warnings.push(format!(
            "the noise stayed at {:.1}% until the time budget ran out: treat this number with care",
            timing.summary.noise * 100.0
        ));
    }
    if timing.clock_dropped {
        if let Some((start, end)) = timing.sm_clock_mhz {
            warnings.push(format!("the SM clock dropped from {start} to {end} MHz while measuring (throttling)"));
        }
    }
    if timing.batch > 1 {
        warnings.push(format!(
            "one launch is short, so each sample times {} launches in a row (launch overhead would dominate otherwise)",
            timing.batch
        ));
    }
    warnings
}

/// `41.2 µs`, `3.10 ms`, `1.25 s`.
pub fn duration(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> WorkerPool {
        WorkerPool::new(vec!["sh".into(), "-c".into(), script.into()])
    }

    #[test]
    fn answers_come_back_by_id_and_the_worker_stays_warm() {
        // A stand-in worker: answers every request line with a device, echoing its id.
        let mut pool = sh(r#"while read line; do id=$(echo "$line" | sed 's/.*"id":\([0-9]*\).*/\1/');
            echo "noise that is not JSON";
            echo "{\"id\":$id,\"ok\":{\"name\":\"Fake\",\"arch\":\"sm_90\",\"driver_version\":13000,\"sm_clock_khz\":1,\"memory_clock_khz\":1,\"bus_width_bits\":1,\"l2_bytes\":1,\"peak_bandwidth_gbs\":1.0}}";
            done"#);
        for _ in 0..3 {
            let answer = pool.request(Op::Hello, Duration::from_secs(5), &Cancel::default()).unwrap();
            assert!(matches!(answer, Answer::Device(ref d) if d.name == "Fake"), "{answer:?}");
        }
        assert!(pool.is_running());
    }

    #[test]
    fn a_hanging_worker_is_killed_at_the_time_out_and_replaced() {
        let mut pool = sh("sleep 30");
        let started = Instant::now();
        let err = pool.request(Op::Hello, Duration::from_millis(300), &Cancel::default()).unwrap_err();
        assert_eq!(err, TimingError::TimedOut { seconds: 0.3 });
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!pool.is_running(), "the hung worker is gone");
        assert!(err.to_string().contains("endless loop"));
    }

    #[test]
    fn a_dying_worker_is_reported_with_its_last_words() {
        let mut pool = sh("read line; echo 'an illegal memory access was encountered' >&2; exit 3");
        let err = pool.request(Op::Hello, Duration::from_secs(5), &Cancel::default()).unwrap_err();
        match &err {
            TimingError::Died { status, stderr } => {
                assert_eq!(status, "exit status 3");
                assert!(stderr.contains("illegal memory access"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("next run starts a fresh one"));
        // The next request starts a fresh worker (which dies again, the same way).
        assert!(matches!(
            pool.request(Op::Hello, Duration::from_secs(5), &Cancel::default()),
            Err(TimingError::Died { .. })
        ));

        let mut pool = sh("kill -9 $$");
        let err = pool.request(Op::Hello, Duration::from_secs(5), &Cancel::default()).unwrap_err();
        assert!(matches!(&err, TimingError::Died { status, .. } if status == "killed by signal 9"), "{err:?}");
    }

    #[test]
    fn cancelling_stops_the_worker() {
        let mut pool = sh("sleep 30");
        let cancel = Cancel::default();
        let trigger = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            trigger.cancel();
        });
        assert_eq!(pool.request(Op::Hello, Duration::from_secs(20), &cancel), Err(TimingError::Cancelled));
        assert!(!pool.is_running());
    }

    #[test]
    fn a_missing_program_is_a_clear_error_and_worker_errors_pass_through() {
        let mut pool = WorkerPool::new(vec!["/nonexistent/worker".into()]);
        let err = pool.request(Op::Hello, Duration::from_secs(1), &Cancel::default()).unwrap_err();
        assert!(err.to_string().contains("could not start the timing worker `/nonexistent/worker`"), "{err}");
        let mut pool =
            sh(r#"read line; echo '{"id":1,"error":{"kind":"no_driver","message":"no NVIDIA driver here"}}'; sleep 5"#);
        let err = pool.request(Op::Hello, Duration::from_secs(5), &Cancel::default()).unwrap_err();
        assert_eq!(err.to_string(), "no NVIDIA driver here");
    }

    #[test]
    fn launcher_prefixes_come_first() {
        let command = WorkerPool::command_for(&["ssh".into(), "gpu-host".into()], None);
        assert_eq!(command, ["ssh", "gpu-host", "tensorlens", "kernel", "worker"]);
        let command = WorkerPool::command_for(&["srun".into(), "--gres=gpu:1".into()], Some("/opt/tensorlens"));
        assert_eq!(command, ["srun", "--gres=gpu:1", "/opt/tensorlens", "kernel", "worker"]);
        let local = WorkerPool::command_for(&[], None);
        assert_eq!(&local[1..], ["kernel", "worker"]);
    }
}
