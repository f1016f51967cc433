//! Kernel analysis over LSP: code lenses, the analyze / show-PTX / toolchain commands, compiler
//! diagnostics and the analysis in hovers. Compiles run on the blocking pool; a cancelled request
//! drops its future, which sets the `Cancel` the compile checks between stages and kills ptxas.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tower_lsp_server::jsonrpc::{self, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{NotCancellable, OngoingProgress, Unbounded};

use super::server::{lock, Server, State};
use super::{ext, from_proto, to_proto};
use crate::documents::Document;
use crate::ide::markdown::escape_markdown as esc;
use crate::kernels::analyze::{Analysis, AnalyzeError, Analyzer, Severity};
use crate::kernels::document::{DocumentKernels, KernelSite, PlacedMessage};
use crate::kernels::toolchain::{Settings, Toolchain};
use crate::kernels::Cancel;
use crate::parse::Language;
use crate::text::PositionEncoding;

/// What the server remembers about kernels between requests.
#[derive(Default)]
pub struct KernelState {
    analyzer: Analyzer,
    /// The toolchain found for the settings it was found with.
    toolchain: Mutex<Option<(Settings, Arc<Toolchain>)>>,
    /// Last result per document URI and kernel (qualified name).
    results: Mutex<HashMap<String, Vec<KernelResult>>>,
}

#[derive(Clone)]
struct KernelResult {
    kernel: String,
    /// The kernel's text when analysed, to tell a lens that it is out of date.
    text_hash: u64,
    /// Document bytes of the kernel's name when analysed.
    name_range: Range<usize>,
    outcome: Outcome,
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
}

impl KernelState {
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

    /// Compiler errors and warnings of the document's analysed kernels.
    pub fn diagnostics(&self, doc: &Document, encoding: PositionEncoding) -> Vec<Diagnostic> {
        let results = lock(&self.results);
        let Some(results) = results.get(&doc.uri) else { return Vec::new() };
        let len = doc.rope.len_bytes();
        let mut diagnostics = Vec::new();
        for result in results {
            let messages = match &result.outcome {
                Outcome::Analyzed { warnings, .. } => warnings,
                Outcome::Failed { messages, .. } => messages,
            };
            for m in messages {
                let range = m.range.start.min(len)..m.range.end.min(len);
                diagnostics.push(Diagnostic {
                    range: to_proto::range(doc, &range, encoding),
                    severity: Some(match m.severity {
                        Severity::Error => DiagnosticSeverity::ERROR,
                        Severity::Warning => DiagnosticSeverity::WARNING,
                    }),
                    source: Some("nvrtc".into()),
                    message: m.message.clone(),
                    ..Default::default()
                });
            }
        }
        diagnostics
    }

    /// The analysis of the kernel whose name is at `offset`, as hover markdown.
    pub fn hover_markdown(&self, doc: &Document, offset: usize) -> Option<String> {
        let results = lock(&self.results);
        let result = results.get(&doc.uri)?.iter().find(|r| r.name_range.contains(&offset))?;
        // The name may have moved since; only answer while it is still there.
        let name = result.kernel.rsplit("::").next().unwrap_or(&result.kernel);
        if doc.slice(result.name_range.clone()) != name {
            return None;
        }
        Some(match &result.outcome {
            Outcome::Analyzed { analysis, .. } => analysis.markdown(),
            // Compiler messages quote the file (an include's name, a string): text, not markup.
            Outcome::Failed { message, .. } => {
                format!("**{}** did not analyze: {}", esc(&result.kernel), esc(message))
            }
        })
    }

    pub fn forget(&self, uri: &str) {
        lock(&self.results).remove(uri);
    }

    fn remember(&self, uri: &str, result: KernelResult) {
        let mut results = lock(&self.results);
        let list = results.entry(uri.to_string()).or_default();
        list.retain(|r| r.kernel != result.kernel);
        list.push(result);
    }

    fn analysed_kernels(&self, uri: &str) -> Vec<String> {
        lock(&self.results).get(uri).map(|l| l.iter().map(|r| r.kernel.clone()).collect()).unwrap_or_default()
    }
}

/// Arguments of the kernel commands: a document and a selection (or position) in it, or a
/// kernel by name. Accepted as the first argument, an object.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KernelArgs {
    uri: Uri,
    #[serde(default)]
    range: Option<tower_lsp_server::ls_types::Range>,
    #[serde(default)]
    position: Option<Position>,
    #[serde(default)]
    kernel: Option<String>,
}

/// A kernel command's target, taken from the document store.
pub(super) struct KernelRequest {
    pub(super) doc: Document,
    pub(super) language: Language,
    pub(super) uri: Uri,
    pub(super) selection: Option<Range<usize>>,
    pub(super) kernel: Option<String>,
}

