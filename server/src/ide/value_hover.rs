//! Hovers on values: a member reached through a value (`x.view`), a keyword argument (`lr=`), a
//! variable or attribute of known type (`x`, `self.fc1`). Each says how the type was found.

use std::fmt::Write;

use super::hover::{reference_markdown, HoverResult};
use super::markdown::{code, code_block, escape_markdown as esc, link};
use crate::catalog::{Catalog, Param, SymbolIdx};
use crate::documents::Document;
use crate::recognize::{Reference, Role};
use crate::values::{self, Answer, ModuleValues, Origin, OriginKind, Typed};

/// Shown instead of a summary where we have not described something yet.
pub const NOT_DESCRIBED: &str = "Not described in the tensorlens catalog yet";

pub fn hover(doc: &Document, catalog: &Catalog, offset: usize) -> Option<HoverResult> {
    let values = doc.values()?;
    let answer = values::answer_at(&values, catalog, offset)?;
    Some(match answer {
        Answer::Member { range, member, receiver } => {
            let reference = Reference {
                range: range.clone(),
                name: member.name.clone(),
                role: Role::Access,
                symbol: Some(member.symbol),
                system: Some(catalog.system_of(member.symbol)),
            };
            let markdown = reference_markdown(&reference, catalog, "python");
            let line = receiver_line(&values, &receiver);
            HoverResult { range, markdown: insert_after_title(&markdown, &line) }
        }
        Answer::Variable { range, kind, value } => {
            let mut label = values::type_label(&values, &value.ty)?;
            if value.origin.as_ref().is_some_and(|o| o.how == OriginKind::Annotated && may_be_none(&o.from)) {
                // `x: Tensor | None`: the type flow reads through the `None`, the hover says it.
                label.push_str(" | None");
            }
            let mut out = format!("**{}** · {} · {}\n\n", esc(short_name(&value.text)), kind.label(), esc(&label));
            if let Some(origin) = &value.origin {
                let _ = writeln!(out, "*{}*\n", origin_text(origin));
            }
            if let Some(shape) = crate::shapes::shape_at(&values, catalog, offset) {
                let _ = writeln!(out, "shape {}\n", code(&shape));
            }
            let eval = values::Eval::new(&values, catalog);
            if let Some(class) = values::described_class(&eval, &value.ty) {
                class_paragraph(&mut out, catalog, class, &label);
            }
            HoverResult { range, markdown: out }
        }
        Answer::Keyword { range, callee, param, via } => {
            HoverResult { range, markdown: keyword_markdown(&values, catalog, callee, &param, via.as_ref()) }
        }
    })
}

/// Whether an annotation admits `None`: `Optional[T]`, `T | None`, `Union[T, None]`.
fn may_be_none(annotation: &str) -> bool {
    annotation.starts_with("Optional[")
        || annotation.contains(".Optional[")
        || annotation.split(['|', ',', '[', ']']).any(|part| part.trim() == "None")
}

/// `self.fc1` is shown as `fc1`, the name under the cursor.
fn short_name(text: &str) -> &str {
    text.rsplit('.').next().unwrap_or(text)
}

fn insert_after_title(markdown: &str, line: &str) -> String {
    match markdown.split_once("\n\n") {
        Some((title, rest)) => format!("{title}\n\n*{line}*\n\n{rest}"),
        None => format!("{markdown}\n\n*{line}*\n"),
    }
}

fn receiver_line(values: &ModuleValues, receiver: &Typed) -> String {
    let label = values::type_label(values, &receiver.ty).unwrap_or_else(|| "?".into());
    match &receiver.origin {
        Some(origin) => format!("{}: {}, {}", code(&receiver.text), esc(&label), origin_text(origin)),
        None => format!("{}: {}", code(&receiver.text), esc(&label)),
    }
}

