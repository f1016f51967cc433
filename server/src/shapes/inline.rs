//! A call of the user's own module, worked out for the input it is given: `self.block1(x)` runs
//! `ConvBlock.forward` with `x`'s shape, and the sizes its `__init__` read (`nn.Conv2d(cin, cout,
//! ...)`) are the arguments of that block's construction (`ConvBlock(16, 32)`). The result is kept
//! only when every size in it means something where the call is: a known size, or a name the caller
//! passed in. Config objects work the same way: `cfg.width` of a dataclass instance is the value its
//! construction gives, or the field's literal default.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tree_sitter::Node;

use super::dim::{Dim, Shape};
use super::eval::Shapes;
use crate::values::scopes::{scope_node, Source};
use crate::values::{Argument, Site, Ty};

/// Module calls inside module calls, this deep at most.
const MAX_NESTING: usize = 8;

/// One module call being worked out.
pub struct Inline<'a> {
    /// The `forward` scope, and the shapes its parameters hold for this call.
    pub forward: usize,
    pub inputs: HashMap<Arc<str>, Shape>,
    /// The class's `__init__` scope and the construction that made this instance (a call in the
    /// caller's scope `.1`), when it is known.
    pub init: Option<usize>,
    pub construction: Option<(Node<'a>, usize)>,
    /// Where the call itself is worked out: `None` for the file as written.
    pub caller: Option<Rc<Inline<'a>>>,
    pub nesting: usize,
    /// Names of sizes that came in from the caller (its names, valid there).
    pub imported: RefCell<Vec<Arc<str>>>,
}

/// What a call of a user module gives: one array, or a tuple (`return logits, loss`).
pub enum Inlined {
    One(Shape),
    Tuple(Vec<Option<Shape>>),
}

impl<'e, 'a> Shapes<'e, 'a> {
    /// `module(x)` for an instance of a user class deriving from `nn.Module` (or with a
    /// `__call__`): its entry method's returns, for these arguments.
    pub(super) fn inline_call(&self, call: Node<'a>, class: usize, key: usize) -> Option<Inlined> {
        if self.ctx.as_ref().map_or(0, |c| c.nesting) >= MAX_NESTING {
            return None;
        }
        let eval = self.eval;
        let forward = eval.instance_entry(class)?;
        let function = call.child_by_field_name("function")?;
        let scope = eval.m.scope(forward)?;
        // The shapes of the arguments, by the parameter they fill.
        let site = Site::bound(call);
        let mut inputs = HashMap::new();
        let mut imported = Vec::new();
        for (name, list) in &scope.bindings {
            let Some(Source::Param { index, .. }) = list.first().map(|b| &b.source) else { continue };
            if *index == 0 {
                continue;
            }
            if let Argument::Given(node) = eval.argument(&site, *index, name) {
                if let Some(shape) = self.of(node, key) {
                    for d in &shape.0 {
                        leaf_names(d, &mut imported);
                    }
                    inputs.insert(name.clone(), shape);
                }
            }
        }
        if inputs.is_empty() {
            return None;
        }
        let init = match eval.user_member(class, "__init__", &Ty::UserInstance(class), false) {
            Ty::UserMethod { def, .. } => Some(def),
            _ => None,
        };
        let construction = self.instance_construction(function, key);
        let ctx = Inline {
            forward,
            inputs,
            init,
            construction,
            caller: self.ctx.clone(),
            nesting: self.ctx.as_ref().map_or(0, |c| c.nesting) + 1,
            imported: RefCell::new(imported),
        };
        let inner = Shapes::within(eval, Rc::new(ctx));
        let res = inner.returns(forward)?;
        let ctx = inner.ctx.as_ref()?;
        let valid = |s: &Shape| {
            let mut names = Vec::new();
            s.0.iter().for_each(|d| leaf_names(d, &mut names));
            let imported = ctx.imported.borrow();
            names.iter().all(|n| imported.contains(n))
        };
        match res {
            Inlined::One(shape) => valid(&shape).then_some(Inlined::One(shape)),
            Inlined::Tuple(items) => Some(Inlined::Tuple(items.into_iter().map(|s| s.filter(|s| valid(s))).collect())),
        }
    }

