//! Shapes on small sources: `$0` marks the name asked about (its assignment or its use).

use super::*;
use crate::ide::test_support::{catalog, fixture};

fn shape(text: &str) -> Option<String> {
    let (doc, offset) = fixture("t.py", text);
    let values = doc.values()?;
    shape_at(&values, catalog(), offset)
}

const GPT: &str = "import torch
import torch.nn as nn
import torch.nn.functional as F

class Attention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor):
        B, T, C = x.size()
        qkv = self.c_attn(x)
        q = x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = q @ q.transpose(-2, -1)
        att = F.softmax(att, dim=-1)
        y = att @ q
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)
";

#[test]
fn creation_ops_and_literal_sizes() {
    let src = "import torch\nx$0 = torch.randn(8, 16, 32)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[8, 16, 32]"));
    assert_eq!(shape("import torch\nx$0 = torch.zeros((4, 5))\n").as_deref(), Some("Tensor[4, 5]"));
    assert_eq!(shape("import torch\nx$0 = torch.ones(size=[2, 3])\n").as_deref(), Some("Tensor[2, 3]"));
    assert_eq!(shape("import torch\nB = 4\nx$0 = torch.zeros(B, 2 * B)\n").as_deref(), Some("Tensor[4, 8]"));
    // A bare name passed alone may hold a tuple: not read as one size.
    assert_eq!(shape("import torch\ndef f(s):\n    x$0 = torch.zeros(s)\n"), None);
    // Two names: each must be an int, named as the code names them.
    assert_eq!(shape("import torch\ndef f(b, t):\n    x$0 = torch.zeros(b, t)\n").as_deref(), Some("Tensor[b, t]"));
}

#[test]
fn views_transposes_reductions_and_matmul() {
    let src =
        "import torch\nx = torch.randn(4, 8, 64)\nB, T, C = x.size()\nq$0 = x.view(B, T, 4, C // 4).transpose(1, 2)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 4, 8, 16]"));
    let src = "import torch\ndef f(n_head):\n    x = torch.randn(4, 8, 64)\n    y$0 = x.view(4, 8, n_head, -1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 8, n_head, 64 // n_head]"));
    let src = "import torch\nx = torch.randn(4, 8, 64)\nw = torch.randn(64, 10)\ny$0 = (x @ w).sum(-1, keepdim=True)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 8, 1]"));
    let src = "import torch\nx = torch.randn(4, 8, 64)\ny$0 = x.mean(dim=1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 64]"));
    let src = "import torch\nx = torch.randn(4, 8, 64)\ny$0 = x.flatten(1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 512]"));
    let src = "import torch\nx = torch.randn(4, 8)\ny$0 = x.unsqueeze(0).permute(2, 0, 1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[8, 1, 4]"));
    let src = "import torch\nx = torch.randn(4, 1, 8)\ny$0 = torch.cat([x, x * 2], dim=1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 2, 8]"));
    let src = "import torch\nx = torch.randn(4, 8)\ny$0 = torch.stack([x, x], dim=-1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 8, 2]"));
    let src = "import torch\nx = torch.randn(4, 8, 3)\ny$0 = x[:, -1, None, 1:]\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 1, 2]"));
    let src = "import torch\nx = torch.randn(4, 8, 3)\ny$0 = x[..., 0] + torch.ones(8)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 8]"));
}

#[test]
fn modules_map_their_input_by_their_constructor() {
    let src = "import torch\nimport torch.nn as nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(64, 10)\n        self.emb = nn.Embedding(100, 32)\n    def go(self):\n        x = torch.randn(4, 64)\n        y$0 = torch.relu(self.fc(x))\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 10]"));
    let src =
        "import torch\nimport torch.nn as nn\nemb = nn.Embedding(100, 32)\nidx = torch.zeros(4, 7)\nh$0 = emb(idx)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 7, 32]"));
}

