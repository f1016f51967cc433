//! Tensor shapes of a Python file, with no annotations: `torch.randn(8, 16)` is `[8, 16]`,
//! `x.view(B, T, n_head, C // n_head)` keeps the names the code uses, and a module called on a
//! tensor (`self.fc1(x)`) maps its input by the module's constructor arguments. Built on the value
//! types (which value is a tensor, which call is which catalog member) and the rules of
//! `catalog/shapes/*.toml`. Pure; a shape that cannot be read is no shape.

pub mod dim;
mod eval;
mod inline;
pub mod rules;

use std::ops::Range;

use tree_sitter::Node;

pub use dim::{Dim, Shape};
pub use eval::Shapes;

use crate::catalog::Catalog;
use crate::values::{scope_at, Eval, ModuleValues, Ty};

/// What an assignment target holds, for an inlay hint after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeHint {
    /// Where the hint goes: the end of the target.
    pub offset: usize,
    /// The class's short name and the shape: `Tensor[4, 64, 128]`.
    pub label: String,
}

/// The hints of the assignments that start in `range`.
pub fn hints(m: &ModuleValues, catalog: &Catalog, range: Range<usize>) -> Vec<ShapeHint> {
    let eval = Eval::new(m, catalog);
    let shapes = Shapes::new(&eval);
    let mut res = Vec::new();
    let mut stack = vec![eval.root()];
    while let Some(node) = stack.pop() {
        if node.end_byte() < range.start || node.start_byte() > range.end {
            continue;
        }
        if node.kind() == "assignment" && range.contains(&node.start_byte()) {
            res.extend(assignment_hints(&shapes, node));
        }
        let mut walker = node.walk();
        stack.extend(node.named_children(&mut walker));
    }
    res.sort_by_key(|h| h.offset);
    res
}

fn assignment_hints(shapes: &Shapes, node: Node) -> Vec<ShapeHint> {
    let (Some(left), Some(_)) = (node.child_by_field_name("left"), node.child_by_field_name("right")) else {
        return Vec::new();
    };
    // `x: T = ...` says its type already.
    if node.child_by_field_name("type").is_some() {
        return Vec::new();
    }
    let key = shapes.eval.scope_of(node.start_byte());
    match left.kind() {
        // Through the binding, whose shape every request of this version shares.
        "identifier" => target_hint(shapes, node, left, key).into_iter().collect(),
        // `q, k, v = ...`: each name its binding's shape.
        "pattern_list" | "tuple_pattern" => {
            let mut walker = left.walk();
            let targets: Vec<Node> = left.named_children(&mut walker).collect();
            targets
                .into_iter()
                .filter(|t| t.kind() == "identifier")
                .filter_map(|target| target_hint(shapes, node, target, key))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The hint of one name an assignment unpacks into: its binding there, typed and shaped.
fn target_hint(shapes: &Shapes, assignment: Node, target: Node, key: usize) -> Option<ShapeHint> {
    let name = shapes.eval.text(target);
    let found = shapes.eval.lookup(name, key, assignment.end_byte())?;
    let one = found.into_iter().find(|f| f.binding.statement == assignment.start_byte())?;
    let ty = shapes.eval.binding_type(&one, name);
    let Ty::Instance(class) = &ty else { return None };
    if !eval::is_array_type(&ty) {
        return None;
    }
    let shape = shapes.binding_shape(&one, name)?;
    Some(ShapeHint { offset: target.end_byte(), label: label(class, &shape) })
}

/// The shape of an expression whose value is an array, and the array's class.
pub fn array_shape(shapes: &Shapes, node: Node, key: usize) -> Option<(String, Shape)> {
    let ty = shapes.eval.expr(node, key);
    let Ty::Instance(class) = &ty else { return None };
    if !eval::is_array_type(&ty) {
        return None;
    }
    Some((class.to_string(), shapes.of(node, key)?))
}

/// `Tensor[4, 64]`: the class's last name and the shape.
pub fn label(class: &str, shape: &Shape) -> String {
    let short = class.rsplit('.').next().unwrap_or(class);
    let short = if short == "Parameter" { "Tensor" } else { short };
    format!("{short}{shape}")
}

/// The shape of the variable or assignment target at `offset`, for its hover.
pub fn shape_at(m: &ModuleValues, catalog: &Catalog, offset: usize) -> Option<String> {
    let eval = Eval::new(m, catalog);
    let shapes = Shapes::new(&eval);
    let root = eval.root();
    let at = |o: usize| root.descendant_for_byte_range(o, o).filter(|n| n.kind() == "identifier");
    let ident = at(offset).or_else(|| offset.checked_sub(1).and_then(at))?;
    let key = scope_at(&m.tree, ident.start_byte());
    let parent = ident.parent()?;
    // One of the targets of an unpacking: that target's binding.
    if matches!(parent.kind(), "pattern_list" | "tuple_pattern") {
        let assignment = parent.parent().filter(|a| a.kind() == "assignment")?;
        return target_hint(&shapes, assignment, ident, key).map(|h| h.label);
    }
    // On a target: the value assigned there; elsewhere the name's value where it is used.
    let node =
        if parent.kind() == "assignment" && parent.child_by_field_name("left").is_some_and(|l| l.id() == ident.id()) {
            parent.child_by_field_name("right")?
        } else {
            ident
        };
    let (class, shape) = array_shape(&shapes, node, key)?;
    Some(label(&class, &shape))
}

#[cfg(test)]
mod tests;
