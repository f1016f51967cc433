//! What the server remembers about kernels between requests, and the work the kernel commands
//! do: the last analysis of each kernel (for lenses, hovers and compiler diagnostics), the
//! toolchain found for the settings, the timing worker and each kernel's timing history.
//!
//! Documents are named by URI and read through the `DocumentKernels` found in them; nothing here
//! knows about LSP. The slow methods block (compiles, the worker) and are run off the request loop
//! by their caller, with a `Cancel` it sets when the answer is no longer wanted.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::analyze::Severity;
use super::analyze::{Analysis, AnalyzeError, Analyzer};
use super::document::text_hash;
use super::document::{DocumentKernels, KernelSite, MessageSource, PlacedMessage};
use super::ir::IrKind;
use super::occupancy;
use super::process::ProcessError;
use super::report::{KernelReport, LineMessage, TritonReport};
use super::sass;
use super::spec::LaunchSpec;
use super::timing::WORKER_START_ALLOWANCE_SECONDS;
use super::timing::{duration, timing_summary, timing_warnings, TimingError, WorkerPool};
use super::toolchain::refused_program;
use super::toolchain::{Settings, Toolchain};
use super::triton::{CompileConfig, TritonFile, TritonFunction};
use super::triton_analysis::{self, ConfigOutcome, ConfigResult, Resources, TritonAnalysis};
use super::triton_modules;
use super::triton_timing::{self, ConfigTiming, Plan};
use super::triton_worker::{self, CompileRequest, ConfigRequest, Outcomes, TritonError, TritonWorker};
use super::worker::{Answer, Op, Timing};
use super::Cancel;
use crate::ide::markdown::escape_markdown as esc;

/// Timing runs kept per kernel, newest last.
const HISTORY: usize = 50;

/// A poisoned lock only means another request panicked; every writer here finishes its edit
/// before anything can panic, so the data is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
pub struct KernelSession {
    analyzer: Analyzer,
    /// The toolchain found for the settings it was found with.
    toolchain: Mutex<Option<(Settings, Arc<Toolchain>)>>,
    /// Last result per document URI and kernel (qualified name).
    results: Mutex<HashMap<String, Vec<KernelResult>>>,
    /// One timing worker, with the command it was started with; a new launcher setting gets a
    /// new worker.
    pool: Mutex<Option<WorkerPool>>,
    /// Timing history per document URI and kernel.
    history: Mutex<HashMap<(String, String), Vec<Record>>>,
    /// The Triton compile worker, kept warm, for the Python it was started with.
    triton: Mutex<Option<TritonWorker>>,
    /// Triton analyses by everything that went into them (source, signature, configs, arch).
    triton_cache: Mutex<HashMap<u64, Arc<TritonAnalysis>>>,
}

/// A Triton compile can take minutes in ptxas for big configurations; past this the worker is
/// stopped and the next request starts a fresh one.
const TRITON_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone)]
struct KernelResult {
    kernel: String,
    /// The kernel's text hash when analysed, to tell a lens that it is out of date.
    text_hash: u64,
    /// Document bytes of the kernel's name when analysed.
    name_range: Range<usize>,
    outcome: Outcome,
    /// Where the SASS spills and spends its instructions, read after the analysis.
    hints: Vec<PlacedMessage>,
}

#[derive(Clone)]
enum Outcome {
    /// Warnings are placed in the document when analysed and stay diagnostics until the next run.
    Analyzed {
        analysis: Box<Analysis>,
        warnings: Vec<PlacedMessage>,
    },
    Failed {
        message: String,
        messages: Vec<PlacedMessage>,
    },
    Triton {
        analysis: Arc<TritonAnalysis>,
        messages: Vec<PlacedMessage>,
    },
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
    /// Triton kernels: each configuration's measurement; the record's own spec and timing are
    /// the fastest one's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ConfigTiming>,
    /// Triton kernels: the label of the configuration whose spec and timing the record holds,
    /// the fastest of those measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastest: Option<String>,
}

/// Every timed kernel of a document with its history, for plugins that draw a table or a chart.
#[derive(Debug, Clone, Serialize)]
pub struct KernelTimings {
    pub kernels: Vec<KernelHistory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelHistory {
    pub kernel: String,
    pub history: Vec<Record>,
}

/// The kernel a command is about: one document's kernels and a selection in it or a name.
#[derive(Clone)]
pub struct KernelTarget {
    pub uri: String,
    /// The file name compilers report.
    pub path: String,
    pub kernels: Arc<DocumentKernels>,
    /// The Triton kernels of a Python document, with the text they were found in.
    pub triton: Option<(Arc<TritonFile>, Arc<str>)>,
    pub selection: Option<Range<usize>>,
    pub kernel: Option<String>,
}

/// Why a command's target names no kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    NoKernelNamed(String),
    NoKernels,
    NotInKernel,
    Unspecified,
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::NoKernelNamed(name) => write!(f, "no kernel named `{name}` in this file"),
            TargetError::NoKernels => write!(f, "no __global__ function in this file"),
            TargetError::NotInKernel => {
                write!(f, "the selection is not in a kernel: put the cursor inside a __global__ function")
            }
            TargetError::Unspecified => write!(f, "say which kernel: a range, a position or a kernel name"),
        }
    }
}

impl KernelTarget {
    /// The Triton kernel named or selected, when the target is one.
    pub fn triton_kernel(&self) -> Option<&TritonFunction> {
        let (file, _) = self.triton.as_ref()?;
        match (&self.kernel, &self.selection) {
            (Some(name), _) => file.function(name),
            (None, Some(selection)) => {
                file.functions.iter().find(|f| f.range.start <= selection.start && selection.end <= f.range.end)
            }
            (None, None) => None,
        }
    }