    /// The returns of a function, agreed: one shape, or tuples of one length item by item.
    fn returns(&self, def: usize) -> Option<Inlined> {
        let scope = self.eval.m.scope(def)?;
        if scope.generator || scope.returns.is_empty() {
            return None;
        }
        let mut res: Option<Inlined> = None;
        for range in &scope.returns {
            let node = self.eval.node(range)?;
            let this = if node.kind() == "expression_list" || node.kind() == "tuple" {
                let mut walker = node.walk();
                let items: Vec<Node> = node.named_children(&mut walker).filter(|n| n.kind() != "comment").collect();
                Inlined::Tuple(items.into_iter().map(|i| self.of(i, def)).collect())
            } else {
                Inlined::One(self.of(node, def)?)
            };
            res = Some(match (res, this) {
                (None, this) => this,
                (Some(Inlined::One(a)), Inlined::One(b)) if a == b => Inlined::One(a),
                (Some(Inlined::Tuple(a)), Inlined::Tuple(b)) if a.len() == b.len() => {
                    Inlined::Tuple(a.into_iter().zip(b).map(|(x, y)| if x == y { x } else { None }).collect())
                }
                _ => return None,
            });
        }
        res
    }

    /// The construction an instance came from: `self.block1 = ConvBlock(16, 32)`, `net =
    /// SmallCNN()`, or the one element class of `nn.ModuleList([Block(cfg) for _ in ...])` a loop
    /// variable runs over.
    pub(super) fn instance_construction(&self, callee: Node<'a>, key: usize) -> Option<(Node<'a>, usize)> {
        if let Some(found) = self.construction(callee, key) {
            return Some(found);
        }
        if callee.kind() != "identifier" {
            return None;
        }
        let found = self.eval.lookup(self.text(callee), key, callee.start_byte())?;
        let [one] = found.as_slice() else { return None };
        let Source::For { iter, path } = &one.binding.source else { return None };
        if !path.is_empty() {
            return None;
        }
        let iter = self.eval.node(iter)?;
        let (list, lkey) = self.construction(iter, one.scope)?;
        // `nn.ModuleList([X(...) for ...])`: the comprehension's one construction.
        let args = list.child_by_field_name("arguments")?;
        let arg = args.named_child(0)?;
        match arg.kind() {
            "list_comprehension" | "generator_expression" => {
                let body = arg.child_by_field_name("body")?;
                (body.kind() == "call").then_some((body, lkey))
            }
            _ => None,
        }
    }

    /// A parameter of the `__init__` being inlined: the size its construction passes (or its
    /// literal default when it passes none), read where the construction is.
    pub(super) fn init_param_dim(&self, name: &str, scope: usize, index: usize) -> Option<Dim> {
        let ctx = self.ctx.as_ref()?;
        if ctx.init != Some(scope) {
            return None;
        }
        let (call, ckey) = ctx.construction?;
        let outer = self.outer();
        let dim = match self.eval.argument(&Site::bound(call), index, name) {
            Argument::Given(node) => outer.dim(node, ckey, true)?,
            Argument::Default => self.default_int(scope, name)?,
            Argument::Unknown => return None,
        };
        leaf_names(&dim, &mut ctx.imported.borrow_mut());
        Some(dim)
    }

    /// The literal int default of a parameter.
    pub(super) fn default_int(&self, scope: usize, name: &str) -> Option<Dim> {
        let data = self.eval.m.scope(scope)?;
        let binding = data.bindings.get(name)?.first()?;
        let Source::Param { default: Some(default), .. } = &binding.source else { return None };
        let node = self.eval.node(default)?;
        (node.kind() == "integer").then(|| self.dim(node, scope, true)).flatten()
    }

    /// Shapes where the construction of the current module is read: the caller's context.
    fn outer(&self) -> Shapes<'e, 'a> {
        match self.ctx.as_ref().and_then(|c| c.caller.clone()) {
            Some(caller) => Shapes::within(self.eval, caller),
            None => Shapes::new(self.eval),
        }
    }

