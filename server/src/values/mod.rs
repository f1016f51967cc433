//! Values: what the expressions of a Python file hold, so that methods, attributes and keyword
//! arguments reached through values are explained as well as names reached through imports.
//!
//! Pure: a document's text and tree (and the catalog) in, answers out. The work is lazy and kept
//! per document version in `ModuleValues`: a hover types only what it needs.

mod callers;
mod infer;
pub(crate) mod scopes;
pub mod ty;
pub mod workspace;

use std::ops::Range;
use std::sync::Arc;

use tree_sitter::Node;

pub use callers::{Argument, Site};
pub use infer::{scope_at, Eval, Found, ModuleValues};
use scopes::{Binding, Source};
pub use ty::Ty;

use crate::catalog::{Catalog, Param, SymbolIdx};

/// How a variable's type was found, for one short line in the hover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// 0-based line of the binding.
    pub line: usize,
    pub how: OriginKind,
    /// The expression the value came from, shortened: `torch.randn(…)`.
    pub from: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginKind {
    /// `x = <from>`.
    Assigned,
    /// `x: T` written by the user: no line needed.
    Annotated,
    /// `for x in <from>`.
    Loop,
    /// `with <from> as x`.
    With,
    /// `self.register_buffer("x", <from>)`.
    Registered,
    /// `self` in a method.
    SelfParameter,
    /// A parameter's default value.
    Default,
    /// An unannotated parameter: what the calls of its function in the file pass (`<from>`, the
    /// first of them, at `line`), with how many more calls agree.
    Callers { more: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariableKind {
    Variable,
    Parameter,
    Attribute,
}

impl VariableKind {
    pub fn label(self) -> &'static str {
        match self {
            VariableKind::Variable => "variable",
            VariableKind::Parameter => "parameter",
            VariableKind::Attribute => "attribute",
        }
    }
}

/// A value of known type: what it is called, its type, and how the type was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typed {
    pub text: String,
    pub ty: Ty,
    pub origin: Option<Origin>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `x.view`: a catalog member reached through a value.
    Member { range: Range<usize>, member: ty::Member, receiver: Typed },
    /// `x`, `self.fc1`: a name holding a value of known type.
    Variable { range: Range<usize>, kind: VariableKind, value: Typed },
    /// `lr=` in a call of a catalog function, method or class.
    Keyword { range: Range<usize>, callee: SymbolIdx, param: Param<'static>, via: Option<Typed> },
}

/// The identifier at `offset`, or the one ending there.
fn identifier_at(root: Node, offset: usize) -> Option<Node> {
    let at = |o: usize| root.descendant_for_byte_range(o, o).filter(|n| n.kind() == "identifier");
    at(offset).or_else(|| offset.checked_sub(1).and_then(at))
}

/// What the value-level answer at `offset` is, if the types say.
pub fn answer_at(m: &ModuleValues, catalog: &Catalog, offset: usize) -> Option<Answer> {
    let eval = Eval::new(m, catalog);
    let root = eval.root();
    let ident = identifier_at(root, offset)?;
    let range = ident.byte_range();
    let parent = ident.parent()?;
    let key = infer::scope_at(&m.tree, ident.start_byte());
    match parent.kind() {
        "attribute" if parent.child_by_field_name("attribute").is_some_and(|a| a.id() == ident.id()) => {
            let object = parent.child_by_field_name("object")?;
            let receiver = eval.expr(object, key);
            let name = eval.text(ident);
            if let Some(member) = catalog_member(&eval, &receiver, name) {
                let receiver = typed(&eval, object, receiver, key);
                return Some(Answer::Member { range, member, receiver });
            }
            // `self.fc1`: a user attribute holding a framework value.
            let ty = eval.attribute(&receiver, name);
            if framework_type(&eval, &ty) {
                let origin = match &receiver {
                    Ty::UserInstance(class) => attribute_origin(&eval, *class, name),
                    _ => None,
                };
                let value = Typed { text: eval.text(parent).to_string(), ty, origin };
                return Some(Answer::Variable { range, kind: VariableKind::Attribute, value });
            }
            None
        }
        "keyword_argument" if parent.child_by_field_name("name").is_some_and(|n| n.id() == ident.id()) => {
            let call =
                parent.parent().filter(|p| p.kind() == "argument_list")?.parent().filter(|c| c.kind() == "call")?;
            let callee = call.child_by_field_name("function")?;
            let callee_ty = eval.expr(callee, key);
            let (symbol, via) = callee_symbol(&eval, &callee_ty, callee, key)?;
            let param = find_param(catalog, symbol, eval.text(ident))?;
            Some(Answer::Keyword { range, callee: symbol, param, via })
        }
        _ => {
            let name = eval.text(ident);
            // On a binding's own target (`logits = model(x)`), the binding made there.
            let own = is_binding_target(ident)
                .then(|| {
                    let scope = eval.m.scope(key)?;
                    let at = ident.start_byte();
                    let b = scope.bindings.get(name)?.iter().find(|b| b.statement <= at && at < b.at)?;
                    Some(vec![infer::Found { scope: key, binding: b.clone() }])
                })
                .flatten();
            let found = match own {
                Some(found) => found,
                None => eval.lookup(name, key, ident.end_byte())?,
            };
            // `isinstance` narrowing wins; else several bindings reaching the use (`if`/`else`)
            // must agree.
            let narrowed = eval.narrowed(name, key, ident.start_byte());
            let ty = match &narrowed {
                Some(ty) => ty.clone(),
                None => Ty::join(found.iter().map(|f| eval.binding_type(f, name))),
            };
            let found = found.last()?;
            if !framework_type(&eval, &ty) {
                return None;
            }
            let kind = match found.binding.source {
                Source::Param { .. } => VariableKind::Parameter,
                _ => VariableKind::Variable,
            };
            let origin = if narrowed.is_some() { None } else { origin(&eval, found.scope, &found.binding) };
            Some(Answer::Variable { range, kind, value: Typed { text: name.to_string(), ty, origin } })
        }
    }
}

/// Whether an identifier is a name being bound: `x` in `x = ...`, `for x, y in ...`, `as x`.
fn is_binding_target(ident: Node) -> bool {
    let mut node = ident;
    while let Some(parent) = node.parent() {
        match parent.kind() {
            "pattern_list" | "tuple_pattern" | "list_pattern" | "parenthesized_expression" | "as_pattern_target" => {
                node = parent
            }
            "assignment" | "augmented_assignment" | "for_statement" | "for_in_clause" => {
                return parent.child_by_field_name("left").is_some_and(|l| l.id() == node.id());
            }
            _ => return node.kind() == "as_pattern_target",
        }
    }
    false
}

/// A catalog member of a value's type (never of a module or class reached through imports, which
/// recognition answers).
fn catalog_member(eval: &Eval, receiver: &Ty, name: &str) -> Option<ty::Member> {
    match receiver {
        Ty::Instance(class) => ty::member(eval.catalog, class, name),
        Ty::Foreign(foreign) if foreign.own.contains(name) => None,
        Ty::Foreign(foreign) => foreign.ancestors.iter().find_map(|base| ty::member(eval.catalog, base, name)),
        Ty::UserInstance(class) | Ty::Super(class) => {
            let skip_own = matches!(receiver, Ty::Super(_));
            match eval.attribute(receiver, name) {
                Ty::Method { member, owner, .. } => {
                    let symbol = eval.catalog.lookup(&member)?;
                    let _ = skip_own;
                    Some(ty::Member { symbol, name: member, owner })
                }
                Ty::UserMethod { .. } => None,
                // `super().__init__(...)`: the constructor of the framework base, which the
                // catalog describes on the class itself.
                _ if name == "__init__" && skip_own => {
                    let base = eval.catalog_ancestors(*class).into_iter().next()?;
                    let symbol = eval.catalog.lookup(&base)?;
                    let canon: Arc<str> = Arc::from(eval.catalog.symbol(symbol).name.as_ref());
                    Some(ty::Member { symbol, name: canon.clone(), owner: canon })
                }
                _ => {
                    // Catalog attributes (`self.training`) of a framework base.
                    if eval.m.class(*class).is_some_and(|c| c.self_attrs.contains_key(name)) && !skip_own {
                        return None;
                    }
                    if !skip_own && eval.m.scope(*class).is_some_and(|s| s.bindings.contains_key(name)) {
                        return None;
                    }
                    if eval.foreign_base_owns(*class, name) {
                        return None; // a user base in another file binds it
                    }
                    eval.catalog_ancestors(*class).iter().find_map(|base| ty::member(eval.catalog, base, name))
                }
            }
        }
        _ => None,
    }
}

/// Whether a type is worth a hover: it involves a framework class.
fn framework_type(eval: &Eval, ty: &Ty) -> bool {
    match ty {
        Ty::Instance(_) => true,
        Ty::Tuple(items) => items.iter().any(|t| framework_type(eval, t)),
        Ty::Iter(elem) => framework_type(eval, elem),
        Ty::UserInstance(class) => !eval.catalog_ancestors(*class).is_empty(),
        Ty::Foreign(foreign) => !foreign.ancestors.is_empty(),
        _ => false,
    }
}

/// The catalog symbol a call goes to, for its keyword arguments and signature.
fn callee_symbol(eval: &Eval, callee: &Ty, node: Node, key: usize) -> Option<(SymbolIdx, Option<Typed>)> {
    match callee {
        Ty::Symbol(name) => eval.catalog.lookup(name).map(|s| (s, None)),
        Ty::Method { member, receiver, .. } => {
            let symbol = eval.catalog.lookup(member)?;
            let object = node.child_by_field_name("object");
            let via = object.map(|o| typed(eval, o, (**receiver).clone(), key));
            Some((symbol, via))
        }
        Ty::Instance(class) => {
            // A module called on its input: the keywords are `forward`'s.
            let entry = if ty::derives_from(eval.catalog, class, "torch.nn.Module") { "forward" } else { "__call__" };
            let member = ty::member(eval.catalog, class, entry)?;
            Some((member.symbol, Some(typed(eval, node, callee.clone(), key))))
        }
        _ => None,
    }
}

/// A parameter of a catalog symbol, from its harvested parameters or else its signature.
pub fn find_param(catalog: &Catalog, symbol: SymbolIdx, name: &str) -> Option<Param<'static>> {
    let sym = catalog.symbol(symbol);
    let own = |p: &Param| Param {
        name: p.name.to_string().into(),
        annotation: p.annotation.as_ref().map(|a| a.to_string().into()),
        default: p.default.as_ref().map(|d| d.to_string().into()),
        summary: p.summary.to_string().into(),
    };
    if let Some(p) = sym.params.iter().find(|p| p.name == name) {
        return Some(own(p));
    }
    signature_params(sym.signature.as_deref()?).into_iter().find(|p| p.name == name)
}

