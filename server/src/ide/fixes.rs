//! Deprecation fixes: a deprecated call rewritten into its replacement by the catalog's `fix`,
//! applied to the call as written (its positional and keyword arguments, the names the file's imports
//! bind), or the exact reason there is no automatic fix for it.
//!
//! Pure: a document and the catalog in, edits or a reason out. No rewrite is offered that the
//! template cannot make from this very call: an argument it cannot map, `*args`/`**kwargs`, a bare
//! reference where a call is needed or a name the file cannot reach all give a reason instead.

use std::ops::Range;

use tree_sitter::Node;

use super::TextEdit;
use crate::catalog::schema::{template_pieces, Absent, Piece};
use crate::catalog::{Catalog, Fix, Symbol};
use crate::documents::Document;
use crate::parse::Language;
use crate::recognize::{ImportBinding, Reference, Role};

/// What the fix of one deprecated reference is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// An automatic rewrite: the new code of the call (or name) and the edits that make it.
    Rewrite { title: String, new_code: String, edits: Vec<TextEdit>, preferred: bool },
    /// No automatic fix; the words say what to change by hand.
    Manual(String),
}

/// The fix of a deprecated reference, `None` when the symbol is not deprecated.
pub fn plan(doc: &Document, catalog: &Catalog, reference: &Reference) -> Option<Plan> {
    let symbol = catalog.symbol(reference.symbol?);
    symbol.deprecated.as_ref()?;
    let Some(fix) = &symbol.fix else {
        // Not reviewed against the replacement's real signature: a message, never an edit.
        return Some(Plan::Manual(match &symbol.replacement {
            Some(replacement) => format!("Use {replacement}."),
            None => String::new(),
        }));
    };
    if reference.role == Role::Import && fix.kind != "none" {
        return Some(Plan::Manual(
            "The uses this import binds get the quick fix; a fix that rewrites the last of them takes the import out."
                .to_string(),
        ));
    }
    Some(match fix.kind.as_ref() {
        "rename" => rename(doc, catalog, reference, &symbol, fix),
        "template" => template(doc, catalog, reference, &symbol, fix),
        _ => Plan::Manual(match (&fix.note, &symbol.replacement) {
            (Some(note), _) => format!("No automatic fix: {note}"),
            (None, Some(replacement)) => {
                format!("No automatic fix: {replacement} is not a drop-in substitute.")
            }
            (None, None) => String::new(),
        }),
    })
}

/// The diagnostic's message for a deprecated reference: what is deprecated, and what to do.
pub fn message(symbol: &Symbol<'_>, plan: &Plan) -> String {
    let note = symbol.deprecated.as_deref().unwrap_or_default();
    let mut res = format!("{} is deprecated: {note}", symbol.name);
    let advice = match plan {
        Plan::Rewrite { new_code, .. } => format!("Use {new_code}."),
        Plan::Manual(advice) => advice.clone(),
    };
    if !advice.is_empty() {
        res.push(' ');
        res.push_str(&advice);
    }
    res
}

fn rename(doc: &Document, catalog: &Catalog, reference: &Reference, symbol: &Symbol<'_>, fix: &Fix<'_>) -> Plan {
    let Some(replacement) = symbol.replacement.as_deref() else { return Plan::Manual(String::new()) };
    let manual = |why: &str| Plan::Manual(format!("No automatic fix here ({why}): use {replacement}."));
    let (range, new_code, mut edits) = match doc.language {
        Some(Language::Python) => {
            let Some(tree) = &doc.tree else { return manual("the file does not parse") };
            let Some(callee) = python_callee(tree.root_node(), &reference.range) else {
                return manual("the name is not written as a plain dotted name");
            };
            let mut edits = Vec::new();
            let Some(written) = python_name(doc, catalog, replacement, callee.start_byte(), &mut edits) else {
                return manual(&format!("the file binds {} to something else", root_of(replacement)));
            };
            (callee.byte_range(), written, edits)
        }
        _ => (reference.range.clone(), replacement.to_string(), Vec::new()),
    };
    edits.push(TextEdit { range, new_text: new_code.clone() });
    Plan::Rewrite { title: format!("Replace {} with {replacement}", symbol.name), new_code, edits, preferred: fix.safe }
}

