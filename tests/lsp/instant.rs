//! A big file just opened answers at once: the first hover comes from a window of the file while
//! the whole is analysed off the request loop, and says what the full analysis says; requests that
//! need the whole file wait for it; edits made meanwhile are kept.

use serde_json::{json, Value};

use super::client::{find, Client};

/// A training script well above the size that is analysed in the background (64 KiB).
fn big_script() -> String {
    let mut text = String::from("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nfrom torch.utils.data import DataLoader\n\n");
    for i in 0..400 {
        text += &format!(
            "\nclass Block{i}(nn.Module):\n    def __init__(self, dim=64):\n        super().__init__()\n        self.fc = nn.Linear(dim, dim)\n\n    def forward(self, x):\n        return F.gelu(self.fc(x)).view(x.shape[0], -1)\n\n\ndef train{i}(data, lr=3e-4):\n    model = Block{i}()\n    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)\n    for x, y in DataLoader(data, batch_size=8):\n        loss = F.cross_entropy(model(x), y)\n        loss.backward()\n        opt.step()\n"
        );
    }
    text
}

#[test]
fn the_first_hover_on_a_big_file_answers_before_its_analysis_and_the_same() {
    let text = big_script();
    assert!(text.len() > 128 << 10);
    let uri = "file:///tmp/instant/big_train.py";
    let positions = [
        find(&text, "loss.backward()", 6),
        find(&text, "weight_decay=0.01", 2),
        find(&text, "self.fc(x)).view", 13),
        find(&text, "DataLoader(data", 3),
    ];
    let mut first = Vec::new();
    for (line, col) in positions {
        // A fresh server per position, so that each hover is the first after opening.
        let (mut client, _) = Client::start(json!({}), None);
        client.open(uri, "python", &text);
        first.push(client.hover(uri, line, col));
        client.shutdown();
    }
    let (mut client, _) = Client::start(json!({}), None);
    client.open(uri, "python", &text);
    // Diagnostics come once the whole file is analysed; by then hovers answer from it.
    client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri);
    for ((line, col), early) in positions.into_iter().zip(&first) {
        let late = client.hover(uri, line, col);
        assert!(late != Value::Null, "answered at {line}:{col}");
        assert_eq!(early, &late, "the first hover at {line}:{col} says what the full analysis says");
    }
    client.shutdown();
}

#[test]
fn requests_on_a_big_file_wait_for_its_analysis_and_edits_meanwhile_are_kept() {
    let text = big_script();
    let uri = "file:///tmp/instant/edited.py";
    let (mut client, _) = Client::start(json!({}), None);
    client.open(uri, "python", &text);
    // An edit at once, before the analysis can be done: a new line at the top that names torch.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{
            "range": { "start": { "line": 4, "character": 0 }, "end": { "line": 4, "character": 0 } },
            "text": "z = torch.zeros(3)\n" }] }),
    );
    // Completion needs the whole file: it waits, then answers on the edited text.
    let completion = client.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": { "line": 4, "character": 10 } }),
    );
    assert!(completion != Value::Null, "{completion}");
    assert!(client.hover_text(uri, 4, 11).starts_with("**torch.zeros**"));
    let diags = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"] == 2);
    assert_eq!(diags["params"]["uri"], uri);
    let held = client.request("tensorlens/viewFileText", json!({ "uri": uri }));
    assert_eq!(held["text"].as_str().unwrap().lines().nth(4), Some("z = torch.zeros(3)"));
    client.shutdown();
}

#[test]
fn a_burst_of_typing_publishes_its_diagnostics_once_at_the_end() {
    let uri = "file:///tmp/instant/burst.py";
    let text = "import torch\nwith torch.cuda.amp.autocast():\n    pass\n";
    let (mut client, _) = Client::start(json!({}), None);
    client.open(uri, "python", text);
    client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"] == 1);
    // Twenty keystrokes sent without waiting, as a fast typist's editor does.
    for version in 2..=21 {
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{
                "range": { "start": { "line": 2, "character": 8 }, "end": { "line": 2, "character": 8 } },
                "text": "x" }] }),
        );
    }
    let last = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"] == 21);
    let deprecated = last["params"]["diagnostics"].as_array().unwrap();
    assert!(deprecated.iter().any(|d| d["code"] == "deprecated-api"), "{last}");
    let published = client
        .notifications
        .iter()
        .filter(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"].as_i64() > Some(1))
        .count();
    assert!(published <= 5, "{published} publishes for 20 edits");
    client.shutdown();
}

