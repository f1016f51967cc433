//! Types of values, and what the catalog says about them: members through base classes, what a call
//! gives, the element type of an iterator.
//!
//! A type is a catalog symbol (an instance of `torch.Tensor`, the class `torch.nn.Linear`, the
//! function `torch.zeros`), a class or function of the user's own file, or a container of those.
//! Anything else is `Unknown`, and unknown gives no answer.

use std::sync::Arc;

use crate::catalog::{Catalog, SymbolIdx};

/// Deep base-class chains are rare; a cycle in bad data must not hang a request.
const MAX_BASE_DEPTH: usize = 12;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Unknown,
    /// The `None` constant: left out when the bindings of a name are joined (`self.fc = None`
    /// then `self.fc = nn.Linear(...)` is an `nn.Linear`).
    None,
    /// A catalog module, class or function itself: `torch`, `torch.nn.Linear`, `torch.zeros`.
    Symbol(Arc<str>),
    /// An instance of a catalog class.
    Instance(Arc<str>),
    /// A catalog method or function attribute reached through a value: calling it gives its return
    /// type, with `Self` standing for the receiver (`model.to(device)` keeps `model`'s class).
    Method {
        member: Arc<str>,
        owner: Arc<str>,
        receiver: Box<Ty>,
    },
    /// A class of the user's file, by the start of its definition.
    UserClass(usize),
    UserInstance(usize),
    /// A function of the user's file, by the start of its definition.
    UserFunction(usize),
    /// A user method bound to an instance.
    UserMethod {
        def: usize,
        receiver: Box<Ty>,
    },
    /// `super()` inside a method of a user class.
    Super(usize),
    Tuple(Vec<Ty>),
    /// A list, iterator or generator whose elements are known.
    Iter(Box<Ty>),
    /// A module of the user's workspace (`import model`), by its file.
    UserModule(Arc<std::path::Path>),
    /// A class from another file of the user's workspace, and its instances.
    ForeignClass(Arc<Foreign>),
    Foreign(Arc<Foreign>),
    /// A function from another file of the user's workspace: what calling it gives.
    ForeignFunction(Arc<Ty>),
}

/// What the importing file needs of a class defined in another workspace file, worked out there:
/// `from model import GPT` makes `GPT(...)` an instance whose framework members resolve through
/// its bases, and whose own names are never mistaken for framework members.
#[derive(Debug, PartialEq, Eq)]
pub struct Foreign {
    pub name: Arc<str>,
    pub file: Arc<std::path::Path>,
    /// The catalog classes it derives from, nearest first.
    pub ancestors: Vec<Arc<str>>,
    /// Every name its class bodies (its own and its user bases') bind, and every `self.x` they set.
    pub own: std::collections::BTreeSet<Arc<str>>,
    /// What calling an instance gives (`forward`'s result for an `nn.Module`).
    pub call: Ty,
}

impl Ty {
    pub fn is_known(&self) -> bool {
        !matches!(self, Ty::Unknown | Ty::None)
    }

    /// The join of several bindings of one name: the same known type everywhere (ignoring `None`),
    /// else unknown.
    pub fn join(types: impl IntoIterator<Item = Ty>) -> Ty {
        let mut res: Option<Ty> = None;
        for ty in types {
            match ty {
                Ty::None => continue,
                Ty::Unknown => return Ty::Unknown,
                ty => match &res {
                    None => res = Some(ty),
                    Some(prev) if *prev == ty => {}
                    Some(_) => return Ty::Unknown,
                },
            }
        }
        res.unwrap_or(Ty::Unknown)
    }

    /// The element of an iteration over this type.
    pub fn element(&self, catalog: &Catalog) -> Ty {
        match self {
            Ty::Iter(elem) => (**elem).clone(),
            Ty::Tuple(items) => Ty::join(items.iter().cloned()),
            Ty::Instance(class) => match member(catalog, class, "__iter__") {
                Some(found) => match parse_type(catalog.symbol(found.symbol).returns.as_deref().unwrap_or("")) {
                    Ty::Iter(elem) => *elem,
                    _ => Ty::Unknown,
                },
                None if array_base(catalog, class).is_some() => self.clone(),
                None => Ty::Unknown,
            },
            _ => Ty::Unknown,
        }
    }
}

/// A member found on a catalog class or one of its bases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub symbol: SymbolIdx,
    /// The qualified name of the member as the catalog has it: `torch.nn.Module.parameters`.
    pub name: Arc<str>,
    /// The class the member was found on: `torch.nn.Module` for `Linear(...).parameters`.
    pub owner: Arc<str>,
}

/// The catalog's own name for a class (an alias such as `torch.nn.modules.linear.Linear` leads to
/// `torch.nn.Linear`).
pub fn canonical(catalog: &Catalog, name: &str) -> Option<Arc<str>> {
    catalog.lookup(name).map(|idx| Arc::from(catalog.symbol(idx).name.as_ref()))
}

/// The base classes of a catalog class, nearest first.
pub fn bases(catalog: &Catalog, class: &str) -> Vec<Arc<str>> {
    match catalog.lookup(class) {
        Some(idx) => catalog.symbol(idx).bases.iter().map(|b| Arc::from(b.as_ref())).collect(),
        None => Vec::new(),
    }
}

/// Finds `name` on a catalog class, then on its bases, depth first in base order.
pub fn member(catalog: &Catalog, class: &str, name: &str) -> Option<Member> {
    member_at(catalog, class, name, 0)
}