fn template(doc: &Document, catalog: &Catalog, reference: &Reference, symbol: &Symbol<'_>, fix: &Fix<'_>) -> Plan {
    let template = fix.template.as_deref().unwrap_or_default();
    let by_hand = |why: String| {
        let mut res = format!("No automatic fix for this call: {why}; write it as {} by hand.", pretty(template));
        if let Some(note) = &fix.note {
            res.push(' ');
            res.push_str(note);
        }
        Plan::Manual(res)
    };
    let Some(tree) = &doc.tree else { return by_hand("the file does not parse".to_string()) };
    let root = tree.root_node();
    let python = doc.language == Some(Language::Python);
    let callee = if python { python_callee(root, &reference.range) } else { c_callee(root, &reference.range) };
    let (call_range, call_node, args) = match callee {
        Some(callee) => {
            let Some(call) = enclosing_call(callee, python) else {
                return by_hand(format!("{} is not called here", symbol.name));
            };
            match call_args(doc, call, python) {
                Ok(args) => (call.byte_range(), Some(call), args),
                Err(why) => return by_hand(why),
            }
        }
        // C and CUDA: a macro body is raw text to the parser; its calls are read from the text.
        None if !python => match c_call_in_text(doc, reference.range.end) {
            Some((end, args)) => (reference.range.start..end, None, args),
            None => return by_hand(format!("{} is not called here", symbol.name)),
        },
        None => return by_hand("this use is not a call the fix can read".to_string()),
    };
    let mut edits = Vec::new();
    let mut resolve = |name: &str| -> Result<String, String> {
        if !python {
            return Ok(name.to_string());
        }
        python_name(doc, catalog, name, call_range.start, &mut edits)
            .ok_or_else(|| format!("the file binds {} to something else", root_of(name)))
    };
    let rendered = match render(template, &fix.params, &args, &mut resolve) {
        Ok(rendered) => rendered,
        Err(why) => return by_hand(why),
    };
    let safe_context = call_node.is_some_and(|call| python_safe_context(call, python));
    let new_code = if is_operator_expression(template) && !safe_context { format!("({rendered})") } else { rendered };
    edits.push(TextEdit { range: call_range, new_text: new_code.clone() });
    let mut short = new_code.clone();
    if short.chars().count() > 80 {
        short = short.chars().take(77).collect::<String>() + "...";
    }
    Plan::Rewrite { title: format!("Rewrite as {short}"), new_code, edits, preferred: fix.safe }
}

/// Takes the `from ... import name` that bound a rewritten use out of `edits`' result when that use
/// was the name's only one, so that the deprecated name is gone from the file. Walks the whole tree,
/// so only code actions call it, never diagnostics.
pub fn drop_unused_from_import(doc: &Document, reference: &Reference, edits: &mut Vec<TextEdit>) {
    if doc.language != Some(Language::Python) {
        return;
    }
    let Some(tree) = &doc.tree else { return };
    let root = tree.root_node();
    let Some(node) = root.descendant_for_byte_range(reference.range.start, reference.range.end) else { return };
    if node.kind() != "identifier"
        || node.byte_range() != reference.range
        || node.parent().is_some_and(|p| p.kind() == "attribute")
    {
        return;
    }
    let name = doc.slice(node.byte_range());
    let mut cursor = root.walk();
    let Some((statement, names, idx)) =
        root.children(&mut cursor).filter(|c| c.kind() == "import_from_statement").find_map(|stmt| {
            let mut names_cursor = stmt.walk();
            let names: Vec<Node<'_>> = stmt.children_by_field_name("name", &mut names_cursor).collect();
            let idx = names.iter().position(|n| {
                let bound = match n.kind() {
                    "aliased_import" => n.child_by_field_name("alias"),
                    _ => Some(*n),
                };
                bound.is_some_and(|b| doc.slice(b.byte_range()) == name)
            })?;
            Some((stmt, names, idx))
        })
    else {
        return;
    };
    // Every other use of the name keeps the import.
    let mut uses = 0;
    let mut walk = root.walk();
    'walk: loop {
        let current = walk.node();
        let inside_import =
            current.start_byte() >= statement.start_byte() && current.end_byte() <= statement.end_byte();
        if current.kind() == "identifier" && !inside_import && doc.slice(current.byte_range()) == name {
            uses += 1;
        }
        if !inside_import && walk.goto_first_child() {
            continue;
        }
        while !walk.goto_next_sibling() {
            if !walk.goto_parent() {
                break 'walk;
            }
        }
    }
    if uses != 1 {
        return;
    }
    let removal = if names.len() == 1 {
        let (start, end) = (statement.start_byte(), statement.end_byte());
        // A new import written right after this statement takes its place instead.
        if let Some(pos) = edits.iter().position(|e| e.range == (end..end) && e.new_text.starts_with('\n')) {
            let insert = edits.remove(pos);
            TextEdit { range: start..end, new_text: insert.new_text[1..].to_string() }
        } else {
            let newline = doc.slice(end..end + 1) == "\n";
            TextEdit { range: start..end + usize::from(newline), new_text: String::new() }
        }
    } else if idx > 0 {
        TextEdit { range: names[idx - 1].end_byte()..names[idx].end_byte(), new_text: String::new() }
    } else {
        TextEdit { range: names[0].start_byte()..names[1].start_byte(), new_text: String::new() }
    };
    if edits.iter().any(|e| e.range.start < removal.range.end && removal.range.start < e.range.end) {
        return;
    }
    edits.push(removal);
}