    pub fn site(&self) -> Result<&KernelSite, TargetError> {
        match (&self.kernel, &self.selection) {
            (Some(name), _) => self.kernels.named(name).ok_or_else(|| TargetError::NoKernelNamed(name.clone())),
            (None, Some(selection)) => self.kernels.at(selection.clone()).ok_or(if self.kernels.sites.is_empty() {
                TargetError::NoKernels
            } else {
                TargetError::NotInKernel
            }),
            (None, None) => Err(TargetError::Unspecified),
        }
    }
}

/// What a lens above a kernel does when clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LensAction {
    Analyze,
    Time,
    ShowTimings,
    ShowPtx,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLens {
    pub name_range: Range<usize>,
    pub kernel: String,
    pub title: String,
    pub action: LensAction,
}

impl KernelLens {
    /// The lens that analyses `kernel`.
    pub fn analyze(kernel: String, name_range: Range<usize>) -> KernelLens {
        KernelLens { name_range, kernel, title: "Analyze".into(), action: LensAction::Analyze }
    }
}

/// The answer of an analysis, and something to install or configure worth telling the user about.
pub struct AnalyzeAnswer {
    pub report: KernelReport,
    pub missing: Option<String>,
}

/// One IR text of a kernel, written where an editor can open it when that worked.
#[derive(Debug, Clone)]
pub struct IrAnswer {
    pub kernel: String,
    pub ir: IrKind,
    /// The Triton configuration compiled, and every one the kernel has.
    pub config: Option<String>,
    pub configs: Vec<String>,
    pub text: Option<Arc<str>>,
    pub file: Option<PathBuf>,
    pub error: Option<String>,
    pub missing: Option<String>,
}

/// Why a round trip to the Triton worker gave no outcomes.
enum TritonFailed {
    Cancelled,
    Failed { message: String, missing: Option<String> },
}

impl KernelSession {
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn toolchain(&self, settings: &Settings) -> Arc<Toolchain> {
        let mut cached = lock(&self.toolchain);
        match &*cached {
            Some((for_settings, toolchain)) if for_settings == settings => toolchain.clone(),
            _ => {
                let toolchain = Arc::new(Toolchain::discover(settings));
                *cached = Some((settings.clone(), toolchain.clone()));
                toolchain
            }
        }
    }

    /// Compiler errors and warnings of the document's analysed kernels, clamped to its length.
    pub fn messages(&self, uri: &str, len: usize) -> Vec<PlacedMessage> {
        let results = lock(&self.results);
        let Some(results) = results.get(uri) else { return Vec::new() };
        results
            .iter()
            .flat_map(|result| {
                let compiler = match &result.outcome {
                    Outcome::Analyzed { warnings, .. } => warnings,
                    Outcome::Failed { messages, .. } | Outcome::Triton { messages, .. } => messages,
                };
                compiler.iter().chain(&result.hints)
            })
            .map(|m| PlacedMessage { range: m.range.start.min(len)..m.range.end.min(len), ..m.clone() })
            .collect()
    }

    /// The analysis and timing of the kernel whose name is at `offset`, as hover markdown.
    /// `slice` reads the document's current text, so that a name that moved is not answered for.
    pub fn hover_markdown(&self, uri: &str, offset: usize, slice: impl Fn(Range<usize>) -> String) -> Option<String> {
        let analysis = self.analysis_markdown(uri, offset, slice);
        match (analysis, self.timing_markdown(uri, offset)) {
            (Some(a), Some(t)) => Some(format!("{a}\n{t}")),
            (a, t) => a.or(t),
        }
    }

    fn analysis_markdown(&self, uri: &str, offset: usize, slice: impl Fn(Range<usize>) -> String) -> Option<String> {
        let results = lock(&self.results);
        let result = results.get(uri)?.iter().find(|r| r.name_range.contains(&offset))?;
        let name = result.kernel.rsplit("::").next().unwrap_or(&result.kernel);
        if slice(result.name_range.clone()) != name {
            return None;
        }
        Some(match &result.outcome {
            Outcome::Analyzed { analysis, .. } => analysis.markdown(),
            Outcome::Triton { analysis, .. } => analysis.markdown(),
            // Compiler messages quote the file (an include's name, a string): text, not markup.
            Outcome::Failed { message, .. } => {
                format!("**{}** did not analyze: {}", esc(&result.kernel), esc(message))
            }
        })
    }

    fn timing_markdown(&self, uri: &str, offset: usize) -> Option<String> {
        let history = lock(&self.history);
        let record = history
            .iter()
            .filter(|((u, _), _)| u == uri)
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
        if record.configs.len() > 1 {
            for config in &record.configs {
                let outcome = config.error.as_deref().map(|e| format!("✗ {}", first_line(e)));
                out +=
                    &format!("- {}: {}\n", esc(&config.label), esc(&outcome.unwrap_or_else(|| config.summary.clone())));
            }
        }
        if let Some(spec) = &record.spec {
            out += &format!("- launch: {}\n", spec.explained.join("; "));
        }
        Some(out)
    }

    /// The lenses above each kernel: analyze, time (when timing is on), the last timing and the
    /// last analysis, marked when the kernel was edited since.
    pub fn lenses(
        &self,
        uri: &str,
        kernels: &DocumentKernels,
        triton: Option<&TritonFile>,
        timing: bool,
    ) -> Vec<KernelLens> {
        self.lenses_of(uri, kernels, triton, timing, None)
    }

