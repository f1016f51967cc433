//! Editor terms into LSP values.

use std::ops::Range;

use tower_lsp_server::ls_types::{self as lsp, Uri};

use crate::catalog::schema::is_safe_link;
use crate::catalog::{Catalog, SymbolIdx};
use crate::documents::Document;
use crate::ide;
use crate::kernels::session::IrAnswer;
use crate::text::{LineCol, PositionEncoding};

pub fn position(pos: LineCol) -> lsp::Position {
    lsp::Position { line: pos.line, character: pos.col }
}

pub fn range(doc: &Document, range: &Range<usize>, encoding: PositionEncoding) -> lsp::Range {
    let (start, end) = doc.range(range, encoding);
    lsp::Range { start: position(start), end: position(end) }
}

pub fn inlay_hint(doc: &Document, hint: ide::InlayHint, encoding: PositionEncoding) -> lsp::InlayHint {
    lsp::InlayHint {
        position: range(doc, &(hint.offset..hint.offset), encoding).start,
        label: lsp::InlayHintLabel::String(hint.label),
        kind: Some(lsp::InlayHintKind::TYPE),
        text_edits: None,
        tooltip: None,
        padding_left: None,
        padding_right: Some(true),
        data: None,
    }
}

pub fn hover(doc: &Document, res: ide::HoverResult, encoding: PositionEncoding) -> lsp::Hover {
    lsp::Hover {
        contents: lsp::HoverContents::Markup(lsp::MarkupContent {
            kind: lsp::MarkupKind::Markdown,
            value: res.markdown,
        }),
        range: Some(range(doc, &res.range, encoding)),
    }
}

pub fn completions(items: Vec<ide::Completion>) -> lsp::CompletionResponse {
    let items = items
        .into_iter()
        .map(|item| lsp::CompletionItem {
            label: item.label,
            kind: Some(match item.kind {
                ide::CompletionKind::Method => lsp::CompletionItemKind::METHOD,
                ide::CompletionKind::Function => lsp::CompletionItemKind::FUNCTION,
                ide::CompletionKind::Class => lsp::CompletionItemKind::CLASS,
                ide::CompletionKind::Module => lsp::CompletionItemKind::MODULE,
                ide::CompletionKind::Attribute => lsp::CompletionItemKind::PROPERTY,
                ide::CompletionKind::Constant => lsp::CompletionItemKind::CONSTANT,
            }),
            detail: item.detail,
            documentation: item.documentation.map(|value| {
                lsp::Documentation::MarkupContent(lsp::MarkupContent { kind: lsp::MarkupKind::Markdown, value })
            }),
            ..Default::default()
        })
        .collect();
    lsp::CompletionResponse::List(lsp::CompletionList { is_incomplete: false, items })
}

/// Parameter offsets count UTF-16 code units of the label, as positions do by default.
pub fn signature_help(help: ide::SignatureHelp) -> lsp::SignatureHelp {
    let utf16 = |byte: usize| help.label.get(..byte).map_or(0, |s| s.encode_utf16().count()) as u32;
    let parameters = help
        .parameters
        .iter()
        .map(|(range, summary)| lsp::ParameterInformation {
            label: lsp::ParameterLabel::LabelOffsets([utf16(range.start), utf16(range.end)]),
            documentation: summary.clone().map(lsp::Documentation::String),
        })
        .collect();
    let signature = lsp::SignatureInformation {
        label: help.label.clone(),
        documentation: help.documentation.map(lsp::Documentation::String),
        parameters: Some(parameters),
        active_parameter: help.active_parameter.map(|a| a as u32),
    };
    lsp::SignatureHelp {
        signatures: vec![signature],
        active_signature: Some(0),
        active_parameter: help.active_parameter.map(|a| a as u32),
    }
}

pub fn document_link(doc: &Document, link: ide::Link, encoding: PositionEncoding) -> Option<lsp::DocumentLink> {
    Some(lsp::DocumentLink {
        range: range(doc, &link.range, encoding),
        target: link.target.parse().ok(),
        tooltip: Some(link.tooltip),
        data: None,
    })
}

pub fn diagnostic(doc: &Document, diag: &ide::Diagnostic, encoding: PositionEncoding) -> lsp::Diagnostic {
    lsp::Diagnostic {
        range: range(doc, &diag.range, encoding),
        severity: Some(match diag.severity {
            ide::Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            ide::Severity::Information => lsp::DiagnosticSeverity::INFORMATION,
            ide::Severity::Hint => lsp::DiagnosticSeverity::HINT,
        }),
        code: Some(lsp::NumberOrString::String(diag.code.to_string())),
        source: Some("tensorlens".to_string()),
        message: diag.message.clone(),
        tags: diag.deprecated.then(|| vec![lsp::DiagnosticTag::DEPRECATED]),
        ..Default::default()
    }
}