/// The arguments of one call as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallArgs {
    pub positional: Vec<String>,
    pub keywords: Vec<(String, String)>,
}

/// Renders `template` for a call: `params` bind its arguments, `resolve` writes a catalog name the
/// way the file reaches it. `Err` says why this call cannot be rewritten.
pub fn render(
    template: &str,
    params: &[impl AsRef<str>],
    args: &CallArgs,
    resolve: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let pieces = template_pieces(template)?;
    let params: Vec<&str> = params.iter().map(AsRef::as_ref).collect();
    // Each parameter's argument, as written.
    let mut bound: Vec<Option<&str>> = vec![None; params.len()];
    if args.positional.len() > params.len() {
        return Err(format!(
            "it passes {} positional arguments, and the fix knows {} parameters ({})",
            args.positional.len(),
            params.len(),
            params.join(", ")
        ));
    }
    for (idx, value) in args.positional.iter().enumerate() {
        bound[idx] = Some(value);
    }
    for (name, value) in &args.keywords {
        let Some(idx) = params.iter().position(|p| p == name) else {
            return Err(format!("the keyword argument {name}= is not one the fix can map"));
        };
        if bound[idx].is_some() {
            return Err(format!("{name} is passed twice"));
        }
        bound[idx] = Some(value);
    }
    let used: Vec<&str> = pieces
        .iter()
        .filter_map(|(_, piece)| match piece {
            Piece::Arg { param, .. } => Some(*param),
            _ => None,
        })
        .collect();
    let has_rest = pieces.iter().any(|(_, p)| *p == Piece::Rest);
    let rest: Vec<String> = params
        .iter()
        .zip(&bound)
        .filter(|(param, _)| !used.contains(param))
        .filter_map(|(param, value)| value.map(|value| format!("{param}={value}")))
        .collect();
    if !has_rest {
        if let Some((param, value)) =
            params.iter().zip(&bound).find_map(|(p, v)| v.filter(|_| !used.contains(p)).map(|v| (p, v)))
        {
            return Err(format!("the argument {param}={value} has no counterpart in the rewrite"));
        }
    }
    let value_of = |param: &str| params.iter().position(|p| *p == param).and_then(|idx| bound[idx]);
    // Template arguments left out: an optional argument the call does not pass, an empty `{**}`.
    let mut removed = vec![false; template.len()];
    for (range, piece) in &pieces {
        let leave_out = match piece {
            Piece::Arg { param, absent: Absent::Omit } => value_of(param).is_none(),
            Piece::Rest => rest.is_empty(),
            _ => false,
        };
        if leave_out {
            let span = item_span(template, range.clone())
                .ok_or_else(|| format!("the template cannot leave out {}", &template[range.clone()]))?;
            removed[span].iter_mut().for_each(|r| *r = true);
        }
    }
    let mut out = String::new();
    for (range, piece) in &pieces {
        match piece {
            Piece::Text(_) => {
                for (offset, ch) in template[range.clone()].char_indices() {
                    if !removed[range.start + offset] {
                        out.push(ch);
                    }
                }
            }
            _ if removed[range.start] => {}
            Piece::Name(name) => out.push_str(&resolve(name)?),
            Piece::Rest => out.push_str(&rest.join(", ")),
            Piece::Arg { param, absent } => match (value_of(param), absent) {
                (Some(value), _) => out.push_str(value),
                (None, Absent::Default(default)) => out.push_str(&with_names(default, resolve)?),
                (None, _) => return Err(format!("it does not pass {param}, which the rewrite needs")),
            },
        }
    }
    Ok(out)
}