fn member_at(catalog: &Catalog, class: &str, name: &str, depth: usize) -> Option<Member> {
    if depth > MAX_BASE_DEPTH {
        return None;
    }
    let owner = canonical(catalog, class).unwrap_or_else(|| Arc::from(class));
    let qualified = format!("{owner}.{name}");
    if let Some(symbol) = catalog.lookup(&qualified) {
        let found = catalog.symbol(symbol);
        return Some(Member { symbol, name: Arc::from(found.name.as_ref()), owner });
    }
    bases(catalog, &owner).iter().find_map(|base| member_at(catalog, base, name, depth + 1))
}

/// Whether `class` is `ancestor` or derives from it.
pub fn derives_from(catalog: &Catalog, class: &str, ancestor: &str) -> bool {
    fn walk(catalog: &Catalog, class: &str, ancestor: &str, depth: usize) -> bool {
        if depth > MAX_BASE_DEPTH {
            return false;
        }
        let canon = canonical(catalog, class).unwrap_or_else(|| Arc::from(class));
        *canon == *ancestor || bases(catalog, &canon).iter().any(|b| walk(catalog, b, ancestor, depth + 1))
    }
    walk(catalog, class, ancestor, 0)
}

/// The array types whose arithmetic, comparisons and subscripts give an array of the same family.
pub const ARRAY_TYPES: &[&str] = &["torch.Tensor", "jax.Array", "mlx.core.array", "tensorflow.Tensor"];

/// The array family a class belongs to: `torch.nn.Parameter` is a `torch.Tensor`.
pub fn array_base(catalog: &Catalog, class: &str) -> Option<&'static str> {
    ARRAY_TYPES.iter().copied().find(|array| derives_from(catalog, class, array))
}

/// Parses a type expression as the catalog writes it: `torch.Tensor`, `tuple[A, B]`, `list[A]`,
/// `Iterator[A]`. Anything else is unknown.
pub fn parse_type(text: &str) -> Ty {
    let text = text.trim();
    if text.is_empty() {
        return Ty::Unknown;
    }
    let Some(open) = text.find('[') else {
        return if text.contains('.') && text.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            Ty::Instance(Arc::from(text))
        } else {
            Ty::Unknown
        };
    };
    let Some(inner) = text[open + 1..].strip_suffix(']') else { return Ty::Unknown };
    let args: Vec<Ty> = split_top_level(inner).into_iter().map(parse_type).collect();
    match &text[..open] {
        "tuple" | "Tuple" => {
            if args.len() == 2 && inner.trim_end().ends_with("...") {
                Ty::Iter(Box::new(args[0].clone()))
            } else {
                Ty::Tuple(args)
            }
        }
        "list" | "List" | "Iterator" | "Iterable" | "Generator" | "Sequence" => match args.into_iter().next() {
            Some(elem) if elem.is_known() => Ty::Iter(Box::new(elem)),
            _ => Ty::Unknown,
        },
        _ => Ty::Unknown,
    }
}

/// Splits `A, B[C, D], E` at the commas outside brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (idx, c) in text.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..idx].trim());
                start = idx + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// What calling a catalog function, method or class gives, `receiver` standing in for `Self`.
pub fn call_result(catalog: &Catalog, symbol: SymbolIdx, owner: Option<&str>, receiver: Option<&Ty>) -> Ty {
    let sym = catalog.symbol(symbol);
    if sym.kind == "class" {
        return Ty::Instance(Arc::from(sym.name.as_ref()));
    }
    let returned = parse_type(sym.returns.as_deref().unwrap_or(""));
    match (&returned, owner, receiver) {
        // A method that returns its own class returns the receiver's (more precise) type.
        (Ty::Instance(class), Some(owner), Some(receiver)) if **class == *owner => receiver.clone(),
        _ => returned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_expressions_parse() {
        assert_eq!(parse_type("torch.Tensor"), Ty::Instance("torch.Tensor".into()));
        assert_eq!(
            parse_type("Iterator[torch.nn.Parameter]"),
            Ty::Iter(Box::new(Ty::Instance("torch.nn.Parameter".into())))
        );
        assert_eq!(
            parse_type("tuple[torch.Tensor, torch.Tensor]"),
            Ty::Tuple(vec![Ty::Instance("torch.Tensor".into()), Ty::Instance("torch.Tensor".into())])
        );
        assert_eq!(parse_type("tuple[torch.Tensor, ...]"), Ty::Iter(Box::new(Ty::Instance("torch.Tensor".into()))));
        assert_eq!(parse_type("int"), Ty::Unknown);
        assert_eq!(parse_type("cudaError_t"), Ty::Unknown);
        assert_eq!(parse_type("dict[str, torch.Tensor]"), Ty::Unknown);
        assert_eq!(parse_type("list[int]"), Ty::Unknown);
        assert_eq!(parse_type("tuple[int"), Ty::Unknown);
    }

    #[test]
    fn joins_ignore_none_and_disagree_to_unknown() {
        let t = Ty::Instance("torch.Tensor".into());
        assert_eq!(Ty::join([Ty::None, t.clone()]), t);
        assert_eq!(Ty::join([t.clone(), t.clone()]), t);
        assert_eq!(Ty::join([t.clone(), Ty::Instance("jax.Array".into())]), Ty::Unknown);
        assert_eq!(Ty::join([t.clone(), Ty::Unknown]), Ty::Unknown);
        assert_eq!(Ty::join([]), Ty::Unknown);
    }
}