/// The parameters written in a signature `name(a, b=1, *, c: int = 2, **kw)`.
pub fn signature_params(signature: &str) -> Vec<Param<'static>> {
    let Some(open) = signature.find('(') else { return Vec::new() };
    let Some(close) = signature.rfind(')') else { return Vec::new() };
    if close <= open {
        return Vec::new();
    }
    let inner = &signature[open + 1..close];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    let mut quote: Option<char> = None;
    for (idx, c) in inner.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&inner[start..idx]);
                start = idx + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "*" && *p != "/" && *p != "...")
        .filter_map(|p| {
            let (head, default) = match p.split_once('=') {
                Some((h, d)) => (h.trim(), Some(d.trim().to_string())),
                None => (p, None),
            };
            let (name, annotation) = match head.split_once(':') {
                Some((n, a)) => (n.trim(), Some(a.trim().to_string())),
                None => (head, None),
            };
            if name.starts_with('*') {
                return None;
            }
            Some(Param {
                name: name.to_string().into(),
                annotation: annotation.map(Into::into),
                default: default.map(Into::into),
                summary: "".into(),
            })
        })
        .collect()
}

fn typed(eval: &Eval, node: Node, ty: Ty, key: usize) -> Typed {
    let text = shorten(eval.text(node));
    let origin = if node.kind() == "identifier" {
        eval.lookup(eval.text(node), key, node.start_byte()).and_then(|found| match found.as_slice() {
            [one] => origin(eval, one.scope, &one.binding),
            _ => None,
        })
    } else if node.kind() == "attribute" {
        match (node.child_by_field_name("object"), node.child_by_field_name("attribute")) {
            (Some(object), Some(attr)) => match eval.expr(object, key) {
                Ty::UserInstance(class) => attribute_origin(eval, class, eval.text(attr)),
                _ => None,
            },
            _ => None,
        }
    } else {
        None
    };
    Typed { text, ty, origin }
}