#[test]
fn unknown_or_ambiguous_gives_nothing() {
    // Bindings that disagree.
    let src = "import torch\nif c:\n    x = torch.zeros(2)\nelse:\n    x = torch.zeros(3)\ny$0 = x\n";
    assert_eq!(shape(src), None);
    // A loop that rebinds the name around its use.
    let src = "import torch\nx = torch.zeros(1, 2)\nfor _ in range(3):\n    x$0 = torch.cat([x, x], dim=0)\n";
    assert_eq!(shape(src), None);
    // A user's own `view`.
    let src = "class T:\n    def view(self, *a):\n        return self\nt = T()\nx$0 = t.view(2, 3)\n";
    assert_eq!(shape(src), None);
    // Shapes that cannot combine.
    let src = "import torch\na = torch.zeros(2, 3)\nb = torch.zeros(4, 5)\nc$0 = a @ b\n";
    assert_eq!(shape(src), None);
    let src = "import torch\na = torch.zeros(2, 3)\nb$0 = a.view(4, -1)\n";
    assert_eq!(shape(src), None);
    // Constructing a module is not a tensor.
    let src = "import torch.nn as nn\nimport torch\nx = torch.zeros(2)\nact$0 = nn.ReLU(x)\n";
    assert_eq!(shape(src), None);
}

#[test]
fn hints_label_tensor_assignments_in_range() {
    let src = "import torch\nx = torch.randn(2, 3)\ny = x.T\nn = 3\nz: torch.Tensor = x\n";
    let (doc, _) = fixture("t.py", src);
    let values = doc.values().unwrap();
    let got: Vec<(usize, String)> =
        hints(&values, catalog(), 0..src.len()).into_iter().map(|h| (h.offset, h.label)).collect();
    let after = |needle: &str| src.find(needle).unwrap() + 1;
    assert_eq!(got, vec![(after("x ="), "Tensor[2, 3]".into()), (after("y ="), "Tensor[3, 2]".into())]);
    // Only the assignments that start in the range.
    let start = src.find("y =").unwrap();
    assert_eq!(hints(&values, catalog(), start..src.len()).len(), 1);
}

#[test]
fn a_parameter_unpacked_by_its_size_is_shaped_by_those_names() {
    let at = |target: &str| {
        let marked = GPT.replacen(&format!("        {target} ="), &format!("        {target}$0 ="), 1);
        shape(&marked)
    };
    // The Linear's size is written in `__init__`, where `n_embd` is: here it is the module's own.
    assert_eq!(at("qkv").as_deref(), Some("Tensor[B, T, self.c_attn.out_features]"));
    assert_eq!(at("q").as_deref(), Some("Tensor[B, self.n_head, T, C // self.n_head]"));
    assert_eq!(at("att").as_deref(), Some("Tensor[B, self.n_head, T, T]"));
    assert_eq!(at("y").as_deref(), Some("Tensor[B, self.n_head, T, C // self.n_head]"));
    // A name bound again between the unpacking and the use: its size is no longer `T`.
    let src = "import torch\ndef f(x: torch.Tensor):\n    B, T = x.shape\n    T = 3\n    y$0 = x.transpose(0, 1)\n";
    assert_eq!(shape(src), None);
    // An unpacking inside a branch does not hold after it.
    let src =
        "import torch\ndef f(x: torch.Tensor, c):\n    if c:\n        B, T = x.shape\n    y$0 = x.transpose(0, 1)\n";
    assert_eq!(shape(src), None);
    let src = "import torch\ndef f(x: torch.Tensor):\n    _, T = x.shape\n    y$0 = x.transpose(0, 1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[T, _]"));
    // Without a type, `x.size()` may be anyone's method: no shape.
    let src = "def f(x):\n    B, T = x.size()\n    y$0 = x.transpose(0, 1)\n";
    assert_eq!(shape(src), None);
}

