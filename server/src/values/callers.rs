//! A parameter nobody annotated takes its type from the calls in the file: `def forward(self, x)`
//! of a module whose every call (`self.attn(h)`, `block(x)`, `model(tokens)`) passes a tensor
//! holds a tensor. Type checkers leave such a parameter unknown; the script as written says more.
//!
//! Precision first: every call found must pass the parameter a value of one known type (a call
//! that leaves it to a `None` default counts for nothing), a `*args`/`**kwargs` at a call gives up,
//! and no call found gives nothing. Calls are found by name in the text, then confirmed by the
//! callee's type: a `.forward(` of another class is not a call of this one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tree_sitter::Node;

use super::infer::Eval;
use super::scopes::{self, scope_node, ScopeKind};
use super::ty::Ty;

/// More calls than this to look at, and the parameter stays unknown: the search is by text, and a
/// name called everywhere is not worth reading every call of on a hover.
const MAX_SITES: usize = 200;

/// The call sites of each function of a document version, by where their calls start.
#[derive(Default)]
struct CallSites(Mutex<HashMap<usize, Option<Sites>>>);

/// Where each call starts, and how it reaches the parameters.
type Sites = Arc<[(std::ops::Range<usize>, Reach)]>;

/// How a call reaches the function's parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// `f(a, b)`: the first argument is the first parameter.
    Direct,
    /// `obj.m(a)` or `module(a)`: the receiver is the first parameter.
    Bound,
}

/// A call of the function whose parameter is asked about, and its arguments.
pub struct Site<'t> {
    pub call: Node<'t>,
    reach: Reach,
}

impl<'t> Site<'t> {
    /// A call whose receiver is the first parameter: a construction `C(...)` for `__init__`, a
    /// module called on its input for `forward`.
    pub fn bound(call: Node<'t>) -> Site<'t> {
        Site { call, reach: Reach::Bound }
    }
}

impl<'a> Eval<'a> {
    /// The calls in this file that surely call the function of scope `def`; found once per
    /// document version (unless a limit cut the search short, which this request alone keeps).
    pub(crate) fn call_sites(&self, def: usize) -> Option<Vec<Site<'a>>> {
        let memo = self.m.derived::<CallSites>();
        let known = memo.0.lock().unwrap_or_else(|e| e.into_inner()).get(&def).cloned();
        let found = match known {
            Some(found) => found,
            None => {
                let cuts = self.cuts.get();
                let found: Option<Sites> = self
                    .find_call_sites(def)
                    .map(|sites| sites.iter().map(|s| (s.call.byte_range(), s.reach)).collect());
                if self.cuts.get() == cuts {
                    memo.0.lock().unwrap_or_else(|e| e.into_inner()).insert(def, found.clone());
                }
                found
            }
        };
        found?
            .iter()
            .map(|(range, reach)| {
                // `C().m(x)`: the call of exactly this range, not the `C()` starting with it.
                let mut node = self.locate(range.start, range.end)?;
                while node.kind() != "call" || node.byte_range() != *range {
                    node = node.parent()?;
                }
                Some(Site { call: node, reach: *reach })
            })
            .collect()
    }