    /// `lenses`, of one kernel only when `only` names it.
    pub fn lenses_of(
        &self,
        uri: &str,
        kernels: &DocumentKernels,
        triton: Option<&TritonFile>,
        timing: bool,
        only: Option<&str>,
    ) -> Vec<KernelLens> {
        let results = lock(&self.results).get(uri).cloned().unwrap_or_default();
        let mut lenses = Vec::new();
        let wanted = |name: &str| only.is_none_or(|only| only == name);
        for function in triton.map(|t| t.kernels().collect::<Vec<_>>()).unwrap_or_default() {
            if !wanted(&function.name) {
                continue;
            }
            let lens = |title: String, action| KernelLens {
                name_range: function.name_range.clone(),
                kernel: function.name.clone(),
                title,
                action,
            };
            lenses.push(lens("Analyze".into(), LensAction::Analyze));
            if timing {
                lenses.push(lens("Time".into(), LensAction::Time));
                if let Some(title) = self.timing_title(uri, &function.name, function.text_hash) {
                    lenses.push(lens(title, LensAction::ShowTimings));
                }
            }
            let Some(result) = results.iter().find(|r| r.kernel == function.name) else { continue };
            let title = match &result.outcome {
                Outcome::Triton { analysis, .. } => analysis.summary(),
                Outcome::Failed { message, .. } => format!("✗ {}", message.lines().next().unwrap_or_default()),
                Outcome::Analyzed { analysis, .. } => analysis.summary(),
            };
            let title =
                if result.text_hash != function.text_hash { format!("{title} (before the last edit)") } else { title };
            lenses.push(lens(title, LensAction::Analyze));
        }
        for site in &kernels.sites {
            let kernel = &site.kernel.qualified_name;
            if !wanted(kernel) {
                continue;
            }
            let lens = |title: String, action| KernelLens {
                name_range: site.name_range.clone(),
                kernel: kernel.clone(),
                title,
                action,
            };
            lenses.push(lens("Analyze".into(), LensAction::Analyze));
            if timing {
                lenses.push(lens("Time".into(), LensAction::Time));
                if let Some(title) = self.timing_title(uri, kernel, site.text_hash) {
                    lenses.push(lens(title, LensAction::ShowTimings));
                }
            }
            let Some(result) = results.iter().find(|r| &r.kernel == kernel) else { continue };
            let (title, action) = match &result.outcome {
                Outcome::Analyzed { analysis, .. } => (analysis.summary(), LensAction::ShowPtx),
                Outcome::Failed { message, .. } => {
                    (format!("✗ {}", message.lines().next().unwrap_or_default()), LensAction::Analyze)
                }
                Outcome::Triton { analysis, .. } => (analysis.summary(), LensAction::Analyze),
            };
            let title =
                if result.text_hash != site.text_hash { format!("{title} (before the last edit)") } else { title };
            lenses.push(lens(title, action));
        }
        lenses
    }

    fn timing_title(&self, uri: &str, kernel: &str, current_hash: u64) -> Option<String> {
        let history = lock(&self.history);
        let record = history.get(&(uri.to_string(), kernel.to_string()))?.last()?;
        let mut title = record.summary.clone();
        if let Some(change) = record.change_percent {
            title += &format!(" ({change:+.1}% vs before)");
        }
        if record.text_hash != current_hash {
            title += " (before the last edit)";
        }
        Some(title)
    }

    pub fn forget(&self, uri: &str) {
        lock(&self.results).remove(uri);
    }

    /// The kernels of a document analysed so far, to analyse again after a save.
    pub fn analysed_kernels(&self, uri: &str) -> Vec<String> {
        lock(&self.results).get(uri).map(|l| l.iter().map(|r| r.kernel.clone()).collect()).unwrap_or_default()
    }

    fn remember(&self, uri: &str, result: KernelResult) {
        let mut results = lock(&self.results);
        let list = results.entry(uri.to_string()).or_default();
        list.retain(|r| r.kernel != result.kernel);
        list.push(result);
    }

    /// Compiles and analyses the target's kernel and remembers the outcome for lenses, hovers and
    /// diagnostics. `Ok(None)` means cancelled.
    pub fn analyze(
        &self,
        target: &KernelTarget,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Option<AnalyzeAnswer>, TargetError> {
        if target.triton_kernel().is_some() {
            return self.analyze_triton(target, settings, cancel);
        }
        let site = target.site()?;
        let kernels = &target.kernels;
        let toolchain = self.toolchain(settings);
        let analysis = kernels.analyze(site, &target.path, &self.analyzer, &toolchain, settings, cancel);
        let (outcome, report, missing) = match analysis {
            Err(AnalyzeError::Cancelled) => return Ok(None),
            Ok(analysis) => {
                let warnings = kernels.place(site, &analysis.warnings);
                let report = KernelReport::analyzed(kernels, site, &target.path, analysis.clone());
                (Outcome::Analyzed { analysis: Box::new(analysis), warnings }, report, None)
            }
            Err(err) => {
                let messages = match &err {
                    AnalyzeError::Compile { messages, .. } => kernels.place(site, messages),
                    _ => Vec::new(),
                };
                let report = KernelReport::failed(kernels, site, &target.path, &err, &messages);
                (Outcome::Failed { message: err.to_string(), messages }, report, missing_piece(&err))
            }
        };
        let result = KernelResult {
            kernel: site.kernel.qualified_name.clone(),
            text_hash: site.text_hash,
            name_range: site.name_range.clone(),
            outcome,
            hints: Vec::new(),
        };
        self.remember(&target.uri, result);
        Ok(Some(AnalyzeAnswer { report, missing }))
    }

    /// The Triton kernel a target names, with its file and the text it was found in.
    fn triton_parts<'a>(
        &self,
        target: &'a KernelTarget,
    ) -> Result<(&'a TritonFunction, &'a TritonFile, &'a str), TargetError> {
        match (target.triton_kernel(), target.triton.as_ref()) {
            (Some(function), Some((file, text))) => Ok((function, file, text)),
            _ => Err(TargetError::NoKernels),
        }
    }

