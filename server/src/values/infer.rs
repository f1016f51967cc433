//! Type flow: the type of an expression at its place in the file, from the bindings of the names
//! it uses (scopes.rs) and what the catalog says about calls, members and bases (ty.rs).
//!
//! Evaluation is lazy and memoized per document version: a hover types only the names it needs.
//! A name's type at a use is its latest binding before the use in the same function; names of
//! enclosing scopes and the module, seen from inside a function, join all their bindings.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tree_sitter::{Node, Tree};

use super::scopes::{self, Binding, ClassData, ScopeData, ScopeKind, Source, Step, MODULE};
use super::ty::{self, Foreign, Ty};
use super::workspace::UserModules;
use crate::catalog::Catalog;

/// Nested evaluation deeper than this gives up (deep chains, or a cycle the guards did not see).
const MAX_DEPTH: u32 = 48;

/// Names that Python binds without an import, which the type flow reads.
const BUILTINS: &[&str] = &["super", "enumerate", "zip", "iter", "next", "list", "tuple", "sorted", "reversed"];

/// The per-version store: the file's text and tree, and what has been worked out so far.
pub struct ModuleValues {
    pub(crate) text: Arc<str>,
    pub(crate) tree: Tree,
    /// Imports visible from other cells of the same notebook: name -> qualified target.
    outer: HashMap<String, String>,
    scopes: Mutex<HashMap<usize, Option<Arc<ScopeData>>>>,
    classes: Mutex<HashMap<usize, Option<Arc<ClassData>>>>,
    memo: Mutex<HashMap<MemoKey, Ty>>,
    /// The file on disk, for imports relative to it.
    path: Option<Arc<Path>>,
    /// The workspace modules its imports may name (for an open document; the files of the set
    /// get it from the evaluation that reaches them).
    modules: Option<Arc<UserModules>>,
    /// What the layers above work out from these values, kept with this version (one value of
    /// each type: `derived::<T>()`).
    derived: Mutex<HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum MemoKey {
    Binding { scope: usize, name: Arc<str>, at: usize },
    SelfAttr { class: usize, name: Arc<str> },
    Returns(usize),
}

impl ModuleValues {
    pub fn new(text: Arc<str>, tree: Tree, outer: &[crate::recognize::ImportBinding]) -> ModuleValues {
        ModuleValues {
            text,
            tree,
            outer: outer.iter().map(|b| (b.name.clone(), b.target.clone())).collect(),
            scopes: Mutex::default(),
            classes: Mutex::default(),
            memo: Mutex::default(),
            path: None,
            modules: None,
            derived: Mutex::default(),
        }
    }

    /// This version's store of a layer above (the shapes' memo), made on first use.
    pub fn derived<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = lock(&self.derived);
        let entry = map.entry(std::any::TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()));
        match entry.clone().downcast::<T>() {
            Ok(found) => found,
            Err(_) => Arc::new(T::default()),
        }
    }

    /// Where the file is, and the workspace modules its imports are looked up in.
    pub fn in_workspace(mut self, path: Option<Arc<Path>>, modules: Option<Arc<UserModules>>) -> ModuleValues {
        self.path = path;
        self.modules = modules;
        self
    }

    /// Works out what every hover of a value reads first (the module's bindings), so that the
    /// first such hover after an analysis does not pay for it.
    pub fn warm(&self) {
        let _ = self.scope(scopes::MODULE);
        let _ = self.derived::<super::callers::CallIndex>().get(self);
    }

    pub(crate) fn scope(&self, key: usize) -> Option<Arc<ScopeData>> {
        if let Some(found) = lock(&self.scopes).get(&key) {
            return found.clone();
        }
        let built = scopes::build(self.tree.root_node(), key, &self.text).map(Arc::new);
        lock(&self.scopes).insert(key, built.clone());
        built
    }

    pub(crate) fn class(&self, key: usize) -> Option<Arc<ClassData>> {
        if let Some(found) = lock(&self.classes).get(&key) {
            return found.clone();
        }
        let built = scopes::class(self.tree.root_node(), key, &self.text).map(Arc::new);
        lock(&self.classes).insert(key, built.clone());
        built
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a name's value came from, for "how the type was inferred".
#[derive(Clone, Debug)]
pub struct Found {
    pub scope: usize,
    pub binding: Binding,
}

/// One request's evaluation over a `ModuleValues`.
pub struct Eval<'a> {
    pub m: &'a ModuleValues,
    pub catalog: &'a Catalog,
    active: RefCell<HashSet<MemoKey>>,
    depth: std::cell::Cell<u32>,
    modules: Option<Arc<UserModules>>,
    /// Files crossed to get here: `train.py` -> `model.py` -> `layers.py` is 2.
    hops: u32,
    /// How many times this request (across the files it crossed) gave up at a limit: the hops,
    /// the depth or a cycle. A type worked out past such a cut depends on the way in (the same
    /// binding of `model.py` reached from `train.py` or from three files away), so it is kept
    /// for this evaluation only (`local`), never in the module's memo that every request reads.
    pub(super) cuts: std::rc::Rc<std::cell::Cell<u64>>,
    local: RefCell<HashMap<MemoKey, Ty>>,
    /// The module's statements, for finding a node without scanning them all from the root
    /// (a 20,000-line file has thousands).
    top: Vec<Node<'a>>,
}

/// The module's statements when there are many (a small file is searched from its root).
fn statements(m: &ModuleValues) -> Vec<Node<'_>> {
    let root = m.tree.root_node();
    if root.child_count() < 64 {
        return Vec::new();
    }
    let mut walker = root.walk();
    root.children(&mut walker).collect()
}

/// Imports are followed this many files away from the document asked about.
const MAX_HOPS: u32 = 3;

