//! The `LanguageServer` implementation: thin handlers over `ide`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tower_lsp_server::jsonrpc::{self, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, NotCancellable, OngoingProgress, Unbounded};

use super::{capabilities, ext, from_proto, to_proto};
use crate::catalog::{self, Catalog};
use crate::documents::{ChangeError, Changed, Document};
use crate::ide;
use crate::kernels::ir::IrKind;
use crate::panics::{self, Panic};
use crate::settings::Config;
use crate::text::PositionEncoding;
use crate::values::workspace;
use crate::workspace::{NewCatalog, Workspace};

/// Where users keep their own catalog files, relative to a workspace root.
pub const USER_CATALOG_DIR: &str = ".tensorlens/catalog";

pub struct Server {
    pub(super) client: Client,
    pub(super) state: Arc<State>,
}

pub(super) struct State {
    /// Open documents and the catalog they were recognized against, under one lock.
    workspace: Mutex<Workspace>,
    encoding: RwLock<PositionEncoding>,
    roots: RwLock<Vec<PathBuf>>,
    pub(super) config: RwLock<Config>,
    /// User catalog files that had problems last time, so fixed ones get their diagnostics cleared.
    reported_catalog_files: Mutex<Vec<Uri>>,
    /// Whether the client can register file watchers dynamically.
    watch_files: std::sync::atomic::AtomicBool,
    /// Whether the client takes `workspace/codeLens/refresh` and `window/workDoneProgress/create`.
    pub(super) code_lens_refresh: std::sync::atomic::AtomicBool,
    /// Whether the client pulls diagnostics (`textDocument/diagnostic`) rather than taking them
    /// pushed, and whether it takes `workspace/diagnostic/refresh`.
    pull_diagnostics: std::sync::atomic::AtomicBool,
    diagnostic_refresh: std::sync::atomic::AtomicBool,
    pub(super) work_done_progress: std::sync::atomic::AtomicBool,
    pub(super) kernels: crate::kernels::session::KernelSession,
    /// Count workspace-module loads and catalog reloads, so that an older one finishing late
    /// does not win.
    modules_generation: std::sync::atomic::AtomicU64,
    catalog_generation: std::sync::atomic::AtomicU64,
    /// The features whose failure the user has been shown.
    told: Mutex<std::collections::HashSet<Feature>>,
    /// Woken when a pending document's analysis is installed (see `finish_open`).
    analysed: tokio::sync::Notify,
    /// The documents named by unresolved code lenses, by their place here.
    pub(super) lens_docs: Mutex<Vec<Uri>>,
    /// Per document, the editor ranges of its kernels' names, for the kernels found by one
    /// analysis (held, so the pointer names them) in one encoding: converting them is most of a
    /// lens request's work.
    pub(super) lens_ranges: Mutex<std::collections::HashMap<String, super::kernels::LensRanges>>,
    /// Per document, the last edit whose diagnostics are due: an older pending publish gives way.
    diagnostics_due: Mutex<std::collections::HashMap<String, u64>>,
}

/// How long the analysis of an edited big file waits: the requests an editor sends with a keystroke
/// (a hover, a completion) are answered from windows first instead of sharing two cores with it,
/// and a burst of keystrokes is analysed once.
const EDIT_SETTLE: std::time::Duration = std::time::Duration::from_millis(3);

/// What a request needs, taken under the lock and used after it is released.
pub(super) struct Snapshot {
    pub(super) doc: Document,
    pub(super) catalog: Arc<Catalog>,
    pub(super) encoding: PositionEncoding,
}

/// A poisoned lock only means another handler panicked; the data is still consistent because every
/// writer finishes its edit before anything can panic.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A feature, for telling the user once per kind of failure rather than once per keystroke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Feature {
    Analysis,
    Diagnostics,
    CatalogSearch,
    Hover,
    Completion,
    SignatureHelp,
    Links,
    CodeActions,
    Symbols,
    InlayHints,
    Kernels,
}

impl Feature {
    /// Its name for `TENSORLENS_FAULT` (see `panics::fault`).
    fn id(self) -> &'static str {
        match self {
            Feature::Analysis => "analysis",
            Feature::Diagnostics => "diagnostics",
            Feature::CatalogSearch => "catalog-search",
            Feature::Hover => "hover",
            Feature::Completion => "completion",
            Feature::SignatureHelp => "signature-help",
            Feature::Links => "links",
            Feature::CodeActions => "code-actions",
            Feature::Symbols => "symbols",
            Feature::InlayHints => "inlay-hints",
            Feature::Kernels => "kernels",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Feature::Analysis => "analysing a document",
            Feature::Diagnostics => "diagnostics",
            Feature::CatalogSearch => "catalog search",
            Feature::Hover => "hover",
            Feature::Completion => "completion",
            Feature::SignatureHelp => "signature help",
            Feature::Links => "document links",
            Feature::CodeActions => "code actions",
            Feature::Symbols => "workspace symbols",
            Feature::InlayHints => "inlay hints",
            Feature::Kernels => "kernel analysis",
        }
    }
}