impl KernelRequest {
    /// The kernel named or selected.
    pub(super) fn site<'a>(&self, kernels: &'a DocumentKernels) -> std::result::Result<&'a KernelSite, String> {
        match (&self.kernel, &self.selection) {
            (Some(name), _) => kernels.named(name).ok_or_else(|| format!("no kernel named `{name}` in this file")),
            (None, Some(selection)) => kernels.at(selection.clone()).ok_or_else(|| {
                if kernels.sites.is_empty() {
                    "no __global__ function in this file".to_string()
                } else {
                    "the selection is not in a kernel: put the cursor inside a __global__ function".to_string()
                }
            }),
            (None, None) => Err("say which kernel: a range, a position or a kernel name".into()),
        }
    }

    /// The file name compilers report; the URI itself for unsaved documents.
    pub(super) fn path(&self) -> String {
        self.uri.to_file_path().map(|p| p.display().to_string()).unwrap_or_else(|| self.uri.as_str().to_string())
    }
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

pub(super) fn text_hash(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// What one analysis produced, taken out of the blocking pool.
struct Done {
    result: KernelResult,
    response: serde_json::Value,
    /// Something to install or configure, worth a message beyond the command's answer.
    missing: Option<String>,
}

impl Server {
    /// The kernel settings, with the workspace folders kernels may include from.
    pub(super) fn kernel_settings(&self) -> Settings {
        let mut settings = self.state.config.read().unwrap_or_else(|e| e.into_inner()).kernels.clone();
        settings.workspace_roots = self.workspace_roots();
        settings
    }

    pub(super) async fn kernel_code_lenses(&self, uri: &Uri) -> Result<Option<Vec<CodeLens>>> {
        let Some(snap) = self.snapshot(uri) else { return Ok(None) };
        let Some(language) = snap.doc.language else { return Ok(None) };
        let state = self.state.clone();
        let uri = uri.clone();
        let timing_enabled = self.kernel_settings().timing_enabled != Some(false);
        self.blocking(super::server::Feature::Kernels, move || {
            let text = snap.doc.text();
            let kernels = DocumentKernels::new(&text, language);
            let results = lock(&state.kernels.results).get(uri.as_str()).cloned().unwrap_or_default();
            let mut lenses = Vec::new();
            for site in &kernels.sites {
                let range = to_proto::range(&snap.doc, &site.name_range, snap.encoding);
                let args = vec![serde_json::json!({ "uri": uri.as_str(), "kernel": site.kernel.qualified_name })];
                lenses.push(CodeLens {
                    range,
                    command: Some(Command::new("Analyze".into(), ext::ANALYZE_KERNEL.into(), Some(args.clone()))),
                    data: None,
                });
                let current = text_hash(&text[site.range.clone()]);
                if timing_enabled {
                    lenses.push(CodeLens {
                        range,
                        command: Some(Command::new("Time".into(), ext::TIME_KERNEL.into(), Some(args.clone()))),
                        data: None,
                    });
                    if let Some(title) = state.timing.lens_title(uri.as_str(), &site.kernel.qualified_name, current) {
                        lenses.push(CodeLens {
                            range,
                            command: Some(Command::new(title, ext::SHOW_TIMING.into(), Some(args.clone()))),
                            data: None,
                        });
                    }
                }
                let Some(result) = results.iter().find(|r| r.kernel == site.kernel.qualified_name) else { continue };
                let edited = result.text_hash != current;
                let (title, command) = match &result.outcome {
                    Outcome::Analyzed { analysis, .. } => (analysis.summary(), ext::SHOW_PTX),
                    Outcome::Failed { message, .. } => {
                        (format!("✗ {}", message.lines().next().unwrap_or_default()), ext::ANALYZE_KERNEL)
                    }
                };
                let title = if edited { format!("{title} (before the last edit)") } else { title };
                lenses.push(CodeLens {
                    range,
                    command: Some(Command::new(title, command.into(), Some(args))),
                    data: None,
                });
            }
            Some(lenses)
        })
        .await
    }

    /// The document and selection a kernel command names, checked.
    pub(super) fn kernel_request(&self, command: &str, arguments: Vec<serde_json::Value>) -> Result<KernelRequest> {
        let first = arguments.into_iter().next().unwrap_or_default();
        let args: KernelArgs = serde_json::from_value(first).map_err(|err| {
            jsonrpc::Error::invalid_params(format!(
                "{command} takes one argument, {{\"uri\", and \"range\", \"position\" or \"kernel\"}}: {err}"
            ))
        })?;
        let Some(snap) = self.snapshot(&args.uri) else {
            return Err(jsonrpc::Error::invalid_params(format!("{} is not open", args.uri.as_str())));
        };
        let Some(language) = snap.doc.language else {
            return Err(jsonrpc::Error::invalid_params("kernels live in CUDA, C/C++ and Python files"));
        };
        let selection = match (args.range, args.position) {
            (Some(range), _) => Some(from_proto::range(&snap.doc, range, snap.encoding)),
            (None, Some(position)) => {
                from_proto::offset(&snap.doc, position, snap.encoding).map(|offset| offset..offset)
            }
            (None, None) => None,
        };
        Ok(KernelRequest { doc: snap.doc, language, uri: args.uri, selection, kernel: args.kernel })
    }

    /// Runs `work` on the blocking pool under a `$/progress` that says how long it has run, with
    /// a `Cancel` that is set when the request is cancelled (its future dropped).
    pub(super) async fn with_progress<T: Send + 'static>(
        &self,
        token: Option<ProgressToken>,
        title: &str,
        doing: &'static str,
        work: impl FnOnce(&Cancel) -> T + Send + 'static,
    ) -> Result<T> {
        let progress = self.begin_progress(token, title).await;
        let cancel = Cancel::default();
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let work = self.blocking(super::server::Feature::Kernels, move || work(&cancel));
        tokio::pin!(work);
        // Heavy headers (cooperative groups, CUTLASS) can make a compile take many seconds, and a
        // measurement takes up to its budget: say how long it has been running, so slow work never
        // looks like a hang.
        let started = std::time::Instant::now();
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
        ticks.tick().await;
        let done = loop {
            tokio::select! {
                done = &mut work => break done,
                _ = ticks.tick() => {
                    if let Some(progress) = &progress {
                        progress.report(format!("{doing} for {} s", started.elapsed().as_secs())).await;
                    }
                }
            }
        };
        if let Some(progress) = progress {
            progress.finish().await;
        }
        done
    }

    /// Asks the client to show lenses again, where it can.
    pub(super) async fn refresh_lenses(&self) {
        if self.state.code_lens_refresh.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = self.client.code_lens_refresh().await;
        }
    }

    /// `tensorlens.analyzeKernel` and `tensorlens.showPtx`.
    pub(super) async fn kernel_command(
        &self,
        command: &str,
        arguments: Vec<serde_json::Value>,
        token: Option<ProgressToken>,
    ) -> Result<Option<LSPAny>> {
        let request = self.kernel_request(command, arguments)?;
        let show_ptx = command == ext::SHOW_PTX;
        let state = self.state.clone();
        let settings = self.kernel_settings();
        let uri = request.uri.clone();
        let title = if show_ptx { "Compiling to PTX" } else { "Analyzing kernel" };
        let done = self
            .with_progress(token, title, "compiling", move |cancel| {
                analyze_blocking(&state, &request, &settings, show_ptx, cancel)
            })
            .await?;
        let Some(done) = done.map_err(jsonrpc::Error::invalid_params)? else {
            return Err(jsonrpc::Error::request_cancelled());
        };
        if let Some(missing) = &done.missing {
            self.client.show_message(MessageType::WARNING, format!("tensorlens: {missing}")).await;
        }
        if show_ptx {
            return Ok(Some(done.response));
        }
        self.state.kernels.remember(uri.as_str(), done.result);
        self.publish_diagnostics(uri).await;
        self.refresh_lenses().await;
        Ok(Some(done.response))
    }

    /// Re-analyses, after a save, the kernels of the document that were analysed before, so their
    /// diagnostics and lenses follow the file without another command.
    pub(super) async fn reanalyze_after_save(&self, uri: &Uri) {
        let kernels = self.state.kernels.analysed_kernels(uri.as_str());
        if kernels.is_empty() {
            return;
        }
        for kernel in kernels {
            let arguments = vec![serde_json::json!({ "uri": uri.as_str(), "kernel": kernel })];
            if let Err(err) = self.kernel_command(ext::ANALYZE_KERNEL, arguments, None).await {
                tracing::debug!("re-analysis of {kernel} after save: {err:?}");
            }
        }
    }

    /// `tensorlens.kernelToolchain`: what was found, for status bars and health checks.
    pub(super) async fn kernel_toolchain_command(&self) -> Result<Option<LSPAny>> {
        let state = self.state.clone();
        let settings = self.kernel_settings();
        self.blocking(super::server::Feature::Kernels, move || {
            let toolchain = state.kernels.toolchain(&settings);
            let mut value = serde_json::to_value(&*toolchain).unwrap_or_default();
            value["summary"] = toolchain.summary().into();
            value["arch"] = toolchain.target_arch(&settings).into();
            Some(value)
        })
        .await
    }

    async fn begin_progress(
        &self,
        token: Option<ProgressToken>,
        title: &str,
    ) -> Option<OngoingProgress<Unbounded, NotCancellable>> {
        let token = match token {
            Some(token) => token,
            None if self.state.work_done_progress.load(std::sync::atomic::Ordering::Relaxed) => {
                let token = ProgressToken::String(format!("tensorlens/kernel/{}", next_token()));
                let created = self
                    .client
                    .send_request::<request::WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                        token: token.clone(),
                    })
                    .await;
                created.ok()?;
                token
            }
            None => return None,
        };
        Some(self.client.progress(token, title.to_string()).begin().await)
    }
}

