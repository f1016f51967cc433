//! Tensor shapes of a Python file, with no annotations: `torch.randn(8, 16)` is `[8, 16]`,
//! `x.view(B, T, n_head, C // n_head)` keeps the names the code uses, and a module called on a
//! tensor (`self.fc1(x)`) maps its input by the module's constructor arguments. Built on the value
//! types (which value is a tensor, which call is which catalog member) and the rules of
//! `catalog/shapes/*.toml`. Pure; a shape that cannot be read is no shape.

pub mod dim;
mod eval;
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
            if let Some(hint) = assignment_hint(&shapes, node) {
                res.push(hint);
            }
        }
        let mut walker = node.walk();
        stack.extend(node.named_children(&mut walker));
    }
    res.sort_by_key(|h| h.offset);
    res
}

fn assignment_hint(shapes: &Shapes, node: Node) -> Option<ShapeHint> {
    let left = node.child_by_field_name("left")?;
    let right = node.child_by_field_name("right")?;
    // `x: T = ...` says its type already.
    if left.kind() != "identifier" || node.child_by_field_name("type").is_some() {
        return None;
    }
    let key = scope_at(&shapes.eval.m.tree, node.start_byte());
    let (class, shape) = array_shape(shapes, right, key)?;
    Some(ShapeHint { offset: left.end_byte(), label: label(&class, &shape) })
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