impl Server {
    /// Runs pure work off the async runtime; a panic in it is reported and becomes an internal
    /// error answer instead of a lost request.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        feature: Feature,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let run = move || {
            panics::fault(feature.id());
            f()
        };
        match tokio::task::spawn_blocking(move || panics::catch(run)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => {
                self.report(feature, &panic).await;
                Err(jsonrpc::Error {
                    message: format!("{} failed: {panic}", feature.label()).into(),
                    ..jsonrpc::Error::internal_error()
                })
            }
            Err(join) => {
                tracing::error!("{} did not finish: {join}", feature.label());
                Err(jsonrpc::Error::internal_error())
            }
        }
    }

    /// Logs a panic with its backtrace, and tells the user the first time this feature fails.
    pub(super) async fn report(&self, feature: Feature, panic: &Panic) {
        tracing::error!("{} failed: {panic}\n{}", feature.label(), panic.backtrace);
        if lock(&self.state.told).insert(feature) {
            let text = format!(
                "tensorlens: {} failed ({panic}). The server keeps running; its log has the details, please report them.",
                feature.label()
            );
            self.client.show_message(MessageType::ERROR, text).await;
        }
    }
}

impl Server {
    pub fn new(client: Client) -> Server {
        Server {
            client,
            state: Arc::new(State {
                workspace: Mutex::new(Workspace::new(Arc::new(Catalog::builtin()))),
                encoding: RwLock::new(PositionEncoding::Utf16),
                roots: RwLock::default(),
                config: RwLock::default(),
                reported_catalog_files: Mutex::default(),
                watch_files: Default::default(),
                code_lens_refresh: Default::default(),
                pull_diagnostics: Default::default(),
                diagnostic_refresh: Default::default(),
                work_done_progress: Default::default(),
                kernels: Default::default(),
                modules_generation: Default::default(),
                catalog_generation: Default::default(),
                told: Mutex::default(),
                analysed: tokio::sync::Notify::new(),
                lens_docs: Mutex::default(),
                lens_ranges: Mutex::default(),
                diagnostics_due: Mutex::default(),
            }),
        }
    }

    fn catalog(&self) -> Arc<Catalog> {
        lock(&self.state.workspace).catalog()
    }

