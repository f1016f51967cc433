//! Values over LSP: methods, attributes and keyword arguments reached through values, on a real
//! binary, with the negative cases (unknown receivers, a user class's own `view`, rebinding).

use serde_json::{json, Value};

use super::client::{find, Client};

fn open_fixture() -> (Client, String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/values/train.py");
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let uri = format!("file://{}", path.canonicalize().unwrap().display());
    let (mut client, _) = Client::start(json!({}), None);
    client.open(&uri, "python", &text);
    (client, uri, text)
}

/// The hover's first line at `needle` + `delta` characters.
fn first_line(client: &mut Client, uri: &str, text: &str, needle: &str, delta: u32) -> String {
    let (line, col) = find(text, needle, delta);
    client.hover_text(uri, line, col).lines().next().unwrap_or("").to_string()
}

#[test]
fn methods_on_values() {
    let (mut client, uri, text) = open_fixture();
    let cases = [
        ("data.view(-1)", 6, "**torch.Tensor.view** · method · PyTorch"),
        ("contiguous()", 2, "**torch.Tensor.contiguous** · method · PyTorch"),
        ("loss.backward()", 6, "**torch.Tensor.backward** · method · PyTorch"),
        ("logits.softmax", 8, "**torch.Tensor.softmax** · method · PyTorch"),
        ("model.parameters(), lr", 7, "**torch.nn.Module.parameters** · method · PyTorch"),
        ("model.train()", 7, "**torch.nn.Module.train** · method · PyTorch"),
        ("optimizer.zero_grad", 11, "**torch.optim.Optimizer.zero_grad** · method · PyTorch"),
        // AdamW derives from Adam, which defines `step`, in torch 2.x.
        ("optimizer.step", 11, "**torch.optim.Adam.step** · method · PyTorch"),
        ("self.register_buffer", 6, "**torch.nn.Module.register_buffer** · method · PyTorch"),
        ("p.grad", 3, "**torch.Tensor.grad** · attribute · PyTorch"),
        ("super().__init__", 9, "**torch.nn.Module** · class · PyTorch"),
    ];
    for (needle, delta, expected) in cases {
        let got = first_line(&mut client, &uri, &text, needle, delta);
        assert_eq!(got, expected, "at {needle:?}");
    }
    // The hover says where the receiver's type came from.
    let (line, col) = find(&text, "data.view(-1)", 6);
    let hover = client.hover_text(&uri, line, col);
    assert!(hover.contains("`data`: torch.Tensor, from `torch.randn(…)` at line 28"), "{hover}");
    client.shutdown();
}

#[test]
fn attributes_variables_and_keywords() {
    let (mut client, uri, text) = open_fixture();
    let got = first_line(&mut client, &uri, &text, "self.fc1(x", 6);
    assert_eq!(got, "**fc1** · attribute · torch.nn.Linear");
    let (line, col) = find(&text, "self.fc1(x", 6);
    let hover = client.hover_text(&uri, line, col);
    assert!(hover.contains("from `nn.Linear(…)` at line 11"), "{hover}");

    let got = first_line(&mut client, &uri, &text, "logits = model(xb)", 2);
    assert_eq!(got, "**logits** · variable · torch.Tensor");
    let got = first_line(&mut client, &uri, &text, "lr=1e-3", 1);
    assert_eq!(got, "**lr** · parameter of torch.optim.AdamW");
    let (line, col) = find(&text, "lr=1e-3", 1);
    let hover = client.hover_text(&uri, line, col);
    // The parameter as the package declares it, and our words on it.
    assert!(hover.contains("lr: float | Tensor = 1e-3"), "{hover}");
    assert!(hover.contains("Learning rate"), "{hover}");
    let got = first_line(&mut client, &uri, &text, "batch_size=32", 3);
    assert_eq!(got, "**batch_size** · parameter of torch.utils.data.DataLoader");
    client.shutdown();
}