fn origin_text(origin: &Origin) -> String {
    let line = origin.line + 1;
    match origin.how {
        OriginKind::Assigned => format!("from {} at line {line}", code(&origin.from)),
        OriginKind::Registered => format!("registered from {} at line {line}", code(&origin.from)),
        OriginKind::Annotated => format!("annotated {}", code(&origin.from)),
        OriginKind::Loop => format!("element of {} at line {line}", code(&origin.from)),
        OriginKind::With => format!("from {} at line {line}", code(&format!("with {}", origin.from))),
        OriginKind::SelfParameter => "the instance the method is called on".to_string(),
        OriginKind::Default => format!("from its default {}", code(&origin.from)),
        OriginKind::Callers { more: 0 } => format!("passed by {} at line {line}", code(&origin.from)),
        OriginKind::Callers { more } => {
            let calls = if more == 1 { "call" } else { "calls" };
            format!("passed by {} at line {line} and {more} more {calls}", code(&origin.from))
        }
    }
}

/// What the value's class is: its summary and link.
fn class_paragraph(out: &mut String, catalog: &Catalog, class: SymbolIdx, label: &str) {
    let symbol = catalog.symbol(class);
    let system = catalog.system(catalog.system_of(class));
    if *symbol.name != *label {
        let _ = write!(out, "A subclass of {} ({}).\n\n", code(&symbol.name), esc(&system.name));
    }
    if symbol.is_curated() {
        let _ = writeln!(out, "{}: {}", code(&symbol.name), esc(&symbol.summary));
    } else {
        let _ = writeln!(out, "{} ({}): *{NOT_DESCRIBED}.*", code(&symbol.name), esc(&system.name));
    }
    if let Some(docs) = link("Documentation", &symbol.docs) {
        let _ = write!(out, "\n{docs}\n");
    }
}

fn keyword_markdown(
    values: &ModuleValues,
    catalog: &Catalog,
    callee: SymbolIdx,
    param: &Param,
    via: Option<&Typed>,
) -> String {
    let symbol = catalog.symbol(callee);
    let system = catalog.system(catalog.system_of(callee));
    let mut out = format!("**{}** · parameter of {}\n\n", esc(&param.name), esc(&symbol.name));
    let mut written = param.name.to_string();
    if let Some(annotation) = &param.annotation {
        let _ = write!(written, ": {annotation}");
    }
    if let Some(default) = &param.default {
        let _ = write!(written, "{}{default}", if param.annotation.is_some() { " = " } else { "=" });
    }
    out.push_str(&code_block("python", &written));
    out.push('\n');
    if param.summary.is_empty() {
        let _ = writeln!(
            out,
            "*{NOT_DESCRIBED}: name and default from {}.*",
            esc(symbol.source.as_deref().unwrap_or("the package"))
        );
    } else {
        let _ = writeln!(out, "{}", esc(&param.summary));
    }
    if let Some(via) = via {
        let _ = write!(out, "\n*{}*\n", receiver_line(values, via));
    }
    let _ = write!(out, "\n---\n**{}** · {} · {}", esc(&symbol.name), esc(&symbol.kind), esc(&system.name));
    if symbol.is_curated() {
        let _ = write!(out, ": {}", esc(&symbol.summary));
    }
    out.push('\n');
    if let Some(docs) = link("Documentation", &symbol.docs) {
        let _ = write!(out, "\n{docs}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::test_support::{catalog, fixture};

    fn title(text: &str) -> Option<String> {
        let (doc, offset) = fixture("a.py", text);
        hover(&doc, catalog(), offset).map(|h| h.markdown.lines().next().unwrap_or("").to_string())
    }

    #[test]
    fn optional_annotations_say_none() {
        let src = "import torch\nclass C:\n    def __init__(self):\n        self.m$0ask: torch.Tensor | None = None\n";
        assert_eq!(title(src).as_deref(), Some("**mask** · attribute · torch.Tensor | None"));
        let src = "import torch\nfrom typing import Optional\ndef f(x$0: Optional[torch.Tensor]):\n    pass\n";
        assert_eq!(title(src).as_deref(), Some("**x** · parameter · torch.Tensor | None"));
        let src = "import torch\ndef f(x$0: torch.Tensor):\n    pass\n";
        assert_eq!(title(src).as_deref(), Some("**x** · parameter · torch.Tensor"));
    }

    #[test]
    fn may_be_none_reads_the_written_forms() {
        assert!(may_be_none("Optional[torch.Tensor]"));
        assert!(may_be_none("typing.Optional[Tensor]"));
        assert!(may_be_none("Tensor | None"));
        assert!(may_be_none("Union[Tensor, None]"));
        assert!(!may_be_none("torch.Tensor"));
        assert!(!may_be_none("NoneType2"));
    }
}