    /// `cfg.width` where `cfg` holds an instance of a dataclass of the file: the size its
    /// construction gives the field, or the field's literal default.
    pub(super) fn config_field(&self, object: Node<'a>, field: &str, key: usize) -> Option<Dim> {
        let eval = self.eval;
        let Ty::UserInstance(class) = eval.expr(object, key) else { return None };
        let class_node = scope_node(eval.root(), class)?;
        let dataclass = class_node.parent().filter(|p| p.kind() == "decorated_definition").is_some_and(|p| {
            let mut walker = p.walk();
            let found = p.named_children(&mut walker).any(|d| {
                d.kind() == "decorator"
                    && matches!(
                        eval.text(d).trim_start_matches('@').trim(),
                        "dataclass" | "dataclasses.dataclass" | "dataclass()"
                    )
            });
            found
        });
        if !dataclass {
            return None;
        }
        let (fields, default) = dataclass_fields(self, class_node, field)?;
        // Where the instance was made.
        if object.kind() != "identifier" {
            return None;
        }
        let found = eval.lookup(eval.text(object), key, object.start_byte())?;
        let [one] = found.as_slice() else { return None };
        let from_call = |call: Node<'a>, ckey: usize, shapes: &Shapes<'e, 'a>| -> Option<Dim> {
            if call.kind() != "call" {
                return None;
            }
            let index = fields.iter().position(|f| f == field)? + 1;
            match eval.argument(&Site::bound(call), index, field) {
                Argument::Given(node) => shapes.dim(node, ckey, true)?.known().map(Dim::Known),
                Argument::Default => default.clone(),
                Argument::Unknown => None,
            }
        };
        match &one.binding.source {
            Source::Value { expr, path } if path.is_empty() => from_call(eval.node(expr)?, one.scope, self),
            // A parameter of the `__init__` being inlined: the object its construction passes;
            // elsewhere, the field's size when every call of the function agrees on it.
            Source::Param { index, .. } => {
                let name = eval.text(object);
                let Some(ctx) = self.ctx.as_ref().filter(|c| c.init == Some(one.scope)) else {
                    let sites = eval.call_sites(one.scope)?;
                    let mut agreed: Option<Dim> = None;
                    for site in &sites {
                        let Argument::Given(arg) = eval.argument(site, *index, name) else { return None };
                        let dim = Shapes::new(eval).config_field(arg, field, eval.scope_of(arg.start_byte()))?;
                        match &agreed {
                            Some(prev) if *prev != dim => return None,
                            _ => agreed = Some(dim),
                        }
                    }
                    return agreed;
                };
                let (call, ckey) = ctx.construction?;
                let Argument::Given(arg) = eval.argument(&Site::bound(call), *index, name) else {
                    return None;
                };
                self.outer().config_field(arg, field, ckey)
            }
            _ => None,
        }
    }

    /// `self.heads` in a module being inlined: what its `__init__` assigns, when that is a size.
    pub(super) fn self_attr_dim(&self, class: usize, attr: &str) -> Option<Dim> {
        let data = self.eval.m.class(class)?;
        let [(method, binding)] = data.self_attrs.get(attr)?.as_slice() else { return None };
        let Source::Value { expr, path } = &binding.source else { return None };
        if !path.is_empty() {
            return None;
        }
        let value = self.eval.node(expr)?;
        let dim = self.dim(value, *method, true)?;
        // Inside `__init__`, a size read from its parameters or a config is the caller's.
        let mut names = Vec::new();
        leaf_names(&dim, &mut names);
        let imported = self.ctx.as_ref().map(|c| c.imported.borrow().clone()).unwrap_or_default();
        names.iter().all(|n| imported.contains(n)).then_some(dim)
    }
}

/// The fields of a dataclass in order, and the literal int default of `field`.
fn dataclass_fields(shapes: &Shapes, class: Node, field: &str) -> Option<(Vec<String>, Option<Dim>)> {
    let body = class.child_by_field_name("body")?;
    let mut fields = Vec::new();
    let mut default = None;
    let mut walker = body.walk();
    for stmt in body.named_children(&mut walker) {
        let Some(assignment) = stmt.named_child(0).filter(|a| a.kind() == "assignment") else { continue };
        if assignment.child_by_field_name("type").is_none() {
            continue;
        }
        let Some(left) = assignment.child_by_field_name("left").filter(|l| l.kind() == "identifier") else {
            continue;
        };
        let name = shapes.eval.text(left).to_string();
        if name == field {
            default = assignment
                .child_by_field_name("right")
                .filter(|r| r.kind() == "integer")
                .and_then(|r| shapes.eval.text(r).replace('_', "").parse().ok())
                .map(Dim::Known);
        }
        fields.push(name);
    }
    Some((fields, default))
}

/// The names a size is made of.
pub(super) fn leaf_names(d: &Dim, out: &mut Vec<Arc<str>>) {
    match d {
        Dim::Known(_) => {}
        Dim::Named(n) => out.push(n.clone()),
        Dim::Op(_, a, b) => {
            leaf_names(a, out);
            leaf_names(b, out);
        }
    }
}