pub fn code_action(
    doc: &Document,
    uri: &Uri,
    action: ide::Action,
    encoding: PositionEncoding,
    diagnostics: &[lsp::Diagnostic],
) -> lsp::CodeActionOrCommand {
    match action.kind {
        ide::ActionKind::QuickFix { edits, preferred } => {
            let edits = edits
                .iter()
                .map(|e| lsp::TextEdit { range: range(doc, &e.range, encoding), new_text: e.new_text.clone() })
                .collect();
            let changes = std::iter::once((uri.clone(), edits)).collect();
            lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: action.title,
                kind: Some(lsp::CodeActionKind::QUICKFIX),
                diagnostics: (!diagnostics.is_empty()).then(|| diagnostics.to_vec()),
                edit: Some(lsp::WorkspaceEdit { changes: Some(changes), ..Default::default() }),
                is_preferred: Some(preferred),
                ..Default::default()
            })
        }
        ide::ActionKind::OpenUrl(url) => lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
            title: action.title.clone(),
            kind: Some(lsp::CodeActionKind::EMPTY),
            command: Some(lsp::Command {
                title: action.title,
                command: super::ext::OPEN_URL.to_string(),
                arguments: Some(vec![serde_json::Value::String(url)]),
            }),
            ..Default::default()
        }),
    }
}

pub fn symbol_kind(kind: &str) -> lsp::SymbolKind {
    match kind {
        "module" | "header" => lsp::SymbolKind::MODULE,
        "namespace" => lsp::SymbolKind::NAMESPACE,
        "class" => lsp::SymbolKind::CLASS,
        "method" => lsp::SymbolKind::METHOD,
        "attribute" => lsp::SymbolKind::PROPERTY,
        "constant" | "macro" => lsp::SymbolKind::CONSTANT,
        "type" => lsp::SymbolKind::STRUCT,
        "enum" => lsp::SymbolKind::ENUM,
        "builtin" => lsp::SymbolKind::VARIABLE,
        "qualifier" => lsp::SymbolKind::KEY,
        _ => lsp::SymbolKind::FUNCTION,
    }
}

/// A catalog symbol as a workspace symbol: its location is its documentation page.
#[allow(deprecated)] // `SymbolInformation::deprecated` is a required field of the type.
pub fn workspace_symbol(catalog: &Catalog, idx: SymbolIdx) -> Option<lsp::SymbolInformation> {
    let symbol = catalog.symbol(idx);
    let system = catalog.system(catalog.system_of(idx));
    Some(lsp::SymbolInformation {
        name: symbol.name.to_string(),
        kind: symbol_kind(&symbol.kind),
        tags: symbol.deprecated.is_some().then(|| vec![lsp::SymbolTag::DEPRECATED]),
        deprecated: None,
        location: lsp::Location {
            uri: Some(&symbol.docs).filter(|docs| is_safe_link(docs))?.parse().ok()?,
            range: lsp::Range::default(),
        },
        container_name: Some(system.name.to_string()),
    })
}

/// A lens above a kernel; its command names the kernel, so it still works after edits move it.
pub fn kernel_lens(
    doc: &Document,
    lens: crate::kernels::session::KernelLens,
    encoding: PositionEncoding,
) -> lsp::CodeLens {
    let args = vec![serde_json::json!({ "uri": doc.uri, "kernel": lens.kernel })];
    let command = super::ext::lens_command(lens.action);
    lsp::CodeLens {
        range: range(doc, &lens.name_range, encoding),
        command: Some(lsp::Command::new(lens.title, command.into(), Some(args))),
        data: None,
    }
}

/// `tensorlens.showIr`'s answer: the text and a file holding it, or why there is none.
pub fn ir_answer(answer: IrAnswer) -> serde_json::Value {
    let mut value = serde_json::json!({
        "kernel": answer.kernel,
        "ir": answer.ir,
        "config": answer.config,
        "configs": answer.configs,
    });
    match (&answer.text, &answer.error) {
        (Some(text), _) => {
            value["languageId"] = answer.ir.language_id().into();
            value["text"] = (**text).into();
            value["uri"] = answer.file.and_then(Uri::from_file_path).map(|u| u.as_str().to_string()).into();
        }
        (None, error) => value["error"] = error.clone().unwrap_or_else(|| "no text".into()).into(),
    }
    value
}
