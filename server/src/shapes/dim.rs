//! Dimensions: known sizes (`64`), names as the code writes them (`B`, `config.n_embd`), and the
//! arithmetic between them (`C // n_head`, `3 * n_embd`), folded where both sides are known.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(i64),
    /// An expression of the user's code that holds the size where it is used: an identifier or a
    /// dotted name (`B`, `self.n_head`, `config.n_embd`).
    Named(Arc<str>),
    Op(Op, Box<Dim>, Box<Dim>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    FloorDiv,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::FloorDiv => "//",
        }
    }

    /// Binding strength, for parentheses when printed.
    fn precedence(self) -> u8 {
        match self {
            Op::Add | Op::Sub => 1,
            Op::Mul | Op::FloorDiv => 2,
        }
    }
}

impl Dim {
    pub fn known(&self) -> Option<i64> {
        match self {
            Dim::Known(n) => Some(*n),
            _ => None,
        }
    }

    /// `a op b`, folded when both are known; `None` where Python would raise or the result is not a
    /// size (division by zero, a negative size).
    pub fn apply(op: Op, a: Dim, b: Dim) -> Option<Dim> {
        match (a.known(), b.known()) {
            (Some(x), Some(y)) => {
                let n = match op {
                    Op::Add => x.checked_add(y)?,
                    Op::Sub => x.checked_sub(y)?,
                    Op::Mul => x.checked_mul(y)?,
                    // Python's `//` floors; sizes are never negative, so `div_euclid` agrees.
                    Op::FloorDiv if y > 0 => x.div_euclid(y),
                    Op::FloorDiv => return None,
                };
                Some(Dim::Known(n))
            }
            // `x * 1`, `x // 1`, `x + 0`: the same size.
            (_, Some(1)) if matches!(op, Op::Mul | Op::FloorDiv) => Some(a),
            (Some(1), _) if op == Op::Mul => Some(b),
            (_, Some(0)) if matches!(op, Op::Add | Op::Sub) => Some(a),
            _ => Some(Dim::Op(op, Box::new(a), Box::new(b))),
        }
    }

    /// The product of sizes, for element counts.
    pub fn product<'d>(dims: impl IntoIterator<Item = &'d Dim>) -> Option<Dim> {
        dims.into_iter().try_fold(Dim::Known(1), |acc, d| Dim::apply(Op::Mul, acc, d.clone()))
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, outer: u8, right: bool) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Named(name) => f.write_str(name),
            Dim::Op(op, a, b) => {
                let p = op.precedence();
                // `a - (b - c)` and `a // (b * c)` need their parentheses; `(a * b) * c` does not.
                let paren = p < outer || (right && p == outer);
                if paren {
                    f.write_str("(")?;
                }
                a.write(f, p, false)?;
                write!(f, " {} ", op.symbol())?;
                b.write(f, p, true)?;
                if paren {
                    f.write_str(")")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0, false)
    }
}

/// A tensor's shape: its dimensions, outermost first. A scalar tensor has none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// A dimension index as Python takes it (`-1` is the last); `None` when out of range.
    pub fn axis(&self, index: i64) -> Option<usize> {
        axis(index, self.rank())
    }

    pub fn elements(&self) -> Option<Dim> {
        Dim::product(&self.0)
    }
}

/// `index` into `rank` dimensions, negative from the end.
pub fn axis(index: i64, rank: usize) -> Option<usize> {
    let rank = i64::try_from(rank).ok()?;
    let idx = if index < 0 { index + rank } else { index };
    (0..rank).contains(&idx).then_some(idx as usize)
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (idx, dim) in self.0.iter().enumerate() {
            if idx > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{dim}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> Dim {
        Dim::Named(n.into())
    }

    #[test]
    fn arithmetic_folds_and_prints_like_python() {
        assert_eq!(Dim::apply(Op::Mul, Dim::Known(3), Dim::Known(64)), Some(Dim::Known(192)));
        assert_eq!(Dim::apply(Op::FloorDiv, Dim::Known(7), Dim::Known(2)), Some(Dim::Known(3)));
        assert_eq!(Dim::apply(Op::FloorDiv, Dim::Known(7), Dim::Known(0)), None);
        let c_per_head = Dim::apply(Op::FloorDiv, named("C"), named("n_head")).unwrap();
        assert_eq!(c_per_head.to_string(), "C // n_head");
        let nested = Dim::apply(Op::Mul, Dim::Known(3), c_per_head.clone()).unwrap();
        assert_eq!(nested.to_string(), "3 * (C // n_head)");
        let sum = Dim::apply(Op::Add, named("T"), Dim::Known(1)).unwrap();
        assert_eq!(Dim::apply(Op::Mul, sum, named("B")).unwrap().to_string(), "(T + 1) * B");
        assert_eq!(Dim::apply(Op::Mul, named("B"), Dim::Known(1)), Some(named("B")));
        let shape = Shape(vec![named("B"), Dim::Known(4), c_per_head]);
        assert_eq!(shape.to_string(), "[B, 4, C // n_head]");
        assert_eq!(shape.axis(-1), Some(2));
        assert_eq!(shape.axis(3), None);
        assert_eq!(Shape(vec![]).to_string(), "[]");
    }
}
