//! What each scope of a Python file binds, read from the syntax alone (no types yet): assignments,
//! loop and `with` targets, parameters, imports, definitions, and for classes the `self.x = ...`
//! of their methods. Built lazily, one function or class at a time.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use tree_sitter::Node;

/// The scope key of the module: function and class scopes are keyed by their definition's start.
pub const MODULE: usize = usize::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    Module,
    Function,
    Class,
}

/// One step into a destructuring target: `a, (b, c) = ...` binds `c` at `[1, 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Index(usize),
    /// `*rest`: a list of the remaining elements.
    Star,
}

#[derive(Clone, Debug)]
pub enum Source {
    /// `name = expr`, or a part of it through `path`.
    Value {
        expr: Range<usize>,
        path: Vec<Step>,
    },
    /// `name: T` or `name: T = expr`: the annotation wins; the value is the fallback.
    Annotated {
        annotation: Range<usize>,
        value: Option<Range<usize>>,
    },
    /// `for name in iter:`.
    For {
        iter: Range<usize>,
        path: Vec<Step>,
    },
    /// `with value as name:`.
    With {
        value: Range<usize>,
        path: Vec<Step>,
    },
    /// `self.register_buffer("name", value)` (or `register_parameter`) in a method: `self.name`
    /// holds the value, when the class is a `torch.nn.Module`.
    Registered {
        value: Range<usize>,
        /// `register_buffer` or `register_parameter`.
        through: &'static str,
    },
    Param {
        index: usize,
        annotation: Option<Range<usize>>,
        default: Option<Range<usize>>,
    },
    Import(Arc<str>),
    Def(usize),
    Class(usize),
    /// Bound in a way that gives no type (`except E as e`, `del`, a walrus we do not read).
    Opaque,
}

#[derive(Clone, Debug)]
pub struct Binding {
    /// Where the name starts to hold this value: after the assignment, at the loop body.
    pub at: usize,
    /// The start of the statement, for "assigned at line N".
    pub statement: usize,
    pub source: Source,
}

#[derive(Debug)]
pub struct ScopeData {
    pub kind: ScopeKind,
    /// The enclosing function or the module; class scopes never enclose their methods.
    pub parent: Option<usize>,
    /// For a method: the class whose body defines it.
    pub class: Option<usize>,
    pub bindings: HashMap<Arc<str>, Vec<Binding>>,
    pub globals: HashSet<Arc<str>>,
    pub returns: Vec<Range<usize>>,
    pub generator: bool,
    pub decorators: Vec<Arc<str>>,
    pub return_annotation: Option<Range<usize>>,
}

/// A class: its bases as written, and the attributes its methods set on `self`.
#[derive(Debug)]
pub struct ClassData {
    pub name: Arc<str>,
    pub bases: Vec<Range<usize>>,
    /// `self.name = ...` in a method: (method key, binding), in document order.
    pub self_attrs: HashMap<Arc<str>, Vec<(usize, Binding)>>,
}

pub fn text<'a>(text: &'a str, node: Node) -> &'a str {
    text.get(node.byte_range()).unwrap_or("")
}

/// The definition node of a scope key: the function or class definition starting there.
pub fn scope_node<'t>(root: Node<'t>, key: usize) -> Option<Node<'t>> {
    if key == MODULE {
        return Some(root);
    }
    let mut node = root.descendant_for_byte_range(key, key)?;
    loop {
        if node.start_byte() == key && matches!(node.kind(), "function_definition" | "class_definition") {
            return Some(node);
        }
        node = node.parent()?;
    }
}

/// The scope a position belongs to, and for a position inside a class body, the class.
pub fn scope_at(root: Node, offset: usize) -> usize {
    match root.descendant_for_byte_range(offset, offset) {
        Some(node) => scope_from(node),
        None => MODULE,
    }
}

/// The scope a node belongs to.
pub fn scope_from(mut node: Node) -> usize {
    loop {
        if let Some(parent) = node.parent() {
            let kind = parent.kind();
            let in_body = parent.child_by_field_name("body").is_some_and(|b| b.id() == node.id());
            let in_params = parent.child_by_field_name("parameters").is_some_and(|p| p.id() == node.id());
            if (kind == "function_definition" && (in_body || in_params)) || (kind == "class_definition" && in_body) {
                return parent.start_byte();
            }
            node = parent;
        } else {
            return MODULE;
        }
    }
}