#[test]
fn unknown_receivers_shadowing_and_rebinding_get_no_answer() {
    let (mut client, uri, text) = open_fixture();
    for (needle, delta) in [("s.view(3)", 3), ("unknown.view(3)", 9), ("data.view(3)", 6), ("xb)", 0)] {
        let (line, col) = find(&text, needle, delta);
        assert_eq!(client.hover(&uri, line, col), Value::Null, "at {needle:?}");
    }
    client.shutdown();
}

#[test]
fn member_completion_and_signature_help() {
    let (mut client, uri, text) = open_fixture();
    let (line, col) = find(&text, "data.view(-1)", 5);
    let res = client.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": col } }),
    );
    let items = res["items"].as_array().cloned().unwrap_or_default();
    let labels: Vec<&str> = items.iter().filter_map(|i| i["label"].as_str()).collect();
    assert!(labels.contains(&"view") && labels.contains(&"softmax"), "{res}");

    let (line, col) = find(&text, "weight_decay=0.01", 13);
    let res = client.request(
        "textDocument/signatureHelp",
        json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": col } }),
    );
    let signature = &res["signatures"][0];
    assert!(signature["label"].as_str().unwrap_or("").starts_with("torch.optim.AdamW("), "{res}");
    let active = res["activeParameter"].as_u64().expect("an active parameter") as usize;
    let offsets = &signature["parameters"][active]["label"];
    let label = signature["label"].as_str().unwrap();
    let (a, b) = (offsets[0].as_u64().unwrap() as usize, offsets[1].as_u64().unwrap() as usize);
    assert_eq!(&label[a..b], "weight_decay");
    client.shutdown();
}