/// After each edit of a big file, the hover sent at once (answered from a window while the file
/// is analysed again off the loop) says what the hover says once that analysis is in: for edits
/// inside a function, to an import the hover depends on, and ones that change which lines are
/// statements (an opened string, a new definition).
#[test]
fn hovers_right_after_edits_of_a_big_file_say_what_the_analysis_then_says() {
    let text = big_script();
    let uri = "file:///tmp/instant/typing.py";
    let (mut client, _) = Client::start(json!({}), None);
    client.open(uri, "python", &text);
    client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri);
    let (backward, _) = find(&text, "loss.backward()", 0);
    let (linear, linear_col) = find(&text, "nn.Linear(dim", 3);
    // (start line, col, end line, col, new text), then the hover position.
    type Edit<'a> = ((u32, u32, u32, u32, &'a str), (u32, u32));
    let edits: Vec<Edit> = vec![
        ((backward, 8, backward, 8, "x"), (backward, 13)),
        ((backward, 8, backward, 9, ""), (backward, 13)),
        ((linear, 8, linear, 8, "w = nn\n        "), (linear + 1, linear_col)),
        ((linear, 8, linear + 1, 8, ""), (linear, linear_col)),
        // The alias the hover needs goes away, then comes back.
        ((1, 21, 1, 21, "x"), (linear, linear_col)),
        ((1, 21, 1, 22, ""), (linear, linear_col)),
        // A string opened at the top level swallows what follows, then is closed again.
        ((4, 0, 4, 0, "s = '''\n"), (linear + 1, linear_col)),
        ((4, 0, 5, 0, ""), (linear, linear_col)),
        // A new definition, then a bracket left open in it.
        ((5, 0, 5, 0, "def helper():\n    return torch.zeros(2)\n"), (6, 18)),
        ((6, 11, 6, 11, "("), (linear + 2, linear_col)),
        ((6, 11, 6, 12, ""), (linear + 2, linear_col)),
    ];
    let mut answered = 0;
    for (version, ((line, col, end_line, end_col, new), (hl, hc))) in (2..).zip(edits) {
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{
                "range": { "start": { "line": line, "character": col }, "end": { "line": end_line, "character": end_col } },
                "text": new }] }),
        );
        let early = client.hover(uri, hl, hc);
        client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"] == version);
        let late = client.hover(uri, hl, hc);
        assert_eq!(early, late, "version {version}: the hover at {hl}:{hc} right after the edit");
        answered += usize::from(late != Value::Null);
    }
    assert!(answered >= 6, "only {answered} of the hovers answered: the comparison must cover real answers");
    client.shutdown();
}

/// A CUDA file well above the size that is analysed in the background: kernels, helpers, a macro
/// and host code that launches them.
fn big_cuda() -> String {
    let mut text = String::from(
        "#include <cuda_runtime.h>\n#define CHECK(call) do { if ((call) != cudaSuccess) exit(1); } while (0)\n",
    );
    for i in 0..300 {
        text += &format!(
            "\n__device__ float warp_sum_{i}(float v) {{\n    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);\n    return v;\n}}\n\n__global__ void scale_{i}(float* x, int n) {{\n    int k = blockIdx.x * blockDim.x + threadIdx.x;\n    if (k < n) x[k] = warp_sum_{i}(x[k]);\n}}\n\nvoid run_{i}(int n) {{\n    float* d;\n    CHECK(cudaMalloc(&d, n * sizeof(float)));\n    scale_{i}<<<(n + 255) / 256, 256>>>(d, n);\n    cudaDeviceSynchronize();\n    cudaFree(d);\n}}\n"
        );
    }
    text
}

#[test]
fn the_first_hover_on_a_big_cuda_file_answers_before_its_analysis_and_the_same() {
    let text = big_cuda();
    assert!(text.len() > 128 << 10);
    let uri = "file:///tmp/instant/big_kernels.cu";
    let positions = [
        find(&text, "cudaFree(d);\n}\n\n__device__ float warp_sum_150", 2),
        find(&text, "scale_150<<<", 3),
        find(&text, "scale_150(float", 3),
        find(&text, "__shfl_down_sync(0xffffffff, v, o);\n    return v;\n}\n\n__global__ void scale_150", 4),
    ];
    let mut first = Vec::new();
    for (line, col) in positions {
        let (mut client, _) = Client::start(json!({}), None);
        client.open(uri, "cuda", &text);
        first.push(client.hover(uri, line, col));
        client.shutdown();
    }
    let (mut client, _) = Client::start(json!({}), None);
    client.open(uri, "cuda", &text);
    client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri);
    for ((line, col), early) in positions.into_iter().zip(&first) {
        let late = client.hover(uri, line, col);
        assert!(late != Value::Null, "answered at {line}:{col}");
        assert_eq!(early, &late, "the first hover at {line}:{col} says what the full analysis says");
    }
    client.shutdown();
}

/// A client that pulls diagnostics gets them when it asks, with a result id; asked again with that
/// id and nothing changed, the answer is `unchanged`; nothing is pushed.
#[test]
fn pulled_diagnostics_answer_unchanged_when_nothing_changed() {
    let capabilities = json!({ "textDocument": { "diagnostic": { "dynamicRegistration": false } } });
    let (mut client, init) = Client::start(capabilities, None);
    assert_eq!(init["capabilities"]["diagnosticProvider"]["interFileDependencies"], false);
    let uri = "file:///tmp/instant/pulled.cu";
    let text = "void f(float* d) {\n  cudaMalloc(&d, 4);\n  int unused = 0;\n}\n";
    client.open(uri, "cuda", text);
    let pull = |client: &mut Client, previous: Value| {
        client
            .request("textDocument/diagnostic", json!({ "textDocument": { "uri": uri }, "previousResultId": previous }))
    };
    let first = pull(&mut client, Value::Null);
    assert_eq!(first["kind"], "full", "{first}");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1), "{first}");
    let id = first["resultId"].clone();
    assert!(id.is_string());
    assert_eq!(pull(&mut client, id.clone())["kind"], "unchanged");
    // An edit below the diagnostic leaves it as it was.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{
            "range": { "start": { "line": 2, "character": 12 }, "end": { "line": 2, "character": 12 } }, "text": "x" }] }),
    );
    assert_eq!(pull(&mut client, id.clone())["kind"], "unchanged");
    // Checking the call takes the diagnostic away.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{
            "range": { "start": { "line": 1, "character": 2 }, "end": { "line": 1, "character": 2 } }, "text": "int e = " }] }),
    );
    let changed = pull(&mut client, id);
    assert_eq!(changed["kind"], "full", "{changed}");
    assert_eq!(changed["items"], json!([]));
    assert!(!client.notifications.iter().any(|n| n["method"] == "textDocument/publishDiagnostics"));
    client.shutdown();
}