    fn encoding(&self) -> PositionEncoding {
        *self.state.encoding.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The document as analysed: waits while its first analysis is on its way (a big file just
    /// opened), which takes a few hundred milliseconds at most.
    pub(super) async fn snapshot(&self, uri: &Uri) -> Option<Snapshot> {
        loop {
            let notified = self.state.analysed.notified();
            let snap = self.snapshot_now(uri)?;
            if !snap.doc.is_pending() {
                return Some(snap);
            }
            // Woken when an analysis is installed; the time-out covers a wake-up that came
            // between the look and the wait.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(20), notified).await;
        }
    }

    /// The document as it is now, pending or not.
    pub(super) fn snapshot_now(&self, uri: &Uri) -> Option<Snapshot> {
        let snap = lock(&self.state.workspace).snapshot(uri.as_str());
        if snap.is_none() {
            tracing::debug!("request for a document that is not open: {}", uri.as_str());
        }
        let crate::workspace::Snapshot { doc, catalog } = snap?;
        Some(Snapshot { doc, catalog, encoding: self.encoding() })
    }

    fn pulls_diagnostics(&self) -> bool {
        self.state.pull_diagnostics.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Catalog diagnostics from the current text, plus the compiler's from the last kernel analyses.
    async fn document_diagnostics(&self, snap: Snapshot) -> Vec<Diagnostic> {
        let state = self.state.clone();
        self.blocking(Feature::Diagnostics, move || {
            let mut diags: Vec<Diagnostic> = ide::diagnostics(&snap.doc, &snap.catalog)
                .iter()
                .map(|d| to_proto::diagnostic(&snap.doc, d, snap.encoding))
                .collect();
            diags.extend(super::kernels::diagnostics(&state.kernels, &snap.doc, snap.encoding));
            diags
        })
        .await
        .unwrap_or_default()
    }

    /// Pushes the document's diagnostics; to a client that pulls them, says they changed instead
    /// (where it takes `workspace/diagnostic/refresh`; else its next pull, which follows every
    /// change, has them).
    pub(super) async fn publish_diagnostics(&self, uri: Uri) {
        if self.pulls_diagnostics() {
            if self.state.diagnostic_refresh.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = self.client.workspace_diagnostic_refresh().await;
            }
            return;
        }
        let Some(snap) = self.snapshot(&uri).await else { return };
        let version = snap.doc.version;
        let diags = self.document_diagnostics(snap).await;
        self.client.publish_diagnostics(uri, diags, Some(version)).await;
    }

    /// Publishes the document's diagnostics a moment after an edit, once no newer edit came: a
    /// burst of typing sends them once, and the hovers queued behind each edit go first.
    fn publish_diagnostics_soon(&self, uri: Uri) {
        /// Long enough for the requests an editor sends with a keystroke to be read first.
        const SETTLE: std::time::Duration = std::time::Duration::from_millis(5);
        if self.pulls_diagnostics() {
            return; // the client asks after each change
        }
        let ticket = {
            let mut due = lock(&self.state.diagnostics_due);
            let ticket = due.entry(uri.as_str().to_string()).or_default();
            *ticket += 1;
            *ticket
        };
        let server = Server { client: self.client.clone(), state: self.state.clone() };
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE).await;
            let current = lock(&server.state.diagnostics_due).get(uri.as_str()).copied();
            if current == Some(ticket) {
                server.publish_diagnostics(uri).await;
            }
        });
    }

    /// Starts `finish_open` for a pending document, off the request loop, after `delay`.
    fn analyse_later(&self, uri: Uri, delay: Option<std::time::Duration>) {
        let server = Server { client: self.client.clone(), state: self.state.clone() };
        tokio::spawn(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            server.finish_open(uri).await
        });
    }

    /// Analyses a pending document's copy off the loop and installs it; when the document was
    /// edited meanwhile, analyses the new text (edits to a pending document change only its text).
    /// Requests waiting in `snapshot` are woken.
    async fn finish_open(&self, uri: Uri) {
        loop {
            let snap = lock(&self.state.workspace).pending_snapshot(uri.as_str());
            let Some(crate::workspace::Snapshot { doc: mut copy, catalog }) = snap else { break };
            let analyzed = tokio::task::spawn_blocking(move || {
                let outer = copy.outer_imports().to_vec();
                let result = copy.analyze(&catalog, &outer);
                (copy, result)
            })
            .await;
            let Ok((copy, result)) = analyzed else { break };
            if let Err(panic) = &result {
                self.report(Feature::Analysis, panic).await;
            }
            if lock(&self.state.workspace).finish_open(copy) {
                break;
            }
        }
        self.state.analysed.notify_waiters();
        // The module's bindings, read by the first hover of a value, worked out before it comes.
        if let Some(snap) = self.snapshot_now(&uri).filter(|s| !s.doc.is_pending()) {
            tokio::task::spawn_blocking(move || snap.doc.values().map(|values| values.warm()));
        }
    }

    /// The hover at `position`; with `window`, from the document's provisional window, and `None`
    /// when it has none worth using (then wait for the analysis).
    async fn hover_on(&self, snap: Snapshot, position: Position, window: bool) -> Result<Option<Option<Hover>>> {
        let state = self.state.clone();
        self.blocking(Feature::Hover, move || {
            let Some(offset) = from_proto::offset(&snap.doc, position, snap.encoding) else { return Some(None) };
            let provisional = if window { Some(snap.doc.provisional(offset, &snap.catalog)?) } else { None };
            let analysed = provisional.as_ref().unwrap_or(&snap.doc);
            let analysis = state.kernels.hover_markdown(&snap.doc.uri, offset, |range| snap.doc.slice(range));
            Some(match (ide::hover(analysed, &snap.catalog, offset), analysis) {
                (Some(mut res), Some(analysis)) => {
                    res.markdown = format!("{}\n\n---\n\n{analysis}", res.markdown);
                    Some(to_proto::hover(&snap.doc, res, snap.encoding))
                }
                (Some(res), None) => Some(to_proto::hover(&snap.doc, res, snap.encoding)),
                (None, Some(analysis)) => Some(Hover {
                    contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: analysis }),
                    range: None,
                }),
                (None, None) => None,
            })
        })
        .await
    }

    /// Reads the workspace modules the open Python files import (`from model import GPT`), off
    /// the request loop; only reads files, never runs them.
    async fn reload_modules(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let generation = self.state.modules_generation.fetch_add(1, SeqCst) + 1;
        let roots = self.state.roots.read().unwrap_or_else(|e| e.into_inner()).clone();
        let seeds = lock(&self.state.workspace).python_files();
        let catalog = self.catalog();
        let load = tokio::task::spawn_blocking(move || {
            let framework = |root: &str| catalog.knows_python_module(root);
            workspace::load(&roots, &seeds, &framework, &workspace::Disk)
        });
        // Answers about imported user classes are incomplete until this ends: say so, where the
        // client shows progress (and a client can wait for it).
        let progress = self.begin_progress(None, "modules", "Reading workspace modules").await;
        let loaded = load.await;
        let installed = match loaded {
            Ok(loaded) if self.state.modules_generation.load(SeqCst) == generation => {
                let count = loaded.len();
                tracing::debug!("{count} workspace modules loaded");
                lock(&self.state.workspace).set_modules(Arc::new(loaded));
                Some(count)
            }
            _ => None, // a newer load is on its way, or this one panicked
        };
        if let Some(progress) = progress {
            match installed {
                Some(count) => progress.finish_with_message(format!("{count} files read")).await,
                None => progress.finish().await,
            }
        }
    }

    /// Starts a `$/progress` under the client's token, or under a new one when the client takes
    /// `window/workDoneProgress/create`; `None` when it shows no progress.
    pub(super) async fn begin_progress(
        &self,
        token: Option<ProgressToken>,
        kind: &str,
        title: &str,
    ) -> Option<OngoingProgress<Unbounded, NotCancellable>> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let token = match token {
            Some(token) => token,
            None if self.state.work_done_progress.load(std::sync::atomic::Ordering::Relaxed) => {
                let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let token = ProgressToken::String(format!("tensorlens/{kind}/{id}"));
                let params = WorkDoneProgressCreateParams { token: token.clone() };
                self.client.send_request::<request::WorkDoneProgressCreate>(params).await.ok()?;
                token
            }
            None => return None,
        };
        Some(self.client.progress(token, title.to_string()).begin().await)
    }

    /// The workspace folders the client named at `initialize`.
    pub(super) fn workspace_roots(&self) -> Vec<PathBuf> {
        self.state.roots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The folders user catalog files are read from: each workspace root's `.tensorlens/catalog`,
    /// then the folders the settings name.
    fn user_catalog_dirs(&self) -> Vec<PathBuf> {
        let roots = self.state.roots.read().unwrap_or_else(|e| e.into_inner()).clone();
        let config = self.state.config.read().unwrap_or_else(|e| e.into_inner()).clone();
        roots.iter().map(|r| r.join(USER_CATALOG_DIR)).chain(config.catalog_paths).collect()
    }

    /// Loads user catalog files and reports their problems on the files. The open documents are
    /// re-analysed against the new catalog before either is visible to a request.
    async fn load_user_catalogs(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let generation = self.state.catalog_generation.fetch_add(1, SeqCst) + 1;
        let dirs = self.user_catalog_dirs();
        let documents = lock(&self.state.workspace).copy_documents();
        let loaded = tokio::task::spawn_blocking(move || {
            let builtin = Catalog::builtin();
            let mut files = Vec::new();
            let mut problems = Vec::new();
            for dir in dirs {
                let (user, user_problems) = catalog::load_user_dir(&dir, &builtin);
                files.extend(user);
                problems.extend(user_problems);
            }
            (NewCatalog::prepare(documents, Arc::new(Catalog::new(files))), problems)
        })
        .await;
        let Ok((new_catalog, problems)) = loaded else { return };
        if self.state.catalog_generation.load(SeqCst) != generation {
            return; // a newer reload is on its way
        }
        lock(&self.state.workspace).publish(new_catalog);

        let mut by_file: Vec<(Uri, Vec<Diagnostic>)> = Vec::new();
        for problem in problems {
            tracing::warn!("user catalog {}: {}", problem.path.display(), problem.message);
            let Some(uri) = Uri::from_file_path(&problem.path) else { continue };
            let text = std::fs::read_to_string(&problem.path).unwrap_or_default();
            let range = problem
                .span
                .map(|span| {
                    let doc = Document::new(uri.as_str(), "toml", 0, &text);
                    to_proto::range(&doc, &span, self.encoding())
                })
                .unwrap_or_default();
            let diag = Diagnostic {
                range,
                severity: Some(DiagnosticSeverity::ERROR),
                source: Some("tensorlens".into()),
                message: if problem.file_loaded {
                    problem.message.clone()
                } else {
                    format!("{} (this file is not loaded; the built-in catalog still is)", problem.message)
                },
                ..Default::default()
            };
            match by_file.iter_mut().find(|(u, _)| *u == uri) {
                Some((_, diags)) => diags.push(diag),
                None => by_file.push((uri, vec![diag])),
            }
        }
        let previous = std::mem::replace(
            &mut *lock(&self.state.reported_catalog_files),
            by_file.iter().map(|(uri, _)| uri.clone()).collect(),
        );
        for uri in previous {
            if !by_file.iter().any(|(u, _)| *u == uri) {
                self.client.publish_diagnostics(uri, Vec::new(), None).await;
            }
        }
        for (uri, diags) in by_file {
            self.client.publish_diagnostics(uri, diags, None).await;
        }
    }

    async fn publish_catalog_text_diagnostics(&self, uri: Uri) {
        let Some(snap) = self.snapshot(&uri).await else { return };
        let version = snap.doc.version;
        let diags = self
            .blocking(Feature::Diagnostics, move || catalog_text_diagnostics(&snap.doc, snap.encoding))
            .await
            .unwrap_or_default();
        self.client.publish_diagnostics(uri, diags, Some(version)).await;
    }

    /// `tensorlens/viewFileText`.
    pub async fn view_file_text(&self, params: TextDocumentIdentifier) -> Result<Option<ext::ViewFileTextResult>> {
        let ws = lock(&self.state.workspace);
        Ok(ws
            .document(params.uri.as_str())
            .map(|doc| ext::ViewFileTextResult { version: doc.version, text: doc.text() }))
    }

    /// `tensorlens/searchCatalog`.
    pub async fn search_catalog(&self, params: ext::SearchCatalogParams) -> Result<Vec<ext::CatalogEntry>> {
        let catalog = self.catalog();
        self.blocking(Feature::CatalogSearch, move || {
            catalog::search(&catalog, &params.query, params.limit.unwrap_or(50).min(500))
                .into_iter()
                .map(|idx| ext::CatalogEntry::new(&catalog, idx))
                .collect()
        })
        .await
    }
}