#[test]
fn convolutions_pooling_sequential_and_creation() {
    let net = "import torch\nimport torch.nn as nn\nx = torch.randn(8, 3, 32, 32)\n";
    let at = |line: &str| shape(&format!("{net}{line}\n"));
    assert_eq!(at("y$0 = nn.Conv2d(3, 16, kernel_size=5, padding=2)(x)").as_deref(), Some("Tensor[8, 16, 32, 32]"));
    assert_eq!(at("y$0 = nn.Conv2d(3, 16, 3, stride=2)(x)").as_deref(), Some("Tensor[8, 16, 15, 15]"));
    assert_eq!(at("y$0 = nn.Conv2d(3, 4, (3, 5), padding=(1, 2))(x)").as_deref(), Some("Tensor[8, 4, 32, 32]"));
    assert_eq!(at("y$0 = nn.Conv2d(3, 4, 3, padding='same')(x)").as_deref(), Some("Tensor[8, 4, 32, 32]"));
    assert_eq!(at("y$0 = nn.MaxPool2d(2)(x)").as_deref(), Some("Tensor[8, 3, 16, 16]"));
    assert_eq!(at("y$0 = nn.AvgPool2d(3, stride=1, padding=1)(x)").as_deref(), Some("Tensor[8, 3, 32, 32]"));
    assert_eq!(at("y$0 = nn.AdaptiveAvgPool2d((1, 1))(x)").as_deref(), Some("Tensor[8, 3, 1, 1]"));
    assert_eq!(at("y$0 = nn.Flatten()(x)").as_deref(), Some("Tensor[8, 3072]"));
    let seq = "f = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2048, 10))\ny$0 = f(x)";
    assert_eq!(at(seq).as_deref(), Some("Tensor[8, 10]"));
    // A symbolic length: the short form.
    let src = "import torch.nn as nn\nimport torch\ndef f(x: torch.Tensor):\n    N, C, L = x.shape\n    y$0 = nn.Conv1d(C, 8, 3)(x)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[N, 8, L - 2]"));
    // Input of the wrong rank for the module: nothing.
    assert_eq!(
        shape("import torch\nimport torch.nn as nn\nx = torch.randn(3, 4)\ny$0 = nn.Conv2d(3, 4, 3)(x)\n"),
        None
    );
    // Creation with the sizes last, ranges, attention, losses.
    assert_eq!(shape("import torch\nx$0 = torch.randint(0, 10, (4, 16))\n").as_deref(), Some("Tensor[4, 16]"));
    assert_eq!(shape("import torch\nx$0 = torch.arange(2, 10, 3)\n").as_deref(), Some("Tensor[3]"));
    assert_eq!(shape("import torch\ndef f(t):\n    x$0 = torch.arange(0, t)\n").as_deref(), Some("Tensor[t]"));
    let src = "import torch\nimport torch.nn.functional as F\nq = torch.randn(2, 4, 8, 16)\nv = torch.randn(2, 4, 5, 32)\nk = torch.randn(2, 4, 5, 16)\ny$0 = F.scaled_dot_product_attention(q, k, v)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[2, 4, 8, 32]"));
    let src = "import torch\nimport torch.nn.functional as F\nx = torch.randn(8, 10)\nt = torch.randint(0, 10, (8,))\nl$0 = F.cross_entropy(x, t)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[]"));
    assert_eq!(shape(&src.replace("(x, t)", "(x, t, reduction='none')")), None);
}

#[test]
fn pieces_of_split_and_chunk_unpacked() {
    let src = "import torch\nx = torch.randn(4, 8, 96)\nq, k, v$0 = x.split(32, dim=2)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 8, 32]"));
    // Not a multiple: the last piece has what is left.
    let src = "import torch\nx = torch.randn(4, 10)\na, b$0 = x.split(6, dim=1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 4]"));
    let src = "import torch\nx = torch.randn(4, 10)\na$0, b = x.chunk(2, dim=-1)\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[4, 5]"));
    // Chunks of a size they do not divide: unknown.
    assert_eq!(shape("import torch\nx = torch.randn(4, 10)\na$0, b, c = x.chunk(3, dim=-1)\n"), None);
    // Each target its own piece, in the hints too.
    let src = "import torch\nx = torch.randn(6)\na, b = x.split([2, 4])\n";
    let (doc, _) = fixture("t.py", src);
    let values = doc.values().unwrap();
    let labels: Vec<String> = hints(&values, catalog(), 0..src.len()).into_iter().map(|h| h.label).collect();
    assert_eq!(labels, vec!["Tensor[6]", "Tensor[2]", "Tensor[4]"]);
}