/// A default's text with its `` `names` `` written the way the file reaches them.
fn with_names(text: &str, resolve: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for (idx, part) in text.split('`').enumerate() {
        if idx % 2 == 1 {
            out.push_str(&resolve(part)?);
        } else {
            out.push_str(part);
        }
    }
    Ok(out)
}

/// The template as a reader would write it: names without their backticks, placeholders as the
/// parameter they stand for.
pub fn pretty(template: &str) -> String {
    let Ok(pieces) = template_pieces(template) else { return template.to_string() };
    pieces
        .into_iter()
        .map(|(_, piece)| match piece {
            Piece::Text(text) | Piece::Name(text) => text.to_string(),
            Piece::Arg { param, .. } => param.to_string(),
            Piece::Rest => "...".to_string(),
        })
        .collect()
}

/// The byte range of the template argument around `piece` with one of its commas, for leaving
/// it out; `None` when the piece is not inside parentheses.
fn item_span(template: &str, piece: Range<usize>) -> Option<Range<usize>> {
    let bytes = template.as_bytes();
    let mut depth = 0usize;
    let mut left = None;
    for idx in (0..piece.start).rev() {
        match bytes[idx] {
            b')' | b']' | b'}' => depth += 1,
            b'(' | b'[' | b'{' if depth > 0 => depth -= 1,
            b'(' | b'[' | b'{' => {
                left = Some((idx, false));
                break;
            }
            b',' if depth == 0 => {
                left = Some((idx, true));
                break;
            }
            _ => {}
        }
    }
    let (left, after_comma) = left?;
    let mut depth = 0usize;
    let mut right = None;
    for (idx, &byte) in bytes.iter().enumerate().skip(piece.end) {
        match byte {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth > 0 => depth -= 1,
            b')' | b']' | b'}' => {
                right = Some((idx, false));
                break;
            }
            b',' if depth == 0 => {
                right = Some((idx, true));
                break;
            }
            _ => {}
        }
    }
    let (right, before_comma) = right?;
    Some(if after_comma {
        left..right
    } else if before_comma {
        let mut end = right + 1;
        while bytes.get(end) == Some(&b' ') {
            end += 1;
        }
        left + 1..end
    } else {
        left + 1..right
    })
}

/// Whether the template's code is an operator expression at its top level
/// (`len(...) > 0`), which may need parentheses where the call stood.
fn is_operator_expression(template: &str) -> bool {
    let mut depth = 0usize;
    let mut quote = None;
    for byte in template.bytes() {
        match (quote, byte) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'' | b'`') => quote = Some(byte),
            (None, b'(' | b'[' | b'{') => depth += 1,
            (None, b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            (None, b' ') if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Python places where an operator expression needs no parentheses around it.
fn python_safe_context(call: Node<'_>, python: bool) -> bool {
    const SAFE: &[&str] = &[
        "expression_statement",
        "assignment",
        "return_statement",
        "if_statement",
        "elif_clause",
        "while_statement",
        "argument_list",
        "keyword_argument",
        "parenthesized_expression",
        "assert_statement",
        "not_operator",
        "boolean_operator",
        "list",
        "tuple",
        "pair",
    ];
    python && call.parent().is_some_and(|parent| SAFE.contains(&parent.kind()))
}

/// The dotted name a Python reference ends: the attribute chain whose last part is `range`.
fn python_callee<'t>(root: Node<'t>, range: &Range<usize>) -> Option<Node<'t>> {
    let mut node = root.descendant_for_byte_range(range.start, range.end)?;
    if node.byte_range() != *range || node.kind() != "identifier" {
        return None;
    }
    while let Some(parent) = node.parent() {
        let is_attribute_part = parent.kind() == "attribute"
            && parent.child_by_field_name("attribute").is_some_and(|attr| attr.id() == node.id());
        if !is_attribute_part {
            break;
        }
        node = parent;
    }
    // Only module paths: every part of the chain a plain name.
    let mut cursor = node;
    while cursor.kind() == "attribute" {
        cursor = cursor.child_by_field_name("object")?;
    }
    (cursor.kind() == "identifier").then_some(node)
}

