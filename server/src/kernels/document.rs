//! The kernels of one document, with their places in it, and analysis results placed back in it:
//! what the CLI and the LSP commands share.

use std::ops::Range;
use std::path::Path;

use super::analyze::{Analysis, AnalyzeError, Analyzer, CompilerMessage, Sass, Severity, Target};
use super::device_code::{file_dir, CudaSource, IncludeResolver, KernelDef};
use super::embedded::{cuda_sources, EmbeddedSource};
use super::sass;
use super::spec::{launch_spec, substitute_template};
use super::timing::stop_rule;
use super::toolchain::{Settings, Toolchain};
use super::worker::TimeRequest;
use super::Cancel;
use crate::parse::Language;

/// One kernel and where it sits in the document.
#[derive(Debug, Clone)]
pub struct KernelSite {
    pub kernel: KernelDef,
    /// Which of the document's CUDA sources holds it.
    pub source: usize,
    /// Document bytes of the whole definition and of its name.
    pub range: Range<usize>,
    pub name_range: Range<usize>,
    /// A hash of the definition's text, to tell a result that the kernel was edited since.
    pub text_hash: u64,
}

pub struct DocumentKernels {
    pub sources: Vec<EmbeddedSource>,
    pub sites: Vec<KernelSite>,
    /// Byte offsets where the document's lines start.
    document_line_starts: Vec<usize>,
}

pub fn text_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// A compiler message placed in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedMessage {
    pub range: Range<usize>,
    pub severity: Severity,
    pub message: String,
    pub source: MessageSource,
}

/// Who says it: the CUDA compiler, Triton's, or tensorlens reading the SASS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageSource {
    Nvrtc,
    Triton,
    Sass,
}

impl MessageSource {
    pub fn label(self) -> &'static str {
        match self {
            MessageSource::Nvrtc => "nvrtc",
            MessageSource::Triton => "triton",
            MessageSource::Sass => "tensorlens",
        }
    }
}

impl DocumentKernels {
    pub fn new(text: &str, language: Language) -> DocumentKernels {
        DocumentKernels::from_sources(text, cuda_sources(text, language))
    }

    /// The kernels of a document that is already parsed: a CUDA file's own tree is used as it is
    /// rather than parsed again.
    pub fn of_parsed(text: &str, language: Language, tree: Option<&tree_sitter::Tree>) -> DocumentKernels {
        match (language, tree) {
            (Language::Cuda, Some(tree)) => {
                let source = CudaSource::with_tree(text.to_string(), tree.clone());
                DocumentKernels::from_sources(text, vec![EmbeddedSource::whole(source)])
            }
            _ => DocumentKernels::new(text, language),
        }
    }

    fn from_sources(text: &str, sources: Vec<EmbeddedSource>) -> DocumentKernels {
        let mut sites = Vec::new();
        for (idx, embedded) in sources.iter().enumerate() {
            for kernel in embedded.source.kernels() {
                let range = embedded.to_document(kernel.range.start)..embedded.to_document(kernel.range.end);
                let name_range =
                    embedded.to_document(kernel.name_range.start)..embedded.to_document(kernel.name_range.end);
                let text_hash = text_hash(text.get(range.clone()).unwrap_or_default());
                sites.push(KernelSite { kernel, source: idx, range, name_range, text_hash });
            }
        }
        let document_line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        DocumentKernels { sources, sites, document_line_starts }
    }

    /// The kernel a selection is in, else the first one it covers.
    pub fn at(&self, selection: Range<usize>) -> Option<&KernelSite> {
        self.sites
            .iter()
            .find(|s| s.range.start <= selection.start && selection.end <= s.range.end)
            .or_else(|| self.sites.iter().find(|s| selection.start <= s.range.start && s.range.end <= selection.end))
    }

    pub fn named(&self, name: &str) -> Option<&KernelSite> {
        self.sites.iter().find(|s| s.kernel.name == name || s.kernel.qualified_name == name)
    }

