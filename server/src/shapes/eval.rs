//! Shapes of expressions, on top of the value types: the values layer says which call is
//! `torch.Tensor.view` and which name holds an `nn.Linear`; the rules (`rules.rs`) say what each
//! does to a shape; this file reads the arguments.
//!
//! Precision first: an argument that cannot be read, a name bound in a loop around its use, or
//! bindings that disagree give no shape at all.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tree_sitter::Node;

use super::dim::{axis, Dim, Op, Shape};
use super::inline::{Inline, Inlined};
use super::rules::{self, Kind, Rule};
use crate::values::scopes::{Source, Step};
use crate::values::{Argument, Eval, Found, Ty};

/// Recursion bound: shapes follow names through bindings, and bad input must not overflow.
const MAX_DEPTH: u32 = 40;

/// The array classes whose values carry shapes.
pub const ARRAY_CLASSES: &[&str] = &["torch.Tensor", "torch.nn.Parameter", "jax.Array"];

/// The shapes of a document version's bindings, kept with its values.
#[derive(Default)]
pub struct SharedShapes(std::sync::Mutex<HashMap<(usize, usize, usize), Option<Shape>>>);

impl SharedShapes {
    fn get(&self, key: &(usize, usize, usize)) -> Option<Option<Shape>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    fn insert(&self, key: (usize, usize, usize), shape: Option<Shape>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key, shape);
    }
}

pub struct Shapes<'e, 'a> {
    pub eval: &'e Eval<'a>,
    /// By binding: its scope, where it starts to hold, and the target's place in an unpacking
    /// or the parameter's in its signature.
    memo: RefCell<HashMap<(usize, usize, usize), Option<Shape>>>,
    depth: Cell<u32>,
    /// The module call this evaluation is inside of, if any (inline.rs).
    pub(super) ctx: Option<Rc<Inline<'a>>>,
    /// Shapes assumed for names a loop binds again, while the loop is checked (`loop_shape`).
    assumed: RefCell<HashMap<(usize, Arc<str>), Shape>>,
    /// The shapes of this document version's bindings, shared by every request (the file as
    /// written, not inside a module call).
    shared: Option<Arc<SharedShapes>>,
    /// The bindings being worked out, and how many times a cycle among them was met.
    active: RefCell<std::collections::HashSet<(usize, usize, usize)>>,
    cuts: Cell<u64>,
}

/// A call's arguments as written.
struct Args<'t> {
    positional: Vec<Node<'t>>,
    keywords: Vec<(&'t str, Node<'t>)>,
    /// `*xs` or `**kw`: which parameter they fill is unknown.
    splat: bool,
}

impl<'t> Args<'t> {
    fn of(call: Node<'t>, text: impl Fn(Node<'t>) -> &'t str) -> Option<Args<'t>> {
        let list = call.child_by_field_name("arguments")?;
        if list.kind() != "argument_list" {
            return None; // `f(x for x in y)`
        }
        let mut res = Args { positional: Vec::new(), keywords: Vec::new(), splat: false };
        let mut walker = list.walk();
        for arg in list.named_children(&mut walker) {
            match arg.kind() {
                "comment" => {}
                "keyword_argument" => {
                    let (Some(name), Some(value)) = (arg.child_by_field_name("name"), arg.child_by_field_name("value"))
                    else {
                        return None;
                    };
                    res.keywords.push((text(name), value));
                }
                "list_splat" | "dictionary_splat" => res.splat = true,
                _ => res.positional.push(arg),
            }
        }
        Some(res)
    }

    fn keyword(&self, name: &str) -> Option<Node<'t>> {
        self.keywords.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

/// Where a rule's operand and parameters come from in one call.
struct Bound<'t> {
    operand: Option<Operand<'t>>,
    /// The arguments after the operand, positional first.
    rest: Vec<Node<'t>>,
    args: Args<'t>,
}

#[derive(Clone, Copy)]
enum Operand<'t> {
    /// A method's receiver expression.
    Receiver(Node<'t>),
    Arg(Node<'t>),
}

impl<'t> Operand<'t> {
    fn node(self) -> Node<'t> {
        match self {
            Operand::Receiver(n) | Operand::Arg(n) => n,
        }
    }
}

impl<'t> Bound<'t> {
    /// A parameter of the rule: the `index`-th after the operand, or its keyword.
    fn param(&self, rule: &Rule, index: usize) -> Option<Node<'t>> {
        let name = rule.params.get(index)?;
        self.args.keyword(name).or_else(|| self.rest.get(index).copied())
    }
}

impl<'e, 'a> Shapes<'e, 'a> {
    pub fn new(eval: &'e Eval<'a>) -> Self {
        Shapes {
            eval,
            memo: RefCell::default(),
            depth: Cell::new(0),
            ctx: None,
            assumed: RefCell::default(),
            shared: Some(eval.m.derived::<SharedShapes>()),
            active: RefCell::default(),
            cuts: Cell::new(0),
        }
    }

    /// An evaluation inside a module call: its parameters hold the call's shapes.
    pub(super) fn within(eval: &'e Eval<'a>, ctx: Rc<Inline<'a>>) -> Self {
        Shapes {
            eval,
            memo: RefCell::default(),
            depth: Cell::new(0),
            ctx: Some(ctx),
            assumed: RefCell::default(),
            shared: None,
            active: RefCell::default(),
            cuts: Cell::new(0),
        }
    }