#[test]
fn parameters_shaped_by_the_calls_that_agree() {
    let src = "import torch\ndef f(x):\n    y$0 = x.transpose(0, 1)\n    return y\nf(torch.zeros(2, 3))\nf(torch.ones(2, 3))\n";
    assert_eq!(shape(src).as_deref(), Some("Tensor[3, 2]"));
    assert_eq!(shape(&src.replace("torch.ones(2, 3)", "torch.ones(3, 3)")), None);
}

const CONV: &str = "import torch
import torch.nn as nn
from dataclasses import dataclass

@dataclass
class Cfg:
    width: int = 8
    classes: int = 10

class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        y = self.conv(x)
        return self.pool(y)

class Net(nn.Module):
    def __init__(self, cfg, depth=2):
        super().__init__()
        self.first = Block(3, cfg.width)
        self.second = Block(cfg.width, 2 * cfg.width)
        self.blocks = nn.ModuleList([nn.Identity() for _ in range(depth)])
        self.fc = nn.Linear(2 * cfg.width, cfg.classes)

    def forward(self, images):
        x = self.first(images)
        x = self.second(x)
        for block in self.blocks:
            x = block(x)
        pooled = x.mean(dim=(2, 3))
        return self.fc(x.flatten(2).mean(-1)), x

cfg = Cfg()
net = Net(cfg)
images = torch.randn(4, 3, 16, 16)
logits, features = net(images)
";

#[test]
fn a_user_module_called_on_a_known_input_gives_its_forward_for_that_input() {
    // Each block by its own construction: `Block(3, 8)` and `Block(8, 16)`.
    let src = CONV.replacen("x = self.first(images)", "first$0 = self.first(images)", 1);
    assert_eq!(shape(&src).as_deref(), Some("Tensor[4, 8, 8, 8]"));
    let src = CONV.replacen("x = self.second(x)", "x = self.second(x)\n        second$0 = x", 1);
    assert_eq!(shape(&src).as_deref(), Some("Tensor[4, 16, 4, 4]"));
    // A loop whose body gives the shape back keeps it.
    let src = CONV.replacen("        pooled =", "        after$0 = x\n        pooled =", 1);
    assert_eq!(shape(&src).as_deref(), Some("Tensor[4, 16, 4, 4]"));
    // A dataclass config's defaults, the tuple a module returns, unpacked.
    let src = CONV.replacen("logits, features = net(images)", "logits$0, features = net(images)", 1);
    assert_eq!(shape(&src).as_deref(), Some("Tensor[4, 10]"));
    let src = CONV.replacen("logits, features = net(images)", "logits, features$0 = net(images)", 1);
    assert_eq!(shape(&src).as_deref(), Some("Tensor[4, 16, 4, 4]"));
    // The block's own `y`: it runs on two shapes, so it has none.
    let src = CONV.replacen("y = self.conv(x)", "y$0 = self.conv(x)", 1);
    assert_eq!(shape(&src), None);
    // A construction overriding the default; a loop that changes the shape: nothing for it.
    let src = CONV.replacen("cfg = Cfg()", "cfg = Cfg(classes=3)", 1).replacen(
        "logits, features = net(images)",
        "logits$0, features = net(images)",
        1,
    );
    assert_eq!(shape(&src).as_deref(), Some("Tensor[4, 3]"));
    let src = CONV.replacen("nn.Identity() for", "nn.MaxPool2d(2) for", 1).replacen(
        "        pooled =",
        "        after$0 = x\n        pooled =",
        1,
    );
    assert_eq!(shape(&src), None);
}