/// Polls a hover until its first line satisfies `done` (the workspace modules load off the request
/// loop, after `didOpen` or a file change).
fn wait_for_hover(client: &mut Client, uri: &str, at: (u32, u32), done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let first = client.hover_text(uri, at.0, at.1).lines().next().unwrap_or("").to_string();
        if done(&first) || std::time::Instant::now() > deadline {
            return first;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn reading_the_workspace_modules_shows_progress_and_answers_are_complete_when_it_ends() {
    let dir = std::env::temp_dir().join(format!("tensorlens-progress-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("pkg/__init__.py"), "from pkg.base import Base\n").unwrap();
    std::fs::write(dir.join("pkg/base.py"), "import torch.nn as nn\n\nclass Base(nn.Module):\n    pass\n").unwrap();
    let train = "from pkg import Base\n\nnet = Base()\nnet.zero_grad()\n";
    let train_path = dir.join("train.py");
    std::fs::write(&train_path, train).unwrap();
    let uri = format!("file://{}", train_path.display());
    let (mut client, _) = Client::start(json!({ "window": { "workDoneProgress": true } }), Some(&dir));
    client.open(&uri, "python", train);
    let modules = |m: &Value, kind: &str| {
        m["method"] == "$/progress"
            && m["params"]["token"].as_str().is_some_and(|t| t.starts_with("tensorlens/modules/"))
            && m["params"]["value"]["kind"] == kind
    };
    let begin = client.wait_for(|m| modules(m, "begin"));
    assert_eq!(begin["params"]["value"]["title"], "Reading workspace modules");
    let end = client.wait_for(|m| modules(m, "end"));
    // The two files of the package (the open file is the editor's).
    assert_eq!(end["params"]["value"]["message"], "2 files read", "{end}");
    let (line, col) = find(train, "net.zero_grad", 5);
    assert_eq!(
        client.hover_text(&uri, line, col).lines().next(),
        Some("**torch.nn.Module.zero_grad** · method · PyTorch")
    );
    client.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn classes_from_the_users_other_modules_and_their_changes_on_disk() {
    let dir = std::env::temp_dir().join(format!("tensorlens-workspace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = "import torch.nn as nn\n\nclass GPT(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.head = nn.Linear(4, 4)\n\n    def forward(self, x):\n        return self.head(x)\n\n    def configure(self):\n        return None\n";
    std::fs::write(dir.join("model.py"), model).unwrap();
    let train = "from model import GPT\n\nmodel = GPT()\nmodel.parameters()\nmodel.configure()\nout = model(x)\nout.softmax(-1)\n";
    let train_path = dir.join("train.py");
    std::fs::write(&train_path, train).unwrap();
    let uri = format!("file://{}", train_path.display());
    let (mut client, _) = Client::start(json!({}), Some(&dir));
    client.open(&uri, "python", train);

    let parameters = find(train, "model.parameters", 7);
    let first = wait_for_hover(&mut client, &uri, parameters, |l| l.contains("torch.nn.Module.parameters"));
    assert_eq!(first, "**torch.nn.Module.parameters** · method · PyTorch");
    let (line, col) = find(train, "out.softmax", 5);
    assert_eq!(client.hover_text(&uri, line, col).lines().next(), Some("**torch.Tensor.softmax** · method · PyTorch"));
    // The user's own method is not a framework member.
    let (line, col) = find(train, "model.configure", 7);
    assert_eq!(client.hover(&uri, line, col), Value::Null);

    // model.py changes on disk: GPT no longer derives from nn.Module, and the answer goes.
    std::fs::write(dir.join("model.py"), "class GPT:\n    def parameters(self):\n        return []\n").unwrap();
    let changed = format!("file://{}", dir.join("model.py").display());
    client.notify("workspace/didChangeWatchedFiles", json!({ "changes": [{ "uri": changed, "type": 2 }] }));
    let first = wait_for_hover(&mut client, &uri, parameters, |l| l.is_empty());
    assert_eq!(first, "", "after the change, `parameters` is the user's own");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flax_and_optax_values_and_keywords() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/values/flax_train.py");
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let uri = format!("file://{}", path.canonicalize().unwrap().display());
    let (mut client, _) = Client::start(json!({}), None);
    client.open(&uri, "python", &text);
    let cases = [
        // A Linen layer called on its input gives what its __call__ says: a jax.Array.
        ("x.reshape", 2, "**jax.Array.reshape** · method · JAX"),
        ("nn.relu", 3, "**jax.nn.relu** · function · JAX"),
        ("nn.initializers.lecun_normal", 16, "**jax.nn.initializers.lecun_normal** · function · JAX"),
        ("nn.compact", 3, "**flax.linen.compact** · decorator · Flax"),
        ("model.init(", 6, "**flax.linen.Module.init** · method · Flax"),
        ("tx.init(", 3, "**optax.GradientTransformation.init** · method · Optax"),
        ("TrainState.create", 11, "**flax.training.train_state.TrainState.create** · method · Flax"),
        ("state.apply_gradients", 6, "**flax.training.train_state.TrainState.apply_gradients** · method · Flax"),
        ("features=self", 0, "**features** · parameter of flax.linen.Dense"),
        // Conv's fields are declared on its private base; the parameter is Conv's all the same.
        ("kernel_size=", 0, "**kernel_size** · parameter of flax.linen.Conv"),
        ("weight_decay=", 0, "**weight_decay** · parameter of optax.adamw"),
    ];
    for (needle, delta, expected) in cases {
        let got = first_line(&mut client, &uri, &text, needle, delta);
        assert_eq!(got, expected, "at {needle:?}");
    }
    let (line, col) = find(&text, "features=self", 0);
    let hover = client.hover_text(&uri, line, col);
    assert!(hover.contains("Width of the output's last axis."), "our words on the parameter: {hover}");
    // The layer's own user class has no catalog `hidden`: nothing is said.
    let (line, col) = find(&text, "self.hidden", 5);
    assert!(!client.hover_text(&uri, line, col).contains("parameter of"), "a user field is not a framework symbol");
    client.shutdown();
}

#[test]
fn shapes_as_inlay_hints_and_in_hovers_and_off_with_the_setting() {
    let src = "import torch\nimport torch.nn as nn\n\nfc = nn.Linear(64, 10)\nx = torch.randn(4, 8, 64)\nB, T, C = x.size()\nh = x.view(B, T, 4, C // 4).transpose(1, 2)\ny = fc(x).softmax(-1)\nn = 3\n";
    let uri = "file:///tmp/tensorlens-shapes/model.py";
    let (mut client, init) = Client::start(json!({}), None);
    assert_eq!(init["capabilities"]["inlayHintProvider"], true, "{init}");
    client.open(uri, "python", src);
    let whole = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 9, "character": 0 } });
    let hints = client.request("textDocument/inlayHint", json!({ "textDocument": { "uri": uri }, "range": whole }));
    let got: Vec<(u64, u64, String)> = hints
        .as_array()
        .expect("hints")
        .iter()
        .map(|h| {
            let p = &h["position"];
            (p["line"].as_u64().unwrap(), p["character"].as_u64().unwrap(), h["label"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (4, 1, ": Tensor[4, 8, 64]".to_string()),
            (6, 1, ": Tensor[4, 4, 8, 16]".to_string()),
            (7, 1, ": Tensor[4, 8, 10]".to_string()),
        ]
    );
    // Only the lines asked for.
    let line7 = json!({ "start": { "line": 7, "character": 0 }, "end": { "line": 8, "character": 0 } });
    let hints = client.request("textDocument/inlayHint", json!({ "textDocument": { "uri": uri }, "range": line7 }));
    assert_eq!(hints.as_array().map(Vec::len), Some(1), "{hints}");
    let (line, col) = find(src, "y = fc", 0);
    let hover = client.hover_text(uri, line, col);
    assert!(hover.contains("shape `Tensor[4, 8, 10]`"), "{hover}");
    client.shutdown();

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    let (mut client, _) = Client::spawn_with_options(command, json!({}), None, json!({ "shapeHints": false }));
    client.open(uri, "python", src);
    let hints = client.request("textDocument/inlayHint", json!({ "textDocument": { "uri": uri }, "range": whole }));
    assert_eq!(hints, Value::Null);
    client.shutdown();
}

/// The small CNN of tests/shapes/models (our own code, which tests/shapes/trace.py runs for real):
/// module calls worked out for their inputs, over LSP; an unannotated parameter's hover says which
/// call it took its type from.
#[test]
fn shapes_through_the_users_own_modules_and_parameters_typed_by_their_calls() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/shapes/models/small_cnn.py"))
        .expect("the model file");
    let uri = "file:///tmp/tensorlens-shapes/small_cnn.py";
    let (mut client, _) = Client::start(json!({}), None);
    client.open(uri, "python", &src);
    let lines = src.lines().count();
    let whole = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": lines, "character": 0 } });
    let hints = client.request("textDocument/inlayHint", json!({ "textDocument": { "uri": uri }, "range": whole }));
    let got: Vec<(String, String)> = hints
        .as_array()
        .expect("hints")
        .iter()
        .map(|h| {
            let line = src.lines().nth(h["position"]["line"].as_u64().unwrap() as usize).unwrap();
            let target = line.trim().split(" =").next().unwrap().to_string();
            (target, h["label"].as_str().unwrap().to_string())
        })
        .collect();
    let want = [
        ("x", ": Tensor[8, 16, 32, 32]"),
        ("x", ": Tensor[8, 32, 16, 16]"),
        ("x", ": Tensor[8, 64, 8, 8]"),
        ("x", ": Tensor[8, 64, 1, 1]"),
        ("flat", ": Tensor[8, 64]"),
        ("batch", ": Tensor[8, 3, 32, 32]"),
        ("scores", ": Tensor[8, 10]"),
        ("labels", ": Tensor[8]"),
        ("loss", ": Tensor[]"),
        ("best", ": Tensor[8]"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, want);
    // `images` has no annotation: its one call, `net(batch)`, passes a tensor.
    let (line, col) = find(&src, "self.stem(images)", "self.stem(".len() as u32);
    let hover = client.hover_text(uri, line, col);
    assert!(hover.contains("passed by `net(…)` at line 44"), "{hover}");
    client.shutdown();
}