/// Whether a workspace folder holds `.cu` or `.cuh` files near its top: a bounded look (a few
/// hundred entries, three folders deep, hidden and build folders left out).
fn has_cuda_sources(roots: &[PathBuf]) -> bool {
    let mut budget = 400usize;
    let mut stack: Vec<(PathBuf, usize)> = roots.iter().map(|root| (root.clone(), 0)).collect();
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if budget == 0 {
                return false;
            }
            budget -= 1;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".cu") || name.ends_with(".cuh") {
                return true;
            }
            let skipped =
                name.starts_with('.') || matches!(name.as_ref(), "node_modules" | "target" | "build" | "venv");
            if depth < 3 && !skipped && entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((path, depth + 1));
            }
        }
    }
    false
}

/// A pulled report's result id: a digest of its JSON, so the same diagnostics get the same id
/// whatever edits came between.
fn report_id(items: &[Diagnostic]) -> String {
    use std::hash::{Hash, Hasher};
    let json = serde_json::to_vec(items).unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    format!("{}-{}-{:016x}", items.len(), json.len(), hasher.finish())
}

fn is_user_catalog_file(uri: &Uri) -> bool {
    uri.as_str().ends_with(".toml") && uri.as_str().contains(USER_CATALOG_DIR)
}

/// Problems in a catalog file's current text (as typed, before it is saved), as diagnostics.
fn catalog_text_diagnostics(doc: &Document, encoding: PositionEncoding) -> Vec<Diagnostic> {
    let stem = doc.uri.rsplit('/').next().and_then(|name| name.strip_suffix(".toml")).unwrap_or_default();
    let (_, problems) = catalog::parse_user_file(stem, &doc.text());
    problems
        .into_iter()
        .map(|(span, message)| Diagnostic {
            range: span.map(|span| to_proto::range(doc, &span, encoding)).unwrap_or_default(),
            severity: Some(DiagnosticSeverity::ERROR),
            source: Some("tensorlens".into()),
            message,
            ..Default::default()
        })
        .collect()
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let encoding = capabilities::negotiate_encoding(&params);
        let can_watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|w| w.dynamic_registration)
            .unwrap_or(false);
        self.state.watch_files.store(can_watch, std::sync::atomic::Ordering::Relaxed);
        let lens_refresh = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.code_lens.as_ref())
            .and_then(|c| c.refresh_support)
            .unwrap_or(false);
        self.state.code_lens_refresh.store(lens_refresh, std::sync::atomic::Ordering::Relaxed);
        let pull = capabilities::client_pulls_diagnostics(&params);
        self.state.pull_diagnostics.store(pull, std::sync::atomic::Ordering::Relaxed);
        let refresh = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.diagnostics.as_ref())
            .and_then(|d| d.refresh_support)
            .unwrap_or(false);
        self.state.diagnostic_refresh.store(refresh, std::sync::atomic::Ordering::Relaxed);
        let progress = params.capabilities.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false);
        self.state.work_done_progress.store(progress, std::sync::atomic::Ordering::Relaxed);
        *self.state.encoding.write().unwrap_or_else(|e| e.into_inner()) = encoding;
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        #[allow(deprecated)] // Older clients send only rootUri.
        if roots.is_empty() {
            roots.extend(params.root_uri.as_ref().and_then(|u| u.to_file_path()).map(|p| p.into_owned()));
        }
        *self.state.roots.write().unwrap_or_else(|e| e.into_inner()) = roots;
        if let Some(options) = &params.initialization_options {
            *self.state.config.write().unwrap_or_else(|e| e.into_inner()) = Config::from_json(options);
        }
        Ok(InitializeResult {
            capabilities: capabilities::server_capabilities(encoding, pull),
            server_info: Some(ServerInfo {
                name: "tensorlens".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        // After `initialize` is answered, so that start-up does not share the CPU with it.
        crate::recognize::warm_up(crate::parse::Language::Python);
        // The CUDA query takes tens of milliseconds to compile and about 14 MB: compiled now only
        // where the workspace has CUDA sources, so that the first hover in one need not wait.
        let roots = self.workspace_roots();
        let spawned = std::thread::Builder::new().name("tensorlens-cuda-query".into()).spawn(move || {
            if has_cuda_sources(&roots) {
                crate::recognize::query(crate::parse::Language::Cuda);
            }
        });
        if let Err(err) = spawned {
            tracing::debug!("the CUDA query will compile on first use: {err}");
        }
        // Reload user catalogs when their files change on disk, where the client can watch files.
        if self.state.watch_files.load(std::sync::atomic::Ordering::Relaxed) {
            let options = DidChangeWatchedFilesRegistrationOptions {
                watchers: vec![
                    FileSystemWatcher {
                        glob_pattern: GlobPattern::String(format!("**/{USER_CATALOG_DIR}/*.toml")),
                        kind: None,
                    },
                    // The user's own modules, which the value types read.
                    FileSystemWatcher { glob_pattern: GlobPattern::String("**/*.py".into()), kind: None },
                ],
            };
            let watch = Registration {
                id: "tensorlens-catalog-watch".into(),
                method: "workspace/didChangeWatchedFiles".into(),
                register_options: serde_json::to_value(options).ok(),
            };
            let res = self.client.register_capability(vec![watch]).await;
            if let Err(err) = res {
                tracing::debug!("client does not watch files for us: {err:?}");
            }
        }
        if self.user_catalog_dirs().iter().any(|dir| dir.is_dir()) {
            self.load_user_catalogs().await;
        }
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let item = params.text_document;
        let uri = item.uri.clone();
        let doc = Document::new(item.uri.as_str(), &item.language_id, item.version, &item.text);
        if doc.defers_analysis() {
            // A big file: analysed off the loop, so that the first hover need not wait for it.
            lock(&self.state.workspace).open_pending(doc);
            self.analyse_later(uri.clone(), None);
        } else {
            let opened = lock(&self.state.workspace).open(doc);
            if let Err(panic) = opened {
                self.report(Feature::Analysis, &panic).await;
            }
        }
        if is_user_catalog_file(&uri) {
            self.publish_catalog_text_diagnostics(uri).await;
            return;
        }
        let python = item.language_id == "python" || uri.as_str().ends_with(".py");
        if !self.pulls_diagnostics() {
            self.publish_diagnostics(uri).await;
        }
        if python {
            self.reload_modules().await;
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Applied before the first await, so changes are applied in the order they arrive.
        let uri = params.text_document.uri;
        let changes: Vec<_> = params.content_changes.into_iter().map(from_proto::change).collect();
        let applied = {
            let encoding = self.encoding();
            lock(&self.state.workspace).change(uri.as_str(), params.text_document.version, &changes, encoding)
        };
        let applied = match applied {
            Ok(Changed::Analysed | Changed::Pending { start: false }) => true,
            Ok(Changed::Pending { start: true }) => {
                self.analyse_later(uri.clone(), Some(EDIT_SETTLE));
                true
            }
            Err(ChangeError::Analysis(panic)) => {
                self.report(Feature::Analysis, &panic).await;
                true
            }
            Err(error) => {
                tracing::error!("{}: change refused, the document is unchanged: {error}", uri.as_str());
                false
            }
        };
        if applied && is_user_catalog_file(&uri) {
            self.publish_catalog_text_diagnostics(uri).await;
        } else if applied {
            self.publish_diagnostics_soon(uri);
        }
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        if !Config::is_about_us(&params.settings) {
            return;
        }
        let config = Config::from_json(&params.settings);
        let changed = {
            let mut current = self.state.config.write().unwrap_or_else(|e| e.into_inner());
            let config = current.updated(config);
            let changed = *current != config;
            *current = config;
            changed
        };
        if changed {
            self.load_user_catalogs().await;
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        if params.changes.iter().any(|change| is_user_catalog_file(&change.uri)) {
            self.load_user_catalogs().await;
        }
        if params.changes.iter().any(|change| change.uri.as_str().ends_with(".py")) {
            self.reload_modules().await;
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        if is_user_catalog_file(&params.text_document.uri) {
            self.load_user_catalogs().await;
        } else {
            let python = params.text_document.uri.as_str().ends_with(".py");
            self.reanalyze_after_save(&params.text_document.uri).await;
            if python {
                self.reload_modules().await;
            }
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let closed = lock(&self.state.workspace).close(params.text_document.uri.as_str());
        self.state.kernels.forget(params.text_document.uri.as_str());
        lock(&self.state.lens_ranges).remove(params.text_document.uri.as_str());
        lock(&self.state.diagnostics_due).remove(params.text_document.uri.as_str());
        if closed.is_some() && !is_user_catalog_file(&params.text_document.uri) {
            self.client.publish_diagnostics(params.text_document.uri, Vec::new(), None).await;
        }
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let position = params.text_document_position_params;
        let uri = position.text_document.uri.clone();
        // A big file just opened is not analysed yet: the hover answers from the window of it that
        // it needs (the same answer, `provisional`) rather than wait, when that window is small.
        let Some(snap) = self.snapshot_now(&uri) else { return Ok(None) };
        let snap = match snap.doc.is_pending() {
            true => snap,
            false => return self.hover_on(snap, position.position, false).await.map(Option::flatten),
        };
        match self.hover_on(snap, position.position, true).await? {
            Some(answer) => Ok(answer),
            None => match self.snapshot(&uri).await {
                Some(snap) => self.hover_on(snap, position.position, false).await.map(Option::flatten),
                None => Ok(None),
            },
        }
    }

    /// `textDocument/diagnostic`: the document's diagnostics, or `unchanged` when they are the
    /// ones of the result id the client holds (the id is a digest of the report). A user catalog
    /// file's problems are pushed as it is typed, and answered empty here.
    async fn diagnostic(&self, params: DocumentDiagnosticParams) -> Result<DocumentDiagnosticReportResult> {
        let uri = params.text_document.uri;
        let items = match self.snapshot(&uri).await {
            Some(snap) if !is_user_catalog_file(&uri) => self.document_diagnostics(snap).await,
            _ => Vec::new(),
        };
        let result_id = report_id(&items);
        let report = if params.previous_result_id.as_deref() == Some(result_id.as_str()) {
            DocumentDiagnosticReport::Unchanged(RelatedUnchangedDocumentDiagnosticReport {
                related_documents: None,
                unchanged_document_diagnostic_report: UnchangedDocumentDiagnosticReport { result_id },
            })
        } else {
            DocumentDiagnosticReport::Full(RelatedFullDocumentDiagnosticReport {
                related_documents: None,
                full_document_diagnostic_report: FullDocumentDiagnosticReport { result_id: Some(result_id), items },
            })
        };
        Ok(DocumentDiagnosticReportResult::Report(report))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let position = params.text_document_position;
        let Some(snap) = self.snapshot(&position.text_document.uri).await else { return Ok(None) };
        self.blocking(Feature::Completion, move || {
            let offset = from_proto::offset(&snap.doc, position.position, snap.encoding)?;
            let items = ide::completions(&snap.doc, &snap.catalog, offset);
            (!items.is_empty()).then(|| to_proto::completions(items))
        })
        .await
    }

    async fn signature_help(&self, params: SignatureHelpParams) -> Result<Option<SignatureHelp>> {
        let position = params.text_document_position_params;
        let Some(snap) = self.snapshot(&position.text_document.uri).await else { return Ok(None) };
        self.blocking(Feature::SignatureHelp, move || {
            let offset = from_proto::offset(&snap.doc, position.position, snap.encoding)?;
            ide::signature_help(&snap.doc, &snap.catalog, offset).map(to_proto::signature_help)
        })
        .await
    }

    async fn document_link(&self, params: DocumentLinkParams) -> Result<Option<Vec<DocumentLink>>> {
        let Some(snap) = self.snapshot(&params.text_document.uri).await else { return Ok(None) };
        self.blocking(Feature::Links, move || {
            let links = ide::document_links(&snap.doc, &snap.catalog);
            Some(links.into_iter().filter_map(|l| to_proto::document_link(&snap.doc, l, snap.encoding)).collect())
        })
        .await
    }

    async fn inlay_hint(&self, params: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        let on = self.state.config.read().unwrap_or_else(|e| e.into_inner()).shape_hints;
        if !on {
            return Ok(None);
        }
        let Some(snap) = self.snapshot(&params.text_document.uri).await else { return Ok(None) };
        self.blocking(Feature::InlayHints, move || {
            let range = from_proto::range(&snap.doc, params.range, snap.encoding);
            let hints = ide::inlay_hints(&snap.doc, &snap.catalog, range);
            Some(hints.into_iter().map(|h| to_proto::inlay_hint(&snap.doc, h, snap.encoding)).collect())
        })
        .await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri.clone();
        let Some(snap) = self.snapshot(&uri).await else { return Ok(None) };
        self.blocking(Feature::CodeActions, move || {
            let range = from_proto::range(&snap.doc, params.range, snap.encoding);
            let actions = ide::code_actions(&snap.doc, &snap.catalog, range);
            let only = params.context.only.as_ref();
            let res: Vec<CodeActionOrCommand> = actions
                .into_iter()
                .map(|a| to_proto::code_action(&snap.doc, &uri, a, snap.encoding, &params.context.diagnostics))
                .filter(|a| match (only, a) {
                    (Some(kinds), CodeActionOrCommand::CodeAction(action)) => action
                        .kind
                        .as_ref()
                        .is_some_and(|k| kinds.iter().any(|want| k.as_str().starts_with(want.as_str()))),
                    _ => true,
                })
                .collect();
            Some(res)
        })
        .await
    }

    async fn symbol(&self, params: WorkspaceSymbolParams) -> Result<Option<WorkspaceSymbolResponse>> {
        let catalog = self.catalog();
        self.blocking(Feature::Symbols, move || {
            let found = catalog::search(&catalog, &params.query, 200);
            let symbols = found.into_iter().filter_map(|idx| to_proto::workspace_symbol(&catalog, idx)).collect();
            Some(WorkspaceSymbolResponse::Flat(symbols))
        })
        .await
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        self.kernel_code_lenses(&params.text_document.uri).await
    }

    async fn code_lens_resolve(&self, lens: CodeLens) -> Result<CodeLens> {
        self.resolve_kernel_lens(lens).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        let token = params.work_done_progress_params.work_done_token;
        let command = ext::Command::parse(&params.command, params.arguments)
            .map_err(|err| jsonrpc::Error::invalid_params(err.to_string()))?;
        let answer = match command {
            ext::Command::AnalyzeKernel(args) => self.analyze_kernel(args, token).await?,
            ext::Command::ShowPtx(args) => self.show_ir(args, IrKind::Ptx, None, token).await?,
            ext::Command::ShowIr(args) => self.show_ir(args.target, args.ir, args.config, token).await?,
            ext::Command::KernelToolchain => self.kernel_toolchain().await?,
            ext::Command::TimeKernel(args) => self.time_kernel(args, token).await?,
            ext::Command::ShowTiming(args) => self.kernel_timings(args).await?,
            ext::Command::OpenUrl(url) => {
                let uri: Uri = url.parse().map_err(|_| jsonrpc::Error::invalid_params(format!("not a URL: {url}")))?;
                let shown = self
                    .client
                    .show_document(ShowDocumentParams {
                        uri,
                        external: Some(true),
                        take_focus: Some(true),
                        selection: None,
                    })
                    .await
                    .unwrap_or(false);
                serde_json::json!({ "shown": shown, "url": url })
            }
            ext::Command::SearchCatalog(query) => {
                let entries = self.search_catalog(ext::SearchCatalogParams { query, limit: None }).await?;
                serde_json::to_value(entries).unwrap_or_default()
            }
        };
        Ok(Some(answer))
    }
}
