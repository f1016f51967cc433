//! Kernels over LSP: code lenses, the analyze / show-PTX / toolchain / time / show-timing
//! commands with progress and cancellation, compiler diagnostics and the kernel lines of hovers.
//! The work is `kernels::session`'s; this file converts and runs it off the request loop. A
//! cancelled request drops its future, which sets the `Cancel` the work checks (and kills ptxas
//! or stops the worker).

use std::sync::Arc;

use tower_lsp_server::jsonrpc::{self, Result};
use tower_lsp_server::ls_types::*;

use super::ext::{KernelArgs, KernelTimingsParams};
use super::server::{lock, Feature, Server};
use super::{from_proto, to_proto};
use crate::documents::Document;
use crate::kernels::analyze::Severity;
use crate::kernels::document::DocumentKernels;
use crate::kernels::ir::IrKind;
use crate::kernels::session::{KernelLens, KernelSession, KernelTarget, TargetError};
use crate::kernels::toolchain::Settings;
use crate::kernels::Cancel;
use crate::text::PositionEncoding;

/// Up to this many lenses come with their commands; a file with hundreds of kernels gets them as
/// they are shown (the commands are most of the answer's size and of its time).
pub(super) const EAGER_LENSES: usize = 200;

/// The data of an unresolved lens: the document (`lens_doc_key`), the kernel, and the lens's
/// place among that kernel's lenses.
#[derive(serde::Serialize, serde::Deserialize)]
struct LensData(usize, String, usize);

/// The editor ranges of the kernel names of one `DocumentKernels` (see `State::lens_ranges`).
pub(super) struct LensRanges {
    kernels: Arc<DocumentKernels>,
    encoding: PositionEncoding,
    ranges: Arc<std::collections::HashMap<std::ops::Range<usize>, Range>>,
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn target_error(error: TargetError) -> jsonrpc::Error {
    jsonrpc::Error::invalid_params(error.to_string())
}

/// Compiler errors and warnings of the document's analysed kernels, as diagnostics.
pub(super) fn diagnostics(session: &KernelSession, doc: &Document, encoding: PositionEncoding) -> Vec<Diagnostic> {
    let messages = session.messages(&doc.uri, doc.rope.len_bytes());
    messages
        .into_iter()
        .map(|m| Diagnostic {
            range: to_proto::range(doc, &m.range, encoding),
            severity: Some(match m.severity {
                Severity::Error => DiagnosticSeverity::ERROR,
                Severity::Warning => DiagnosticSeverity::WARNING,
                Severity::Hint => DiagnosticSeverity::HINT,
            }),
            source: Some(m.source.label().into()),
            message: m.message,
            ..Default::default()
        })
        .collect()
}

impl Server {
    /// The kernel settings, with the workspace folders an untrusted workspace's paths are checked
    /// against.
    pub(super) fn kernel_settings(&self) -> Settings {
        let mut settings = self.state.config.read().unwrap_or_else(|e| e.into_inner()).kernels.clone();
        settings.workspace_roots = self.workspace_roots();
        settings
    }

    /// The kernel lenses of a document; past `EAGER_LENSES` of them, without their commands,
    /// which `resolve_kernel_lens` fills in for the ones an editor shows.
    pub(super) async fn kernel_code_lenses(&self, uri: &Uri) -> Result<Option<Vec<CodeLens>>> {
        let Some(snap) = self.snapshot(uri).await else { return Ok(None) };
        let state = self.state.clone();
        let timing = self.kernel_settings().timing_allowed();
        let doc_key = self.lens_doc_key(uri);
        self.blocking(Feature::Kernels, move || {
            let kernels = snap.doc.kernels()?;
            let triton = snap.doc.triton();
            let lenses = state.kernels.lenses(&snap.doc.uri, &kernels, triton.as_deref(), timing);
            let ranges = {
                let cached = lock(&state.lens_ranges).get(&snap.doc.uri).and_then(|cached| {
                    let same = Arc::ptr_eq(&cached.kernels, &kernels) && cached.encoding == snap.encoding;
                    same.then(|| cached.ranges.clone())
                });
                match cached {
                    Some(ranges) => ranges,
                    None => {
                        let ranges: std::collections::HashMap<_, _> = kernels
                            .sites
                            .iter()
                            .map(|site| {
                                (site.name_range.clone(), to_proto::range(&snap.doc, &site.name_range, snap.encoding))
                            })
                            .collect();
                        let ranges = Arc::new(ranges);
                        let entry =
                            LensRanges { kernels: kernels.clone(), encoding: snap.encoding, ranges: ranges.clone() };
                        lock(&state.lens_ranges).insert(snap.doc.uri.clone(), entry);
                        ranges
                    }
                }
            };
            let range_of = |range: &std::ops::Range<usize>| match ranges.get(range) {
                Some(range) => *range,
                None => to_proto::range(&snap.doc, range, snap.encoding),
            };
            if lenses.len() <= EAGER_LENSES {
                return Some(
                    lenses.into_iter().map(|lens| to_proto::kernel_lens(&snap.doc, lens, snap.encoding)).collect(),
                );
            }
            let mut slots: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
            let unresolved = lenses
                .iter()
                .map(|lens| {
                    let slot = slots.entry(&lens.kernel).or_default();
                    let data = LensData(doc_key, lens.kernel.clone(), *slot);
                    *slot += 1;
                    CodeLens { range: range_of(&lens.name_range), command: None, data: serde_json::to_value(data).ok() }
                })
                .collect();
            Some(unresolved)
        })
        .await
    }

