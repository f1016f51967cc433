//! The server's side of timing: starts the worker on demand (through a launcher prefix such as
//! `ssh gpu-host` or `srun --gres=gpu:1` when one is set), keeps it warm between requests, kills
//! it when a request runs past its time-out or is cancelled, notices when it dies, and starts a
//! fresh one next time. Blocking; callers run it off the request loop.

use std::time::Duration;

use super::process::{LineWorker, ProcessError};
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

/// The timing worker, started when first needed and kept warm (see `process::LineWorker`).
pub struct WorkerPool {
    worker: LineWorker,
}

impl WorkerPool {
    pub fn new(command: Vec<String>) -> WorkerPool {
        WorkerPool { worker: LineWorker::new("timing worker", command) }
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
        self.worker.command()
    }

    /// Sends one request and waits for its answer, at most `timeout`.
    pub fn request(&mut self, op: Op, timeout: Duration, cancel: &Cancel) -> Result<Answer, TimingError> {
        let line = self
            .worker
            .exchange(|id| serde_json::to_string(&Request { id, op }).expect("requests serialize"), timeout, cancel)
            .map_err(TimingError::from)?;
        let response: Response = serde_json::from_str(&line).map_err(|err| {
            TimingError::Worker(WorkerError { kind: "request".into(), message: format!("the worker's answer: {err}") })
        })?;
        match (response.ok, response.error) {
            (Some(answer), _) => Ok(answer),
            (None, Some(error)) => Err(TimingError::Worker(error)),
            (None, None) => Err(TimingError::Worker(WorkerError {
                kind: "request".into(),
                message: "the worker answered nothing".into(),
            })),
        }
    }

    /// Kills the worker (a hung kernel, a cancelled request).
    pub fn stop(&mut self) {
        self.worker.stop();
    }

    pub fn is_running(&self) -> bool {
        self.worker.is_running()
    }
}

impl From<ProcessError> for TimingError {
    fn from(err: ProcessError) -> TimingError {
        match err {
            ProcessError::Start { command, error, .. } => TimingError::Start { command, error },
            ProcessError::TimedOut { seconds, .. } => TimingError::TimedOut { seconds },
            ProcessError::Died { status, stderr, .. } => TimingError::Died { status, stderr },
            ProcessError::Cancelled => TimingError::Cancelled,
        }
    }
}

/// The stop rule of the settings: nvbench's, with the time-out and noise the user set.
pub fn stop_rule(settings: &super::toolchain::Settings) -> super::stats::StopRule {
    let mut rule = super::stats::StopRule::default();
    if let Some(seconds) = settings.timing_seconds {
        rule.timeout_seconds = seconds;
    }
    if let Some(noise) = settings.timing_noise {
        rule.max_noise = noise;
    }
    rule
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
    use std::time::Instant;

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