    /// What the worker compiles for `configs` of a Triton kernel, with the IR texts `want`ed.
    fn triton_request(
        &self,
        target: &KernelTarget,
        (function, file, text): (&TritonFunction, &TritonFile, &str),
        configs: &[CompileConfig],
        settings: &Settings,
        want: Vec<&'static str>,
    ) -> CompileRequest {
        let toolchain = self.toolchain(settings);
        let arch = toolchain.target_arch(settings);
        let nvdisasm = toolchain.nvdisasm.as_ref().ok().filter(|_| want.contains(&"sass")).cloned();
        let sources = triton_modules::kernel_sources(file, text, Path::new(&target.path), &function.name);
        for note in &sources.notes {
            tracing::info!("{}: {note}", function.name);
        }
        CompileRequest {
            filename: target.path.clone(),
            source: sources.source,
            modules: sources.modules,
            notes: sources.notes,
            kernel: function.name.clone(),
            signature: configs.first().map(|c| c.signature.clone()).unwrap_or_default(),
            configs: configs
                .iter()
                .map(|c| ConfigRequest {
                    constexprs: c.constexprs.clone(),
                    num_warps: c.num_warps,
                    num_stages: c.num_stages,
                    divisibility_16: Vec::new(),
                })
                .collect(),
            arch: occupancy::parse_arch(&arch).unwrap_or(90),
            want,
            nvdisasm,
        }
    }