fn next_token() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The analysis itself, on the blocking pool. `Err` is a message for the user about the request
/// (no kernel there); `Ok(None)` means cancelled.
fn analyze_blocking(
    state: &State,
    request: &KernelRequest,
    settings: &Settings,
    show_ptx: bool,
    cancel: &Cancel,
) -> std::result::Result<Option<Done>, String> {
    let doc = &request.doc;
    let text = doc.text();
    let kernels = DocumentKernels::new(&text, request.language);
    let site = request.site(&kernels)?;
    let path = request.path();
    let toolchain = state.kernels.toolchain(settings);
    let analyzer = &state.kernels.analyzer;
    let name = site.kernel.qualified_name.clone();
    if show_ptx {
        return match kernels.ptx(site, &path, analyzer, &toolchain, settings, cancel) {
            Ok(ptx) => {
                let file = write_ptx(&name, &ptx);
                Ok(Some(Done {
                    result: empty_result(site),
                    response: serde_json::json!({
                        "kernel": name,
                        "languageId": "ptx",
                        "text": &*ptx,
                        "uri": file.and_then(Uri::from_file_path).map(|u| u.as_str().to_string()),
                    }),
                    missing: None,
                }))
            }
            Err(AnalyzeError::Cancelled) => Ok(None),
            Err(err) => Ok(Some(Done {
                result: empty_result(site),
                response: serde_json::json!({ "kernel": name, "error": err.to_string() }),
                missing: missing_piece(&err),
            })),
        };
    }
    let analysis = kernels.analyze(site, &path, analyzer, &toolchain, settings, cancel);
    let mut missing = None;
    let hash = text_hash(&text[site.range.clone()]);
    let (outcome, response) = match analysis {
        Ok(analysis) => {
            let warnings = kernels.place(site, &analysis.warnings);
            let mut response = serde_json::to_value(&analysis).unwrap_or_default();
            response["summary"] = analysis.summary().into();
            response["markdown"] = analysis.markdown().into();
            (Outcome::Analyzed { analysis: Box::new(analysis), warnings }, response)
        }
        Err(AnalyzeError::Cancelled) => return Ok(None),
        Err(err) => {
            missing = missing_piece(&err);
            let messages = match &err {
                AnalyzeError::Compile { messages, .. } => kernels.place(site, messages),
                _ => Vec::new(),
            };
            let response = serde_json::json!({
                "name": site.kernel.name,
                "qualified_name": name,
                "error": err.to_string(),
                "messages": messages.iter().map(|m| serde_json::json!({
                    "line": doc.position(m.range.start, PositionEncoding::Utf16).line,
                    "severity": m.severity,
                    "message": m.message,
                })).collect::<Vec<_>>(),
            });
            (Outcome::Failed { message: err.to_string(), messages }, response)
        }
    };
    Ok(Some(Done {
        result: KernelResult { kernel: name, text_hash: hash, name_range: site.name_range.clone(), outcome },
        response,
        missing,
    }))
}

fn missing_piece(err: &AnalyzeError) -> Option<String> {
    matches!(err, AnalyzeError::NoNvrtc(_) | AnalyzeError::NoPtxas(_)).then(|| err.to_string())
}

fn empty_result(site: &KernelSite) -> KernelResult {
    KernelResult {
        kernel: site.kernel.qualified_name.clone(),
        text_hash: 0,
        name_range: site.name_range.clone(),
        outcome: Outcome::Failed { message: String::new(), messages: Vec::new() },
    }
}

/// Writes the PTX where an editor can open it: `$XDG_CACHE_HOME/tensorlens/ptx/<kernel>.ptx`
/// (or the temp folder). `None` when it cannot be written; the text is in the answer anyway.
fn write_ptx(kernel: &str, ptx: &str) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("tensorlens").join("ptx");
    std::fs::create_dir_all(&dir).ok()?;
    let file_name: String =
        kernel.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    let path = dir.join(format!("{file_name}.ptx"));
    std::fs::write(&path, ptx).ok()?;
    Some(path)
}
