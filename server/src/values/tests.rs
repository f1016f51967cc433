//! Type flow on small sources: `$0` marks the cursor.

use super::*;
use crate::ide::test_support::{catalog, fixture};

fn answer(text: &str) -> Option<Answer> {
    let (doc, offset) = fixture("t.py", text);
    let values = doc.values().expect("python document has values");
    answer_at(&values, catalog(), offset)
}

fn member_name(text: &str) -> Option<String> {
    match answer(text)? {
        Answer::Member { member, .. } => Some(member.name.to_string()),
        _ => None,
    }
}

#[allow(dead_code)] // used by the tests that need harvested return types
fn variable_type(text: &str) -> Option<String> {
    let (doc, offset) = fixture("t.py", text);
    let values = doc.values()?;
    match answer_at(&values, catalog(), offset)? {
        Answer::Variable { value, .. } => type_label(&values, &value.ty),
        _ => None,
    }
}

#[test]
fn annotations_give_types() {
    assert_eq!(
        member_name("import torch\ndef f(x: torch.Tensor):\n    return x.sof$0tmax(-1)\n").as_deref(),
        Some("torch.Tensor.softmax")
    );
    assert_eq!(
        member_name("from typing import Optional\nfrom torch import Tensor\ndef f(x: Optional[Tensor] = None):\n    x.si$0ze()\n").as_deref(),
        Some("torch.Tensor.size")
    );
    assert_eq!(
        member_name(
            "from jaxtyping import Float\nfrom torch import Tensor\ndef f(x: Float[Tensor, 'b t']):\n    x.me$0an()\n"
        )
        .as_deref(),
        Some("torch.Tensor.mean")
    );
}

#[test]
fn unknown_receivers_and_user_methods_give_nothing() {
    assert_eq!(member_name("def f(x):\n    return x.vi$0ew(3)\n"), None);
    // A user class with its own `view` is not a tensor.
    let src = "import torch.nn as nn\nclass V(nn.Module):\n    def view(self):\n        pass\nv = V()\nv.vi$0ew()\n";
    assert_eq!(member_name(src), None);
    // Rebinding to something unknown forgets the type.
    assert_eq!(member_name("import torch\nx = torch.zeros(3)\nx = load()\nx.vi$0ew(3)\n"), None);
}

#[test]
fn signatures_split_into_parameters() {
    let params = signature_params("torch.zeros(*size, *, out=None, dtype: torch.dtype = None, f=(1, 2), **kw)");
    let names: Vec<&str> = params.iter().map(|p| p.name.as_ref()).collect();
    assert_eq!(names, ["out", "dtype", "f"]);
    assert_eq!(params[1].annotation.as_deref(), Some("torch.dtype"));
    assert_eq!(params[2].default.as_deref(), Some("(1, 2)"));
}