/// The name a C or CUDA reference is: the identifier, or the qualified name it ends.
fn c_callee<'t>(root: Node<'t>, range: &Range<usize>) -> Option<Node<'t>> {
    let mut node = root.descendant_for_byte_range(range.start, range.end)?;
    if node.byte_range() != *range {
        return None;
    }
    while let Some(parent) = node.parent().filter(|p| p.kind() == "qualified_identifier") {
        node = parent;
    }
    Some(node)
}

/// The call whose callee is `callee`.
fn enclosing_call(callee: Node<'_>, python: bool) -> Option<Node<'_>> {
    let parent = callee.parent()?;
    let kind = if python { "call" } else { "call_expression" };
    let is_callee = parent.child_by_field_name("function").is_some_and(|f| f.id() == callee.id());
    (parent.kind() == kind && is_callee).then_some(parent)
}

/// The arguments of a call, or why they cannot be mapped one by one.
fn call_args(doc: &Document, call: Node<'_>, python: bool) -> Result<CallArgs, String> {
    let Some(list) = call.child_by_field_name("arguments").filter(|a| a.kind() == "argument_list") else {
        return Err("its arguments are not a plain argument list".to_string());
    };
    let mut res = CallArgs::default();
    let mut cursor = list.walk();
    for arg in list.named_children(&mut cursor) {
        let text = || doc.slice(arg.byte_range());
        match arg.kind() {
            "comment" => {}
            "list_splat" | "dictionary_splat" => {
                return Err(format!("it passes {}, which cannot be mapped argument by argument", text()))
            }
            "keyword_argument" if python => {
                let (Some(name), Some(value)) = (arg.child_by_field_name("name"), arg.child_by_field_name("value"))
                else {
                    return Err("an argument does not parse".to_string());
                };
                res.keywords.push((doc.slice(name.byte_range()), doc.slice(value.byte_range())));
            }
            _ if !res.keywords.is_empty() => return Err("a positional argument follows a keyword".to_string()),
            _ => res.positional.push(text()),
        }
    }
    if list.has_error() {
        return Err("its arguments do not parse".to_string());
    }
    Ok(res)
}

/// A C call read from the text after its name at `after` (in a `#define` body): the end of its
/// closing parenthesis and its arguments split at the top-level commas. `None` when no balanced
/// argument list follows on the same logical line.
fn c_call_in_text(doc: &Document, after: usize) -> Option<(usize, CallArgs)> {
    let rest = doc.slice(after..after.saturating_add(4096));
    let open = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    if rest.as_bytes().get(open) != Some(&b'(') {
        return None;
    }
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut arg_start = open + 1;
    let mut args = CallArgs::default();
    for (idx, byte) in rest.bytes().enumerate().skip(open) {
        if let Some(q) = quote {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'\n' => return None,
                _ if byte == q => quote = None,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' | b'\'' => quote = Some(byte),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    let last = rest[arg_start..idx].trim();
                    if !last.is_empty() || !args.positional.is_empty() {
                        args.positional.push(last.to_string());
                    }
                    return Some((after + idx + 1, args));
                }
            }
            b',' if depth == 1 => {
                args.positional.push(rest[arg_start..idx].trim().to_string());
                arg_start = idx + 1;
            }
            // A line that does not continue ends the macro.
            b'\n' if !rest[..idx].ends_with('\\') => return None,
            _ => {}
        }
    }
    None
}