    fn find_call_sites(&self, def: usize) -> Option<Vec<Site<'a>>> {
        let scope = self.m.scope(def)?;
        if scope.kind != ScopeKind::Function {
            return None;
        }
        let node = scope_node(self.root(), def)?;
        let name = self.text(node.child_by_field_name("name")?);
        let decorated = |d: &str| scope.decorators.iter().any(|x| &**x == d);
        let mut sites = Vec::new();
        match scope.class {
            // A method: `obj.m(...)`, and for a module's `forward` (or any `__call__`) calling the
            // instance itself.
            Some(class) => {
                if decorated("staticmethod") || decorated("classmethod") {
                    return None;
                }
                for call in self.calls_named(&format!(".{name}"))? {
                    let callee = call.child_by_field_name("function")?;
                    if matches!(self.expr(callee, self.scope_of(call.start_byte())),
                        Ty::UserMethod { def: d, .. } if d == def)
                    {
                        sites.push(Site { call, reach: Reach::Bound });
                    }
                }
                // `__init__`: the constructions `C(...)`.
                if name == "__init__" {
                    let class_name = self.m.class(class)?.name.clone();
                    for call in self.calls_named(&class_name)? {
                        let callee = call.child_by_field_name("function")?;
                        let key = self.scope_of(call.start_byte());
                        if self.expr(callee, key) == Ty::UserClass(class) {
                            sites.push(Site { call, reach: Reach::Bound });
                        }
                    }
                }
                if matches!(name, "forward" | "__call__") && self.instance_entry(class) == Some(def) {
                    for callee_name in self.instance_names(class) {
                        for call in self.calls_named(&callee_name)? {
                            let callee = call.child_by_field_name("function")?;
                            let key = self.scope_of(call.start_byte());
                            if self.expr(callee, key) == Ty::UserInstance(class) {
                                sites.push(Site { call, reach: Reach::Bound });
                            }
                        }
                    }
                }
            }
            None => {
                for call in self.calls_named(name)? {
                    let callee = call.child_by_field_name("function")?;
                    let key = self.scope_of(call.start_byte());
                    if self.expr(callee, key) == Ty::UserFunction(def) {
                        sites.push(Site { call, reach: Reach::Direct });
                    }
                }
            }
        }
        sites.sort_by_key(|s| s.call.start_byte());
        sites.dedup_by_key(|s| s.call.id());
        Some(sites)
    }

    /// The method calling an instance of the class runs: its `forward` for a module, else its
    /// `__call__` (the class's own or a base's of the file).
    pub(crate) fn instance_entry(&self, class: usize) -> Option<usize> {
        let receiver = Ty::UserInstance(class);
        for entry in ["forward", "__call__"] {
            if let Ty::UserMethod { def, .. } = self.user_member(class, entry, &receiver, false) {
                return Some(def);
            }
        }
        None
    }

    /// The type a parameter gets from the calls of its function: `index` in the signature (the
    /// receiver counts), `name` for keyword arguments.
    pub(crate) fn param_from_callers(&self, def: usize, index: usize, name: &str) -> Ty {
        let Some(sites) = self.call_sites(def) else { return Ty::Unknown };
        if sites.is_empty() {
            return Ty::Unknown;
        }
        let mut types = Vec::with_capacity(sites.len());
        for site in &sites {
            match self.argument(site, index, name) {
                Argument::Given(node) => {
                    let key = self.scope_of(node.start_byte());
                    types.push(self.expr(node, key));
                }
                // Left to the default: the join of the others, as `x = None` joins elsewhere.
                Argument::Default => types.push(Ty::None),
                Argument::Unknown => return Ty::Unknown,
            }
        }
        Ty::join(types)
    }

    /// The argument a call passes for the parameter.
    pub(crate) fn argument(&self, site: &Site<'a>, index: usize, name: &str) -> Argument<'a> {
        let Some(list) = site.call.child_by_field_name("arguments") else { return Argument::Unknown };
        if list.kind() != "argument_list" {
            return Argument::Unknown;
        }
        let position = match site.reach {
            Reach::Direct => Some(index),
            Reach::Bound => index.checked_sub(1),
        };
        let mut positional = 0;
        let mut found = None;
        let mut walker = list.walk();
        for arg in list.named_children(&mut walker) {
            match arg.kind() {
                "comment" => {}
                "list_splat" | "dictionary_splat" => return Argument::Unknown,
                "keyword_argument" => {
                    let key = arg.child_by_field_name("name").map(|n| self.text(n));
                    if key == Some(name) {
                        found = arg.child_by_field_name("value");
                    }
                }
                _ => {
                    if Some(positional) == position {
                        found = Some(arg);
                    }
                    positional += 1;
                }
            }
        }
        match (found, position) {
            (Some(node), _) => Argument::Given(node),
            (None, Some(_)) => Argument::Default,
            // The receiver itself: not an argument.
            (None, None) => Argument::Unknown,
        }
    }

    /// The calls whose callee ends with `name` (`f(`, `self.f(`; `.m(` for attributes only), in
    /// document order.
    fn calls_named(&self, name: &str) -> Option<Vec<Node<'a>>> {
        let index = self.m.derived::<CallIndex>();
        let index = index.get(self.m);
        let ranges = match name.strip_prefix('.') {
            Some(attr) => index.attribute_calls.get(attr),
            None => index.calls.get(name),
        };
        let Some(ranges) = ranges else { return Some(Vec::new()) };
        if ranges.len() > MAX_SITES {
            return None;
        }
        Some(ranges.iter().filter_map(|r| self.locate(r.start, r.end).filter(|n| n.kind() == "call")).collect())
    }

    /// The names the instances of a class are held under: the targets that a construction
    /// `C(...)` is assigned to (`self.attn = C(...)`, `model = C(...).to(device)`, a list or
    /// `nn.ModuleList` of them), and the loop variables over those (`for block in self.h`).
    fn instance_names(&self, class: usize) -> Vec<String> {
        let Some(data) = self.m.class(class) else { return Vec::new() };
        let Some(constructions) = self.calls_named(&data.name) else { return Vec::new() };
        let mut names: Vec<String> = Vec::new();
        for call in constructions {
            // Up through the expression around the construction, to the statement holding it.
            let mut node = call;
            while let Some(parent) = node.parent() {
                match parent.kind() {
                    "assignment" => {
                        if let Some(target) = parent.child_by_field_name("left").and_then(|l| last_name(self, l)) {
                            names.push(target);
                        }
                        break;
                    }
                    "expression_statement" | "block" | "module" | "function_definition" | "class_definition" => {
                        // `self.blocks.append(C(...))`: the list's name.
                        if let Some(object) = appended_to(self, call) {
                            names.push(object);
                        }
                        break;
                    }
                    _ => node = parent,
                }
            }
        }
        // Loop variables over a container of them, to a fixed point (a few rounds at most).
        for _ in 0..3 {
            let before = names.len();
            for container in names.clone() {
                for target in self.loop_targets_over(&container) {
                    if !names.contains(&target) {
                        names.push(target);
                    }
                }
            }
            if names.len() == before {
                break;
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// `for x in <...container>:` anywhere: the `x`s.
    fn loop_targets_over(&self, container: &str) -> Vec<String> {
        let index = self.m.derived::<CallIndex>();
        index.get(self.m).loops.get(container).cloned().unwrap_or_default()
    }
}

/// Every call of a document version by the last name of its callee, and every `for` loop's
/// target by the last name of what it runs over: found in one walk of the tree, the first time a
/// parameter's callers are asked for.
#[derive(Default)]
pub struct CallIndex(std::sync::OnceLock<Calls>);

#[derive(Default)]
pub struct Calls {
    /// `f(...)` and `obj.f(...)` under `f`.
    calls: HashMap<String, Vec<std::ops::Range<usize>>>,
    /// `obj.f(...)` only.
    attribute_calls: HashMap<String, Vec<std::ops::Range<usize>>>,
    loops: HashMap<String, Vec<String>>,
}

impl CallIndex {
    pub fn get(&self, m: &super::ModuleValues) -> &Calls {
        self.0.get_or_init(|| Calls::build(m))
    }
}

impl Calls {
    fn build(m: &super::ModuleValues) -> Calls {
        let text = &*m.text;
        let name_of = |node: Node| -> Option<(String, bool)> {
            match node.kind() {
                "identifier" => Some((scopes::text(text, node).to_string(), false)),
                "attribute" => Some((scopes::text(text, node.child_by_field_name("attribute")?).to_string(), true)),
                _ => None,
            }
        };
        let mut res = Calls::default();
        let mut cursor = m.tree.root_node().walk();
        loop {
            let node = cursor.node();
            match node.kind() {
                "call" => {
                    if let Some((name, dotted)) = node.child_by_field_name("function").and_then(name_of) {
                        if dotted {
                            res.attribute_calls.entry(name.clone()).or_default().push(node.byte_range());
                        }
                        res.calls.entry(name).or_default().push(node.byte_range());
                    }
                }
                "for_statement" => {
                    let left = node.child_by_field_name("left").filter(|l| l.kind() == "identifier");
                    let right = node.child_by_field_name("right").and_then(name_of);
                    if let (Some(left), Some((container, _))) = (left, right) {
                        res.loops.entry(container).or_default().push(scopes::text(text, left).to_string());
                    }
                }
                _ => {}
            }
            if cursor.goto_first_child() {
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    return res;
                }
            }
        }
    }
}

/// What a call passes for one parameter.
pub enum Argument<'t> {
    Given(Node<'t>),
    /// Not passed: the parameter keeps its default.
    Default,
    /// Passed through `*args` or `**kwargs`, or not a parameter a call passes.
    Unknown,
}

/// The last name of an assignment target: `self.attn` -> `attn`, `model` -> `model`.
fn last_name(eval: &Eval, target: Node) -> Option<String> {
    match target.kind() {
        "identifier" => Some(eval.text(target).to_string()),
        "attribute" => Some(eval.text(target.child_by_field_name("attribute")?).to_string()),
        _ => None,
    }
}

/// `xs.append(C(...))` around a construction: `xs`'s last name.
fn appended_to(eval: &Eval, construction: Node) -> Option<String> {
    let list = construction.parent().filter(|p| p.kind() == "argument_list")?;
    let call = list.parent().filter(|c| c.kind() == "call")?;
    let function = call.child_by_field_name("function").filter(|f| f.kind() == "attribute")?;
    if eval.text(function.child_by_field_name("attribute")?) != "append" {
        return None;
    }
    last_name(eval, function.child_by_field_name("object")?)
}
