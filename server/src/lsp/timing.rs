//! Kernel timing over LSP: the `tensorlens.timeKernel` command (progress, cancellation), the
//! timing lenses and hover lines, and `tensorlens/kernelTimings` with each kernel's history for
//! plugins that draw a table or a chart. Kernels run only on this explicit command, in the worker
//! process, never inside the server.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tower_lsp_server::jsonrpc::{self, Result};
use tower_lsp_server::ls_types::*;

use super::kernels::{text_hash, KernelRequest};
use super::server::{lock, Server, State};
use crate::documents::Document;
use crate::kernels::document::DocumentKernels;
use crate::kernels::spec::LaunchSpec;
use crate::kernels::timing::{
    duration, timing_summary, timing_warnings, TimingError, WorkerPool, WORKER_START_ALLOWANCE_SECONDS,
};
use crate::kernels::worker::{Answer, Op, Timing};
use crate::kernels::Cancel;

/// Results kept per kernel, newest last.
const HISTORY: usize = 50;

#[derive(Default)]
pub struct TimingState {
    /// One worker for the server, with the command it was started with; a new launcher setting
    /// gets a new worker.
    pool: Mutex<Option<WorkerPool>>,
    /// History per document URI and kernel.
    history: Mutex<HashMap<(String, String), Vec<Record>>>,
}

/// One timing run, as `tensorlens/kernelTimings` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub kernel: String,
    /// Seconds since the Unix epoch.
    pub at: f64,
    /// The kernel's text hash when timed: a run after an edit compares with the one before.
    pub text_hash: u64,
    #[serde(skip)]
    pub name_range: Range<usize>,
    pub spec: Option<LaunchSpec>,
    pub timing: Option<Timing>,
    pub error: Option<String>,
    pub summary: String,
    /// Median change against the previous successful run, in percent.
    pub change_percent: Option<f64>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct KernelTimingsParams {
    pub uri: Uri,
    #[serde(default)]
    pub kernel: Option<String>,
}

impl TimingState {
    fn latest(&self, uri: &str, kernel: &str) -> Option<Record> {
        lock(&self.history).get(&(uri.to_string(), kernel.to_string())).and_then(|h| h.last().cloned())
    }

    fn push(&self, uri: &str, record: Record) {
        let mut history = lock(&self.history);
        let list = history.entry((uri.to_string(), record.kernel.clone())).or_default();
        list.push(record);
        if list.len() > HISTORY {
            list.remove(0);
        }
    }

    fn previous_median(&self, uri: &str, kernel: &str) -> Option<f64> {
        let history = lock(&self.history);
        history
            .get(&(uri.to_string(), kernel.to_string()))?
            .iter()
            .rev()
            .find_map(|r| r.timing.as_ref())
            .map(|t| t.summary.median)
    }

    /// The lens for the kernel's latest run.
    pub fn lens_title(&self, uri: &str, kernel: &str, current_hash: u64) -> Option<String> {
        let record = self.latest(uri, kernel)?;
        let mut title = record.summary.clone();
        if let Some(change) = record.change_percent {
            title += &format!(" ({change:+.1}% vs before)");
        }
        if record.text_hash != current_hash {
            title += " (before the last edit)";
        }
        Some(title)
    }

    /// Timing lines for the hover of the kernel named at `offset`.
    pub fn hover_markdown(&self, doc: &Document, offset: usize) -> Option<String> {
        let history = lock(&self.history);
        let record = history
            .iter()
            .filter(|((uri, _), _)| *uri == doc.uri)
            .filter_map(|(_, list)| list.last())
            .find(|r| r.name_range.contains(&offset))?;
        let mut out = format!("**Timing**: {}", record.summary);
        if let Some(change) = record.change_percent {
            out += &format!(" ({change:+.1}% against the run before)");
        }
        if let Some(timing) = &record.timing {
            out += &format!(
                "\n\n- {} ({}), median of {} samples, min {} · max {}\n",
                timing.device.name,
                timing.device.arch,
                timing.summary.samples,
                duration(timing.summary.min),
                duration(timing.summary.max)
            );
        }
        for warning in &record.warnings {
            out += &format!("- ⚠ {warning}\n");
        }
        if let Some(spec) = &record.spec {
            out += &format!("- launch: {}\n", spec.explained.join("; "));
        }
        Some(out)
    }

    pub fn history_json(&self, uri: &str, kernel: Option<&str>) -> serde_json::Value {
        let history = lock(&self.history);
        let mut kernels: Vec<(&String, &Vec<Record>)> = history
            .iter()
            .filter(|((u, k), _)| u == uri && kernel.is_none_or(|want| want == k))
            .map(|((_, k), list)| (k, list))
            .collect();
        kernels.sort_by(|a, b| a.0.cmp(b.0));
        serde_json::json!({
            "kernels": kernels.into_iter().map(|(kernel, list)| serde_json::json!({ "kernel": kernel, "history": list })).collect::<Vec<_>>()
        })
    }
}