impl<'a> Eval<'a> {
    pub fn new(m: &'a ModuleValues, catalog: &'a Catalog) -> Eval<'a> {
        Eval {
            m,
            catalog,
            active: RefCell::default(),
            depth: Default::default(),
            modules: m.modules.clone(),
            hops: 0,
            cuts: Default::default(),
            local: RefCell::default(),
            top: statements(m),
        }
    }

    /// An evaluation of another workspace file, reached from this one.
    fn across(&self, other: &'a ModuleValues) -> Eval<'a> {
        Eval {
            m: other,
            catalog: self.catalog,
            active: RefCell::default(),
            depth: std::cell::Cell::new(self.depth.get()),
            modules: self.modules.clone(),
            hops: self.hops + 1,
            cuts: self.cuts.clone(),
            local: RefCell::default(),
            top: statements(other),
        }
    }

    /// The smallest node spanning `start..end`: from the module statement holding it, found by
    /// bisection, instead of from the root.
    pub fn locate(&self, start: usize, end: usize) -> Option<Node<'a>> {
        let root = self.root();
        let top = &self.top;
        let at = top.partition_point(|n| n.start_byte() <= start).checked_sub(1);
        match at.and_then(|at| top.get(at)) {
            Some(n) if n.start_byte() <= start && end <= n.end_byte() => n.descendant_for_byte_range(start, end),
            _ => root.descendant_for_byte_range(start, end),
        }
    }

    /// The scope a position belongs to (`scopes::scope_at`, from the located node).
    pub fn scope_of(&self, offset: usize) -> usize {
        match self.locate(offset, offset) {
            Some(node) => scopes::scope_from(node),
            None => MODULE,
        }
    }

    pub fn root(&self) -> Node<'a> {
        self.m.tree.root_node()
    }

    pub fn text(&self, node: Node) -> &'a str {
        scopes::text(&self.m.text, node)
    }

    pub fn node(&self, range: &Range<usize>) -> Option<Node<'a>> {
        let mut node = self.locate(range.start, range.end)?;
        // The outermost node of exactly this range (a `type` around its identifier, say).
        while let Some(parent) = node.parent() {
            if parent.byte_range() != node.byte_range() {
                break;
            }
            node = parent;
        }
        Some(node)
    }

    /// Runs `f` once per key at a time: a cycle (a binding that needs itself) gives `Unknown`.
    fn memoized(&self, key: MemoKey, f: impl FnOnce() -> Ty) -> Ty {
        if let Some(ty) = lock(&self.m.memo).get(&key) {
            return ty.clone();
        }
        if let Some(ty) = self.local.borrow().get(&key) {
            return ty.clone();
        }
        if self.depth.get() > MAX_DEPTH || !self.active.borrow_mut().insert(key.clone()) {
            return self.cut();
        }
        let cuts = self.cuts.get();
        self.depth.set(self.depth.get() + 1);
        let ty = f();
        self.depth.set(self.depth.get() - 1);
        self.active.borrow_mut().remove(&key);
        if self.cuts.get() == cuts {
            lock(&self.m.memo).insert(key, ty.clone());
        } else {
            self.local.borrow_mut().insert(key, ty.clone());
        }
        ty
    }

    /// Gives up at a limit, and remembers that this request did.
    fn cut(&self) -> Ty {
        self.cuts.set(self.cuts.get() + 1);
        Ty::Unknown
    }

    // ----- names -------------------------------------------------------------------------------

    /// The binding a name has at `offset` in scope `key`, following Python's scoping.
    pub fn lookup(&self, name: &str, key: usize, offset: usize) -> Option<Vec<Found>> {
        let mut current = key;
        let mut first = true;
        loop {
            let scope = self.m.scope(current)?;
            let class_hidden = scope.kind == ScopeKind::Class && !first;
            if scope.globals.contains(name) {
                current = MODULE;
                first = false;
                continue;
            }
            if !class_hidden {
                if let Some(list) = scope.bindings.get(name) {
                    let found = |b: &Binding| Found { scope: current, binding: b.clone() };
                    if first {
                        // The latest binding before the use, and the ones before it back to one
                        // that surely ran (`x = A()` in an `if` and `x = B()` in its `else`: both);
                        // a use before every binding (a loop carrying it round) is left unknown.
                        let mut reaching = Vec::new();
                        for b in list.iter().take_while(|b| b.at <= offset).collect::<Vec<_>>().into_iter().rev() {
                            reaching.push(found(b));
                            if self.dominates(b.statement, offset) {
                                break;
                            }
                        }
                        reaching.reverse();
                        return Some(reaching);
                    }
                    return Some(list.iter().map(found).collect());
                }
            }
            match scope.parent {
                Some(parent) => current = parent,
                None => return None,
            }
            first = false;
        }
    }

    /// `if isinstance(x, C):` around a use narrows `x` to a `C` in that branch (a tuple of classes
    /// to their common type, which is unknown when they differ), unless `x` is bound again between.
    pub fn narrowed(&self, name: &str, key: usize, offset: usize) -> Option<Ty> {
        let mut node = self.locate(offset, offset)?;
        while let Some(parent) = node.parent() {
            match parent.kind() {
                "function_definition" | "class_definition" | "lambda" | "module" => return None,
                "if_statement" | "elif_clause"
                    if parent.child_by_field_name("consequence").is_some_and(|c| c.id() == node.id()) =>
                {
                    let condition = parent.child_by_field_name("condition")?;
                    if let Some(class) = self.isinstance_of(condition, name) {
                        let rebound = self.m.scope(key).is_some_and(|scope| {
                            scope.bindings.get(name).is_some_and(|list| {
                                list.iter().any(|b| b.statement > condition.end_byte() && b.statement < offset)
                            })
                        });
                        if !rebound {
                            return Some(if class.kind() == "tuple" {
                                let mut walker = class.walk();
                                let items: Vec<Node> = class.named_children(&mut walker).collect();
                                Ty::join(items.into_iter().map(|c| self.class_instance(self.expr(c, key))))
                            } else {
                                self.class_instance(self.expr(class, key))
                            });
                        }
                    }
                }
                _ => {}
            }
            node = parent;
        }
        None
    }

    /// The class argument of `isinstance(name, C)` in a condition (or the left of an `and`).
    fn isinstance_of(&self, condition: Node<'a>, name: &str) -> Option<Node<'a>> {
        match condition.kind() {
            "call" => {
                let function = condition.child_by_field_name("function")?;
                if self.text(function) != "isinstance" {
                    return None;
                }
                let args = condition.child_by_field_name("arguments")?;
                let mut walker = args.walk();
                let items: Vec<Node> = args.named_children(&mut walker).filter(|n| n.kind() != "comment").collect();
                match items.as_slice() {
                    [subject, class] if subject.kind() == "identifier" && self.text(*subject) == name => Some(*class),
                    _ => None,
                }
            }
            "boolean_operator" if condition.child_by_field_name("operator").is_some_and(|o| o.kind() == "and") => {
                let left = condition.child_by_field_name("left")?;
                self.isinstance_of(left, name)
            }
            "parenthesized_expression" => self.isinstance_of(condition.named_child(0)?, name),
            _ => None,
        }
    }

    /// Whether the statement at `statement` runs whenever code at `offset` (later, in the same scope)
    /// does: every block around the statement also holds `offset`, except `with` bodies, which run.
    pub(crate) fn dominates(&self, statement: usize, offset: usize) -> bool {
        let Some(mut node) = self.locate(statement, statement) else { return false };
        while let Some(parent) = node.parent() {
            match parent.kind() {
                "function_definition" | "class_definition" | "lambda" | "module" => return true,
                "block" => {
                    let runs = parent.parent().is_some_and(|p| p.kind() == "with_statement");
                    if !runs && (offset < parent.start_byte() || parent.end_byte() < offset) {
                        return false;
                    }
                }
                _ => {}
            }
            node = parent;
        }
        true
    }

    pub fn name_type(&self, name: &str, key: usize, offset: usize) -> Ty {
        if let Some(narrowed) = self.narrowed(name, key, offset) {
            return narrowed;
        }
        match self.lookup(name, key, offset) {
            Some(found) => Ty::join(found.iter().map(|f| self.binding_type(f, name))),
            None => {
                if let Some(target) = self.m.outer.get(name) {
                    return Ty::Symbol(Arc::from(target.as_str()));
                }
                if BUILTINS.contains(&name) {
                    return Ty::Symbol(Arc::from(format!("builtins.{name}")));
                }
                Ty::Unknown
            }
        }
    }

    pub fn binding_type(&self, found: &Found, name: &str) -> Ty {
        let key = MemoKey::Binding { scope: found.scope, name: Arc::from(name), at: found.binding.at };
        self.memoized(key, || self.source_type(found.scope, &found.binding, name))
    }

    fn source_type(&self, scope: usize, binding: &Binding, name: &str) -> Ty {
        let at = binding.statement;
        match &binding.source {
            Source::Value { expr, path } => {
                let value = self.node(expr).map_or(Ty::Unknown, |n| self.expr(n, scope));
                self.destructure(value, path)
            }
            Source::Registered { value, through } => {
                // Only `nn.Module`'s own method makes the attribute: a class of the user's that
                // defines `register_buffer` itself may do anything with the name.
                let class = self.m.scope(scope).and_then(|s| s.class);
                let framework = class.is_some_and(|class| {
                    match self.user_member(class, through, &Ty::UserInstance(class), false) {
                        Ty::Method { member, .. } => member.strip_prefix("torch.nn.Module.") == Some(*through),
                        _ => false,
                    }
                });
                match framework {
                    true => self.node(value).map_or(Ty::Unknown, |n| self.expr(n, scope)),
                    false => Ty::Unknown,
                }
            }
            Source::Annotated { annotation, value } => {
                let annotated = self.node(annotation).map_or(Ty::Unknown, |n| self.annotation(n, scope));
                match (annotated.is_known(), value) {
                    (true, _) => annotated,
                    (false, Some(value)) => self.node(value).map_or(Ty::Unknown, |n| self.expr(n, scope)),
                    (false, None) => Ty::Unknown,
                }
            }
            Source::For { iter, path } => {
                let iter = self.node(iter);
                let iterable = iter.map_or(Ty::Unknown, |n| self.expr(n, scope));
                let mut element = iterable.element(self.catalog);
                // `nn.ModuleList([Block() ...])` yields `Module`s to the catalog: the list says which.
                if matches!(&element, Ty::Unknown) || matches!(&element, Ty::Instance(c) if &**c == "torch.nn.Module") {
                    if let Some(held) = iter.and_then(|n| self.modules_held(n, scope)) {
                        element = held;
                    }
                }
                self.destructure(element, path)
            }
            Source::With { value, path } => {
                let manager = self.node(value).map_or(Ty::Unknown, |n| self.expr(n, scope));
                let entered = match &manager {
                    Ty::Instance(class) => match ty::member(self.catalog, class, "__enter__") {
                        Some(m) => ty::call_result(self.catalog, m.symbol, Some(&m.owner), Some(&manager)),
                        None => Ty::Unknown,
                    },
                    _ => Ty::Unknown,
                };
                self.destructure(entered, path)
            }
            Source::Param { index, annotation, default } => {
                let data = self.m.scope(scope);
                if let (0, Some(data)) = (*index, &data) {
                    if let Some(class) = data.class {
                        let decorated = |name: &str| data.decorators.iter().any(|d| &**d == name);
                        if decorated("classmethod") {
                            return Ty::UserClass(class);
                        }
                        if !decorated("staticmethod") {
                            return Ty::UserInstance(class);
                        }
                    }
                }
                // Annotations and defaults are evaluated where the function is defined.
                let outer = data.and_then(|d| d.parent).unwrap_or(MODULE);
                if let Some(annotation) = annotation {
                    let ty = self.node(annotation).map_or(Ty::Unknown, |n| self.annotation(n, outer));
                    if ty.is_known() {
                        return ty;
                    }
                    return Ty::Unknown;
                }
                match default.as_ref().and_then(|d| self.node(d)) {
                    // Only a default built by a call says what callers pass (`device=torch.device("cpu")`).
                    Some(node) if node.kind() == "call" => self.expr(node, outer),
                    // Otherwise the calls of the function in this file say it, when they agree.
                    _ => self.param_from_callers(scope, *index, name),
                }
            }
            Source::Import(target) => self.import(target),
            Source::Def(def) => Ty::UserFunction(*def),
            Source::Class(class) => Ty::UserClass(*class),
            Source::Opaque => {
                let _ = at;
                Ty::Unknown
            }
        }
    }

    fn destructure(&self, value: Ty, path: &[Step]) -> Ty {
        let mut ty = value;
        for step in path {
            ty = match (step, ty) {
                (Step::Index(idx), Ty::Tuple(items)) => items.get(*idx).cloned().unwrap_or(Ty::Unknown),
                (Step::Index(_), other) => other.element(self.catalog),
                (Step::Star, Ty::Tuple(items)) => match Ty::join(items) {
                    elem if elem.is_known() => Ty::Iter(Box::new(elem)),
                    _ => Ty::Unknown,
                },
                (Step::Star, _) => Ty::Unknown,
            };
        }
        ty
    }

    // ----- expressions -------------------------------------------------------------------------

    /// The type of an expression node, evaluated in scope `key` at the node's position.
    pub fn expr(&self, node: Node, key: usize) -> Ty {
        if self.depth.get() > MAX_DEPTH {
            return self.cut();
        }
        self.depth.set(self.depth.get() + 1);
        let ty = self.expr_inner(node, key);
        self.depth.set(self.depth.get() - 1);
        ty
    }

    fn expr_inner(&self, node: Node, key: usize) -> Ty {
        match node.kind() {
            "identifier" => self.name_type(self.text(node), key, node.start_byte()),
            "none" => Ty::None,
            "parenthesized_expression" => node.named_child(0).map_or(Ty::Unknown, |n| self.expr(n, key)),
            "attribute" => {
                let (Some(object), Some(attr)) =
                    (node.child_by_field_name("object"), node.child_by_field_name("attribute"))
                else {
                    return Ty::Unknown;
                };
                let object = self.expr(object, key);
                self.attribute(&object, self.text(attr))
            }
            "call" => {
                let Some(function) = node.child_by_field_name("function") else { return Ty::Unknown };
                let callee = self.expr(function, key);
                self.call(&callee, node, key)
            }
            "subscript" => {
                let Some(value) = node.child_by_field_name("value") else { return Ty::Unknown };
                let value = self.expr(value, key);
                let mut walker = node.walk();
                let subscripts: Vec<Node> = node.children_by_field_name("subscript", &mut walker).collect();
                self.subscript(value, &subscripts)
            }
            "binary_operator" => {
                let (Some(left), Some(right)) = (node.child_by_field_name("left"), node.child_by_field_name("right"))
                else {
                    return Ty::Unknown;
                };
                let (left, right) = (self.expr(left, key), self.expr(right, key));
                self.arithmetic(&left, &right)
            }
            "unary_operator" => match node.child_by_field_name("argument").map(|n| self.expr(n, key)) {
                Some(Ty::Instance(class)) => self.array_of(&class).unwrap_or(Ty::Unknown),
                _ => Ty::Unknown,
            },
            "comparison_operator" => {
                let mut walker = node.walk();
                let operands: Vec<Ty> = node.named_children(&mut walker).map(|n| self.expr(n, key)).collect();
                // `x > 0` on an array is an array of booleans; `is`/`in` are not, but they give
                // Python booleans whose members nobody hovers, and arrays never come out of them.
                let operators: Vec<&str> = {
                    let mut walker = node.walk();
                    node.children(&mut walker).filter(|c| !c.is_named()).map(|c| c.kind()).collect()
                };
                if operators.iter().any(|op| matches!(*op, "is" | "in" | "not" | "is not" | "not in")) {
                    return Ty::Unknown;
                }
                match operands.as_slice() {
                    [left, right] => self.arithmetic(left, right),
                    _ => Ty::Unknown,
                }
            }
            "conditional_expression" => {
                let mut walker = node.walk();
                let parts: Vec<Node> = node.named_children(&mut walker).collect();
                match parts.as_slice() {
                    [then, _, otherwise] => Ty::join([self.expr(*then, key), self.expr(*otherwise, key)]),
                    _ => Ty::Unknown,
                }
            }
            "tuple" => {
                let mut walker = node.walk();
                let items: Vec<Node> = node.named_children(&mut walker).collect();
                if items.iter().any(|i| i.kind() == "list_splat") {
                    return Ty::Unknown;
                }
                Ty::Tuple(items.into_iter().map(|i| self.expr(i, key)).collect())
            }
            "list" => {
                let mut walker = node.walk();
                let items: Vec<Node> = node.named_children(&mut walker).collect();
                if items.is_empty() || items.iter().any(|i| i.kind() == "list_splat") {
                    return Ty::Unknown;
                }
                match Ty::join(items.into_iter().map(|i| self.expr(i, key))) {
                    elem if elem.is_known() => Ty::Iter(Box::new(elem)),
                    _ => Ty::Unknown,
                }
            }
            "await" => Ty::Unknown,
            _ => Ty::Unknown,
        }
    }

    /// Arrays keep their family through arithmetic with numbers or each other.
    fn arithmetic(&self, left: &Ty, right: &Ty) -> Ty {
        let array = |t: &Ty| match t {
            Ty::Instance(class) => self.array_of(class),
            _ => None,
        };
        let user = |t: &Ty| matches!(t, Ty::UserInstance(_) | Ty::Foreign(_));
        match (array(left), array(right)) {
            (Some(a), Some(b)) if a == b => a,
            (Some(_), Some(_)) => Ty::Unknown,
            (Some(a), None) if !user(right) => a,
            (None, Some(b)) if !user(left) => b,
            _ => Ty::Unknown,
        }
    }

    fn array_of(&self, class: &str) -> Option<Ty> {
        ty::array_base(self.catalog, class).map(|base| Ty::Instance(Arc::from(base)))
    }

    fn subscript(&self, value: Ty, subscripts: &[Node]) -> Ty {
        match value {
            Ty::Instance(class) => {
                if let Some(array) = self.array_of(&class) {
                    return array;
                }
                match ty::member(self.catalog, &class, "__getitem__") {
                    Some(m) => ty::call_result(self.catalog, m.symbol, Some(&m.owner), Some(&Ty::Instance(class))),
                    None => Ty::Unknown,
                }
            }
            Ty::Tuple(items) => match subscripts {
                [single] => match self.text(*single).parse::<i64>() {
                    Ok(idx) if idx >= 0 => items.get(idx as usize).cloned().unwrap_or(Ty::Unknown),
                    Ok(idx) => items
                        .len()
                        .checked_sub(idx.unsigned_abs() as usize)
                        .and_then(|i| items.get(i).cloned())
                        .unwrap_or(Ty::Unknown),
                    Err(_) => Ty::Unknown,
                },
                _ => Ty::Unknown,
            },
            Ty::Iter(elem) => match subscripts {
                [single] if single.kind() == "slice" => Ty::Iter(elem),
                [_] => *elem,
                _ => Ty::Unknown,
            },
            _ => Ty::Unknown,
        }
    }

    // ----- members -----------------------------------------------------------------------------

    /// The type of `object.name`.
    pub fn attribute(&self, object: &Ty, name: &str) -> Ty {
        match object {
            Ty::Symbol(qualified) => {
                let full = format!("{qualified}.{name}");
                if self.catalog.lookup(&full).is_some() || self.catalog.knows_python_module(&full) {
                    return Ty::Symbol(Arc::from(full));
                }
                let is_class = self.catalog.lookup(qualified).is_some_and(|idx| self.catalog.kind_of(idx) == "class");
                match ty::member(self.catalog, qualified, name).filter(|_| is_class) {
                    Some(m) => Ty::Symbol(m.name),
                    None => Ty::Unknown,
                }
            }
            Ty::Instance(class) => self.instance_member(class, name, object),
            Ty::UserModule(file) => self.module_member(file, name),
            Ty::Foreign(foreign) => self.foreign_member(foreign, name, object),
            Ty::UserInstance(class) => self.user_member(*class, name, object, false),
            Ty::Super(class) => self.user_member(*class, name, &Ty::UserInstance(*class), true),
            Ty::UserClass(class) => {
                // Class-level bindings, and methods as plain functions.
                match self.m.scope(*class).and_then(|s| s.bindings.get(name).and_then(|l| l.last().cloned())) {
                    Some(binding) => self.binding_type(&Found { scope: *class, binding }, name),
                    None => Ty::Unknown,
                }
            }
            _ => Ty::Unknown,
        }
    }

    fn instance_member(&self, class: &str, name: &str, receiver: &Ty) -> Ty {
        let Some(m) = ty::member(self.catalog, class, name) else { return Ty::Unknown };
        match self.catalog.kind_of(m.symbol) {
            "method" | "function" | "decorator" => {
                Ty::Method { member: m.name, owner: m.owner, receiver: Box::new(receiver.clone()) }
            }
            "class" => Ty::Symbol(m.name),
            _ => ty::parse_type(self.catalog.symbol(m.symbol).returns.as_deref().unwrap_or("")),
        }
    }

    /// A member of a user class: its own methods and attributes, then its bases'.
    pub(crate) fn user_member(&self, class: usize, name: &str, receiver: &Ty, skip_own: bool) -> Ty {
        self.user_member_at(class, name, receiver, skip_own, 0)
    }

    fn user_member_at(&self, class: usize, name: &str, receiver: &Ty, skip_own: bool, depth: usize) -> Ty {
        if depth > 12 {
            return Ty::Unknown;
        }
        if !skip_own {
            if let Some(scope) = self.m.scope(class) {
                if let Some(binding) = scope.bindings.get(name).and_then(|l| l.last()) {
                    if let Source::Def(def) = binding.source {
                        return Ty::UserMethod { def, receiver: Box::new(receiver.clone()) };
                    }
                    let ty = self.binding_type(&Found { scope: class, binding: binding.clone() }, name);
                    if ty.is_known() {
                        return ty;
                    }
                }
            }
            let attr = self.self_attr(class, name);
            if attr.is_known() {
                return attr;
            }
            if self.m.class(class).is_some_and(|c| c.self_attrs.contains_key(name)) {
                // The user's own attribute, of a type we cannot tell: never a framework member.
                return Ty::Unknown;
            }
            if self.m.scope(class).is_some_and(|s| s.bindings.contains_key(name)) {
                return Ty::Unknown;
            }
        }
        for base in self.user_bases(class) {
            let ty = match &base {
                Ty::UserClass(parent) => self.user_member_at(*parent, name, receiver, false, depth + 1),
                // A base from another file: its own names end the search there.
                Ty::ForeignClass(foreign) if foreign.own.contains(name) => return Ty::Unknown,
                Ty::ForeignClass(foreign) => self.foreign_member(foreign, name, receiver),
                Ty::Symbol(qualified) => match ty::member(self.catalog, qualified, name) {
                    Some(m) => match self.catalog.kind_of(m.symbol) {
                        "method" | "function" | "decorator" => {
                            Ty::Method { member: m.name, owner: m.owner, receiver: Box::new(receiver.clone()) }
                        }
                        "class" => Ty::Symbol(m.name),
                        _ => ty::parse_type(self.catalog.symbol(m.symbol).returns.as_deref().unwrap_or("")),
                    },
                    None => Ty::Unknown,
                },
                _ => Ty::Unknown,
            };
            if ty.is_known() {
                return ty;
            }
        }
        Ty::Unknown
    }

    /// The bases of a user class, as types: user classes or catalog classes.
    pub fn user_bases(&self, class: usize) -> Vec<Ty> {
        let Some(data) = self.m.class(class) else { return Vec::new() };
        let around = self.m.scope(class).and_then(|s| s.parent).unwrap_or(MODULE);
        data.bases
            .iter()
            .filter_map(|range| self.node(range))
            .map(|node| {
                // `nn.Module`, `Generic[T]`-free bases; subscripted bases name their origin.
                let node =
                    if node.kind() == "subscript" { node.child_by_field_name("value").unwrap_or(node) } else { node };
                self.expr(node, around)
            })
            .collect()
    }

    /// The catalog classes a user class derives from, nearest first.
    pub fn catalog_ancestors(&self, class: usize) -> Vec<Arc<str>> {
        let mut res = Vec::new();
        let mut stack = vec![(class, 0)];
        while let Some((class, depth)) = stack.pop() {
            if depth > 12 {
                continue;
            }
            for base in self.user_bases(class).into_iter().rev() {
                match base {
                    Ty::Symbol(name) => res.push(name),
                    Ty::UserClass(parent) => stack.push((parent, depth + 1)),
                    Ty::ForeignClass(foreign) => res.extend(foreign.ancestors.iter().cloned()),
                    _ => {}
                }
            }
        }
        res
    }

    /// Whether a user base from another file (through any user bases here) binds `name` itself.
    pub fn foreign_base_owns(&self, class: usize, name: &str) -> bool {
        let mut stack = vec![(class, 0)];
        while let Some((class, depth)) = stack.pop() {
            if depth > 12 {
                continue;
            }
            for base in self.user_bases(class) {
                match base {
                    Ty::ForeignClass(foreign) if foreign.own.contains(name) => return true,
                    Ty::UserClass(parent) => stack.push((parent, depth + 1)),
                    _ => {}
                }
            }
        }
        false
    }

    fn derives_from(&self, class: usize, ancestor: &str) -> bool {
        self.catalog_ancestors(class).iter().any(|c| ty::derives_from(self.catalog, c, ancestor))
    }

    /// The type of `self.name` in a class: the join of what its methods assign.
    pub fn self_attr(&self, class: usize, name: &str) -> Ty {
        let key = MemoKey::SelfAttr { class, name: Arc::from(name) };
        self.memoized(key, || {
            let Some(data) = self.m.class(class) else { return Ty::Unknown };
            let Some(list) = data.self_attrs.get(name) else { return Ty::Unknown };
            Ty::join(list.iter().map(|(method, binding)| self.source_type(*method, binding, name)))
        })
    }

    /// What a container of modules holds, read from where it is built: `nn.ModuleList([A(), A()])`,
    /// `nn.ModuleList([A(c) for _ in range(n)])` or `nn.Sequential(A(), A())`, bound once to the
    /// name or `self` attribute iterated. One type for every element, or nothing.
    fn modules_held(&self, iter: Node<'a>, key: usize) -> Option<Ty> {
        let (value, vkey) = match iter.kind() {
            "identifier" => {
                let found = self.lookup(self.text(iter), key, iter.start_byte())?;
                let [one] = found.as_slice() else { return None };
                let Source::Value { expr, path } = &one.binding.source else { return None };
                (path.is_empty().then_some(())?, (self.node(expr)?, one.scope)).1
            }
            "attribute" => {
                let object = iter.child_by_field_name("object")?;
                let Ty::UserInstance(class) = self.expr(object, key) else { return None };
                let data = self.m.class(class)?;
                let [(method, binding)] =
                    data.self_attrs.get(self.text(iter.child_by_field_name("attribute")?))?.as_slice()
                else {
                    return None;
                };
                let Source::Value { expr, path } = &binding.source else { return None };
                (path.is_empty().then_some(())?, (self.node(expr)?, *method)).1
            }
            _ => return None,
        };
        if value.kind() != "call" {
            return None;
        }
        let container = self.expr(value.child_by_field_name("function")?, vkey);
        let Ty::Symbol(name) = &container else { return None };
        let canonical = self.catalog.lookup(name).map(|idx| self.catalog.symbol(idx).name.to_string())?;
        let args = value.child_by_field_name("arguments")?;
        let mut walker = args.walk();
        let args: Vec<Node> = args.named_children(&mut walker).filter(|n| n.kind() != "comment").collect();
        let items: Vec<Node> = match (canonical.as_str(), args.as_slice()) {
            ("torch.nn.ModuleList", [list]) => match list.kind() {
                "list" | "tuple" => {
                    let mut walker = list.walk();
                    list.named_children(&mut walker).filter(|n| n.kind() != "comment").collect()
                }
                "list_comprehension" | "generator_expression" => vec![list.child_by_field_name("body")?],
                _ => return None,
            },
            ("torch.nn.Sequential", items) if items.iter().all(|i| i.kind() == "call") => items.to_vec(),
            _ => return None,
        };
        if items.is_empty() {
            return None;
        }
        let ty = Ty::join(items.into_iter().map(|i| if i.kind() == "call" { self.expr(i, vkey) } else { Ty::Unknown }));
        ty.is_known().then_some(ty)
    }

    // ----- calls -------------------------------------------------------------------------------

    pub fn call(&self, callee: &Ty, call: Node, key: usize) -> Ty {
        let args = || -> Vec<Node> {
            call.child_by_field_name("arguments")
                .map(|a| {
                    let mut walker = a.walk();
                    a.named_children(&mut walker)
                        .filter(|n| n.kind() != "keyword_argument" && n.kind() != "comment")
                        .collect()
                })
                .unwrap_or_default()
        };
        match callee {
            Ty::Symbol(name) if name.starts_with("builtins.") => {
                self.builtin_call(&name["builtins.".len()..], &args(), key)
            }
            Ty::Symbol(name) => match self.catalog.lookup(name) {
                Some(idx) => ty::call_result(self.catalog, idx, None, None),
                None => Ty::Unknown,
            },
            Ty::Method { member, owner, receiver } => match self.catalog.lookup(member) {
                Some(idx) => ty::call_result(self.catalog, idx, Some(owner), Some(receiver)),
                None => Ty::Unknown,
            },
            Ty::Instance(class) => self.call_instance(class),
            Ty::UserClass(class) => Ty::UserInstance(*class),
            Ty::UserFunction(def) => self.user_returns(*def),
            Ty::UserMethod { def, .. } => self.user_returns(*def),
            Ty::UserInstance(class) => self.call_user_instance(*class),
            Ty::ForeignClass(foreign) => Ty::Foreign(foreign.clone()),
            Ty::Foreign(foreign) => foreign.call.clone(),
            Ty::ForeignFunction(returns) => (**returns).clone(),
            _ => Ty::Unknown,
        }
    }

    // ----- the user's other modules ------------------------------------------------------------

    /// What an import binds: a catalog name, or a module, class or function of the workspace.
    pub(super) fn import(&self, target: &Arc<str>) -> Ty {
        let root = target.split('.').next().unwrap_or("");
        let framework =
            !root.is_empty() && (self.catalog.knows_python_module(root) || self.catalog.lookup(target).is_some());
        if !framework {
            let ty = self.workspace_import(target);
            if ty.is_known() {
                return ty;
            }
        }
        Ty::Symbol(target.clone())
    }

    fn workspace_import(&self, target: &str) -> Ty {
        let (Some(modules), Some(from)) = (&self.modules, &self.m.path) else { return Ty::Unknown };
        if self.hops >= MAX_HOPS {
            return self.cut();
        }
        let Some((file, rest)) = modules.resolve(from, target) else { return Ty::Unknown };
        let mut ty = Ty::UserModule(Arc::from(file.as_path()));
        for name in &rest {
            ty = self.attribute(&ty, name);
        }
        ty
    }

    /// `name` in a workspace module: its top-level binding made usable here, or a submodule.
    fn module_member(&self, file: &Path, name: &str) -> Ty {
        let Some(modules) = self.modules.clone() else { return Ty::Unknown };
        if self.hops >= MAX_HOPS {
            return self.cut();
        }
        if let Some(other) = modules.file(file) {
            let eval = self.across(other);
            let ty = match eval.lookup(name, MODULE, other.text.len()) {
                Some(found) if !found.is_empty() => Ty::join(found.iter().map(|f| eval.binding_type(f, name))),
                _ => Ty::Unknown,
            };
            let ty = eval.export(ty);
            if ty.is_known() {
                return ty;
            }
        }
        // `import pkg` then `pkg.sub`: a submodule of the package.
        if file.file_name().is_some_and(|n| n == "__init__.py") {
            if let Some(dir) = file.parent() {
                for candidate in [dir.join(format!("{name}.py")), dir.join(name).join("__init__.py")] {
                    if modules.file(&candidate).is_some() {
                        return Ty::UserModule(Arc::from(candidate.as_path()));
                    }
                }
            }
        }
        Ty::Unknown
    }

    /// A type of this file made usable in the file that imports it: its classes and functions
    /// become foreign ones, worked out here.
    fn export(&self, ty: Ty) -> Ty {
        match ty {
            Ty::UserClass(class) => self.foreign(class).map_or(Ty::Unknown, Ty::ForeignClass),
            Ty::UserInstance(class) => self.foreign(class).map_or(Ty::Unknown, Ty::Foreign),
            Ty::UserFunction(def) => match self.export(self.user_returns(def)) {
                returns if returns.is_known() => Ty::ForeignFunction(Arc::new(returns)),
                _ => Ty::Unknown,
            },
            Ty::Tuple(items) => Ty::Tuple(items.into_iter().map(|t| self.export(t)).collect()),
            Ty::Iter(elem) => match self.export(*elem) {
                elem if elem.is_known() => Ty::Iter(Box::new(elem)),
                _ => Ty::Unknown,
            },
            Ty::Method { .. } | Ty::UserMethod { .. } | Ty::Super(_) | Ty::Unknown => Ty::Unknown,
            Ty::Symbol(name) if name.starts_with("builtins.") => Ty::Unknown,
            // Catalog symbols and instances, None, workspace modules and foreign types.
            other => other,
        }
    }

    fn foreign(&self, class: usize) -> Option<Arc<Foreign>> {
        let data = self.m.class(class)?;
        let file = self.m.path.clone()?;
        let mut own = std::collections::BTreeSet::new();
        let mut stack = vec![(class, 0)];
        while let Some((c, depth)) = stack.pop() {
            if depth > 12 {
                continue;
            }
            if let Some(scope) = self.m.scope(c) {
                own.extend(scope.bindings.keys().cloned());
            }
            if let Some(d) = self.m.class(c) {
                own.extend(d.self_attrs.keys().cloned());
            }
            for base in self.user_bases(c) {
                match base {
                    Ty::UserClass(parent) => stack.push((parent, depth + 1)),
                    Ty::ForeignClass(f) => own.extend(f.own.iter().cloned()),
                    _ => {}
                }
            }
        }
        let call = self.export(self.call_user_instance(class));
        Some(Arc::new(Foreign { name: data.name.clone(), file, ancestors: self.catalog_ancestors(class), own, call }))
    }

    /// A member of a foreign instance: a framework member through its bases, unless the user's
    /// classes bind the name themselves.
    fn foreign_member(&self, foreign: &Foreign, name: &str, receiver: &Ty) -> Ty {
        if foreign.own.contains(name) {
            return Ty::Unknown;
        }
        foreign
            .ancestors
            .iter()
            .map(|class| self.instance_member(class, name, receiver))
            .find(Ty::is_known)
            .unwrap_or(Ty::Unknown)
    }

    fn builtin_call(&self, name: &str, args: &[Node], key: usize) -> Ty {
        let elem = |idx: usize| args.get(idx).map_or(Ty::Unknown, |a| self.expr(*a, key).element(self.catalog));
        let known = |t: Ty| if t.is_known() { Ty::Iter(Box::new(t)) } else { Ty::Unknown };
        match name {
            "super" => match self.m.scope(self.method_scope(key)).and_then(|s| s.class) {
                Some(class) if args.is_empty() => Ty::Super(class),
                _ => Ty::Unknown,
            },
            "enumerate" => match elem(0) {
                e if e.is_known() => Ty::Iter(Box::new(Ty::Tuple(vec![Ty::Unknown, e]))),
                _ => Ty::Unknown,
            },
            "zip" if !args.is_empty() => {
                let items: Vec<Ty> = (0..args.len()).map(elem).collect();
                Ty::Iter(Box::new(Ty::Tuple(items)))
            }
            "iter" | "list" | "tuple" | "sorted" | "reversed" => known(elem(0)),
            "next" => elem(0),
            _ => Ty::Unknown,
        }
    }

    /// The function scope `super()` is called in (a nested function has no class of its own).
    fn method_scope(&self, key: usize) -> usize {
        key
    }

    fn call_instance(&self, class: &str) -> Ty {
        let receiver = Ty::Instance(Arc::from(class));
        let module = ty::derives_from(self.catalog, class, "torch.nn.Module");
        let entry = if module { "forward" } else { "__call__" };
        if let Some(m) = ty::member(self.catalog, class, entry) {
            let ty = ty::call_result(self.catalog, m.symbol, Some(&m.owner), Some(&receiver));
            if ty.is_known() {
                return ty;
            }
        }
        if module && !matches!(class, "torch.nn.Module") {
            // A layer called on its input gives a tensor unless its forward says otherwise.
            return Ty::Instance(Arc::from("torch.Tensor"));
        }
        Ty::Unknown
    }

    fn call_user_instance(&self, class: usize) -> Ty {
        let module = self.derives_from(class, "torch.nn.Module");
        let receiver = Ty::UserInstance(class);
        for entry in if module { ["forward", "__call__"] } else { ["__call__", "__call__"] } {
            match self.user_member(class, entry, &receiver, false) {
                Ty::UserMethod { def, .. } => {
                    let ty = self.user_returns(def);
                    if ty.is_known() {
                        return ty;
                    }
                    if module && entry == "forward" && self.returns_plain_values(def) {
                        return Ty::Instance(Arc::from("torch.Tensor"));
                    }
                    return Ty::Unknown;
                }
                Ty::Method { member, owner, receiver } => {
                    if let Some(idx) = self.catalog.lookup(&member) {
                        let ty = ty::call_result(self.catalog, idx, Some(&owner), Some(&receiver));
                        if ty.is_known() {
                            return ty;
                        }
                    }
                }
                _ => {}
            }
        }
        Ty::Unknown
    }

    /// Whether every `return` of a function returns a single value (no tuple, dict, list or
    /// constant), so a module's forward of unknown result can be taken to give a tensor.
    fn returns_plain_values(&self, def: usize) -> bool {
        let Some(scope) = self.m.scope(def) else { return false };
        if scope.generator || scope.returns.is_empty() {
            return false;
        }
        scope.returns.iter().all(|range| {
            self.node(range).is_some_and(|n| {
                !range.is_empty()
                    && !matches!(
                        n.kind(),
                        "tuple"
                            | "expression_list"
                            | "dictionary"
                            | "list"
                            | "none"
                            | "string"
                            | "integer"
                            | "float"
                            | "true"
                            | "false"
                    )
            })
        })
    }

    /// What a user function returns: its annotation, else the join of its `return`s.
    pub fn user_returns(&self, def: usize) -> Ty {
        self.memoized(MemoKey::Returns(def), || {
            let Some(scope) = self.m.scope(def) else { return Ty::Unknown };
            let outer = scope.parent.unwrap_or(MODULE);
            if let Some(annotation) = &scope.return_annotation {
                return self.node(annotation).map_or(Ty::Unknown, |n| self.annotation(n, outer));
            }
            if scope.generator || scope.returns.is_empty() {
                return Ty::Unknown;
            }
            Ty::join(scope.returns.iter().map(|range| {
                if range.is_empty() {
                    return Ty::None;
                }
                match self.node(range) {
                    // `return a, b` parses as an expression list.
                    Some(n) if n.kind() == "expression_list" => {
                        let mut walker = n.walk();
                        let items: Vec<Node> = n.named_children(&mut walker).collect();
                        Ty::Tuple(items.into_iter().map(|i| self.expr(i, def)).collect())
                    }
                    Some(n) => self.expr(n, def),
                    None => Ty::Unknown,
                }
            }))
        })
    }

    // ----- annotations -------------------------------------------------------------------------

    /// The type of values an annotation describes: `torch.Tensor`, `Optional[nn.Module]`,
    /// `list[Tensor]`, jaxtyping's `Float[Array, "b n"]`, `"torch.Tensor"`.
    pub fn annotation(&self, node: Node, key: usize) -> Ty {
        match node.kind() {
            "type" => node.named_child(0).map_or(Ty::Unknown, |n| self.annotation(n, key)),
            "none" => Ty::None,
            "identifier" | "attribute" => self.class_instance(self.expr(node, key)),
            "string" => {
                let inner = self.text(node).trim_matches(|c| c == '"' || c == '\'');
                let mut parts = inner.split('.');
                let Some(first) = parts.next().filter(|p| !p.is_empty()) else { return Ty::Unknown };
                if !inner.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    return Ty::Unknown;
                }
                let mut ty = self.name_type(first, key, node.start_byte());
                for part in parts {
                    ty = self.attribute(&ty, part);
                }
                self.class_instance(ty)
            }
            "binary_operator" => {
                let (Some(left), Some(right)) = (node.child_by_field_name("left"), node.child_by_field_name("right"))
                else {
                    return Ty::Unknown;
                };
                Ty::join([self.annotation(left, key), self.annotation(right, key)])
            }
            "generic_type" | "subscript" => {
                let (origin, args): (Node, Vec<Node>) = if node.kind() == "generic_type" {
                    let Some(origin) = node.named_child(0) else { return Ty::Unknown };
                    let args = node
                        .named_child(1)
                        .map(|p| {
                            let mut walker = p.walk();
                            p.named_children(&mut walker).collect()
                        })
                        .unwrap_or_default();
                    (origin, args)
                } else {
                    let Some(origin) = node.child_by_field_name("value") else { return Ty::Unknown };
                    let mut walker = node.walk();
                    (origin, node.children_by_field_name("subscript", &mut walker).collect())
                };
                let generic = self.generic_name(origin, key);
                let arg = |idx: usize| args.get(idx).map_or(Ty::Unknown, |a| self.annotation(*a, key));
                match generic.as_deref() {
                    Some("Optional") => arg(0),
                    Some("Union") => Ty::join((0..args.len()).map(arg)),
                    Some("Annotated") | Some("Final") | Some("ClassVar") => arg(0),
                    Some("List" | "list" | "Sequence" | "Iterable" | "Iterator" | "Generator" | "MutableSequence") => {
                        match arg(0) {
                            elem if elem.is_known() => Ty::Iter(Box::new(elem)),
                            _ => Ty::Unknown,
                        }
                    }
                    Some("Tuple" | "tuple") => {
                        if args.len() == 2 && args[1].kind() == "ellipsis"
                            || args.get(1).is_some_and(|a| self.text(*a) == "...")
                        {
                            match arg(0) {
                                elem if elem.is_known() => Ty::Iter(Box::new(elem)),
                                _ => Ty::Unknown,
                            }
                        } else {
                            Ty::Tuple((0..args.len()).map(arg).collect())
                        }
                    }
                    // jaxtyping: `Float[Tensor, "batch dim"]` is a Tensor.
                    Some(
                        "Float" | "Int" | "Bool" | "Shaped" | "Num" | "Real" | "Inexact" | "Integer" | "UInt"
                        | "Complex" | "Key" | "BFloat16" | "Float16" | "Float32" | "Float64" | "Int8" | "Int32"
                        | "Int64" | "UInt8",
                    ) => arg(0),
                    _ => Ty::Unknown,
                }
            }
            _ => Ty::Unknown,
        }
    }

    /// The generic an annotation subscripts, when it is one we read: from `typing`,
    /// `typing_extensions`, `collections.abc`, `jaxtyping`, or a builtin.
    fn generic_name(&self, origin: Node, key: usize) -> Option<String> {
        let written = self.text(origin);
        let last = written.rsplit('.').next()?.to_string();
        if origin.kind() == "identifier" {
            return match self.lookup(written, key, origin.start_byte()) {
                Some(found) => {
                    let target = found.iter().find_map(|f| match &f.binding.source {
                        Source::Import(target) => Some(target.clone()),
                        _ => None,
                    })?;
                    let module = target.rsplit_once('.').map(|(m, _)| m)?;
                    matches!(module, "typing" | "typing_extensions" | "collections.abc" | "jaxtyping").then_some(last)
                }
                None => matches!(written, "list" | "tuple").then_some(last),
            };
        }
        // `typing.Optional`, `t.List`: the root must be the typing module.
        let root = written.split('.').next()?;
        match self.name_type(root, key, origin.start_byte()) {
            Ty::Symbol(m) if matches!(&*m, "typing" | "typing_extensions" | "jaxtyping") => Some(last),
            _ => None,
        }
    }

    /// A class named in an annotation stands for its instances.
    fn class_instance(&self, ty: Ty) -> Ty {
        match ty {
            Ty::Symbol(name) => match self.catalog.lookup(&name) {
                Some(idx) if self.catalog.kind_of(idx) == "class" => {
                    Ty::Instance(Arc::from(self.catalog.symbol(idx).name.as_ref()))
                }
                _ => Ty::Unknown,
            },
            Ty::UserClass(class) => Ty::UserInstance(class),
            Ty::ForeignClass(foreign) => Ty::Foreign(foreign),
            Ty::None => Ty::None,
            _ => Ty::Unknown,
        }
    }
}

/// The start offsets of every function and class definition enclosing `offset`.
pub fn scope_at(tree: &Tree, offset: usize) -> usize {
    scopes::scope_at(tree.root_node(), offset)
}