fn shorten(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 40 {
        let cut: String = one_line.chars().take(37).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// The callee of a call, shortened: `torch.randn(8, 16)` -> `torch.randn(…)`.
fn call_label(eval: &Eval, node: Node) -> String {
    match node.kind() {
        "call" => match node.child_by_field_name("function") {
            Some(f) => format!("{}(…)", shorten(eval.text(f))),
            None => shorten(eval.text(node)),
        },
        _ => shorten(eval.text(node)),
    }
}

fn line_of(eval: &Eval, offset: usize) -> usize {
    eval.root().descendant_for_byte_range(offset, offset).map_or(0, |n| n.start_position().row)
}

fn origin(eval: &Eval, scope: usize, binding: &Binding) -> Option<Origin> {
    let line = line_of(eval, binding.statement);
    let (how, range) = match &binding.source {
        Source::Value { expr, .. } => (OriginKind::Assigned, expr.clone()),
        Source::Registered { value, .. } => (OriginKind::Registered, value.clone()),
        Source::Annotated { annotation, .. } => (OriginKind::Annotated, annotation.clone()),
        Source::For { iter, .. } => (OriginKind::Loop, iter.clone()),
        Source::With { value, .. } => (OriginKind::With, value.clone()),
        Source::Param { annotation: Some(a), .. } => (OriginKind::Annotated, a.clone()),
        Source::Param { default: Some(d), .. } if eval.node(d).is_some_and(|n| n.kind() == "call") => {
            (OriginKind::Default, d.clone())
        }
        Source::Param { index: 0, .. } if eval.m.scope(scope).is_some_and(|s| s.class.is_some()) => {
            return Some(Origin { line, how: OriginKind::SelfParameter, from: String::new() })
        }
        // The calls that agreed on it: the first one's line, and how many there are.
        Source::Param { .. } => {
            let sites = eval.call_sites(scope)?;
            let first = sites.first()?;
            let (line, from) = (line_of(eval, first.call.start_byte()), call_label(eval, first.call));
            return Some(Origin { line, how: OriginKind::Callers { more: sites.len() - 1 }, from });
        }
        _ => return None,
    };
    let node = eval.node(&range)?;
    Some(Origin { line: line_of(eval, node.start_byte()), how, from: call_label(eval, node) })
}

fn attribute_origin(eval: &Eval, class: usize, name: &str) -> Option<Origin> {
    let data = eval.m.class(class)?;
    let (method, binding) = data.self_attrs.get(name)?.iter().find(|(method, b)| {
        let found = infer::Found { scope: *method, binding: b.clone() };
        eval.binding_type(&found, name).is_known() || matches!(b.source, Source::Annotated { .. })
    })?;
    origin(eval, *method, binding)
}

/// A type as users read it: `torch.Tensor`, `tuple[torch.Tensor, torch.Tensor]`, `GPT`; a list,
/// sequence or iterator of one type is `Iterable[torch.Tensor]`, all we know of it.
pub fn type_label(m: &ModuleValues, ty: &Ty) -> Option<String> {
    let class_name = |class: usize| m.class(class).map(|c| c.name.to_string());
    Some(match ty {
        Ty::Instance(class) => class.to_string(),
        Ty::UserInstance(class) => class_name(*class)?,
        Ty::Tuple(items) => {
            let items: Vec<String> = items.iter().map(|t| type_label(m, t).unwrap_or_else(|| "?".into())).collect();
            format!("tuple[{}]", items.join(", "))
        }
        Ty::Iter(elem) => format!("Iterable[{}]", type_label(m, elem)?),
        Ty::Foreign(foreign) => foreign.name.to_string(),
        _ => return None,
    })
}

/// The catalog class a type's hover should describe: the class itself, or for a user class the
/// framework class it derives from.
pub fn described_class(eval: &Eval, ty: &Ty) -> Option<SymbolIdx> {
    match ty {
        Ty::Instance(class) => eval.catalog.lookup(class),
        Ty::UserInstance(class) => eval.catalog_ancestors(*class).iter().find_map(|c| eval.catalog.lookup(c)),
        Ty::Iter(elem) => described_class(eval, elem),
        Ty::Foreign(foreign) => foreign.ancestors.iter().find_map(|c| eval.catalog.lookup(c)),
        _ => None,
    }
}

/// The members a completion after `receiver.` offers: (name, symbol) for catalog members,
/// (name, None) for the user's own methods and attributes.
pub fn members_at(m: &ModuleValues, catalog: &Catalog, dot: usize) -> Option<Vec<(String, Option<SymbolIdx>)>> {
    let eval = Eval::new(m, catalog);
    let root = eval.root();
    let end = dot;
    let mut node = root.descendant_for_byte_range(end.checked_sub(1)?, end.checked_sub(1)?)?;
    // The largest expression ending right before the dot.
    while let Some(parent) = node.parent() {
        if parent.end_byte() != end || !is_expression(parent.kind()) {
            break;
        }
        node = parent;
    }
    if node.end_byte() != end || !is_expression(node.kind()) {
        return None;
    }
    let key = infer::scope_at(&m.tree, node.start_byte());
    let ty = eval.expr(node, key);
    let mut out: Vec<(String, Option<SymbolIdx>)> = Vec::new();
    let mut classes: Vec<Arc<str>> = Vec::new();
    match &ty {
        Ty::Instance(class) => classes.push(class.clone()),
        Ty::Symbol(module) => {
            out.extend(catalog.python_members(module).into_iter().map(|(n, s)| (n, Some(s))));
        }
        Ty::UserInstance(class) => {
            if let Some(scope) = m.scope(*class) {
                out.extend(scope.bindings.keys().filter(|k| !k.starts_with('_')).map(|k| (k.to_string(), None)));
            }
            if let Some(data) = m.class(*class) {
                out.extend(data.self_attrs.keys().map(|k| (k.to_string(), None)));
            }
            classes.extend(eval.catalog_ancestors(*class));
        }
        Ty::Foreign(foreign) => {
            out.extend(foreign.own.iter().filter(|k| !k.starts_with('_')).map(|k| (k.to_string(), None)));
            classes.extend(foreign.ancestors.iter().cloned());
        }
        _ => return None,
    }
    let mut seen_classes = std::collections::HashSet::new();
    while let Some(class) = classes.pop() {
        let canon = ty::canonical(catalog, &class).unwrap_or(class);
        if !seen_classes.insert(canon.clone()) || seen_classes.len() > 16 {
            continue;
        }
        out.extend(catalog.python_members(&canon).into_iter().map(|(n, s)| (n, Some(s))));
        classes.extend(ty::bases(catalog, &canon));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|(name, _)| seen.insert(name.clone()));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

fn is_expression(kind: &str) -> bool {
    matches!(kind, "identifier" | "attribute" | "call" | "subscript" | "parenthesized_expression")
}

/// The call around `offset` and the catalog symbol it calls: for signature help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSite {
    pub callee: SymbolIdx,
    /// Index of the positional argument the cursor is in, or the keyword's name.
    pub active: ActiveArgument,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveArgument {
    Positional(usize),
    Keyword(String),
}

pub fn call_at(m: &ModuleValues, catalog: &Catalog, offset: usize) -> Option<CallSite> {
    let eval = Eval::new(m, catalog);
    let root = eval.root();
    let mut node = root.descendant_for_byte_range(offset, offset)?;
    // The innermost argument list whose parentheses hold the cursor.
    let args = loop {
        if node.kind() == "argument_list"
            && node.start_byte() < offset
            && (offset < node.end_byte()
                || node.has_error()
                || node.child(node.child_count().saturating_sub(1)).is_some_and(|c| c.is_missing()))
        {
            break node;
        }
        node = node.parent()?;
    };
    let call = args.parent().filter(|c| c.kind() == "call")?;
    let callee = call.child_by_field_name("function")?;
    let key = infer::scope_at(&m.tree, call.start_byte());
    let ty = eval.expr(callee, key);
    let (symbol, _) = callee_symbol(&eval, &ty, callee, key)?;
    // Count the top-level commas before the cursor; the argument being written may not parse
    // yet (`dtype=` with no value), so its keyword is read from the text.
    let mut positional = 0;
    let mut current_start = args.start_byte() + 1;
    let mut walker = args.walk();
    for child in args.children(&mut walker) {
        if child.kind() == "," && child.end_byte() <= offset {
            positional += 1;
            current_start = child.end_byte();
        }
    }
    let written = eval.m.text.get(current_start..offset.min(args.end_byte())).unwrap_or("");
    let keyword = written.split_once('=').map(|(name, _)| name.trim()).filter(|name| {
        !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') && !written.contains("==")
    });
    let active = keyword.map(|k| ActiveArgument::Keyword(k.to_string()));
    Some(CallSite { callee: symbol, active: active.unwrap_or(ActiveArgument::Positional(positional)) })
}

#[cfg(test)]
mod tests;