    /// One round trip to the Triton worker (started, or restarted for another Python, first).
    fn triton_compile(
        &self,
        request: &CompileRequest,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Outcomes, TritonFailed> {
        let (python, from) = triton_worker::python(settings);
        if let Some(note) = refused_program(settings, &python, "the Python") {
            return Err(TritonFailed::Failed { message: note.clone(), missing: Some(note) });
        }
        let mut worker = lock(&self.triton);
        if worker.as_ref().is_none_or(|w| w.python() != python.as_path()) {
            match TritonWorker::new(python.clone(), from) {
                Ok(w) => *worker = Some(w),
                Err(err) => {
                    return Err(TritonFailed::Failed { message: err.to_string(), missing: Some(err.to_string()) })
                }
            }
        }
        match worker.as_mut().expect("just made").compile(request, TRITON_TIMEOUT, cancel) {
            Ok(outcomes) => Ok(outcomes),
            Err(TritonError::Process(ProcessError::Cancelled)) => Err(TritonFailed::Cancelled),
            Err(err @ TritonError::NoTriton { .. }) => {
                Err(TritonFailed::Failed { message: err.to_string(), missing: Some(err.to_string()) })
            }
            Err(err) => Err(TritonFailed::Failed { message: err.to_string(), missing: None }),
        }
    }

    /// Compiles the target Triton kernel for each of its configurations in the Triton worker (or
    /// takes the cached result of the same inputs) and remembers the outcome. `Ok(None)` means
    /// cancelled.
    fn analyze_triton(
        &self,
        target: &KernelTarget,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Option<AnalyzeAnswer>, TargetError> {
        let parts = self.triton_parts(target)?;
        let (function, file, text) = parts;
        let line = text[..function.name_range.start.min(text.len())].matches('\n').count() + 1;
        let remember = |outcome: Outcome| {
            let result = KernelResult {
                kernel: function.name.clone(),
                text_hash: function.text_hash,
                name_range: function.name_range.clone(),
                outcome,
                hints: Vec::new(),
            };
            self.remember(&target.uri, result);
        };
        let failed = |message: String, missing: Option<String>| {
            let report = KernelReport::Triton(TritonReport {
                file: target.path.clone(),
                line,
                name: function.name.clone(),
                qualified_name: function.name.clone(),
                summary: format!("✗ {message}"),
                markdown: format!("**{}** did not analyze: {}", esc(&function.name), esc(&message)),
                error: Some(message.clone()),
                messages: Vec::new(),
                configs: Vec::new(),
            });
            remember(Outcome::Failed { message, messages: Vec::new() });
            Some(AnalyzeAnswer { report, missing })
        };
        let configs = match function.compile_configs(&file.constants) {
            Ok(configs) => configs,
            Err(missing) => return Ok(failed(missing.to_string(), None)),
        };
        let request = self.triton_request(target, parts, &configs, settings, Vec::new());
        let key = text_hash(&format!("{request:?}"));
        let cached = lock(&self.triton_cache).get(&key).cloned();
        let analysis = match cached {
            Some(analysis) => Arc::new(TritonAnalysis { cached: true, compile_ms: 0.0, ..(*analysis).clone() }),
            None => {
                let started = std::time::Instant::now();
                let outcomes = match self.triton_compile(&request, settings, cancel) {
                    Ok(outcomes) => outcomes,
                    Err(TritonFailed::Cancelled) => return Ok(None),
                    Err(TritonFailed::Failed { message, missing }) => return Ok(failed(message, missing)),
                };
                let results = configs
                    .into_iter()
                    .zip(outcomes)
                    .map(|(config, outcome)| ConfigResult {
                        config,
                        outcome: match outcome {
                            Ok(compiled) => ConfigOutcome::Compiled(Box::new(Resources::new(compiled))),
                            Err(failure) => ConfigOutcome::Failed(failure),
                        },
                    })
                    .collect();
                let analysis = Arc::new(TritonAnalysis {
                    notes: request.notes.clone(),
                    name: function.name.clone(),
                    configs: results,
                    compile_ms: started.elapsed().as_secs_f64() * 1000.0,
                    cached: false,
                });
                lock(&self.triton_cache).insert(key, analysis.clone());
                analysis
            }
        };
        let messages = analysis.messages(text);
        let none_compiled = analysis.configs.iter().all(|c| matches!(c.outcome, ConfigOutcome::Failed(_)));
        let report = KernelReport::Triton(TritonReport {
            file: target.path.clone(),
            line,
            name: function.name.clone(),
            qualified_name: function.name.clone(),
            summary: analysis.summary(),
            markdown: analysis.markdown(),
            error: analysis.first_failure().filter(|_| none_compiled).map(|f| f.error.clone()),
            messages: messages
                .iter()
                .map(|m| LineMessage {
                    line: text[..m.range.start.min(text.len())].matches('\n').count() + 1,
                    severity: m.severity,
                    message: m.message.clone(),
                })
                .collect(),
            configs: analysis.reports(&target.path, line),
        });
        remember(Outcome::Triton { analysis, messages });
        Ok(Some(AnalyzeAnswer { report, missing: None }))
    }

    /// One IR text of the target kernel (for a Triton kernel, of its `config`th configuration,
    /// the first by default), also written to the cache folder for editors that open files.
    /// `Ok(None)` means cancelled.
    pub fn ir(
        &self,
        target: &KernelTarget,
        kind: IrKind,
        config: Option<usize>,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Option<IrAnswer>, TargetError> {
        if target.triton_kernel().is_some() {
            return self.triton_ir(target, kind, config, settings, cancel);
        }
        let site = target.site()?;
        let kernel = site.kernel.qualified_name.clone();
        let answer = |text: Result<Arc<str>, String>, missing| {
            let (text, error) = match text {
                Ok(text) => (Some(text), None),
                Err(error) => (None, Some(error)),
            };
            let file = text.as_deref().and_then(|t| write_ir(&kernel, kind, t));
            IrAnswer { kernel: kernel.clone(), ir: kind, config: None, configs: Vec::new(), text, file, error, missing }
        };
        if !IrKind::CUDA.contains(&kind) {
            let error = format!("{kind} is Triton's; a CUDA kernel has ptx and sass");
            return Ok(Some(answer(Err(error), None)));
        }
        let toolchain = self.toolchain(settings);
        let text = match kind {
            IrKind::Sass => {
                target.kernels.sass(site, &target.path, &self.analyzer, &toolchain, settings, cancel).map(|s| s.text)
            }
            _ => target.kernels.ptx(site, &target.path, &self.analyzer, &toolchain, settings, cancel),
        };
        Ok(match text {
            Err(AnalyzeError::Cancelled) => None,
            Ok(text) => Some(answer(Ok(text), None)),
            Err(err) => Some(answer(Err(err.to_string()), missing_piece(&err))),
        })
    }

    fn triton_ir(
        &self,
        target: &KernelTarget,
        kind: IrKind,
        config: Option<usize>,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Option<IrAnswer>, TargetError> {
        let parts = self.triton_parts(target)?;
        let function = parts.0;
        let mut answer = IrAnswer {
            kernel: function.name.clone(),
            ir: kind,
            config: None,
            configs: Vec::new(),
            text: None,
            file: None,
            error: None,
            missing: None,
        };
        let configs = match function.compile_configs(&parts.1.constants) {
            Ok(configs) => configs,
            Err(missing) => return Ok(Some(IrAnswer { error: Some(missing.to_string()), ..answer })),
        };
        answer.configs = configs.iter().map(CompileConfig::label).collect();
        let index = config.unwrap_or(0);
        let Some(chosen) = configs.get(index) else {
            let error = format!("no configuration {index}: the kernel has {} (numbered from 0)", configs.len());
            return Ok(Some(IrAnswer { error: Some(error), ..answer }));
        };
        answer.config = Some(chosen.label());
        let request = self.triton_request(target, parts, std::slice::from_ref(chosen), settings, vec![kind.name()]);
        let outcome = match self.triton_compile(&request, settings, cancel) {
            Ok(outcomes) => outcomes.into_iter().next(),
            Err(TritonFailed::Cancelled) => return Ok(None),
            Err(TritonFailed::Failed { message, missing }) => {
                return Ok(Some(IrAnswer { error: Some(message), missing, ..answer }))
            }
        };
        match outcome {
            Some(Ok(mut compiled)) => match compiled.ir.remove(kind.name()) {
                Some(text) => {
                    let text: Arc<str> = text.into();
                    answer.file = write_ir(&format!("{}-config{index}", function.name), kind, &text);
                    answer.text = Some(text);
                }
                None => {
                    let why = compiled.warnings.join("; ");
                    answer.error = Some(if why.is_empty() { format!("Triton gave no {kind}") } else { why });
                }
            },
            Some(Err(failure)) => {
                let at = failure.line.map(|l| format!(" (line {l})")).unwrap_or_default();
                answer.error = Some(format!("did not compile{at}: {}", failure.error));
            }
            None => answer.error = Some("the Triton worker answered no configuration".into()),
        }
        Ok(Some(answer))
    }

    /// Reads the SASS of the target kernel as last analysed (for a Triton kernel, of the config
    /// that spills most, else the best) for the lines it spills on and spends its instructions
    /// on, and keeps those hints with the analysis, as diagnostics. Nothing when the kernel was
    /// not analysed, changed since, or did not compile. `Ok(None)` means cancelled; else the
    /// number of hints.
    pub fn profile_lines(
        &self,
        target: &KernelTarget,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Option<usize>, TargetError> {
        let (kernel, text_hash) = match target.triton_kernel() {
            Some(function) => (function.name.clone(), function.text_hash),
            None => {
                let site = target.site()?;
                (site.kernel.qualified_name.clone(), site.text_hash)
            }
        };
        let last = lock(&self.results)
            .get(&target.uri)
            .and_then(|list| list.iter().find(|r| r.kernel == kernel && r.text_hash == text_hash).cloned());
        let hints = match last.map(|r| r.outcome) {
            Some(Outcome::Analyzed { analysis, .. }) => {
                let site = target.site()?;
                let toolchain = self.toolchain(settings);
                let spills = analysis.spill_stores + analysis.spill_loads > 0;
                match target.kernels.sass(site, &target.path, &self.analyzer, &toolchain, settings, cancel) {
                    Ok(sass) => target.kernels.sass_hints(site, &target.path, &sass, spills),
                    Err(AnalyzeError::Cancelled) => return Ok(None),
                    Err(err) => {
                        tracing::info!("no SASS hints for {kernel}: {err}");
                        return Ok(Some(0));
                    }
                }
            }
            Some(Outcome::Triton { analysis, .. }) => {
                let Some(index) = analysis.profiled() else { return Ok(Some(0)) };
                let parts = self.triton_parts(target)?;
                let result = &analysis.configs[index];
                let config = &result.config;
                let request = self.triton_request(target, parts, std::slice::from_ref(config), settings, vec!["sass"]);
                let sass = match self.triton_compile(&request, settings, cancel) {
                    Ok(outcomes) => {
                        outcomes.into_iter().next().and_then(|o| o.ok()).and_then(|mut c| c.ir.remove("sass"))
                    }
                    Err(TritonFailed::Cancelled) => return Ok(None),
                    Err(TritonFailed::Failed { message, .. }) => {
                        tracing::info!("no SASS hints for {kernel}: {message}");
                        None
                    }
                };
                let Some(sass) = sass else { return Ok(Some(0)) };
                let (arch, spills) = match &result.outcome {
                    ConfigOutcome::Compiled(r) => {
                        (r.compiled.arch.clone(), r.compiled.spill_stores + r.compiled.spill_loads > 0)
                    }
                    ConfigOutcome::Failed(_) => (String::new(), false),
                };
                let profile = sass::line_profile(&sass, &target.path);
                sass::hints(&profile, &format!("{}, {arch}", config.label()), spills)
                    .into_iter()
                    .map(|hint| PlacedMessage {
                        range: triton_analysis::place(parts.2, hint.line, None),
                        severity: Severity::Hint,
                        message: hint.message,
                        source: MessageSource::Sass,
                    })
                    .collect()
            }
            _ => return Ok(Some(0)),
        };
        let count = hints.len();
        let mut results = lock(&self.results);
        let current = results
            .get_mut(&target.uri)
            .and_then(|list| list.iter_mut().find(|r| r.kernel == kernel && r.text_hash == text_hash));
        if let Some(result) = current {
            result.hints = hints;
        }
        Ok(Some(count))
    }

    /// Compiles the target kernel, builds its launch spec and has the worker time it; the record
    /// joins the kernel's history. A failed measurement is a record with an error; `Ok(None)`
    /// means cancelled.
    pub fn time(
        &self,
        target: &KernelTarget,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Option<Record>, TargetError> {
        if target.triton_kernel().is_some() {
            return self.time_triton(target, settings, cancel);
        }
        let site = target.site()?;
        let toolchain = self.toolchain(settings);
        let name = site.kernel.qualified_name.clone();
        let mut record = Record::new(name.clone(), site.text_hash, site.name_range.clone());
        let prepared =
            target.kernels.timing_request(site, &target.path, &self.analyzer, &toolchain, settings, None, cancel);
        let (request, _) = match prepared {
            Ok(prepared) => prepared,
            Err(message) if cancel.is_cancelled() => {
                tracing::debug!("cancelled while preparing: {message}");
                return Ok(None);
            }
            Err(message) => {
                record.summary = format!("⏱ ✗ {}", first_line(&message));
                record.error = Some(message);
                self.push(&target.uri, record.clone());
                return Ok(Some(record));
            }
        };
        record.spec = Some(request.spec.clone());
        let budget = Duration::from_secs_f64(request.rule.timeout_seconds + WORKER_START_ALLOWANCE_SECONDS);
        let answer = self.run_timing(settings, Op::Time(Box::new(request)), budget, cancel);
        match answer {
            Ok(Answer::Timing(timing)) => {
                record.change_percent = self
                    .previous_median(&target.uri, &name)
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
        self.push(&target.uri, record.clone());
        Ok(Some(record))
    }

    /// Sends `op` to the timing worker, started (through the launcher, when one is set) for the
    /// settings' command when there is none or it runs another.
    fn run_timing(
        &self,
        settings: &Settings,
        op: Op,
        budget: Duration,
        cancel: &Cancel,
    ) -> Result<Answer, TimingError> {
        let command = WorkerPool::command_for(&settings.timing_launcher, settings.timing_worker.as_deref());
        let mut pool = lock(&self.pool);
        let pool = match &mut *pool {
            Some(pool) if pool.command() == command.as_slice() => pool,
            slot => slot.insert(WorkerPool::new(command)),
        };
        pool.request(op, budget, cancel)
    }

    /// Times the target Triton kernel, each configuration in turn: the timing worker is asked for
    /// its GPU first (a machine without one says so before anything compiles), each configuration
    /// is compiled for that GPU's arch in the Triton worker as a launch with the planned arguments
    /// would compile it (`triton_timing::plan`), its spec is built from what the compiled kernel
    /// takes (`triton_timing::launch`), and it is measured under the same stop rule as a CUDA
    /// kernel, the time-out split between the configurations. The fastest gives the record its
    /// spec, timing and change; every configuration is in `configs`. `Ok(None)` means cancelled.
    fn time_triton(
        &self,
        target: &KernelTarget,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Option<Record>, TargetError> {
        let (Some(function), Some((file, text))) = (target.triton_kernel(), target.triton.as_ref()) else {
            return Err(TargetError::NoKernels);
        };
        let name = function.name.clone();
        let record = Record::new(name.clone(), function.text_hash, function.name_range.clone());
        let configs = match function.compile_configs(&file.constants) {
            Ok(configs) => configs,
            Err(missing) => return Ok(Some(self.failed(&target.uri, record, missing.to_string()))),
        };
        let helpers: Vec<&TritonFunction> = file.closure(&name).into_iter().filter(|f| f.name != name).collect();
        let plans: Vec<(String, Result<Plan, String>)> =
            configs.iter().map(|c| (c.label(), triton_timing::plan(function, &helpers, c, None))).collect();
        if plans.iter().all(|(_, plan)| plan.is_err()) {
            let errors: Vec<(String, String)> =
                plans.into_iter().filter_map(|(label, plan)| Some((label, plan.err()?))).collect();
            return Ok(Some(self.failed(&target.uri, record, config_errors(&errors))));
        }
        let device =
            match self.run_timing(settings, Op::Hello, Duration::from_secs_f64(WORKER_START_ALLOWANCE_SECONDS), cancel)
            {
                Ok(Answer::Device(device)) => device,
                Ok(other) => {
                    let message = format!("the worker answered something else: {other:?}");
                    return Ok(Some(self.failed(&target.uri, record, message)));
                }
                Err(TimingError::Cancelled) => return Ok(None),
                Err(err) => return Ok(Some(self.failed(&target.uri, record, err.to_string()))),
            };
        let mut rule = super::timing::stop_rule(settings);
        let planned = plans.iter().filter(|(_, plan)| plan.is_ok()).count();
        let total = rule.timeout_seconds;
        rule.timeout_seconds = total / planned.max(1) as f64;
        let budget_note = (planned > 1).then(|| {
            format!(
                "measured for at most {:.1} s: the time-out of {total} s split between {planned} configs",
                rule.timeout_seconds
            )
        });
        let sources = triton_modules::kernel_sources(file, text, Path::new(&target.path), &name);
        let mut timed = Vec::new();
        for (label, plan) in plans {
            let plan = match plan {
                Ok(plan) => plan,
                Err(error) => {
                    timed.push(ConfigTiming::failed(label, None, error));
                    continue;
                }
            };
            let run =
                TritonRun { target, function, sources: &sources, device: &device, rule, note: budget_note.as_deref() };
            match self.time_planned(&run, label, &plan, settings, cancel) {
                Some(config) => timed.push(config),
                None => return Ok(None),
            }
        }
        Ok(Some(self.finish_triton(&target.uri, record, timed)))
    }

    /// Compiles and times one planned configuration; `None` when cancelled.
    fn time_planned(
        &self,
        run: &TritonRun<'_>,
        label: String,
        plan: &Plan,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Option<ConfigTiming> {
        let arch = occupancy::parse_arch(&run.device.arch).unwrap_or(90);
        let request = CompileRequest {
            filename: run.target.path.clone(),
            source: run.sources.source.clone(),
            modules: run.sources.modules.clone(),
            notes: Vec::new(),
            nvdisasm: None,
            kernel: run.function.name.clone(),
            signature: plan.config.signature.clone(),
            configs: vec![ConfigRequest {
                constexprs: plan.config.constexprs.clone(),
                num_warps: plan.config.num_warps,
                num_stages: plan.config.num_stages,
                divisibility_16: plan.divisibility_16.clone(),
            }],
            arch,
            want: vec!["ptx"],
        };
        let compiled = match self.triton_compile(&request, settings, cancel) {
            Ok(outcomes) => outcomes.into_iter().next(),
            Err(TritonFailed::Cancelled) => return None,
            Err(TritonFailed::Failed { message, .. }) => return Some(ConfigTiming::failed(label, None, message)),
        };
        let compiled = match compiled {
            Some(Ok(compiled)) => compiled,
            Some(Err(failure)) => {
                let at = failure.line.map(|l| format!(" (line {l})")).unwrap_or_default();
                return Some(ConfigTiming::failed(label, None, format!("did not compile{at}: {}", failure.error)));
            }
            None => return Some(ConfigTiming::failed(label, None, "the Triton worker answered no result".into())),
        };
        let (Some(info), Some(ptx)) = (compiled.launch.as_ref(), compiled.ir.get("ptx")) else {
            let message = "the Triton worker gave no PTX or launch facts for the compiled kernel".to_string();
            return Some(ConfigTiming::failed(label, None, message));
        };
        let mut spec = match triton_timing::launch(plan, info) {
            Ok(spec) => spec,
            Err(error) => return Some(ConfigTiming::failed(label, None, error)),
        };
        spec.explained.push(format!(
            "compiled for {} by Triton {}, the arch of the timing GPU ({})",
            compiled.arch, compiled.triton, run.device.name
        ));
        spec.explained.extend(run.note.map(str::to_string));
        let mut config = ConfigTiming::new(label, Some(info.entry.clone()));
        config.spec = Some(spec.clone());
        let budget = Duration::from_secs_f64(run.rule.timeout_seconds + WORKER_START_ALLOWANCE_SECONDS);
        let request = super::worker::TimeRequest {
            ptx: ptx.clone(),
            entry: info.entry.clone(),
            spec,
            rule: run.rule,
            cold: !settings.timing_hot,
        };
        match self.run_timing(settings, Op::Time(Box::new(request)), budget, cancel) {
            Ok(Answer::Timing(timing)) => {
                config.summary = timing_summary(&timing);
                config.warnings = timing_warnings(&timing);
                config.timing = Some(*timing);
            }
            Ok(other) => config.set_error(format!("the worker answered something else: {other:?}")),
            Err(TimingError::Cancelled) => return None,
            Err(err) => config.set_error(err.to_string()),
        }
        Some(config)
    }

    /// The record of a Triton kernel's configurations: the fastest's spec, timing and change
    /// against the run before, each configuration's change against itself in the run before.
    fn finish_triton(&self, uri: &str, mut record: Record, mut configs: Vec<ConfigTiming>) -> Record {
        let before = lock(&self.history)
            .get(&(uri.to_string(), record.kernel.clone()))
            .and_then(|list| list.iter().rev().find(|r| !r.configs.is_empty()).cloned());
        for config in &mut configs {
            let previous = before.as_ref().and_then(|b| b.configs.iter().find(|c| c.label == config.label));
            if let (Some(now), Some(then)) = (config.median(), previous.and_then(ConfigTiming::median)) {
                config.change_percent = (then > 0.0).then(|| (now - then) / then * 100.0);
            }
        }
        match triton_timing::fastest(&configs).cloned() {
            Some(best) => {
                let median = best.median().unwrap_or_default();
                record.change_percent = self
                    .previous_median(uri, &record.kernel)
                    .filter(|previous| *previous > 0.0)
                    .map(|previous| (median - previous) / previous * 100.0);
                record.summary = format!("{}{}", best.summary, triton_timing::fastest_note(&configs));
                record.warnings = best.warnings.clone();
                record.spec = best.spec.clone();
                record.timing = best.timing.clone();
                record.fastest = Some(best.label);
            }
            None => {
                let errors: Vec<(String, String)> =
                    configs.iter().map(|c| (c.label.clone(), c.error.clone().unwrap_or_default())).collect();
                let message = config_errors(&errors);
                record.summary = format!("⏱ ✗ {}", first_line(&message));
                record.error = Some(message);
                record.spec = configs.iter().find_map(|c| c.spec.clone());
            }
        }
        record.configs = configs;
        self.push(uri, record.clone());
        record
    }

    /// A record that failed before anything was measured, pushed to the history.
    fn failed(&self, uri: &str, mut record: Record, message: String) -> Record {
        record.summary = format!("⏱ ✗ {}", first_line(&message));
        record.error = Some(message);
        self.push(uri, record.clone());
        record
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

    /// Every timed kernel of a document, or one, with its history, sorted by kernel.
    pub fn timings(&self, uri: &str, kernel: Option<&str>) -> KernelTimings {
        let history = lock(&self.history);
        let mut kernels: Vec<KernelHistory> = history
            .iter()
            .filter(|((u, k), _)| u == uri && kernel.is_none_or(|want| want == k))
            .map(|((_, k), list)| KernelHistory { kernel: k.clone(), history: list.clone() })
            .collect();
        kernels.sort_by(|a, b| a.kernel.cmp(&b.kernel));
        KernelTimings { kernels }
    }
}

fn missing_piece(err: &AnalyzeError) -> Option<String> {
    matches!(err, AnalyzeError::NoNvrtc(_) | AnalyzeError::NoPtxas(_)).then(|| err.to_string())
}

/// What a Triton kernel's timing run needs of its target, for each configuration.
struct TritonRun<'a> {
    target: &'a KernelTarget,
    function: &'a TritonFunction,
    sources: &'a triton_modules::KernelSources,
    device: &'a super::worker::Device,
    rule: super::stats::StopRule,
    note: Option<&'a str>,
}

impl Record {
    fn new(kernel: String, text_hash: u64, name_range: Range<usize>) -> Record {
        Record {
            kernel,
            at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            text_hash,
            name_range,
            spec: None,
            timing: None,
            error: None,
            summary: String::new(),
            change_percent: None,
            warnings: Vec::new(),
            configs: Vec::new(),
            fastest: None,
        }
    }
}

/// Configurations' errors as one message: the error alone when they all say the same, else one
/// line per configuration.
fn config_errors(errors: &[(String, String)]) -> String {
    match errors {
        [] => "nothing to time".into(),
        [(_, first), rest @ ..] if rest.iter().all(|(_, e)| e == first) => first.clone(),
        _ => errors.iter().map(|(label, error)| format!("{label}: {error}")).collect::<Vec<_>>().join("\n"),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Writes an IR text where an editor can open it:
/// `$XDG_CACHE_HOME/tensorlens/ir/<kernel>.<ext>` (or the temp folder). `None` when it cannot be
/// written; the text is in the answer anyway.
fn write_ir(kernel: &str, kind: IrKind, text: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("tensorlens").join("ir");
    std::fs::create_dir_all(&dir).ok()?;
    let file_name: String =
        kernel.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    let path = dir.join(format!("{file_name}.{}", kind.extension()));
    std::fs::write(&path, text).ok()?;
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Language;
    use expect_test::expect;

    const TEXT: &str = "__global__ void add(float* x) { x[0] += 1; }\n\nnamespace ops {\n__global__ void scale(float* x) { x[0] *= 2; }\n}\n";

    fn show(lenses: &[KernelLens]) -> String {
        lenses
            .iter()
            .map(|l| {
                format!("{}..{} {} {:?} {:?}\n", l.name_range.start, l.name_range.end, l.kernel, l.action, l.title)
            })
            .collect()
    }

    #[test]
    fn lenses_before_any_analysis() {
        let session = KernelSession::default();
        let kernels = DocumentKernels::new(TEXT, Language::Cuda);
        expect![[r#"
            16..19 add Analyze "Analyze"
            16..19 add Time "Time"
            78..83 ops::scale Analyze "Analyze"
            78..83 ops::scale Time "Time"
        "#]]
        .assert_eq(&show(&session.lenses("file:///k.cu", &kernels, None, true)));
        expect![[r#"
            16..19 add Analyze "Analyze"
            78..83 ops::scale Analyze "Analyze"
        "#]]
        .assert_eq(&show(&session.lenses("file:///k.cu", &kernels, None, false)));
    }

    #[test]
    fn a_target_says_why_it_names_no_kernel() {
        let kernels = Arc::new(DocumentKernels::new(TEXT, Language::Cuda));
        let target = |selection: Option<Range<usize>>, kernel: Option<&str>| KernelTarget {
            uri: "file:///k.cu".into(),
            path: "k.cu".into(),
            kernels: kernels.clone(),
            triton: None,
            selection,
            kernel: kernel.map(str::to_string),
        };
        assert_eq!(target(None, Some("scale")).site().unwrap().kernel.qualified_name, "ops::scale");
        assert_eq!(target(Some(30..30), None).site().unwrap().kernel.name, "add");
        assert_eq!(target(Some(46..47), None).site().unwrap_err(), TargetError::NotInKernel);
        assert_eq!(target(None, Some("nope")).site().unwrap_err().to_string(), "no kernel named `nope` in this file");
        assert_eq!(target(None, None).site().unwrap_err(), TargetError::Unspecified);
        let empty = KernelTarget {
            kernels: Arc::new(DocumentKernels::new("int x;", Language::Cuda)),
            ..target(Some(0..0), None)
        };
        assert_eq!(empty.site().unwrap_err(), TargetError::NoKernels);
    }

    #[test]
    fn a_cuda_document_s_own_tree_finds_the_same_kernels() {
        let tree = crate::parse::parse_str(Language::Cuda, TEXT).unwrap();
        let parsed = DocumentKernels::of_parsed(TEXT, Language::Cuda, Some(&tree));
        let fresh = DocumentKernels::new(TEXT, Language::Cuda);
        let sites = |k: &DocumentKernels| k.sites.iter().map(|s| (s.range.clone(), s.text_hash)).collect::<Vec<_>>();
        assert_eq!(sites(&parsed), sites(&fresh));
        assert_eq!(parsed.sites.len(), 2);
    }
}