fn root_of(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// How the file at `at` writes the catalog name `qualified`: through the longest module-level
/// import that binds a prefix of it (`import torch as th` gives `th.amp.autocast`), or, when no
/// import binds its root, in full with an `import` added to `edits`. `None` when the root name is
/// bound to something else.
fn python_name(
    doc: &Document,
    catalog: &Catalog,
    qualified: &str,
    at: usize,
    edits: &mut Vec<TextEdit>,
) -> Option<String> {
    let imports: Vec<&ImportBinding> = doc.recognition.module_imports.iter().chain(doc.outer_imports()).collect();
    let best = imports
        .iter()
        .filter(|b| qualified == b.target || qualified.strip_prefix(&*b.target).is_some_and(|r| r.starts_with('.')))
        .max_by_key(|b| b.target.len());
    if let Some(binding) = best {
        return Some(format!("{}{}", binding.name, &qualified[binding.target.len()..]));
    }
    let root = root_of(qualified);
    if imports.iter().any(|b| b.name == root) {
        return None;
    }
    // The longest prefix the catalog knows as a module is imported, so that its members resolve
    // (`import mlx.core`); else the module a catalogued function or class is in; else the package.
    let parent = qualified.rsplit_once('.').map(|(parent, _)| parent);
    let top_level_kind = |idx| matches!(catalog.kind_of(idx), "class" | "function" | "decorator" | "constant");
    let module = qualified
        .rmatch_indices('.')
        .map(|(idx, _)| &qualified[..idx])
        .find(|prefix| catalog.lookup(prefix).is_some_and(|idx| catalog.kind_of(idx) == "module"))
        .or(parent.filter(|_| catalog.lookup(qualified).is_some_and(top_level_kind)))
        .unwrap_or(root);
    let statement = format!("import {module}");
    // An import this fix adds already binds the root (`import torch.amp` binds `torch`).
    let binds_root = |text: &str| text.trim().strip_prefix("import ").is_some_and(|m| root_of(m) == root);
    if !edits.iter().any(|e| binds_root(&e.new_text)) {
        edits.push(import_edit(doc, &statement, at));
    }
    Some(qualified.to_string())
}

/// Where a new import goes: after the last module-level import above `at`, else at the start of
/// the top-level statement that holds `at`.
fn import_edit(doc: &Document, statement: &str, at: usize) -> TextEdit {
    let Some(tree) = &doc.tree else { return TextEdit { range: 0..0, new_text: format!("{statement}\n") } };
    let root = tree.root_node();
    let mut cursor = root.walk();
    let mut last_import = None;
    let mut holder = None;
    for child in root.children(&mut cursor) {
        if child.start_byte() <= at && at < child.end_byte() {
            holder = Some(child);
        }
        let is_import =
            matches!(child.kind(), "import_statement" | "import_from_statement" | "future_import_statement");
        if is_import && child.end_byte() <= at {
            last_import = Some(child);
        }
    }
    match (last_import, holder) {
        (Some(import), _) => {
            TextEdit { range: import.end_byte()..import.end_byte(), new_text: format!("\n{statement}") }
        }
        (None, Some(holder)) => {
            TextEdit { range: holder.start_byte()..holder.start_byte(), new_text: format!("{statement}\n") }
        }
        (None, None) => TextEdit { range: 0..0, new_text: format!("{statement}\n") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(positional: &[&str], keywords: &[(&str, &str)]) -> CallArgs {
        CallArgs {
            positional: positional.iter().map(|s| s.to_string()).collect(),
            keywords: keywords.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn check(template: &str, params: &[&str], call: CallArgs) -> Result<String, String> {
        render(template, params, &call, &mut |name| Ok(name.to_string()))
    }

    const AUTOCAST: &str = "`torch.amp.autocast`(\"cuda\", {**})";
    const AUTOCAST_EXACT: &str =
        "`torch.amp.autocast`(\"cuda\", enabled={enabled?}, dtype={dtype|`torch.float16`}, cache_enabled={cache_enabled|True})";
    const AUTOCAST_PARAMS: &[&str] = &["enabled", "dtype", "cache_enabled"];
    const SHFL: &str = "`__shfl_sync`(0xffffffff, {var}, {srcLane}, {width?})";

    #[test]
    fn inserts_a_positional_and_passes_the_rest_as_keywords() {
        let res = check(AUTOCAST, AUTOCAST_PARAMS, args(&[], &[("dtype", "torch.bfloat16")]));
        assert_eq!(res.unwrap(), "torch.amp.autocast(\"cuda\", dtype=torch.bfloat16)");
        let res = check(AUTOCAST, AUTOCAST_PARAMS, args(&["False"], &[("cache_enabled", "False")]));
        assert_eq!(res.unwrap(), "torch.amp.autocast(\"cuda\", enabled=False, cache_enabled=False)");
        assert_eq!(check(AUTOCAST, AUTOCAST_PARAMS, args(&[], &[])).unwrap(), "torch.amp.autocast(\"cuda\")");
    }

    #[test]
    fn fills_the_old_defaults_the_new_api_reads_elsewhere() {
        let mut resolve = |name: &str| Ok(name.replacen("torch", "th", 1));
        let res = render(AUTOCAST_EXACT, AUTOCAST_PARAMS, &args(&["False"], &[]), &mut resolve);
        assert_eq!(res.unwrap(), "th.amp.autocast(\"cuda\", enabled=False, dtype=th.float16, cache_enabled=True)");
        let res = render(AUTOCAST_EXACT, AUTOCAST_PARAMS, &args(&[], &[("dtype", "th.bfloat16")]), &mut resolve);
        assert_eq!(res.unwrap(), "th.amp.autocast(\"cuda\", dtype=th.bfloat16, cache_enabled=True)");
        assert_eq!(
            pretty(AUTOCAST_EXACT),
            "torch.amp.autocast(\"cuda\", enabled=enabled, dtype=dtype, cache_enabled=cache_enabled)"
        );
    }

    #[test]
    fn puts_the_mask_first_and_leaves_out_what_is_not_passed() {
        let params = &["var", "srcLane", "width"];
        assert_eq!(check(SHFL, params, args(&["v", "lane"], &[])).unwrap(), "__shfl_sync(0xffffffff, v, lane)");
        assert_eq!(
            check(SHFL, params, args(&["v", "lane", "16"], &[])).unwrap(),
            "__shfl_sync(0xffffffff, v, lane, 16)"
        );
        assert_eq!(
            check(SHFL, params, args(&["v"], &[])).unwrap_err(),
            "it does not pass srcLane, which the rewrite needs"
        );
    }

    #[test]
    fn wraps_the_call_and_refuses_arguments_it_cannot_map() {
        let template = "len(`tensorflow.config.list_physical_devices`(\"GPU\")) > 0";
        let params = &["cuda_only", "min_cuda_compute_capability"];
        assert_eq!(
            check(template, params, args(&[], &[])).unwrap(),
            "len(tensorflow.config.list_physical_devices(\"GPU\")) > 0"
        );
        assert_eq!(
            check(template, params, args(&[], &[("cuda_only", "True")])).unwrap_err(),
            "the argument cuda_only=True has no counterpart in the rewrite"
        );
        assert!(is_operator_expression(template));
        assert!(!is_operator_expression(SHFL));
    }

    #[test]
    fn maps_keywords_with_the_old_defaults() {
        let template = "`torch.optim.AdamW`({params}, lr={lr?}, eps={eps|1e-06}, weight_decay={weight_decay|0.0})";
        let params = &["params", "lr", "eps", "weight_decay", "correct_bias"];
        assert_eq!(
            check(template, params, args(&["model.parameters()"], &[("lr", "3e-4")])).unwrap(),
            "torch.optim.AdamW(model.parameters(), lr=3e-4, eps=1e-06, weight_decay=0.0)"
        );
        assert_eq!(
            check(template, params, args(&["p"], &[])).unwrap(),
            "torch.optim.AdamW(p, eps=1e-06, weight_decay=0.0)"
        );
        let err = check(template, params, args(&["p"], &[("correct_bias", "False")])).unwrap_err();
        assert!(err.starts_with("the argument correct_bias=False has no counterpart"), "{err}");
        let err = check(template, params, args(&["p"], &[("amsgrad", "True")])).unwrap_err();
        assert_eq!(err, "the keyword argument amsgrad= is not one the fix can map");
        let err = check(template, params, args(&["p"], &[("params", "q")])).unwrap_err();
        assert_eq!(err, "params is passed twice");
        let err = check(template, params, args(&["a", "b", "c", "d", "e", "f"], &[])).unwrap_err();
        assert!(err.starts_with("it passes 6 positional arguments"), "{err}");
    }

    #[test]
    fn leaves_out_neighbouring_optionals() {
        let template = "`f`({a?}, {b?}, {**})";
        assert_eq!(check(template, &["a", "b", "c"], args(&[], &[])).unwrap(), "f()");
        assert_eq!(check(template, &["a", "b", "c"], args(&[], &[("b", "2")])).unwrap(), "f(2)");
        assert_eq!(check(template, &["a", "b", "c"], args(&["1"], &[("c", "3")])).unwrap(), "f(1, c=3)");
    }

    #[test]
    fn pretty_shows_parameters() {
        assert_eq!(pretty(AUTOCAST), "torch.amp.autocast(\"cuda\", ...)");
        assert_eq!(pretty(SHFL), "__shfl_sync(0xffffffff, var, srcLane, width)");
    }

    #[test]
    fn never_panics_on_odd_templates() {
        for template in ["", "`", "{", "`a`({x?})", "{x?}", "`a`({**}", "`a`{**})", "`a`(,{x?},)", "é`a`({x?}é)"] {
            let _ = check(template, &["x"], args(&[], &[]));
            let _ = check(template, &["x"], args(&["1"], &[]));
            let _ = pretty(template);
        }
    }
}