    pub(super) fn text(&self, node: Node) -> &'a str {
        self.eval.text(node)
    }

    /// The shape of an expression evaluated in scope `key`.
    pub fn of(&self, node: Node, key: usize) -> Option<Shape> {
        if self.depth.get() > MAX_DEPTH {
            return None;
        }
        self.depth.set(self.depth.get() + 1);
        let res = self.of_inner(node, key);
        self.depth.set(self.depth.get() - 1);
        res
    }

    fn of_inner(&self, node: Node, key: usize) -> Option<Shape> {
        match node.kind() {
            "parenthesized_expression" => self.of(node.named_child(0)?, key),
            "identifier" => self.name_shape(node, key),
            "call" => self.call_shape(node, key),
            "binary_operator" => {
                let (left, right) = (node.child_by_field_name("left")?, node.child_by_field_name("right")?);
                let op = node.child_by_field_name("operator").map(|o| self.text(o))?;
                match op {
                    "@" => matmul(&self.of(left, key)?, &self.of(right, key)?),
                    "+" | "-" | "*" | "/" | "//" | "%" | "**" => self.elementwise(left, right, key),
                    _ => None,
                }
            }
            "unary_operator" => {
                let operand = node.child_by_field_name("argument")?;
                self.of(operand, key)
            }
            "attribute" => {
                let object = node.child_by_field_name("object")?;
                let attr = self.text(node.child_by_field_name("attribute")?);
                match attr {
                    // Only on a value we know to be an array: a user object may have its own `T`.
                    "T" | "mT" if self.is_array(object, key) => {
                        let mut shape = self.of(object, key)?;
                        if attr == "T" {
                            shape.0.reverse();
                        } else {
                            let n = shape.rank().checked_sub(2)?;
                            shape.0.swap(n, n + 1);
                        }
                        Some(shape)
                    }
                    _ => None,
                }
            }
            "subscript" => self.index(node, key),
            _ => None,
        }
    }

    /// Whether an expression's value type is one of the array classes.
    pub fn is_array(&self, node: Node, key: usize) -> bool {
        is_array_type(&self.eval.expr(node, key))
    }

    /// `x`: the shape its reaching bindings agree on.
    fn name_shape(&self, node: Node, key: usize) -> Option<Shape> {
        let name = self.text(node);
        let found = self.eval.lookup(name, key, node.start_byte())?;
        if found.is_empty() {
            return None;
        }
        if let Some(around) = self.rebinding_loop(node, name, &found) {
            return self.loop_shape(around, name, found[0].scope);
        }
        let mut shapes = found.iter().map(|f| self.binding_shape(f, name));
        let first = shapes.next().flatten();
        let agreed = first.filter(|first| shapes.all(|s| s.as_ref() == Some(first)));
        agreed.or_else(|| self.unpacked_shape(node, key, &found))
    }

    /// A name a loop binds again (`for block in blocks: x = block(x)`): the shape it enters with,
    /// when every binding in the loop gives that shape back for it. Worked out once under that
    /// assumption; what was worked out is dropped when it does not hold.
    fn loop_shape(&self, around: Node, name: &str, scope_key: usize) -> Option<Shape> {
        let assumption = (around.id(), Arc::<str>::from(name));
        if let Some(shape) = self.assumed.borrow().get(&assumption) {
            return Some(shape.clone());
        }
        let entry = self.eval.lookup(name, scope_key, around.start_byte())?;
        let mut shapes = entry.iter().map(|f| self.binding_shape(f, name));
        let first = shapes.next().flatten()?;
        if !shapes.all(|s| s.as_ref() == Some(&first)) {
            return None;
        }
        let scope = self.eval.m.scope(scope_key)?;
        let inside: Vec<Found> = scope
            .bindings
            .get(name)?
            .iter()
            .filter(|b| around.byte_range().contains(&b.statement))
            .map(|b| Found { scope: scope_key, binding: b.clone() })
            .collect();
        let saved = self.memo.borrow().clone();
        self.assumed.borrow_mut().insert(assumption.clone(), first.clone());
        // Worked out anew: one of them may be what asked (`x = block(x)` seen after the loop).
        let holds = inside.iter().all(|f| self.source_shape(f, name).as_ref() == Some(&first));
        self.assumed.borrow_mut().remove(&assumption);
        if !holds {
            *self.memo.borrow_mut() = saved;
            return None;
        }
        Some(first)
    }

    /// `B, T, C = x.size()` (or `= x.shape`) before a use of `x` that it dominates, with neither `x`
    /// nor the names bound again in between: `x` is `[B, T, C]` there, whatever it was called with.
    fn unpacked_shape(&self, node: Node, key: usize, found: &[Found]) -> Option<Shape> {
        let name = self.text(node);
        let use_at = node.start_byte();
        let body = self.eval.locate(key, key)?;
        let scope_node = std::iter::successors(Some(body), |n| n.parent())
            .find(|n| matches!(n.kind(), "function_definition" | "module"))?;
        let same = |a: &[Found], b: &[Found]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.scope == y.scope && x.binding.at == y.binding.at)
        };
        let mut best: Option<(usize, Vec<&str>)> = None;
        let mut stack = vec![scope_node];
        while let Some(n) = stack.pop() {
            if n.start_byte() > use_at {
                continue;
            }
            if n.id() != scope_node.id() && matches!(n.kind(), "function_definition" | "class_definition" | "lambda") {
                continue;
            }
            let mut walker = n.walk();
            stack.extend(n.named_children(&mut walker));
            if n.kind() != "assignment" || n.end_byte() > use_at {
                continue;
            }
            let (Some(left), Some(right)) = (n.child_by_field_name("left"), n.child_by_field_name("right")) else {
                continue;
            };
            if !matches!(left.kind(), "pattern_list" | "tuple_pattern") || self.unpacked_name(right) != Some(name) {
                continue;
            }
            let mut walker = left.walk();
            let targets: Vec<Node> = left.named_children(&mut walker).collect();
            let names: Option<Vec<&str>> = targets
                .iter()
                // `_` too: it holds its size until something binds it again, as any name.
                .map(|t| (t.kind() == "identifier").then(|| self.text(*t)))
                .collect();
            let Some(names) = names else { continue };
            if !self.eval.dominates(n.start_byte(), use_at) || best.as_ref().is_some_and(|(at, _)| *at > n.start_byte())
            {
                continue;
            }
            best = Some((n.start_byte(), names));
        }
        let (at, names) = best?;
        // `x` holds at the use what it held when it was unpacked, and each name still holds its size.
        if !same(&self.eval.lookup(name, key, at)?, found) {
            return None;
        }
        for target in &names {
            let reaching = self.eval.lookup(target, key, use_at)?;
            if !matches!(reaching.as_slice(), [one] if one.binding.statement == at) {
                return None;
            }
        }
        Some(Shape(names.into_iter().map(|n| Dim::Named(n.into())).collect()))
    }

    /// `x` in `x.size()` or `x.shape`, by name.
    fn unpacked_name(&self, node: Node) -> Option<&'a str> {
        let attribute = match node.kind() {
            "call" => {
                let args = node.child_by_field_name("arguments")?;
                if args.named_child_count() != 0 {
                    return None;
                }
                let f = node.child_by_field_name("function")?;
                (f.kind() == "attribute" && self.text(f.child_by_field_name("attribute")?) == "size").then_some(f)?
            }
            "attribute" if self.text(node.child_by_field_name("attribute")?) == "shape" => node,
            _ => return None,
        };
        let object = attribute.child_by_field_name("object")?;
        (object.kind() == "identifier").then(|| self.text(object))
    }

    /// A use inside a loop whose body binds the same name: the value may come from an earlier
    /// round, with another shape (`x = torch.cat([x, y])`).
    fn rebound_in_loop(&self, node: Node, name: &str, found: &[Found]) -> bool {
        self.rebinding_loop(node, name, found).is_some()
    }

    /// The innermost loop around a use whose body binds the name again.
    fn rebinding_loop<'t>(&self, node: Node<'t>, name: &str, found: &[Found]) -> Option<Node<'t>> {
        let mut at = node;
        while let Some(parent) = at.parent() {
            if matches!(parent.kind(), "function_definition" | "class_definition" | "module") {
                return None;
            }
            if matches!(parent.kind(), "for_statement" | "while_statement") {
                let range = parent.byte_range();
                let scope = found.first().map(|f| f.scope);
                let binds = scope.and_then(|s| self.eval.m.scope(s)).is_some_and(|s| {
                    s.bindings.get(name).is_some_and(|list| list.iter().any(|b| range.contains(&b.statement)))
                });
                if binds {
                    return Some(parent);
                }
            }
            at = parent;
        }
        None
    }

    pub fn binding_shape(&self, found: &Found, name: &str) -> Option<Shape> {
        let part = match &found.binding.source {
            Source::Value { path, .. } => match path.as_slice() {
                [] => 0,
                [Step::Index(i)] => i + 1,
                _ => usize::MAX,
            },
            // The parameters of one function all start to hold at its `def`.
            Source::Param { index, .. } => (1 << 32) + index,
            _ => 0,
        };
        let memo_key = (found.scope, found.binding.at, part);
        if let Some(shape) = self.memo.borrow().get(&memo_key) {
            return shape.clone();
        }
        if let Some(shape) = self.shared.as_ref().and_then(|s| s.get(&memo_key)) {
            return shape;
        }
        // A cycle (a binding that needs itself) is unknown, and so is what was worked out from
        // it: kept for this request only when no cycle was met on the way.
        if !self.active.borrow_mut().insert(memo_key) {
            self.cuts.set(self.cuts.get() + 1);
            return None;
        }
        let cuts = self.cuts.get();
        let res = self.source_shape(found, name);
        self.active.borrow_mut().remove(&memo_key);
        if self.cuts.get() == cuts {
            match &self.shared {
                // Worked out under no assumption: true of the version, for every request.
                Some(shared) if self.assumed.borrow().is_empty() => shared.insert(memo_key, res.clone()),
                _ => {
                    self.memo.borrow_mut().insert(memo_key, res.clone());
                }
            }
        }
        res
    }

    /// What a binding gives, worked out anew.
    fn source_shape(&self, found: &Found, name: &str) -> Option<Shape> {
        match &found.binding.source {
            Source::Value { expr, path } if path.is_empty() => {
                self.eval.node(expr).and_then(|n| self.of(n, found.scope))
            }
            Source::Annotated { value: Some(value), .. } => self.eval.node(value).and_then(|n| self.of(n, found.scope)),
            // `q, k, v = x.split(C, dim=2)`: one of the pieces.
            Source::Value { expr, path } => match path.as_slice() {
                [Step::Index(i)] => {
                    let value = self.eval.node(expr)?;
                    let left = value.parent().filter(|p| p.kind() == "assignment")?.child_by_field_name("left")?;
                    let mut walker = left.walk();
                    let targets: Vec<Node> = left.named_children(&mut walker).collect();
                    if targets.iter().any(|t| t.kind() != "identifier") {
                        return None;
                    }
                    self.parts(value, found.scope, targets.len())?.into_iter().nth(*i).flatten()
                }
                _ => None,
            },
            // Inside a module call: what the call passes.
            Source::Param { .. } if self.ctx.as_ref().is_some_and(|c| c.forward == found.scope) => {
                self.ctx.as_ref().and_then(|c| c.inputs.get(name).cloned())
            }
            Source::Param { index, annotation: None, .. } => self.param_shape(found.scope, *index, name),
            _ => None,
        }
    }

    /// An unannotated parameter of a tensor: the shape every call of its function in the file
    /// passes, when they agree and every size is known (a name of the caller's means nothing in
    /// the callee). A call that leaves it to its default gives nothing.
    fn param_shape(&self, def: usize, index: usize, name: &str) -> Option<Shape> {
        let sites = self.eval.call_sites(def)?;
        let mut agreed: Option<Shape> = None;
        for site in &sites {
            let Argument::Given(node) = self.eval.argument(site, index, name) else { return None };
            let shape = self.of(node, self.eval.scope_of(node.start_byte()))?;
            shape.0.iter().all(|d| d.known().is_some()).then_some(())?;
            match &agreed {
                Some(prev) if *prev != shape => return None,
                _ => agreed = Some(shape),
            }
        }
        agreed
    }

    // ----- calls -------------------------------------------------------------------------------

    fn call_shape(&self, call: Node, key: usize) -> Option<Shape> {
        let function = call.child_by_field_name("function")?;
        let callee = self.eval.expr(function, key);
        let catalog = self.eval.catalog;
        let canonical = |name: &str| catalog.lookup(name).map(|idx| catalog.symbol(idx).name.to_string());
        let args = Args::of(call, |n| self.text(n))?;
        match &callee {
            Ty::Method { member, receiver, .. } if is_array_type(receiver) => {
                let rule = rules::rules().get(&canonical(member)?)?;
                let object = function.child_by_field_name("object")?;
                let bound = Bound { operand: Some(Operand::Receiver(object)), rest: args.positional.clone(), args };
                self.apply(rule, &bound, key)
            }
            Ty::Symbol(name) => {
                // Calling a class constructs it (`nn.ReLU(True)`): its rule is for calling the instance.
                if catalog.lookup(name).is_some_and(|idx| catalog.kind_of(idx) == "class") {
                    return None;
                }
                let rule = rules::rules().get(&canonical(name)?)?;
                match rule.kind {
                    Kind::Sizes => return self.sizes(rule, &args, key).map(Shape),
                    Kind::LastSizes => return self.last_sizes(rule, &args, key).map(Shape),
                    Kind::Arange => return self.arange(rule, &args, key),
                    _ => {}
                }
                let (operand, rest) = match args.keyword(&rule.operand) {
                    Some(op) => (op, args.positional.clone()),
                    None => (*args.positional.first()?, args.positional[1..].to_vec()),
                };
                let bound = Bound { operand: Some(Operand::Arg(operand)), rest, args };
                self.apply(rule, &bound, key)
            }
            Ty::UserInstance(class) => match self.inline_call(call, *class, key)? {
                Inlined::One(shape) => Some(shape),
                Inlined::Tuple(_) => None,
            },
            // A module called on its input: the rule of its class, with its constructor's arguments.
            Ty::Instance(class) => {
                let rule = rules::rules().get(&canonical(class)?)?;
                let input = *args.positional.first()?;
                if args.positional.len() != 1 || !args.keywords.is_empty() || args.splat {
                    return None;
                }
                let constructor = self.instance_construction(function, key)?;
                self.module_call(rule, constructor, function, input, key)
            }
            _ => None,
        }
    }

    /// The constructor call that made the module a callee names: `nn.Linear(4, 8)` itself, the
    /// one binding of `fc`, or the one assignment of `self.fc` in the class.
    pub(super) fn construction(&self, callee: Node<'a>, key: usize) -> Option<(Node<'a>, usize)> {
        match callee.kind() {
            "call" => Some((callee, key)),
            "parenthesized_expression" => self.construction(callee.named_child(0)?, key),
            "identifier" => {
                let found = self.eval.lookup(self.text(callee), key, callee.start_byte())?;
                let [one] = found.as_slice() else { return None };
                match &one.binding.source {
                    Source::Value { expr, path } if path.is_empty() => {
                        let node = self.eval.node(expr)?;
                        (node.kind() == "call").then_some((node, one.scope))
                    }
                    _ => None,
                }
            }
            "attribute" => {
                let object = callee.child_by_field_name("object")?;
                let attr = self.text(callee.child_by_field_name("attribute")?);
                let method = self.eval.m.scope(key)?;
                let class = method.class?;
                let self_name = self.self_name(key)?;
                if object.kind() != "identifier" || self.text(object) != self_name.as_str() {
                    return None;
                }
                let data = self.eval.m.class(class)?;
                let [(scope, binding)] = data.self_attrs.get(attr)?.as_slice() else { return None };
                match &binding.source {
                    Source::Value { expr, path } if path.is_empty() => {
                        let node = self.eval.node(expr)?;
                        (node.kind() == "call").then_some((node, *scope))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The name of a method's first parameter (`self`).
    fn self_name(&self, key: usize) -> Option<String> {
        let scope = self.eval.m.scope(key)?;
        scope
            .bindings
            .iter()
            .find(|(_, list)| list.iter().any(|b| matches!(b.source, Source::Param { index: 0, .. })))
            .map(|(name, _)| name.to_string())
    }

    /// The size a module's constructor gave it (`params[1]`), as it reads where the module is
    /// called: a known size, the names of the constructor's arguments when it is called in the
    /// same scope, else the module's own attribute of that name (`self.fc.out_features`).
    fn module_size(&self, rule: &Rule, bound: &Bound, path: &str, ckey: usize, key: usize) -> Option<Dim> {
        let param = rule.params.get(1)?;
        let dim = self.dim(bound.param(rule, 1)?, ckey, true)?;
        if dim.known().is_some() || ckey == key {
            return Some(dim);
        }
        let plain = path.split('.').all(|p| {
            let p = p.split_once('[').map_or(p, |(head, _)| head);
            !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
        plain.then(|| Dim::Named(format!("{path}.{param}").into()))
    }

    fn module_call(
        &self,
        rule: &Rule,
        constructor: (Node, usize),
        callee: Node,
        input: Node,
        key: usize,
    ) -> Option<Shape> {
        let shape = self.of(input, key)?;
        self.module_shape(rule, constructor, self.text(callee), shape, key)
    }

    /// What a module built by `constructor` (in scope `ckey`) makes of an input of `shape`;
    /// `path` is how the code where it is called names the module (`self.fc`, `self.features[2]`).
    fn module_shape(
        &self,
        rule: &Rule,
        (constructor, ckey): (Node, usize),
        path: &str,
        mut shape: Shape,
        key: usize,
    ) -> Option<Shape> {
        let cargs = Args::of(constructor, |n| self.text(n))?;
        if cargs.splat {
            return None;
        }
        let bound = Bound { operand: None, rest: cargs.positional.clone(), args: cargs };
        let known = |index: usize| -> Option<Vec<i64>> {
            match bound.param(rule, index) {
                Some(node) => self.ints(node, ckey, rule.spatial),
                None => rule.defaults.get(rule.params.get(index)?).map(|&d| vec![d; rule.spatial]),
            }
        };
        match rule.kind {
            Kind::Same => Some(shape),
            Kind::Linear => {
                *shape.0.last_mut()? = self.module_size(rule, &bound, path, ckey, key)?;
                Some(shape)
            }
            Kind::Embedding => {
                shape.0.push(self.module_size(rule, &bound, path, ckey, key)?);
                Some(shape)
            }
            Kind::Flatten => {
                let int = |index: usize| -> Option<i64> {
                    match bound.param(rule, index) {
                        Some(node) => self.dim(node, ckey, true)?.known(),
                        None => rule.defaults.get(rule.params.get(index)?).copied(),
                    }
                };
                flatten(&shape, int(0)?, int(1)?)
            }
            Kind::Conv | Kind::Pool => {
                let n = rule.spatial;
                // Batched (N, C, *spatial) or not (C, *spatial).
                if shape.rank() != n + 2 && shape.rank() != n + 1 {
                    return None;
                }
                let (kernel_at, stride_at) = if rule.kind == Kind::Conv { (2, 3) } else { (0, 1) };
                let kernel = known(kernel_at)?;
                let stride = match bound.param(rule, stride_at) {
                    Some(node) if self.text(node) != "None" => self.ints(node, ckey, n)?,
                    _ if rule.kind == Kind::Pool => kernel.clone(),
                    _ => known(stride_at)?,
                };
                let padding_node = bound.param(rule, stride_at + 1);
                let padding = match padding_node.map(|p| self.text(p)) {
                    Some("\"valid\"" | "'valid'") => vec![0; n],
                    // `"same"` keeps the size (only stride 1 takes it).
                    Some("\"same\"" | "'same'") => vec![-1; n],
                    _ => known(stride_at + 1)?,
                };
                let dilation = match rule.params.get(stride_at + 2) {
                    Some(_) => known(stride_at + 2)?,
                    None => vec![1; n],
                };
                let first = shape.rank() - n;
                for i in 0..n {
                    let length = shape.0[first + i].clone();
                    shape.0[first + i] = if padding[i] == -1 {
                        length
                    } else {
                        conv_length(length, kernel[i], stride[i], padding[i], dilation[i])?
                    };
                }
                if rule.kind == Kind::Conv {
                    shape.0[first - 1] = self.module_size(rule, &bound, path, ckey, key)?;
                }
                Some(shape)
            }
            Kind::AdaptivePool => {
                let n = rule.spatial;
                if shape.rank() < n + 1 {
                    return None;
                }
                let sizes = self.ints(bound.param(rule, 0)?, ckey, n)?;
                let first = shape.rank() - n;
                for (i, size) in sizes.into_iter().enumerate() {
                    shape.0[first + i] = Dim::Known(size);
                }
                Some(shape)
            }
            Kind::Sequential => {
                if !bound.args.keywords.is_empty() {
                    return None;
                }
                for (i, layer) in bound.rest.iter().enumerate() {
                    if layer.kind() != "call" {
                        return None;
                    }
                    let class = self.eval.expr(layer.child_by_field_name("function")?, ckey);
                    let Ty::Symbol(name) = class else { return None };
                    let catalog = self.eval.catalog;
                    let canonical = catalog.lookup(&name).map(|idx| catalog.symbol(idx).name.to_string())?;
                    let rule = rules::rules().get(&canonical)?;
                    shape = self.module_shape(rule, (*layer, ckey), &format!("{path}[{i}]"), shape, key)?;
                }
                Some(shape)
            }
            _ => None,
        }
    }

    /// An int or a tuple of `n` ints (`3`, `(3, 3)`), as `n` ints; `None` entries are not read.
    fn ints(&self, node: Node, key: usize, n: usize) -> Option<Vec<i64>> {
        if matches!(node.kind(), "tuple" | "list") {
            let dims = self.sequence(node, key)?;
            if dims.len() != n {
                return None;
            }
            return dims.iter().map(Dim::known).collect();
        }
        let one = self.dim(node, key, true)?.known()?;
        Some(vec![one; n.max(1)])
    }

    fn apply(&self, rule: &Rule, bound: &Bound, key: usize) -> Option<Shape> {
        if bound.args.splat {
            return None;
        }
        let operand = bound.operand?;
        let input = || match operand {
            Operand::Receiver(node) | Operand::Arg(node) => self.of(node, key),
        };
        let int = |index: usize| -> Option<i64> {
            match bound.param(rule, index) {
                Some(node) => self.dim(node, key, true)?.known(),
                None => rule.defaults.get(rule.params.get(index)?).copied(),
            }
        };
        match rule.kind {
            Kind::Sizes => None,
            Kind::Receiver => input(),
            Kind::Same => {
                // `x.to(other)` and friends take no shape from their arguments; a second tensor
                // argument (`torch.clamp(x, lo_tensor)`) could broadcast: left alone.
                if bound.rest.iter().any(|a| self.is_array(*a, key)) {
                    return None;
                }
                input()
            }
            Kind::Reshape => {
                let shape = input()?;
                let sizes = match bound.args.keyword(rule.params.first()?) {
                    Some(node) => self.sequence(node, key)?,
                    None => self.int_list(&bound.rest, key)?,
                };
                reshape(&shape, sizes)
            }
            Kind::Transpose => {
                let mut shape = input()?;
                let (a, b) = (shape.axis(int(0)?)?, shape.axis(int(1)?)?);
                shape.0.swap(a, b);
                Some(shape)
            }
            Kind::Permute => {
                let shape = input()?;
                let order = match bound.args.keyword(rule.params.first()?) {
                    Some(node) => self.sequence(node, key)?,
                    None => self.int_list(&bound.rest, key)?,
                };
                permute(&shape, &order)
            }
            Kind::Unsqueeze => {
                let mut shape = input()?;
                let at = axis(int(0)?, shape.rank() + 1)?;
                shape.0.insert(at, Dim::Known(1));
                Some(shape)
            }
            Kind::Squeeze => {
                let mut shape = input()?;
                match bound.param(rule, 0) {
                    Some(_) => {
                        let at = shape.axis(int(0)?)?;
                        // Squeezing a dimension that is not 1 keeps it.
                        if shape.0[at].known()? == 1 {
                            shape.0.remove(at);
                        }
                        Some(shape)
                    }
                    // Without a dimension every 1 goes: only when all sizes are known.
                    None => {
                        let known: Option<Vec<i64>> = shape.0.iter().map(Dim::known).collect();
                        Some(Shape(known?.into_iter().filter(|&n| n != 1).map(Dim::Known).collect()))
                    }
                }
            }
            Kind::Flatten => flatten(&input()?, int(0)?, int(1)?),
            Kind::Reduce => {
                let mut shape = input()?;
                // `dtype=` and friends are fine; a tuple of dims is left alone.
                let Some(dim) = bound.param(rule, 0) else {
                    return match bound.param(rule, 1) {
                        None => Some(Shape(vec![])),
                        Some(_) => None,
                    };
                };
                let at = shape.axis(self.dim(dim, key, true)?.known()?)?;
                let keep = match bound.param(rule, 1) {
                    Some(node) => bool_literal(self.text(node))?,
                    None => rule.defaults.get(rule.params.get(1)?).copied()? != 0,
                };
                if keep {
                    shape.0[at] = Dim::Known(1);
                } else {
                    shape.0.remove(at);
                }
                Some(shape)
            }
            Kind::Matmul => matmul(&input()?, &self.of(bound.param(rule, 0)?, key)?),
            Kind::Broadcast => self.elementwise(operand.node(), bound.param(rule, 0)?, key),
            Kind::Concat | Kind::Stack => {
                let list = operand.node();
                if !matches!(list.kind(), "list" | "tuple") {
                    return None;
                }
                let mut walker = list.walk();
                let items: Vec<Node> = list.named_children(&mut walker).filter(|n| n.kind() != "comment").collect();
                let shapes: Option<Vec<Shape>> = items.iter().map(|n| self.of(*n, key)).collect();
                let shapes = shapes?;
                let first = shapes.first()?.clone();
                let at_param = int(0)?;
                if rule.kind == Kind::Stack {
                    if shapes.iter().any(|s| *s != first) {
                        return None;
                    }
                    let at = axis(at_param, first.rank() + 1)?;
                    let mut dims = first.0.clone();
                    dims.insert(at, Dim::Known(i64::try_from(shapes.len()).ok()?));
                    return Some(Shape(dims));
                }
                let at = first.axis(at_param)?;
                let mut total = Dim::Known(0);
                for s in &shapes {
                    if s.rank() != first.rank() || (0..s.rank()).any(|i| i != at && s.0[i] != first.0[i]) {
                        return None;
                    }
                    total = Dim::apply(Op::Add, total, s.0[at].clone())?;
                }
                let mut dims = first.0;
                dims[at] = total;
                Some(Shape(dims))
            }
            Kind::Attention => {
                let query = input()?;
                let key_shape = self.of(bound.param(rule, 0)?, key)?;
                let value = self.of(bound.param(rule, 1)?, key)?;
                // (..., L, E) with keys (..., S, E) and values (..., S, Ev): (..., L, Ev).
                let (l, s, v) = (query.rank(), key_shape.rank(), value.rank());
                if l < 2 || s != l || v != l || key_shape.0[s - 2] != value.0[v - 2] {
                    return None;
                }
                let mut dims = query.0;
                dims[l - 1] = value.0[v - 1].clone();
                Some(Shape(dims))
            }
            Kind::Loss => {
                input()?;
                // The reduction by keyword; more positionals than the target may set it too.
                if bound.rest.len() > 1 {
                    return None;
                }
                match bound.args.keyword(rule.params.first()?).map(|n| self.text(n)) {
                    None | Some("\"mean\"" | "'mean'" | "\"sum\"" | "'sum'") => Some(Shape(vec![])),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The pieces `x.split(size, dim)` or `x.chunk(n, dim)` gives, or the items a user module
    /// returns, for a target that unpacks `count` of them (Python raises unless there are exactly
    /// that many).
    pub fn parts(&self, call: Node, key: usize, count: usize) -> Option<Vec<Option<Shape>>> {
        if call.kind() != "call" || count == 0 {
            return None;
        }
        let function = call.child_by_field_name("function")?;
        let catalog = self.eval.catalog;
        let canonical = |name: &str| catalog.lookup(name).map(|idx| catalog.symbol(idx).name.to_string());
        let args = Args::of(call, |n| self.text(n))?;
        let (rule, bound) = match self.eval.expr(function, key) {
            // `logits, loss = model(idx, targets)`: the module's `return logits, loss`.
            Ty::UserInstance(class) => {
                return match self.inline_call(call, class, key)? {
                    Inlined::Tuple(items) if items.len() == count => Some(items),
                    _ => None,
                };
            }
            Ty::Method { member, receiver, .. } if is_array_type(&receiver) => {
                let rule = rules::rules().get(&canonical(&member)?)?;
                let object = function.child_by_field_name("object")?;
                (rule, Bound { operand: Some(Operand::Receiver(object)), rest: args.positional.clone(), args })
            }
            Ty::Symbol(name) => {
                let rule = rules::rules().get(&canonical(&name)?)?;
                let operand = *args.positional.first()?;
                let rest = args.positional[1..].to_vec();
                (rule, Bound { operand: Some(Operand::Arg(operand)), rest, args })
            }
            _ => return None,
        };
        if bound.args.splat || !matches!(rule.kind, Kind::Split | Kind::Chunk) {
            return None;
        }
        let shape = self.of(bound.operand?.node(), key)?;
        let dim_at = match bound.param(rule, 1) {
            Some(node) => self.dim(node, key, true)?.known()?,
            None => *rule.defaults.get(rule.params.get(1)?)?,
        };
        let at = shape.axis(dim_at)?;
        let total = shape.0[at].clone();
        let n = i64::try_from(count).ok()?;
        let sizes: Vec<Dim> = match rule.kind {
            Kind::Split => {
                let arg = bound.param(rule, 0)?;
                if matches!(arg.kind(), "list" | "tuple") {
                    let sizes = self.sequence(arg, key)?;
                    (sizes.len() == count).then_some(sizes)?
                } else {
                    let size = self.dim(arg, key, true)?;
                    // All but the last have `size`; the last has the rest (`total - (n-1)*size`),
                    // which is `size` too when the total is known to be `n * size`.
                    let rest = match quotient(std::slice::from_ref(&total), std::slice::from_ref(&size)) {
                        Some(Dim::Known(q)) if q == n => size.clone(),
                        _ => {
                            let before = Dim::apply(Op::Mul, Dim::Known(n - 1), size.clone())?;
                            Dim::apply(Op::Sub, total.clone(), before)?
                        }
                    };
                    let mut sizes = vec![size; count - 1];
                    sizes.push(rest);
                    sizes
                }
            }
            _ => {
                // `chunk(n)` of a size that `n` divides: equal pieces; otherwise left alone.
                let chunks = self.dim(bound.param(rule, 0)?, key, true)?.known()?;
                if chunks != n {
                    return None;
                }
                let piece = quotient(std::slice::from_ref(&total), &[Dim::Known(n)])?;
                let back = Dim::apply(Op::Mul, piece.clone(), Dim::Known(n))?;
                if total.known().is_some() && back != total {
                    return None;
                }
                if total.known().is_none() && !factors(&total).contains(&Dim::Known(n)) {
                    return None;
                }
                vec![piece; count]
            }
        };
        Some(
            sizes
                .into_iter()
                .map(|size| {
                    let mut dims = shape.0.clone();
                    dims[at] = size;
                    Some(Shape(dims))
                })
                .collect(),
        )
    }

    /// `a + b` and friends: broadcast between arrays, or an array with a number.
    fn elementwise(&self, left: Node, right: Node, key: usize) -> Option<Shape> {
        let number = |n: Node| {
            matches!(n.kind(), "integer" | "float") || self.dim(n, key, false).is_some() || self.math_call(n, key)
        };
        match (number(left), number(right)) {
            (true, true) => None,
            (true, false) => self.of(right, key),
            (false, true) => self.of(left, key),
            (false, false) => broadcast(&self.of(left, key)?, &self.of(right, key)?),
        }
    }

    /// `math.sqrt(d)` and the like, with `math` the standard library's: a number.
    fn math_call(&self, node: Node, key: usize) -> bool {
        let Some(function) = node.child_by_field_name("function").filter(|_| node.kind() == "call") else {
            return false;
        };
        let Some(object) = function.child_by_field_name("object").filter(|_| function.kind() == "attribute") else {
            return false;
        };
        object.kind() == "identifier"
            && self.eval.lookup(self.text(object), key, object.start_byte()).is_some_and(|found| {
                matches!(found.as_slice(), [one] if matches!(&one.binding.source, Source::Import(t) if &**t == "math"))
            })
    }

    // ----- sizes -------------------------------------------------------------------------------

    /// `torch.zeros(4, 8)`, `torch.zeros((4, 8))`, `torch.zeros(size=(4, 8))`, `jnp.ones(x.shape)`.
    fn sizes(&self, rule: &Rule, args: &Args, key: usize) -> Option<Vec<Dim>> {
        if args.splat {
            return None;
        }
        if let Some(node) = args.keyword(&rule.operand) {
            return if args.positional.is_empty() { self.sequence(node, key) } else { None };
        }
        self.int_list(&args.positional, key)
    }

    /// `torch.randint(0, 10, (4, 16))`: the sizes are one sequence, the last positional argument.
    fn last_sizes(&self, rule: &Rule, args: &Args, key: usize) -> Option<Vec<Dim>> {
        if args.splat {
            return None;
        }
        match args.keyword(&rule.operand) {
            Some(node) => self.sequence(node, key),
            None => self.sequence(*args.positional.last()?, key),
        }
    }

    /// `torch.arange(t)`, `torch.arange(0, t)`, `torch.arange(0, n, 2)`: one dimension.
    fn arange(&self, rule: &Rule, args: &Args, key: usize) -> Option<Shape> {
        if args.splat {
            return None;
        }
        let named = |i: usize| rule.params.get(i).and_then(|p| args.keyword(p));
        let (start, end, step) = match args.positional.as_slice() {
            [end] => (named(0), Some(*end), named(2)),
            [start, end] => (Some(*start), Some(*end), named(2)),
            [start, end, step] => (Some(*start), Some(*end), Some(*step)),
            [] => (named(0), named(1), named(2)),
            _ => return None,
        };
        let int = |node: Option<Node>, default: i64| -> Option<Dim> {
            match node {
                Some(n) => self.dim(n, key, true),
                None => Some(Dim::Known(default)),
            }
        };
        let (start, end) = (int(start, 0)?, int(Some(end?), 0)?);
        let step = int(step, 1)?.known()?;
        let span = Dim::apply(Op::Sub, end, start)?;
        let len = match (span.known(), step) {
            (Some(n), s) if s > 0 => Dim::Known((n.max(0) + s - 1) / s),
            (None, 1) => span,
            _ => return None,
        };
        Some(Shape(vec![len]))
    }

    /// Sizes given as separate arguments, or as one sequence.
    fn int_list(&self, args: &[Node], key: usize) -> Option<Vec<Dim>> {
        match args {
            [] => None,
            [one] => self.sequence(*one, key).or_else(|| {
                // One int: a sure int only when we can read it (a bare name may hold a tuple).
                let dim = self.dim(*one, key, false)?;
                Some(vec![dim])
            }),
            // Several arguments: each must be an int, or the call raises.
            many => many.iter().map(|n| self.dim(*n, key, true)).collect(),
        }
    }

    /// A sequence of sizes: a tuple or list of ints, `x.shape`, `x.size()`, `x.shape[1:]`.
    fn sequence(&self, node: Node, key: usize) -> Option<Vec<Dim>> {
        match node.kind() {
            "tuple" | "list" => {
                let mut walker = node.walk();
                let mut dims = Vec::new();
                for item in node.named_children(&mut walker).filter(|n| n.kind() != "comment") {
                    if item.kind() == "list_splat" {
                        dims.extend(self.sequence(item.named_child(0)?, key)?);
                    } else {
                        dims.push(self.dim(item, key, true)?);
                    }
                }
                Some(dims)
            }
            "parenthesized_expression" => self.sequence(node.named_child(0)?, key),
            "attribute" => {
                let object = node.child_by_field_name("object")?;
                let attr = self.text(node.child_by_field_name("attribute")?);
                (attr == "shape" && self.is_array(object, key)).then(|| self.of(object, key)).flatten().map(|s| s.0)
            }
            "call" => {
                let object = self.size_call(node, key)?;
                let args = Args::of(node, |n| self.text(n))?;
                (args.positional.is_empty() && args.keywords.is_empty())
                    .then(|| self.of(object, key))
                    .flatten()
                    .map(|s| s.0)
            }
            "subscript" => {
                // `x.shape[:-1]`
                let value = node.child_by_field_name("value")?;
                let dims = self.sequence(value, key)?;
                let mut walker = node.walk();
                let subs: Vec<Node> = node.children_by_field_name("subscript", &mut walker).collect();
                let [slice] = subs.as_slice() else { return None };
                if slice.kind() != "slice" {
                    return None;
                }
                let (start, stop) = self.slice_bounds(*slice, dims.len(), key)?;
                Some(dims[start..stop.max(start)].to_vec())
            }
            _ => None,
        }
    }

    /// `x.size` of an array in `x.size(...)`: the receiver.
    fn size_call<'n>(&self, call: Node<'n>, key: usize) -> Option<Node<'n>> {
        let function = call.child_by_field_name("function")?;
        if function.kind() != "attribute" {
            return None;
        }
        let object = function.child_by_field_name("object")?;
        let attr = self.text(function.child_by_field_name("attribute")?);
        (attr == "size" && self.is_array(object, key)).then_some(object)
    }

    /// A size: an int the code holds. With `sure_int`, a name or dotted name the code passes where
    /// only an int is taken stands for itself (`B`, `config.n_embd`).
    pub fn dim(&self, node: Node, key: usize, sure_int: bool) -> Option<Dim> {
        if self.depth.get() > MAX_DEPTH {
            return None;
        }
        self.depth.set(self.depth.get() + 1);
        let res = self.dim_inner(node, key, sure_int);
        self.depth.set(self.depth.get() - 1);
        res
    }

    fn dim_inner(&self, node: Node, key: usize, sure_int: bool) -> Option<Dim> {
        match node.kind() {
            "integer" => self.text(node).replace('_', "").parse().ok().map(Dim::Known),
            "parenthesized_expression" => self.dim(node.named_child(0)?, key, sure_int),
            "unary_operator" => {
                let op = node.child_by_field_name("operator").map(|o| self.text(o))?;
                let arg = self.dim(node.child_by_field_name("argument")?, key, sure_int)?;
                match (op, arg) {
                    ("-", Dim::Known(n)) => Some(Dim::Known(-n)),
                    ("+", d) => Some(d),
                    _ => None,
                }
            }
            "binary_operator" => {
                let op = match node.child_by_field_name("operator").map(|o| self.text(o))? {
                    "+" => Op::Add,
                    "-" => Op::Sub,
                    "*" => Op::Mul,
                    "//" => Op::FloorDiv,
                    _ => return None,
                };
                let left = self.dim(node.child_by_field_name("left")?, key, sure_int)?;
                let right = self.dim(node.child_by_field_name("right")?, key, sure_int)?;
                Dim::apply(op, left, right)
            }
            "identifier" => self.name_dim(node, key, sure_int),
            "attribute" => {
                // A config's field (`cfg.width` of a dataclass instance), and inside a module
                // call its own attributes (`self.heads`), when they read as sizes.
                if let (Some(object), Some(attr)) =
                    (node.child_by_field_name("object"), node.child_by_field_name("attribute"))
                {
                    if let Some(dim) = self.config_field(object, self.text(attr), key) {
                        return Some(dim);
                    }
                    if object.kind() == "identifier" {
                        if let Ty::UserInstance(class) = self.eval.expr(object, key) {
                            if let Some(dim) = self.self_attr_dim(class, self.text(attr)) {
                                return Some(dim);
                            }
                        }
                    }
                }
                // A dotted name of plain identifiers (`config.n_embd`, `self.n_head`).
                let text = self.text(node);
                let plain =
                    text.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
                (sure_int && plain && !self.is_array(node, key)).then(|| Dim::Named(text.into()))
            }
            "call" => {
                // `x.size(0)`
                let object = self.size_call(node, key)?;
                let args = Args::of(node, |n| self.text(n))?;
                let index = match (args.positional.as_slice(), args.keyword("dim")) {
                    ([one], None) => self.dim(*one, key, true)?.known()?,
                    ([], Some(one)) => self.dim(one, key, true)?.known()?,
                    _ => return None,
                };
                let shape = self.of(object, key)?;
                Some(shape.0[shape.axis(index)?].clone())
            }
            "subscript" => {
                // `x.shape[0]`, `x.size()[-1]`
                let value = node.child_by_field_name("value")?;
                let dims = self.sequence(value, key)?;
                let mut walker = node.walk();
                let subs: Vec<Node> = node.children_by_field_name("subscript", &mut walker).collect();
                let [index] = subs.as_slice() else { return None };
                let index = self.dim(*index, key, true)?.known()?;
                Some(dims[axis(index, dims.len())?].clone())
            }
            _ => None,
        }
    }

    /// A name holding a size: a literal int bound once, a part of `B, T, C = x.size()`, or, where
    /// only an int is taken, the name itself.
    fn name_dim(&self, node: Node, key: usize, sure_int: bool) -> Option<Dim> {
        let name = self.text(node);
        let found = self.eval.lookup(name, key, node.start_byte()).unwrap_or_default();
        let named = || Dim::Named(name.into());
        if let [one] = found.as_slice() {
            if !self.rebound_in_loop(node, name, &found) {
                match &one.binding.source {
                    Source::Value { expr, path } if path.is_empty() => {
                        let value = self.eval.node(expr)?;
                        if value.kind() == "integer" {
                            return self.dim(value, one.scope, true);
                        }
                    }
                    // `B, T, C = x.size()`: the size, or its name when not known (inside a module
                    // call, the caller's size itself: the name means nothing there).
                    Source::Value { expr, path } => {
                        if let [Step::Index(i)] = path.as_slice() {
                            let dims = self.eval.node(expr).and_then(|n| self.sequence(n, one.scope));
                            if let Some(dims) = dims {
                                return match dims.get(*i)? {
                                    Dim::Known(n) => Some(Dim::Known(*n)),
                                    d if self.ctx.is_some() => Some(d.clone()),
                                    _ => Some(named()),
                                };
                            }
                        }
                    }
                    Source::Param { index, .. } if self.ctx.is_some() => {
                        if let Some(dim) = self.init_param_dim(name, one.scope, *index) {
                            return Some(dim);
                        }
                    }
                    _ => {}
                }
            }
        }
        (sure_int && !self.is_array(node, key)).then(named)
    }

    // ----- indexing ----------------------------------------------------------------------------

    /// `x[0]`, `x[:, -1, :]`, `x[..., None]`, `x[:, :T]`.
    fn index(&self, node: Node, key: usize) -> Option<Shape> {
        let value = node.child_by_field_name("value")?;
        if !self.is_array(value, key) {
            return None;
        }
        let shape = self.of(value, key)?;
        let mut walker = node.walk();
        let subs: Vec<Node> = node.children_by_field_name("subscript", &mut walker).collect();
        let consumes = |n: &Node| !matches!(n.kind(), "ellipsis" | "none");
        if subs.iter().filter(|n| n.kind() == "ellipsis").count() > 1 {
            return None;
        }
        let used = subs.iter().filter(|n| consumes(n)).count();
        if used > shape.rank() {
            return None;
        }
        let mut dims = Vec::new();
        let mut at = 0;
        for sub in &subs {
            match sub.kind() {
                "none" => dims.push(Dim::Known(1)),
                "ellipsis" => {
                    let skip = shape.rank() - used;
                    dims.extend_from_slice(&shape.0[at..at + skip]);
                    at += skip;
                }
                "slice" => {
                    let dim = &shape.0[at];
                    dims.push(self.slice_len(*sub, dim, key)?);
                    at += 1;
                }
                // An int drops the dimension; a tensor index (advanced indexing) is left alone.
                _ => {
                    self.dim(*sub, key, false)?;
                    if self.is_array(*sub, key) {
                        return None;
                    }
                    at += 1;
                }
            }
        }
        dims.extend_from_slice(&shape.0[at..]);
        Some(Shape(dims))
    }

    /// The length of a slice of a dimension: `:` keeps it, literal bounds count.
    fn slice_len(&self, slice: Node, dim: &Dim, key: usize) -> Option<Dim> {
        let parts = slice_parts(slice);
        match parts {
            (None, None, None) => Some(dim.clone()),
            // `:T` of a dimension known to be at least T is not known here: only literal sizes.
            _ => {
                let n = usize::try_from(dim.known()?).ok()?;
                let (start, stop) = self.slice_bounds(slice, n, key)?;
                let step = match parts.2 {
                    Some(s) => usize::try_from(self.dim(s, key, true)?.known()?).ok().filter(|&s| s > 0)?,
                    None => 1,
                };
                let len = stop.saturating_sub(start).div_ceil(step);
                Some(Dim::Known(i64::try_from(len).ok()?))
            }
        }
    }

    /// A slice's start and stop over `len` items, as Python clamps them.
    fn slice_bounds(&self, slice: Node, len: usize, key: usize) -> Option<(usize, usize)> {
        let (start, stop, step) = slice_parts(slice);
        if let Some(step) = step {
            if self.dim(step, key, true)?.known()? != 1 {
                return None;
            }
        }
        let len_i = i64::try_from(len).ok()?;
        let bound = |node: Option<Node>, default: i64| -> Option<usize> {
            let v = match node {
                Some(n) => self.dim(n, key, true)?.known()?,
                None => default,
            };
            let v = if v < 0 { (v + len_i).max(0) } else { v.min(len_i) };
            usize::try_from(v).ok()
        };
        Some((bound(start, 0)?, bound(stop, len_i)?))
    }
}

/// A slice's three parts, by the colons between them.
fn slice_parts(slice: Node) -> (Option<Node>, Option<Node>, Option<Node>) {
    let mut parts = [None, None, None];
    let mut at = 0;
    let mut walker = slice.walk();
    for child in slice.children(&mut walker) {
        if child.kind() == ":" {
            at += 1;
        } else if child.is_named() && at < 3 && child.kind() != "comment" {
            parts[at] = Some(child);
        }
    }
    (parts[0], parts[1], parts[2])
}

fn bool_literal(text: &str) -> Option<bool> {
    match text {
        "True" => Some(true),
        "False" => Some(false),
        _ => None,
    }
}

pub fn is_array_type(ty: &Ty) -> bool {
    matches!(ty, Ty::Instance(class) if ARRAY_CLASSES.contains(&class.as_ref()))
}

/// NumPy broadcasting: sizes matched from the end; 1 stretches. Symbolic sizes must be the same.
pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let rank = a.rank().max(b.rank());
    let mut dims = Vec::with_capacity(rank);
    for i in 0..rank {
        let x = (i + a.rank()).checked_sub(rank).map(|j| &a.0[j]);
        let y = (i + b.rank()).checked_sub(rank).map(|j| &b.0[j]);
        dims.push(match (x, y) {
            (Some(x), None) => x.clone(),
            (None, Some(y)) => y.clone(),
            (Some(x), Some(y)) if x == y => x.clone(),
            (Some(Dim::Known(1)), Some(y)) => y.clone(),
            (Some(x), Some(Dim::Known(1))) => x.clone(),
            _ => return None,
        });
    }
    Some(Shape(dims))
}

/// `a @ b`: vectors are promoted and their dimension dropped again; batch dimensions broadcast.
pub fn matmul(a: &Shape, b: &Shape) -> Option<Shape> {
    match (a.rank(), b.rank()) {
        (0, _) | (_, 0) => None,
        (1, 1) => (a.0[0] == b.0[0]).then(|| Shape(vec![])),
        (1, _) => {
            let n = b.rank();
            (a.0[0] == b.0[n - 2]).then_some(())?;
            let mut dims = b.0[..n - 2].to_vec();
            dims.push(b.0[n - 1].clone());
            Some(Shape(dims))
        }
        (_, 1) => {
            let m = a.rank();
            (a.0[m - 1] == b.0[0]).then_some(())?;
            Some(Shape(a.0[..m - 1].to_vec()))
        }
        (m, n) => {
            if a.0[m - 1] != b.0[n - 2] {
                return None;
            }
            let batch = broadcast(&Shape(a.0[..m - 2].to_vec()), &Shape(b.0[..n - 2].to_vec()))?;
            let mut dims = batch.0;
            dims.push(a.0[m - 2].clone());
            dims.push(b.0[n - 1].clone());
            Some(Shape(dims))
        }
    }
}

/// `view`/`reshape` to `sizes`, one of which may be `-1`: the element counts must be equal.
pub fn reshape(shape: &Shape, sizes: Vec<Dim>) -> Option<Shape> {
    let holes = sizes.iter().filter(|d| **d == Dim::Known(-1)).count();
    if holes > 1 || sizes.iter().any(|d| matches!(d, Dim::Known(n) if *n < -1)) {
        return None;
    }
    if holes == 0 {
        // Sizes are what the user asked for; a mismatch would raise (that is a diagnostic's job).
        return (counts_equal(&shape.0, &sizes) != Some(false)).then_some(Shape(sizes));
    }
    let given: Vec<Dim> = sizes.iter().filter(|d| **d != Dim::Known(-1)).cloned().collect();
    let missing = quotient(&shape.0, &given)?;
    Some(Shape(sizes.into_iter().map(|d| if d == Dim::Known(-1) { missing.clone() } else { d }).collect()))
}

/// Whether two products of sizes are equal, where that can be told.
fn counts_equal(a: &[Dim], b: &[Dim]) -> Option<bool> {
    match quotient(a, b) {
        Some(Dim::Known(1)) => Some(true),
        Some(Dim::Known(_)) => Some(false),
        _ => match (Dim::product(a)?.known(), Dim::product(b)?.known()) {
            (Some(x), Some(y)) => Some(x == y),
            _ => None,
        },
    }
}

/// `prod(num) // prod(den)`, cancelling the factors they share (`[B, T, C] / [B, T, n_head]` is
/// `C // n_head`). `None` when known sizes do not divide.
fn quotient(num: &[Dim], den: &[Dim]) -> Option<Dim> {
    let mut num: Vec<Dim> = num.iter().flat_map(factors).collect();
    let mut known_den = 1i64;
    let mut rest_den = Vec::new();
    for d in den.iter().flat_map(factors) {
        if let Some(pos) = num.iter().position(|n| *n == d) {
            num.remove(pos);
        } else if let Some(k) = d.known() {
            known_den = known_den.checked_mul(k)?;
        } else {
            rest_den.push(d);
        }
    }
    let known_num: i64 = num.iter().filter_map(Dim::known).try_fold(1i64, |acc, k| acc.checked_mul(k))?;
    let mut sym_num: Vec<Dim> = num.into_iter().filter(|d| d.known().is_none()).collect();
    if known_den == 0 {
        return None;
    }
    let mut top = known_num;
    let mut bottom = known_den;
    let g = gcd(top, bottom);
    if g > 1 {
        top /= g;
        bottom /= g;
    }
    if bottom != 1 && sym_num.is_empty() && rest_den.is_empty() {
        return None; // known sizes that do not divide: the reshape would raise
    }
    let mut numerator = Dim::Known(top);
    for d in sym_num.drain(..) {
        numerator = Dim::apply(Op::Mul, numerator, d)?;
    }
    let mut denominator = Dim::Known(bottom);
    for d in rest_den {
        denominator = Dim::apply(Op::Mul, denominator, d)?;
    }
    Dim::apply(Op::FloorDiv, numerator, denominator)
}

/// A size as the factors of a product: `B * T` is `[B, T]`.
fn factors(d: &Dim) -> Vec<Dim> {
    match d {
        Dim::Op(Op::Mul, a, b) => {
            let mut res = factors(a);
            res.extend(factors(b));
            res
        }
        other => vec![other.clone()],
    }
}

/// `flatten(start_dim, end_dim)`: the dimensions between merged into one.
fn flatten(shape: &Shape, start: i64, end: i64) -> Option<Shape> {
    if shape.rank() == 0 {
        return Some(Shape(vec![Dim::Known(1)]));
    }
    let (start, end) = (shape.axis(start)?, shape.axis(end)?);
    if start > end {
        return None;
    }
    let merged = Dim::product(&shape.0[start..=end])?;
    let mut dims = shape.0[..start].to_vec();
    dims.push(merged);
    dims.extend_from_slice(&shape.0[end + 1..]);
    Some(Shape(dims))
}

/// The length a convolution or pooling window leaves: `(L + 2p - d(k - 1) - 1) // s + 1`, written
/// the short way when `L` is a name (`L`, `L - 2`, `(L - 1) // 2 + 1`).
fn conv_length(length: Dim, kernel: i64, stride: i64, padding: i64, dilation: i64) -> Option<Dim> {
    if kernel < 1 || stride < 1 || padding < 0 || dilation < 1 {
        return None;
    }
    let offset = 2 * padding - dilation * (kernel - 1) - 1;
    if let Some(l) = length.known() {
        let out = (l + offset).div_euclid(stride) + 1;
        return (out > 0).then_some(Dim::Known(out));
    }
    if stride == 1 {
        let delta = offset + 1;
        return match delta {
            0 => Some(length),
            d if d > 0 => Dim::apply(Op::Add, length, Dim::Known(d)),
            d => Dim::apply(Op::Sub, length, Dim::Known(-d)),
        };
    }
    let shifted = match offset {
        0 => length,
        d if d > 0 => Dim::apply(Op::Add, length, Dim::Known(d))?,
        d => Dim::apply(Op::Sub, length, Dim::Known(-d))?,
    };
    Dim::apply(Op::Add, Dim::apply(Op::FloorDiv, shifted, Dim::Known(stride))?, Dim::Known(1))
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn permute(shape: &Shape, order: &[Dim]) -> Option<Shape> {
    if order.len() != shape.rank() {
        return None;
    }
    let mut seen = vec![false; shape.rank()];
    let mut dims = Vec::with_capacity(order.len());
    for d in order {
        let at = shape.axis(d.known()?)?;
        if std::mem::replace(&mut seen[at], true) {
            return None;
        }
        dims.push(shape.0[at].clone());
    }
    Some(Shape(dims))
}