    pub fn target<'a>(
        &'a self,
        site: &'a KernelSite,
        path: &'a str,
        toolchain: &Toolchain,
        line_in_document: &'a dyn Fn(usize) -> usize,
    ) -> Target<'a> {
        let includes = IncludeResolver { dirs: toolchain.include_dirs.clone(), file_dir: file_dir(Path::new(path)) };
        Target { source: &self.sources[site.source].source, kernel: &site.kernel, path, includes, line_in_document }
    }

    /// Zero-based line of a document byte.
    pub fn line_of(&self, byte: usize) -> usize {
        self.document_line_starts.partition_point(|&s| s <= byte).saturating_sub(1)
    }

    /// Zero-based document line of a zero-based line of the `source`th CUDA source.
    pub fn line_in_document(&self, source: usize, line: usize) -> usize {
        let embedded = &self.sources[source];
        if embedded.is_whole_document() {
            return line;
        }
        let text = &embedded.source.text;
        let start =
            if line == 0 { 0 } else { text.match_indices('\n').nth(line - 1).map_or(text.len(), |(i, _)| i + 1) };
        let doc_byte = embedded.to_document(start);
        self.document_line_starts.partition_point(|&s| s <= doc_byte).saturating_sub(1)
    }

    pub fn analyze(
        &self,
        site: &KernelSite,
        path: &str,
        analyzer: &Analyzer,
        toolchain: &Toolchain,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Analysis, AnalyzeError> {
        let lines = |line| self.line_in_document(site.source, line);
        analyzer.analyze(toolchain, settings, &self.target(site, path, toolchain, &lines), cancel)
    }

    pub fn ptx(
        &self,
        site: &KernelSite,
        path: &str,
        analyzer: &Analyzer,
        toolchain: &Toolchain,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<std::sync::Arc<str>, AnalyzeError> {
        let lines = |line| self.line_in_document(site.source, line);
        analyzer.ptx(toolchain, settings, &self.target(site, path, toolchain, &lines), cancel)
    }

    pub fn sass(
        &self,
        site: &KernelSite,
        path: &str,
        analyzer: &Analyzer,
        toolchain: &Toolchain,
        settings: &Settings,
        cancel: &Cancel,
    ) -> Result<Sass, AnalyzeError> {
        let lines = |line| self.line_in_document(site.source, line);
        analyzer.sass(toolchain, settings, &self.target(site, path, toolchain, &lines), cancel)
    }

    /// Where `site`'s SASS spills and spends its instructions, on the document's lines. `path` is
    /// the file name the compile was given (the SASS names its lines by it); `spills` whether
    /// ptxas reported spills.
    pub fn sass_hints(&self, site: &KernelSite, path: &str, sass: &Sass, spills: bool) -> Vec<PlacedMessage> {
        let profile = sass::line_profile(&sass.text, path);
        let messages: Vec<CompilerMessage> = sass::hints(&profile, &sass.arch, spills)
            .into_iter()
            .map(|hint| CompilerMessage {
                severity: Severity::Hint,
                line: hint.line.saturating_sub(1),
                column: None,
                message: hint.message,
                elsewhere: None,
            })
            .collect();
        self.place(site, &messages).into_iter().map(|m| PlacedMessage { source: MessageSource::Sass, ..m }).collect()
    }

    /// Everything the worker needs to time `site`: compiles it (or takes the cached compile), and
    /// builds the launch spec from its annotation or signature. `n` overrides the problem size.
    #[allow(clippy::too_many_arguments)]
    pub fn timing_request(
        &self,
        site: &KernelSite,
        path: &str,
        analyzer: &Analyzer,
        toolchain: &Toolchain,
        settings: &Settings,
        n: Option<u64>,
        cancel: &Cancel,
    ) -> Result<(TimeRequest, Analysis), String> {
        let analysis = self.analyze(site, path, analyzer, toolchain, settings, cancel).map_err(|e| e.to_string())?;
        let ptx = self.ptx(site, path, analyzer, toolchain, settings, cancel).map_err(|e| e.to_string())?;
        let kernel = &site.kernel;
        let args = analysis.name_expression.split_once('<').map(|(_, rest)| rest.trim_end_matches('>').to_string());
        let params: Vec<String> = match (&kernel.template_params, &args) {
            (Some(template), Some(args)) => {
                kernel.params.iter().map(|p| substitute_template(p, template, args)).collect()
            }
            _ => kernel.params.clone(),
        };
        let mut annotation = kernel.annotation.clone();
        if let Some(n) = n {
            annotation.entries.push(("n".into(), n.to_string()));
        }
        let spec = launch_spec(&params, &annotation, analysis.block_size).map_err(|e| e.to_string())?;
        let request = TimeRequest {
            ptx: ptx.to_string(),
            entry: analysis.lowered_name.clone(),
            spec,
            rule: stop_rule(settings),
            cold: !settings.timing_hot,
        };
        Ok((request, analysis))
    }

    /// Places compiler messages of `site`'s source in the document: from the caret to the end of
    /// the word there, or the whole line's text when there is no caret.
    pub fn place(&self, site: &KernelSite, messages: &[CompilerMessage]) -> Vec<PlacedMessage> {
        let embedded = &self.sources[site.source];
        let text = &embedded.source.text;
        let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        messages
            .iter()
            .map(|m| {
                let line_start = line_starts.get(m.line as usize).copied().unwrap_or(text.len());
                let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
                let line = &text[line_start..line_end];
                let (start, end) =
                    match m.column.map(|c| c as usize).filter(|&c| c < line.len() && line.is_char_boundary(c)) {
                        Some(col) => {
                            let word = line[col..]
                                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                                .unwrap_or(line.len() - col);
                            (line_start + col, line_start + col + word.max(1).min(line.len() - col))
                        }
                        None => {
                            let indent = line.len() - line.trim_start().len();
                            (line_start + indent, line_end)
                        }
                    };
                let range = embedded.to_document(start)..embedded.to_document(end);
                PlacedMessage { range, severity: m.severity, message: m.message.clone(), source: MessageSource::Nvrtc }
            })
            .collect()
    }
}