fn decorators_of(def: Node, src: &str) -> Vec<Arc<str>> {
    let Some(parent) = def.parent().filter(|p| p.kind() == "decorated_definition") else { return Vec::new() };
    let mut walker = parent.walk();
    parent
        .named_children(&mut walker)
        .filter(|c| c.kind() == "decorator")
        .filter_map(|d| d.named_child(0))
        .map(|d| {
            let expr = if d.kind() == "call" { d.child_by_field_name("function").unwrap_or(d) } else { d };
            Arc::from(text(src, expr))
        })
        .collect()
}

/// Reads what a scope binds. `parent` and `class` are the enclosing scope and (for methods) class.
pub fn build(root: Node, key: usize, src: &str) -> Option<ScopeData> {
    let node = scope_node(root, key)?;
    let (kind, parent, class) = if key == MODULE {
        (ScopeKind::Module, None, None)
    } else {
        // The scope the definition sits in (its decorators and name belong there).
        let around = enclosing_scope(root, node);
        let kind = if node.kind() == "class_definition" { ScopeKind::Class } else { ScopeKind::Function };
        let class_parent = around.filter(|&k| scope_node(root, k).is_some_and(|n| n.kind() == "class_definition"));
        // A class never encloses its methods: their names resolve in the class's own parent.
        let parent = match class_parent {
            Some(class_key) => enclosing_scope(root, scope_node(root, class_key)?),
            None => around,
        };
        (kind, Some(parent.unwrap_or(MODULE)), class_parent.filter(|_| kind == ScopeKind::Function))
    };
    let mut data = ScopeData {
        kind,
        parent,
        class,
        bindings: HashMap::new(),
        globals: HashSet::new(),
        returns: Vec::new(),
        generator: false,
        decorators: if key == MODULE { Vec::new() } else { decorators_of(node, src) },
        return_annotation: node.child_by_field_name("return_type").map(|n| n.byte_range()),
    };
    if kind == ScopeKind::Function {
        if let Some(params) = node.child_by_field_name("parameters") {
            parameters(params, src, &mut data);
        }
    }
    let body = if key == MODULE { Some(node) } else { node.child_by_field_name("body") };
    if let Some(body) = body {
        let mut walker = Walker { src, data: &mut data, function: kind == ScopeKind::Function };
        walker.block(body);
    }
    for list in data.bindings.values_mut() {
        list.sort_by_key(|b| b.at);
    }
    Some(data)
}

/// The scope a definition node itself sits in (where its name is bound).
fn enclosing_scope(root: Node, def: Node) -> Option<usize> {
    let mut node = def;
    loop {
        let parent = node.parent()?;
        let kind = parent.kind();
        let in_body = parent.child_by_field_name("body").is_some_and(|b| b.id() == node.id());
        if (kind == "function_definition" || kind == "class_definition") && in_body {
            return Some(parent.start_byte());
        }
        if parent.id() == root.id() {
            return Some(MODULE);
        }
        node = parent;
    }
}

fn parameters(params: Node, src: &str, data: &mut ScopeData) {
    let mut walker = params.walk();
    let statement = params.start_byte();
    for (index, param) in params.named_children(&mut walker).enumerate() {
        let (name, annotation, default) = match param.kind() {
            "identifier" => (Some(param), None, None),
            "typed_parameter" => {
                (param.named_child(0).filter(|n| n.kind() == "identifier"), param.child_by_field_name("type"), None)
            }
            "default_parameter" => (param.child_by_field_name("name"), None, param.child_by_field_name("value")),
            "typed_default_parameter" => (
                param.child_by_field_name("name"),
                param.child_by_field_name("type"),
                param.child_by_field_name("value"),
            ),
            "list_splat_pattern" | "dictionary_splat_pattern" => {
                if let Some(name) = param.named_child(0) {
                    bind(data, text(src, name), Binding { at: statement, statement, source: Source::Opaque });
                }
                continue;
            }
            _ => continue,
        };
        let Some(name) = name else { continue };
        let source = Source::Param {
            index,
            annotation: annotation.map(|n| n.byte_range()),
            default: default.map(|n| n.byte_range()),
        };
        bind(data, text(src, name), Binding { at: statement, statement, source });
    }
}