    /// `codeLens/resolve`: the command of a lens sent without one. A kernel edited away since
    /// gets its Analyze lens, which says what is wrong when run.
    pub(super) async fn resolve_kernel_lens(&self, lens: CodeLens) -> Result<CodeLens> {
        let Some(LensData(doc_key, kernel, slot)) = lens.data.clone().and_then(|d| serde_json::from_value(d).ok())
        else {
            return Err(jsonrpc::Error::invalid_params("not a lens of this server"));
        };
        let uri = lock(&self.state.lens_docs).get(doc_key).cloned();
        let Some(uri) = uri else { return Err(jsonrpc::Error::invalid_params("not a lens of this server")) };
        let Some(snap) = self.snapshot(&uri).await else { return Ok(lens) };
        let state = self.state.clone();
        let timing = self.kernel_settings().timing_allowed();
        let resolved = self
            .blocking(Feature::Kernels, move || {
                let kernels = snap.doc.kernels()?;
                let triton = snap.doc.triton();
                let lenses = state.kernels.lenses_of(&snap.doc.uri, &kernels, triton.as_deref(), timing, Some(&kernel));
                let command = match lenses.into_iter().nth(slot) {
                    Some(found) => to_proto::kernel_lens(&snap.doc, found, snap.encoding).command,
                    None => to_proto::kernel_lens(&snap.doc, KernelLens::analyze(kernel, 0..0), snap.encoding).command,
                };
                Some(CodeLens { command, ..lens })
            })
            .await?;
        resolved.ok_or_else(|| jsonrpc::Error::invalid_params("no kernels in this document"))
    }

    /// A small number that names a document in the data of its unresolved lenses.
    fn lens_doc_key(&self, uri: &Uri) -> usize {
        let mut docs = lock(&self.state.lens_docs);
        match docs.iter().position(|u| u == uri) {
            Some(key) => key,
            None => {
                docs.push(uri.clone());
                docs.len() - 1
            }
        }
    }

    /// The kernel a command names, checked against the open documents.
    async fn kernel_target(&self, args: KernelArgs) -> Result<KernelTarget> {
        let Some(snap) = self.snapshot(&args.uri).await else {
            return Err(jsonrpc::Error::invalid_params(format!("{} is not open", args.uri.as_str())));
        };
        let Some(kernels) = snap.doc.kernels() else {
            return Err(jsonrpc::Error::invalid_params("kernels live in CUDA, C/C++ and Python files"));
        };
        let selection = match (args.range, args.position) {
            (Some(range), _) => Some(from_proto::range(&snap.doc, range, snap.encoding)),
            (None, Some(position)) => {
                from_proto::offset(&snap.doc, position, snap.encoding).map(|offset| offset..offset)
            }
            (None, None) => None,
        };
        // The file name compilers report; the URI itself for unsaved documents.
        let path = snap.doc.path().map(|p| p.display().to_string()).unwrap_or_else(|| args.uri.as_str().to_string());
        let triton = snap.doc.triton().map(|file| (file, Arc::from(snap.doc.text())));
        Ok(KernelTarget { uri: args.uri.as_str().to_string(), path, kernels, triton, selection, kernel: args.kernel })
    }

    /// Runs `work` on the blocking pool under a `$/progress` that says how long it has run, with
    /// a `Cancel` that is set when the request is cancelled (its future dropped).
    async fn with_progress<T: Send + 'static>(
        &self,
        token: Option<ProgressToken>,
        title: &str,
        doing: &'static str,
        work: impl FnOnce(&Cancel) -> T + Send + 'static,
    ) -> Result<T> {
        let progress = self.begin_progress(token, "kernel", title).await;
        let cancel = Cancel::default();
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let work = self.blocking(Feature::Kernels, move || work(&cancel));
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
    async fn refresh_lenses(&self) {
        if self.state.code_lens_refresh.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = self.client.code_lens_refresh().await;
        }
    }

    async fn tell_missing(&self, missing: Option<String>) {
        if let Some(missing) = missing {
            self.client.show_message(MessageType::WARNING, format!("tensorlens: {missing}")).await;
        }
    }

