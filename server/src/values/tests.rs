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

fn variable_type(text: &str) -> Option<String> {
    let (doc, offset) = fixture("t.py", text);
    let values = doc.values()?;
    match answer_at(&values, catalog(), offset)? {
        Answer::Variable { value, .. } => type_label(&values, &value.ty),
        _ => None,
    }
}

#[test]
fn methods_on_values_from_constructors_and_calls() {
    assert_eq!(
        member_name("import torch\nx = torch.randn(3, 4)\nx.vi$0ew(12)\n").as_deref(),
        Some("torch.Tensor.view")
    );
    assert_eq!(
        member_name("import torch\nx = torch.randn(3, 4)\ny = x.view(12).transpose(0, 1)\ny.contig$0uous()\n")
            .as_deref(),
        Some("torch.Tensor.contiguous")
    );
    assert_eq!(
        member_name("from torch import nn\nm = nn.Linear(4, 8)\nm.parame$0ters()\n").as_deref(),
        Some("torch.nn.Module.parameters")
    );
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
fn classes_bases_and_self_attributes() {
    let src = "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc1 = nn.Linear(4, 8)\n    def forward(self, x):\n        h = self.fc1(x)\n        return h.re$0lu()\n";
    assert_eq!(member_name(src).as_deref(), Some("torch.Tensor.relu"));
    let src = "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc1 = nn.Linear(4, 8)\n    def forward(self, x):\n        return self.fc$01(x)\n";
    assert_eq!(variable_type(src).as_deref(), Some("torch.nn.Linear"));
    let src = "import torch.nn as nn\nclass Net(nn.Module):\n    def go(self):\n        for p in self.para$0meters():\n            pass\n";
    assert_eq!(member_name(src).as_deref(), Some("torch.nn.Module.parameters"));
}

#[test]
fn registered_buffers_and_parameters_are_attributes_of_modules_only() {
    let module = |init: &str, body: &str| {
        format!(
            "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        {init}\n    def forward(self, x):\n        return {body}\n"
        )
    };
    let buffer = module("self.register_buffer('mask', torch.ones(4, 4))", "self.mask.unsq$0ueeze(0)");
    assert_eq!(member_name(&buffer).as_deref(), Some("torch.Tensor.unsqueeze"));
    let keywords = module("self.register_buffer(name=\"mask\", tensor=torch.ones(4), persistent=False)", "self.ma$0sk");
    assert_eq!(variable_type(&keywords).as_deref(), Some("torch.Tensor"));
    let parameter = module("self.register_parameter(\"scale\", nn.Parameter(torch.ones(4)))", "self.sca$0le");
    assert_eq!(variable_type(&parameter).as_deref(), Some("torch.nn.Parameter"));
    // A name that is not a plain literal, a class that is not a module, or one with its own
    // `register_buffer`, gives nothing.
    let computed = module("self.register_buffer(f'mask{0}', torch.ones(4))", "self.mask.unsq$0ueeze(0)");
    assert_eq!(member_name(&computed), None);
    let plain = "import torch\nclass Net:\n    def __init__(self):\n        self.register_buffer('mask', torch.ones(4))\n    def go(self):\n        self.mask.unsq$0ueeze(0)\n";
    assert_eq!(member_name(plain), None);
    let own = "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def register_buffer(self, name, value):\n        pass\n    def __init__(self):\n        self.register_buffer('mask', torch.ones(4))\n    def go(self):\n        self.mask.unsq$0ueeze(0)\n";
    assert_eq!(member_name(own), None);
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

#[test]
fn a_binding_target_shows_the_value_bound_there() {
    let base = "import torch\nimport torch.nn as nn\nclass MLP(nn.Module):\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        return x\n";
    let cases = [
        ("log$0its = torch.zeros(3)\n", Some("torch.Tensor")),
        ("model = MLP()\nmodel = model.to('cpu')\nlog$0its = model(xb)\n", Some("torch.Tensor")),
        (
            "def t(loader):\n    model = MLP()\n    for xb, yb in loader:\n        log$0its = model(xb)\n",
            Some("torch.Tensor"),
        ),
        // The right-hand side reads the earlier binding, which is unknown here.
        ("def t(h):\n    h = h + $0h\n", None),
        ("def t(h):\n    $0h = torch.zeros(2)\n    h = h.sum()\n", Some("torch.Tensor")),
    ];
    for (tail, expected) in cases {
        assert_eq!(variable_type(&format!("{base}{tail}")).as_deref(), expected, "{tail}");
    }
}

#[test]
fn bindings_in_branches_join() {
    let base = "import torch\nfrom torch import nn\n";
    let cases = [
        ("def f(c):\n    if c:\n        m = nn.Linear(2, 2)\n    else:\n        m = nn.ReLU()\n    $0m\n", None),
        (
            "def f(c):\n    if c:\n        m = nn.Linear(2, 2)\n    else:\n        m = nn.Linear(3, 3)\n    $0m\n",
            Some("torch.nn.Linear"),
        ),
        ("def f(c):\n    m = nn.ReLU()\n    if c:\n        m = nn.Linear(2, 2)\n    $0m\n", None),
        // Inside the branch, its own binding holds.
        (
            "def f(c):\n    m = nn.ReLU()\n    if c:\n        m = nn.Linear(2, 2)\n        $0m\n",
            Some("torch.nn.Linear"),
        ),
        // A `with` body always runs.
        (
            "def f(c):\n    m = nn.ReLU()\n    with torch.no_grad():\n        m = nn.Linear(2, 2)\n    $0m\n",
            Some("torch.nn.Linear"),
        ),
    ];
    for (tail, expected) in cases {
        assert_eq!(variable_type(&format!("{base}{tail}")).as_deref(), expected, "{tail}");
    }
}

mod across_files {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::parse::{self, Language};
    use crate::values::workspace::{self, Reader, UserModules};

    const MODEL: &str = "import torch.nn as nn\n\nclass GPT(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.lm_head = nn.Linear(2, 2)\n\n    def forward(self, x):\n        return self.lm_head(x)\n\n    def configure(self):\n        pass\n\n    def train(self, mode=True):\n        return self\n\ndef make():\n    return nn.Linear(2, 2)\n";

    struct Files(Vec<(&'static str, &'static str)>);

    impl Reader for Files {
        fn read(&self, path: &Path) -> Option<String> {
            self.0.iter().find(|(p, _)| Path::new(p) == path).map(|(_, t)| t.to_string())
        }
    }

    fn values_of(path: &str, text: &str, files: Vec<(&'static str, &'static str)>) -> (ModuleValues, usize) {
        let offset = text.find("$0").unwrap_or(0);
        let text: Arc<str> = Arc::from(text.replacen("$0", "", 1));
        let tree = parse::parse_str(Language::Python, &text).unwrap();
        let seeds = vec![workspace::Seed { path: PathBuf::from(path), text: text.clone(), tree: tree.clone() }];
        let framework = |root: &str| catalog().knows_python_module(root);
        let set: UserModules = workspace::load(&[PathBuf::from("/w")], &seeds, &framework, &Files(files));
        let values =
            ModuleValues::new(text, tree, &[]).in_workspace(Some(Arc::from(Path::new(path))), Some(Arc::new(set)));
        (values, offset)
    }

    fn member(path: &str, text: &str, files: Vec<(&'static str, &'static str)>) -> Option<String> {
        let (values, offset) = values_of(path, text, files);
        match answer_at(&values, catalog(), offset)? {
            Answer::Member { member, .. } => Some(member.name.to_string()),
            _ => None,
        }
    }

    #[test]
    fn a_class_imported_from_the_workspace_resolves_through_its_bases() {
        let files = || vec![("/w/model.py", MODEL)];
        let member_of = |src: &str| member("/w/train.py", src, files());
        assert_eq!(
            member_of("from model import GPT\nmodel = GPT()\nmodel.parame$0ters()\n").as_deref(),
            Some("torch.nn.Module.parameters")
        );
        // What calling it gives comes from its forward, worked out in model.py.
        assert_eq!(
            member_of("from model import GPT\nmodel = GPT()\nlogits = model(x)\nlogits.soft$0max(-1)\n").as_deref(),
            Some("torch.Tensor.softmax")
        );
        assert_eq!(
            member_of("import model as m\nnet = m.GPT()\nnet.zero_$0grad()\n").as_deref(),
            Some("torch.nn.Module.zero_grad")
        );
        assert_eq!(
            member_of("from model import make\nmake().forw$0ard(x)\n").as_deref(),
            Some("torch.nn.Linear.forward")
        );
        // The user's own methods, and one shadowing a framework name, are never framework members.
        assert_eq!(member_of("from model import GPT\nmodel = GPT()\nmodel.tra$0in()\n"), None);
        assert_eq!(member_of("from model import GPT\nmodel = GPT()\nmodel.confi$0gure()\n"), None);
        // A missing module, or a name it does not define, gives nothing.
        assert_eq!(member_of("from other import GPT\nmodel = GPT()\nmodel.parame$0ters()\n"), None);
        assert_eq!(member_of("from model import Nope\nmodel = Nope()\nmodel.parame$0ters()\n"), None);
    }

    #[test]
    fn relative_imports_and_variable_hovers() {
        let files = vec![("/w/pkg/model.py", MODEL), ("/w/pkg/__init__.py", "")];
        let src = "from .model import GPT\nmodel = GPT()\nmodel.parame$0ters()\n";
        assert_eq!(member("/w/pkg/train.py", src, files.clone()).as_deref(), Some("torch.nn.Module.parameters"));
        let (values, offset) = values_of("/w/pkg/train.py", "from .model import GPT\nmo$0del = GPT()\n", files);
        match answer_at(&values, catalog(), offset) {
            Some(Answer::Variable { value, .. }) => assert_eq!(type_label(&values, &value.ty).as_deref(), Some("GPT")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_type_cut_short_by_the_hop_limit_is_not_remembered_for_shorter_ways_in() {
        // `Tiny` leads train -> pkg -> pkg.tiny -> pkg -> pkg.base, one file past the limit; `Base`
        // reaches pkg.base in two. Asking about `Tiny` first must not leave pkg's `Base` unknown.
        let files = vec![
            ("/w/pkg/__init__.py", "from pkg.base import Base\nfrom pkg.tiny import Tiny\n"),
            ("/w/pkg/base.py", "import torch.nn as nn\n\nclass Base(nn.Module):\n    pass\n"),
            ("/w/pkg/tiny.py", "from pkg import Base\n\nclass Tiny(Base):\n    pass\n"),
        ];
        let src = "from pkg import Base, Tiny\nTiny().zero_grad()\nBase().parameters()\n";
        let (values, _) = values_of("/w/train.py", src, files);
        let member_at = |needle: &str| match answer_at(&values, catalog(), src.find(needle).unwrap()) {
            Some(Answer::Member { member, .. }) => Some(member.name.to_string()),
            _ => None,
        };
        assert_eq!(member_at("zero_grad"), None);
        assert_eq!(member_at("parameters").as_deref(), Some("torch.nn.Module.parameters"));
    }

    #[test]
    fn a_user_base_from_another_file_carries_its_own_names() {
        let files = vec![("/w/model.py", MODEL)];
        let src = "from model import GPT\nclass Tiny(GPT):\n    def go(self):\n        self.tra$0in()\n        self.parameters()\n";
        assert_eq!(member("/w/train.py", src, files.clone()), None);
        let src = "from model import GPT\nclass Tiny(GPT):\n    def go(self):\n        self.parame$0ters()\n";
        assert_eq!(member("/w/train.py", src, files).as_deref(), Some("torch.nn.Module.parameters"));
    }
}

#[test]
fn isinstance_narrows_in_its_branch() {
    let base = "import torch\nfrom torch import nn\n";
    let cases = [
        ("def f(m: nn.Module):\n    if isinstance(m, nn.Linear):\n        $0m\n", Some("torch.nn.Linear")),
        (
            "def f(m: nn.Module):\n    if isinstance(m, nn.Linear) and m.bias is not None:\n        $0m\n",
            Some("torch.nn.Linear"),
        ),
        (
            "def f(m: nn.Module):\n    if x:\n        pass\n    elif isinstance(m, nn.Embedding):\n        $0m\n",
            Some("torch.nn.Embedding"),
        ),
        // Two classes: their union, which we do not name.
        ("def f(m: nn.Module):\n    if isinstance(m, (nn.Linear, nn.Embedding)):\n        $0m\n", None),
        // Outside the branch, and after a new binding, the narrowing is gone.
        ("def f(m: nn.Module):\n    if isinstance(m, nn.Linear):\n        pass\n    $0m\n", Some("torch.nn.Module")),
        (
            "def f(m: nn.Module):\n    if isinstance(m, nn.Linear):\n        m = nn.ReLU()\n        $0m\n",
            Some("torch.nn.ReLU"),
        ),
    ];
    for (tail, expected) in cases {
        assert_eq!(variable_type(&format!("{base}{tail}")).as_deref(), expected, "{tail}");
    }
}

#[test]
fn unannotated_parameters_take_the_type_their_calls_agree_on() {
    let model = "import torch\nfrom torch import nn\n\nclass Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 4)\n\n    def forward(self, x):\n        return x.sof$0tmax(-1)\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.blocks = nn.ModuleList([Block() for _ in range(2)])\n        self.head = Block()\n\n    def forward(self, h):\n        for block in self.blocks:\n            h = block(h)\n        return self.head(h)\n\nnet = Net()\nout = net(torch.randn(2, 4))\n";
    // `x` of Block.forward: Net.forward's `h`, which the module-level call passes a tensor.
    assert_eq!(member_name(model).as_deref(), Some("torch.Tensor.softmax"));
    // A plain function and a method, by position and by keyword.
    let src = "import torch\ndef f(a, b=None):\n    return b.me$0an()\nf(1, b=torch.zeros(3))\nf(2, torch.ones(3))\n";
    assert_eq!(member_name(src).as_deref(), Some("torch.Tensor.mean"));
    let src = "import torch\nclass C:\n    def m(self, t):\n        return t.me$0an()\nC().m(torch.zeros(3))\n";
    assert_eq!(member_name(src).as_deref(), Some("torch.Tensor.mean"));
    // Calls that disagree, a call through *args, no call at all: nothing.
    let src = "import torch\ndef f(a):\n    return a.me$0an()\nf(torch.zeros(3))\nf([1, 2])\n";
    assert_eq!(member_name(src), None);
    let src = "import torch\ndef f(a):\n    return a.me$0an()\nf(torch.zeros(3))\nf(*xs)\n";
    assert_eq!(member_name(src), None);
    assert_eq!(member_name("import torch\ndef f(a):\n    return a.me$0an()\n"), None);
    // Another class's `.m(` and another function's `f(` are not calls of this one.
    let src = "import torch\nclass C:\n    def m(self, t):\n        return t.me$0an()\nclass D:\n    def m(self, t):\n        pass\nD().m(torch.zeros(3))\n";
    assert_eq!(member_name(src), None);
    // The hover says where the type came from.
    let (doc, offset) =
        fixture("t.py", "import torch\ndef f(a):\n    return a$0\nf(torch.zeros(3))\nf(torch.ones(2))\n");
    let values = doc.values().unwrap();
    let Some(Answer::Variable { value, .. }) = answer_at(&values, catalog(), offset) else { panic!("no answer") };
    let origin = value.origin.expect("an origin");
    assert_eq!((origin.line, origin.how, origin.from.as_str()), (3, OriginKind::Callers { more: 1 }, "f(…)"));
}

#[test]
fn a_module_list_built_of_one_class_yields_that_class() {
    let src = "from torch import nn\nclass Block(nn.Module):\n    pass\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.blocks = nn.ModuleList([Block() for _ in range(2)])\n        self.mixed = nn.Sequential(Block(), nn.ReLU())\n    def forward(self, h):\n        for block in self.blocks:\n            blo$0ck\n        for layer in self.mixed:\n            layer\n";
    assert_eq!(variable_type(src).as_deref(), Some("Block"));
    // Two classes in one container: not one type.
    assert_eq!(variable_type(&src.replace("blo$0ck", "block").replace("    layer\n", "    lay$0er\n")), None);
}