fn bind(data: &mut ScopeData, name: &str, binding: Binding) {
    if name.is_empty() {
        return;
    }
    data.bindings.entry(Arc::from(name)).or_default().push(binding);
}

struct Walker<'a> {
    src: &'a str,
    data: &'a mut ScopeData,
    function: bool,
}

impl Walker<'_> {
    fn block(&mut self, node: Node) {
        let mut walker = node.walk();
        let children: Vec<Node> = node.named_children(&mut walker).collect();
        for child in children {
            self.statement(child);
        }
    }

    fn statement(&mut self, node: Node) {
        let statement = node.start_byte();
        match node.kind() {
            "expression_statement" => {
                let mut walker = node.walk();
                let children: Vec<Node> = node.named_children(&mut walker).collect();
                for child in children {
                    if child.kind() == "assignment" {
                        self.assignment(child, statement, node.end_byte());
                    }
                    self.expressions(child);
                }
            }
            "function_definition" | "class_definition" => {
                if let Some(name) = node.child_by_field_name("name") {
                    let source = if node.kind() == "class_definition" {
                        Source::Class(node.start_byte())
                    } else {
                        Source::Def(node.start_byte())
                    };
                    let at = node.start_byte();
                    bind(self.data, text(self.src, name), Binding { at, statement, source });
                }
            }
            "decorated_definition" => {
                if let Some(def) = node.child_by_field_name("definition") {
                    self.statement(def);
                }
            }
            "for_statement" => {
                if let (Some(left), Some(right)) = (node.child_by_field_name("left"), node.child_by_field_name("right"))
                {
                    let at = node.child_by_field_name("body").map_or(node.end_byte(), |b| b.start_byte());
                    let iter = right.byte_range();
                    self.targets(
                        left,
                        &mut Vec::new(),
                        &mut |path| Source::For { iter: iter.clone(), path },
                        at,
                        statement,
                    );
                    self.expressions(right);
                }
                self.children_blocks(node);
            }
            "with_statement" => {
                let at = node.child_by_field_name("body").map_or(node.end_byte(), |b| b.start_byte());
                let mut walker = node.walk();
                let clauses: Vec<Node> =
                    node.named_children(&mut walker).filter(|c| c.kind() == "with_clause").collect();
                for clause in clauses {
                    let mut walker = clause.walk();
                    let items: Vec<Node> = clause.named_children(&mut walker).collect();
                    for item in items {
                        let Some(value) = item.child_by_field_name("value") else { continue };
                        if value.kind() == "as_pattern" {
                            let (Some(expr), Some(alias)) = (value.named_child(0), value.child_by_field_name("alias"))
                            else {
                                continue;
                            };
                            let range = expr.byte_range();
                            let target = alias.named_child(0).unwrap_or(alias);
                            self.targets(
                                target,
                                &mut Vec::new(),
                                &mut |path| Source::With { value: range.clone(), path },
                                at,
                                statement,
                            );
                            self.expressions(expr);
                        } else {
                            self.expressions(value);
                        }
                    }
                }
                self.children_blocks(node);
            }
            "import_statement" | "import_from_statement" => self.import(node, statement),
            "global_statement" | "nonlocal_statement" => {
                let mut walker = node.walk();
                for name in node.named_children(&mut walker).filter(|n| n.kind() == "identifier") {
                    self.data.globals.insert(Arc::from(text(self.src, name)));
                }
            }
            "return_statement" => {
                if self.function {
                    if let Some(value) = node.named_child(0) {
                        self.data.returns.push(value.byte_range());
                    } else {
                        self.data.returns.push(node.end_byte()..node.end_byte());
                    }
                }
                self.expressions(node);
            }
            "block" => self.block(node),
            _ => {
                // Compound statements: their clauses hold blocks of statements.
                self.expressions(node);
                self.children_blocks(node);
            }
        }
    }

    /// Statements nested in a compound statement's blocks and clauses.
    fn children_blocks(&mut self, node: Node) {
        let mut walker = node.walk();
        let children: Vec<Node> = node.named_children(&mut walker).collect();
        for child in children {
            match child.kind() {
                "block" => self.block(child),
                "elif_clause"
                | "else_clause"
                | "except_clause"
                | "finally_clause"
                | "case_clause"
                | "except_group_clause" => {
                    if child.kind() == "except_clause" {
                        // `except E as e`: the exception is not a framework value we type.
                        let mut walker = child.walk();
                        let alias = child.named_children(&mut walker).find(|c| c.kind() == "as_pattern");
                        if let Some(target) =
                            alias.and_then(|a| a.child_by_field_name("alias")).and_then(|a| a.named_child(0))
                        {
                            let at = child.start_byte();
                            bind(
                                self.data,
                                text(self.src, target),
                                Binding { at, statement: at, source: Source::Opaque },
                            );
                        }
                    }
                    self.children_blocks(child);
                }
                _ => {}
            }
        }
    }

    /// Looks through expressions for what makes a function a generator (`yield`).
    fn expressions(&mut self, node: Node) {
        if !self.function || self.data.generator {
            return;
        }
        let mut cursor = node.walk();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            match n.kind() {
                "yield" => {
                    self.data.generator = true;
                    return;
                }
                "function_definition" | "class_definition" | "lambda" | "block" => continue,
                _ => {}
            }
            stack.extend(n.named_children(&mut cursor));
        }
    }

    fn assignment(&mut self, node: Node, statement: usize, at: usize) {
        // `a = b = value`: every target gets the innermost value.
        let mut targets = Vec::new();
        let mut current = node;
        loop {
            if let Some(left) = current.child_by_field_name("left") {
                targets.push(left);
            }
            match current.child_by_field_name("right") {
                Some(right) if right.kind() == "assignment" => current = right,
                right => {
                    let annotation = current.child_by_field_name("type").or_else(|| node.child_by_field_name("type"));
                    let value = right.map(|r| r.byte_range());
                    for target in targets {
                        if let Some(annotation) = annotation {
                            if target.kind() == "identifier" {
                                let source =
                                    Source::Annotated { annotation: annotation.byte_range(), value: value.clone() };
                                bind(self.data, text(self.src, target), Binding { at, statement, source });
                                continue;
                            }
                        }
                        if let Some(value) = &value {
                            self.targets(
                                target,
                                &mut Vec::new(),
                                &mut |path| Source::Value { expr: value.clone(), path },
                                at,
                                statement,
                            );
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Binds every name in a target pattern with its path into the value.
    fn targets(
        &mut self,
        target: Node,
        path: &mut Vec<Step>,
        source: &mut dyn FnMut(Vec<Step>) -> Source,
        at: usize,
        statement: usize,
    ) {
        match target.kind() {
            "identifier" => {
                let source = source(path.clone());
                bind(self.data, text(self.src, target), Binding { at, statement, source });
            }
            "pattern_list" | "tuple_pattern" | "list_pattern" | "tuple" | "list" => {
                let mut walker = target.walk();
                let items: Vec<Node> = target.named_children(&mut walker).collect();
                for (idx, item) in items.into_iter().enumerate() {
                    if item.kind() == "list_splat_pattern" || item.kind() == "list_splat" {
                        if let Some(name) = item.named_child(0) {
                            path.push(Step::Star);
                            self.targets(name, path, source, at, statement);
                            path.pop();
                        }
                        continue;
                    }
                    path.push(Step::Index(idx));
                    self.targets(item, path, source, at, statement);
                    path.pop();
                }
            }
            "parenthesized_expression" => {
                if let Some(inner) = target.named_child(0) {
                    self.targets(inner, path, source, at, statement);
                }
            }
            // Attributes and subscripts bind no name in this scope (`self.x` is read by the class).
            _ => {}
        }
    }

    fn import(&mut self, node: Node, statement: usize) {
        let at = node.end_byte();
        let src = self.src;
        let mut walker = node.walk();
        if node.kind() == "import_statement" {
            let items: Vec<Node> = node.children_by_field_name("name", &mut walker).collect();
            for item in items {
                match item.kind() {
                    "dotted_name" => {
                        if let Some(first) = item.named_child(0) {
                            let root = text(src, first);
                            bind(self.data, root, Binding { at, statement, source: Source::Import(Arc::from(root)) });
                        }
                    }
                    "aliased_import" => {
                        if let (Some(name), Some(alias)) =
                            (item.child_by_field_name("name"), item.child_by_field_name("alias"))
                        {
                            let target = Arc::from(text(src, name));
                            bind(
                                self.data,
                                text(src, alias),
                                Binding { at, statement, source: Source::Import(target) },
                            );
                        }
                    }
                    _ => {}
                }
            }
            return;
        }
        // `from .model import GPT` keeps its dots (`.model.GPT`): the workspace resolves it.
        let module = node.child_by_field_name("module_name").map(|m| text(src, m));
        let items: Vec<Node> = node.children_by_field_name("name", &mut walker).collect();
        for item in items {
            let (name, alias) = match item.kind() {
                "dotted_name" => (item, None),
                "aliased_import" => match item.child_by_field_name("name") {
                    Some(name) => (name, item.child_by_field_name("alias")),
                    None => continue,
                },
                _ => continue,
            };
            let bound = text(src, alias.unwrap_or(name));
            let source = match module {
                Some(module) => {
                    let sep = if module.ends_with('.') { "" } else { "." };
                    Source::Import(Arc::from(format!("{module}{sep}{}", text(src, name))))
                }
                None => Source::Opaque,
            };
            bind(self.data, bound, Binding { at, statement, source });
        }
    }
}

/// Reads a class: bases, and what its methods assign to `self.<name>`.
pub fn class(root: Node, key: usize, src: &str) -> Option<ClassData> {
    let node = scope_node(root, key).filter(|n| n.kind() == "class_definition")?;
    let name = node.child_by_field_name("name").map(|n| Arc::from(text(src, n))).unwrap_or_else(|| Arc::from(""));
    let mut bases = Vec::new();
    if let Some(list) = node.child_by_field_name("superclasses") {
        let mut walker = list.walk();
        bases.extend(
            list.named_children(&mut walker).filter(|c| c.kind() != "keyword_argument").map(|c| c.byte_range()),
        );
    }
    let mut self_attrs: HashMap<Arc<str>, Vec<(usize, Binding)>> = HashMap::new();
    let body = node.child_by_field_name("body")?;
    let mut walker = body.walk();
    let defs: Vec<Node> = body
        .named_children(&mut walker)
        .filter_map(|c| match c.kind() {
            "function_definition" => Some(c),
            "decorated_definition" => c.child_by_field_name("definition").filter(|d| d.kind() == "function_definition"),
            _ => None,
        })
        .collect();
    for def in defs {
        if decorators_of(def, src).iter().any(|d| &**d == "staticmethod" || &**d == "classmethod") {
            continue;
        }
        let Some(self_name) = def
            .child_by_field_name("parameters")
            .and_then(|p| p.named_child(0))
            .map(|p| if p.kind() == "identifier" { p } else { p.named_child(0).unwrap_or(p) })
            .map(|p| text(src, p))
        else {
            continue;
        };
        let Some(body) = def.child_by_field_name("body") else { continue };
        let method = def.start_byte();
        let mut stack = vec![body];
        let mut cursor = body.walk();
        while let Some(n) = stack.pop() {
            match n.kind() {
                "function_definition" | "class_definition" | "lambda" => continue,
                "assignment" => self_assignment(n, self_name, src, method, &mut self_attrs),
                "call" => self_registration(n, self_name, src, method, &mut self_attrs),
                _ => {}
            }
            stack.extend(n.named_children(&mut cursor));
        }
    }
    for list in self_attrs.values_mut() {
        list.sort_by_key(|(_, b)| b.at);
    }
    Some(ClassData { name, bases, self_attrs })
}

/// `self.register_buffer("name", value)` and `self.register_parameter("name", value)`, with the
/// name a plain string literal.
fn self_registration(
    node: Node,
    self_name: &str,
    src: &str,
    method: usize,
    out: &mut HashMap<Arc<str>, Vec<(usize, Binding)>>,
) {
    let (Some(function), Some(args)) = (node.child_by_field_name("function"), node.child_by_field_name("arguments"))
    else {
        return;
    };
    let (Some(object), Some(attr)) =
        (function.child_by_field_name("object"), function.child_by_field_name("attribute"))
    else {
        return;
    };
    let (through, value_keyword) = match text(src, attr) {
        "register_buffer" => ("register_buffer", "tensor"),
        "register_parameter" => ("register_parameter", "param"),
        _ => return,
    };
    if object.kind() != "identifier" || text(src, object) != self_name {
        return;
    }
    let mut walker = args.walk();
    let args: Vec<Node> = args.named_children(&mut walker).filter(|a| a.kind() != "comment").collect();
    let keyword = |name: &str| {
        args.iter().find_map(|a| {
            (a.kind() == "keyword_argument" && a.child_by_field_name("name").is_some_and(|n| text(src, n) == name))
                .then(|| a.child_by_field_name("value"))
                .flatten()
        })
    };
    let positional: Vec<Node> = args.iter().copied().filter(|a| a.kind() != "keyword_argument").collect();
    let (Some(name), Some(value)) = (
        positional.first().copied().or_else(|| keyword("name")),
        positional.get(1).copied().or_else(|| keyword(value_keyword)),
    ) else {
        return;
    };
    let Some(name) = plain_string(name, src).filter(|n| is_identifier(n)) else { return };
    let binding = Binding {
        at: node.end_byte(),
        statement: node.start_byte(),
        source: Source::Registered { value: value.byte_range(), through },
    };
    out.entry(Arc::from(name)).or_default().push((method, binding));
}

/// The text of a string literal without prefix, interpolation or escapes: `"bias"`, `'bias'`.
fn plain_string<'s>(node: Node, src: &'s str) -> Option<&'s str> {
    if node.kind() != "string" {
        return None;
    }
    let raw = text(src, node);
    let quote = raw.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = raw.strip_prefix(quote)?.strip_suffix(quote)?;
    (!inner.is_empty() && !inner.contains(['\\', '"', '\'', '{'])).then_some(inner)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

fn self_assignment(
    node: Node,
    self_name: &str,
    src: &str,
    method: usize,
    out: &mut HashMap<Arc<str>, Vec<(usize, Binding)>>,
) {
    let (Some(left), right) = (node.child_by_field_name("left"), node.child_by_field_name("right")) else { return };
    if right.is_some_and(|r| r.kind() == "assignment") {
        return; // `self.a = self.b = x` is read through the inner assignment.
    }
    let statement = node.start_byte();
    let at = node.end_byte();
    let annotation = node.child_by_field_name("type");
    let mut push = |target: Node, path: Vec<Step>| {
        if target.kind() != "attribute" {
            return;
        }
        let (Some(object), Some(attr)) =
            (target.child_by_field_name("object"), target.child_by_field_name("attribute"))
        else {
            return;
        };
        if object.kind() != "identifier" || text(src, object) != self_name {
            return;
        }
        let source = match (annotation, &right) {
            (Some(ann), _) if path.is_empty() => {
                Source::Annotated { annotation: ann.byte_range(), value: right.map(|r| r.byte_range()) }
            }
            (_, Some(right)) => Source::Value { expr: right.byte_range(), path },
            _ => return,
        };
        out.entry(Arc::from(text(src, attr))).or_default().push((method, Binding { at, statement, source }));
    };
    match left.kind() {
        "attribute" => push(left, Vec::new()),
        "pattern_list" | "tuple_pattern" | "tuple" => {
            let mut walker = left.walk();
            let items: Vec<Node> = left.named_children(&mut walker).collect();
            for (idx, item) in items.into_iter().enumerate() {
                push(item, vec![Step::Index(idx)]);
            }
        }
        _ => {}
    }
}