    /// `tensorlens.analyzeKernel`.
    pub(super) async fn analyze_kernel(&self, args: KernelArgs, token: Option<ProgressToken>) -> Result<LSPAny> {
        let uri = args.uri.clone();
        let target = self.kernel_target(args).await?;
        let later = target.clone();
        let (state, settings) = (self.state.clone(), self.kernel_settings());
        let answer = self
            .with_progress(token, "Analyzing kernel", "compiling", move |cancel| {
                state.kernels.analyze(&target, &settings, cancel)
            })
            .await?
            .map_err(target_error)?
            .ok_or_else(jsonrpc::Error::request_cancelled)?;
        self.tell_missing(answer.missing).await;
        self.publish_diagnostics(uri.clone()).await;
        self.refresh_lenses().await;
        self.profile_lines_later(later, uri);
        Ok(serde_json::to_value(&answer.report).unwrap_or_default())
    }

    /// `tensorlens.showIr` and `tensorlens.showPtx`.
    pub(super) async fn show_ir(
        &self,
        args: KernelArgs,
        kind: IrKind,
        config: Option<usize>,
        token: Option<ProgressToken>,
    ) -> Result<LSPAny> {
        let target = self.kernel_target(args).await?;
        let (state, settings) = (self.state.clone(), self.kernel_settings());
        let title = format!("Compiling to {}", kind.name().to_uppercase());
        let answer = self
            .with_progress(token, &title, "compiling", move |cancel| {
                state.kernels.ir(&target, kind, config, &settings, cancel)
            })
            .await?
            .map_err(target_error)?
            .ok_or_else(jsonrpc::Error::request_cancelled)?;
        self.tell_missing(answer.missing.clone()).await;
        Ok(to_proto::ir_answer(answer))
    }

    /// Reads, after an analysis and off the request loop, where the kernel's SASS spills and
    /// spends its instructions (nvdisasm takes ~0.4 s, which the analysis answer does not wait
    /// for), and publishes the hints with the document's diagnostics.
    fn profile_lines_later(&self, target: KernelTarget, uri: Uri) {
        let server = Server { client: self.client.clone(), state: self.state.clone() };
        let settings = self.kernel_settings();
        tokio::spawn(async move {
            let state = server.state.clone();
            let hints = server
                .blocking(Feature::Kernels, move || {
                    state.kernels.profile_lines(&target, &settings, &Cancel::default()).ok().flatten()
                })
                .await;
            if matches!(hints, Ok(Some(n)) if n > 0) {
                server.publish_diagnostics(uri).await;
            }
        });
    }

    /// Re-analyses, after a save, the kernels of the document that were analysed before, so their
    /// diagnostics and lenses follow the file without another command.
    pub(super) async fn reanalyze_after_save(&self, uri: &Uri) {
        for kernel in self.state.kernels.analysed_kernels(uri.as_str()) {
            let args = KernelArgs { uri: uri.clone(), range: None, position: None, kernel: Some(kernel.clone()) };
            if let Err(err) = self.analyze_kernel(args, None).await {
                tracing::debug!("re-analysis of {kernel} after save: {err:?}");
            }
        }
    }

    /// `tensorlens.kernelToolchain`: what was found, for status bars and health checks.
    pub(super) async fn kernel_toolchain(&self) -> Result<LSPAny> {
        let (state, settings) = (self.state.clone(), self.kernel_settings());
        self.blocking(Feature::Kernels, move || {
            let toolchain = state.kernels.toolchain(&settings);
            let mut value = serde_json::to_value(&*toolchain).unwrap_or_default();
            value["summary"] = toolchain.summary().into();
            value["arch"] = toolchain.target_arch(&settings).into();
            value
        })
        .await
    }

    /// `tensorlens.timeKernel`: the run's record. Kernels run only on this explicit command, in
    /// the worker process, never inside the server.
    pub(super) async fn time_kernel(&self, args: KernelArgs, token: Option<ProgressToken>) -> Result<LSPAny> {
        let settings = self.kernel_settings();
        if !settings.timing_allowed() {
            return Err(jsonrpc::Error::invalid_params(
                "kernel timing is off here (the workspace is not trusted, or `timingEnabled` is false)",
            ));
        }
        let target = self.kernel_target(args).await?;
        let state = self.state.clone();
        let record = self
            .with_progress(token, "Timing kernel", "measuring", move |cancel| {
                state.kernels.time(&target, &settings, cancel)
            })
            .await?
            .map_err(target_error)?
            .ok_or_else(jsonrpc::Error::request_cancelled)?;
        self.refresh_lenses().await;
        Ok(serde_json::to_value(&record).unwrap_or_default())
    }

    /// `tensorlens/kernelTimings` and `tensorlens.showTiming`: every kernel's history in a
    /// document, or one kernel's.
    pub async fn kernel_timings(&self, params: KernelTimingsParams) -> Result<serde_json::Value> {
        let timings = self.state.kernels.timings(params.uri.as_str(), params.kernel.as_deref());
        Ok(serde_json::to_value(timings).unwrap_or_default())
    }
}