impl Server {
    /// `tensorlens.timeKernel`.
    pub(super) async fn time_kernel_command(
        &self,
        arguments: Vec<serde_json::Value>,
        token: Option<ProgressToken>,
    ) -> Result<Option<LSPAny>> {
        let settings = self.kernel_settings();
        if !settings.timing_allowed() {
            return Err(jsonrpc::Error::invalid_params(
                "kernel timing is off here (the workspace is not trusted, or `timingEnabled` is false)",
            ));
        }
        let request = self.kernel_request(super::ext::TIME_KERNEL, arguments)?;
        let state = self.state.clone();
        let uri = request.uri.clone();
        let record = self
            .with_progress(token, "Timing kernel", "measuring", move |cancel| {
                time_blocking(&state, &request, &settings, cancel)
            })
            .await?;
        let Some(record) = record.map_err(jsonrpc::Error::invalid_params)? else {
            return Err(jsonrpc::Error::request_cancelled());
        };
        self.state.timing.push(uri.as_str(), record.clone());
        self.refresh_lenses().await;
        let mut response = serde_json::to_value(&record).unwrap_or_default();
        if let Some(error) = &record.error {
            response["error"] = error.clone().into();
        }
        Ok(Some(response))
    }

    /// `tensorlens/kernelTimings`: every kernel's history in a document, or one kernel's.
    pub async fn kernel_timings(&self, params: KernelTimingsParams) -> Result<serde_json::Value> {
        Ok(self.state.timing.history_json(params.uri.as_str(), params.kernel.as_deref()))
    }
}

/// Compiles, builds the launch spec and asks the worker; `Err` is about the request itself (no
/// kernel there), `Ok(None)` a cancel. A failed measurement is a record with an error.
fn time_blocking(
    state: &State,
    request: &KernelRequest,
    settings: &crate::kernels::toolchain::Settings,
    cancel: &Cancel,
) -> std::result::Result<Option<Record>, String> {
    let text = request.doc.text();
    let kernels = DocumentKernels::new(&text, request.language);
    let site = request.site(&kernels)?;
    let path = request.path();
    let uri = request.uri.as_str();
    let toolchain = state.kernels.toolchain(settings);
    let name = site.kernel.qualified_name.clone();
    let mut record = Record {
        kernel: name.clone(),
        at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
        text_hash: text_hash(&text[site.range.clone()]),
        name_range: site.name_range.clone(),
        spec: None,
        timing: None,
        error: None,
        summary: String::new(),
        change_percent: None,
        warnings: Vec::new(),
    };
    let prepared = kernels.timing_request(site, &path, state.kernels.analyzer(), &toolchain, settings, None, cancel);
    let (time_request, _) = match prepared {
        Ok(prepared) => prepared,
        Err(message) if cancel.is_cancelled() => {
            tracing::debug!("cancelled while preparing: {message}");
            return Ok(None);
        }
        Err(message) => {
            record.summary = format!("⏱ ✗ {}", first_line(&message));
            record.error = Some(message);
            return Ok(Some(record));
        }
    };
    record.spec = Some(time_request.spec.clone());
    let budget = Duration::from_secs_f64(time_request.rule.timeout_seconds + WORKER_START_ALLOWANCE_SECONDS);
    let command = WorkerPool::command_for(&settings.timing_launcher, settings.timing_worker.as_deref());
    let answer = {
        let mut pool = lock(&state.timing.pool);
        if pool.as_ref().is_none_or(|p| p.command() != command.as_slice()) {
            *pool = Some(WorkerPool::new(command));
        }
        pool.as_mut().expect("just made").request(Op::Time(Box::new(time_request)), budget, cancel)
    };
    match answer {
        Ok(Answer::Timing(timing)) => {
            record.change_percent = state
                .timing
                .previous_median(uri, &name)
                .filter(|previous| *previous > 0.0)
                .map(|previous| (timing.summary.median - previous) / previous * 100.0);
            record.summary = timing_summary(&timing);
            record.warnings = timing_warnings(&timing);
            record.timing = Some(*timing);
        }
        Ok(other) => {
            record.error = Some(format!("the worker answered something else: {other:?}"));
            record.summary = "⏱ ✗ the worker answered something else".into();
        }
        Err(TimingError::Cancelled) => return Ok(None),
        Err(err) => {
            let message = err.to_string();
            record.summary = format!("⏱ ✗ {}", first_line(&message));
            record.error = Some(message);
        }
    }
    Ok(Some(record))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
