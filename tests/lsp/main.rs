//! End-to-end: the real `tensorlens` binary, spoken to over stdio as an editor would.

mod client;
mod content_trust;
#[path = "../cuda/support.rs"]
mod cuda_support;
mod instant;
mod kernels;
mod triton;
mod trust;
mod values;

use client::{find, fixture, Client};
use serde_json::{json, Value};

fn utf16_client() -> (Client, Value) {
    Client::start(json!({}), None)
}

#[test]
fn negotiates_position_encoding() {
    let (client, init) = Client::start(json!({ "general": { "positionEncodings": ["utf-8", "utf-16"] } }), None);
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    assert_eq!(init["serverInfo"]["name"], "tensorlens");
    client.shutdown();
    let (client, init) = utf16_client();
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-16");
    assert_eq!(init["capabilities"]["textDocumentSync"]["change"], 2, "incremental sync");
    client.shutdown();
}

#[test]
fn columns_follow_the_negotiated_encoding() {
    let line = "s = '张量🔥'; y = torch.ones(1)\n";
    let text = format!("import torch\n{line}");
    let byte_col = line.find("ones").unwrap() as u32;
    let utf16_col = line[..byte_col as usize].encode_utf16().count() as u32;
    assert_ne!(byte_col, utf16_col);

    let (mut client, _) = Client::start(json!({ "general": { "positionEncodings": ["utf-8"] } }), None);
    client.open("file:///tmp/enc.py", "python", &text);
    let hover = client.hover("file:///tmp/enc.py", 1, byte_col + 1);
    assert!(hover["contents"]["value"].as_str().unwrap().starts_with("**torch.ones**"));
    assert_eq!(hover["range"]["start"]["character"], byte_col);
    client.shutdown();

    let (mut client, _) = utf16_client();
    client.open("file:///tmp/enc.py", "python", &text);
    let hover = client.hover("file:///tmp/enc.py", 1, utf16_col + 1);
    assert!(hover["contents"]["value"].as_str().unwrap().starts_with("**torch.ones**"));
    assert_eq!(hover["range"]["start"]["character"], utf16_col);
    client.shutdown();
}

#[test]
fn incremental_edits_update_answers() {
    let (uri, text) = fixture("train.py");
    let (mut client, _) = utf16_client();
    client.open(&uri, "python", &text);
    // Type a new call inside `forward`, in two incremental steps, CRLF and all.
    let (line, _) = find(&text, "        return self.proj(", 0);
    let insert = |client: &mut Client, version: i32, character: u32, new_text: &str| {
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{
                "range": { "start": { "line": line, "character": character }, "end": { "line": line, "character": character } },
                "text": new_text }] }),
        );
    };
    insert(&mut client, 2, 0, "        h = F.layer_no\r\n");
    insert(&mut client, 3, 22, "rm(x, x.shape[-1:])");
    let state = client.request("tensorlens/viewFileText", json!({ "uri": uri }));
    assert!(state["text"]
        .as_str()
        .unwrap()
        .contains("        h = F.layer_norm(x, x.shape[-1:])\r\n        return self.proj("));
    assert!(client.hover_text(&uri, line, 15).starts_with("**torch.nn.functional.layer_norm**"));
    // Renaming the alias breaks the link until the import follows.
    let (import_line, import_col) = find(&text, "as F", 3);
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 4 }, "contentChanges": [{
            "range": { "start": { "line": import_line, "character": import_col }, "end": { "line": import_line, "character": import_col + 1 } },
            "text": "G" }] }),
    );
    assert_eq!(client.hover(&uri, line, 15), Value::Null);
    client.shutdown();
}

#[test]
fn hovers_on_a_training_script() {
    let (uri, text) = fixture("train.py");
    let (mut client, _) = utf16_client();
    client.open(&uri, "python", &text);

    let (line, col) = find(&text, "F.gelu", 3);
    let hover = client.hover_text(&uri, line, col);
    assert!(hover.starts_with("**torch.nn.functional.gelu** · function · PyTorch"), "{hover}");
    assert!(hover.contains("[Documentation](https://"), "{hover}");

    let (line, col) = find(&text, "torch.compile(", 7);
    let hover = client.hover_text(&uri, line, col);
    assert!(hover.starts_with("**torch.compile**"), "{hover}");
    assert!(hover.contains("**Equivalents:**") && hover.contains("jax.jit"), "{hover}");

    let (line, col) = find(&text, "jnp.matmul", 5);
    assert!(client.hover_text(&uri, line, col).starts_with("**jax.numpy.matmul**"));

    // The parameter named torch is not the module.
    let (line, col) = find(&text, "torch.zeros(3)", 7);
    assert_eq!(client.hover(&uri, line, col), Value::Null);
    client.shutdown();
}

#[test]
fn hovers_and_links_in_cuda() {
    let (uri, text) = fixture("gemm.cu");
    let (mut client, _) = utf16_client();
    client.open(&uri, "cuda-cpp", &text);

    let (line, col) = find(&text, "cudaMemcpyAsync", 4);
    let hover = client.hover_text(&uri, line, col);
    assert!(hover.starts_with("**cudaMemcpyAsync** · function · "), "{hover}");
    assert!(hover.contains("```cpp\ncudaError_t cudaMemcpyAsync("), "{hover}");

    let (line, col) = find(&text, "cublasSgemm(", 2);
    assert!(client.hover_text(&uri, line, col).starts_with("**cublasSgemm**"));
    let (line, col) = find(&text, "__shfl_down_sync", 2);
    assert!(client.hover_text(&uri, line, col).starts_with("**__shfl_down_sync**"));
    let (line, col) = find(&text, "sgemm_tiled<<<", 1);
    let hover = client.hover_text(&uri, line, col);
    assert!(
        hover.contains("kernel launch") && hover.contains("- grid: `grid`") && hover.contains("- stream: `stream`"),
        "{hover}"
    );

    let links = client.request("textDocument/documentLink", json!({ "textDocument": { "uri": uri } }));
    let targets: Vec<&str> = links.as_array().unwrap().iter().map(|l| l["target"].as_str().unwrap()).collect();
    assert!(targets.iter().any(|t| t.contains("cublas")), "{targets:?}");
    assert!(targets.iter().all(|t| t.starts_with("https://")));
    let (include_line, _) = find(&text, "<cublas_v2.h>", 0);
    assert!(links.as_array().unwrap().iter().any(|l| l["range"]["start"]["line"] == include_line));
    client.shutdown();
}

#[test]
fn hovers_on_cuda_builtins_in_macros_and_member_functions() {
    let uri = "file:///tmp/warp.cu";
    let text = "#define WARP_BCAST(v) __shfl_sync(0xffffffffu, (v), 0)\n\
                template <typename T> struct Add {\n  __device__ void operator()(T* p, T v) const { atomicAdd(p, v); }\n};\n\
                void host(Barrier& b) { b.__syncthreads(); }\n";
    let (mut client, _) = utf16_client();
    client.open(uri, "cuda-cpp", text);
    let (line, col) = find(text, "__shfl_sync", 2);
    let hover = client.hover_text(uri, line, col);
    assert!(hover.starts_with("**__shfl_sync** · "), "{hover}");
    assert!(hover.contains("https://docs.nvidia.com/"), "{hover}");
    let (line, col) = find(text, "atomicAdd", 2);
    assert!(client.hover_text(uri, line, col).starts_with("**atomicAdd**"));
    // A member of the user's own type is not the built-in.
    let (line, col) = find(text, "__syncthreads", 2);
    assert_eq!(client.hover(uri, line, col), Value::Null);
    client.shutdown();
}

#[test]
fn quick_fix_wraps_an_unchecked_call() {
    let (uri, text) = fixture("gemm.cu");
    let (mut client, _) = utf16_client();
    client.open(&uri, "cuda-cpp", &text);
    let diags = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri);
    let unchecked: Vec<&Value> =
        diags["params"]["diagnostics"].as_array().unwrap().iter().filter(|d| d["code"] == "unchecked-status").collect();
    assert!(unchecked.len() >= 8, "{unchecked:#?}");

    let (line, col) = find(&text, "cudaStreamCreate(&stream)", 3);
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": line, "character": col }, "end": { "line": line, "character": col } },
                "context": { "diagnostics": [] } }),
    );
    let fix = actions.as_array().unwrap().iter().find(|a| a["kind"] == "quickfix").expect("a quick fix").clone();
    assert_eq!(fix["title"], "Check the cudaError_t of cudaStreamCreate with CUDA_CHECK");
    let edits = fix["edit"]["changes"][&uri].as_array().unwrap().clone();
    let fixed = apply_edits(&text, &edits);
    assert!(fixed.contains("    CUDA_CHECK(cudaStreamCreate(&stream));\n"), "{fixed}");
    assert!(fixed.contains("#define CUDA_CHECK(call)"));
    // The fixed file, sent back, no longer has that diagnostic.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": fixed }] }),
    );
    let diags = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"] == 2);
    let remaining: Vec<&str> = diags["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "unchecked-status")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(remaining.len(), unchecked.len() - 1, "{remaining:?}");
    assert!(!remaining.iter().any(|m| m.contains("cudaStreamCreate")), "{remaining:?}");
    client.shutdown();
}

#[test]
fn deprecation_fix_and_open_docs_action() {
    let (uri, text) = fixture("train.py");
    let (mut client, _) = utf16_client();
    client.open(&uri, "python", &text);
    let (line, col) = find(&text, "torch.cuda.amp.autocast", 16);
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": line, "character": col }, "end": { "line": line, "character": col } },
                "context": { "diagnostics": [] } }),
    );
    let actions = actions.as_array().unwrap();
    let fix = actions.iter().find(|a| a["kind"] == "quickfix").expect("deprecation fix");
    let fixed = apply_edits(&text, fix["edit"]["changes"][&uri].as_array().unwrap());
    // The new API takes the device first; the old name's call must not survive as a bare rename.
    assert!(fixed.contains("with torch.amp.autocast(\"cuda\", dtype=torch.float16, cache_enabled=True):"), "{fixed}");
    assert!(!fixed.contains("torch.cuda.amp.autocast"), "{fixed}");
    let docs =
        actions.iter().find(|a| a["title"] == "Open documentation for torch.cuda.amp.autocast").expect("docs action");
    let command = docs["command"].clone();
    let res = client.request(
        "workspace/executeCommand",
        json!({ "command": command["command"], "arguments": command["arguments"] }),
    );
    assert_eq!(res["shown"], true);
    let shown = client.wait_for(|n| n["method"] == "window/showDocument");
    assert_eq!(shown["params"]["external"], true);
    assert!(shown["params"]["uri"].as_str().unwrap().starts_with("https://"));
    client.shutdown();
}

/// The code actions at `needle` (plus `delta` columns) of a document just opened.
fn actions_at(client: &mut Client, uri: &str, text: &str, needle: &str, delta: u32) -> Vec<Value> {
    let (line, col) = find(text, needle, delta);
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": line, "character": col }, "end": { "line": line, "character": col } },
                "context": { "diagnostics": [] } }),
    );
    actions.as_array().cloned().unwrap_or_default()
}

#[test]
fn deprecation_fixes_follow_aliases_and_context_managers() {
    let uri = "file:///tmp/fixes/amp.py";
    let text = "from torch.cuda.amp import autocast\n\n\ndef step(model, x):\n    with autocast(dtype=model.dtype, cache_enabled=False):\n        return model(x)\n";
    let (mut client, _) = utf16_client();
    client.open(uri, "python", text);
    let actions = actions_at(&mut client, uri, text, "autocast(dtype", 2);
    let fix = actions.iter().find(|a| a["kind"] == "quickfix").expect("a rewrite of the call");
    assert_eq!(fix["isPreferred"], true, "{fix}");
    let fixed = apply_edits(text, fix["edit"]["changes"][uri].as_array().unwrap());
    assert_eq!(
        fixed,
        "import torch.amp\n\n\ndef step(model, x):\n    with torch.amp.autocast(\"cuda\", dtype=model.dtype, cache_enabled=False):\n        return model(x)\n"
    );
    client.shutdown();
}

#[test]
fn a_call_the_fix_cannot_map_gets_no_fix_and_the_exact_message() {
    let uri = "file:///tmp/fixes/gpu.py";
    let text = "import tensorflow as tf\n\nhas_cuda = tf.test.is_gpu_available(cuda_only=True)\nhas_any = tf.test.is_gpu_available()\n";
    let (mut client, _) = utf16_client();
    client.open(uri, "python", text);
    let published = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri);
    let messages: Vec<&str> = published["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "deprecated-api")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains(
            "No automatic fix for this call: the argument cuda_only=True has no counterpart in the rewrite; write it as len(tensorflow.config.list_physical_devices(\"GPU\")) > 0 by hand."
        ),
        "{}",
        messages[0]
    );
    assert!(messages[1].ends_with("Use len(tf.config.list_physical_devices(\"GPU\")) > 0."), "{}", messages[1]);
    let actions = actions_at(&mut client, uri, text, "is_gpu_available(cuda_only", 2);
    assert!(!actions.iter().any(|a| a["kind"] == "quickfix"), "{actions:?}");
    // The call without arguments has a rewrite, not preferred: hidden GPUs count for one and not the other.
    let actions = actions_at(&mut client, uri, text, "is_gpu_available()", 2);
    let fix = actions.iter().find(|a| a["kind"] == "quickfix").expect("a rewrite");
    assert_eq!(fix["isPreferred"], false, "{fix}");
    let fixed = apply_edits(text, fix["edit"]["changes"][uri].as_array().unwrap());
    assert!(fixed.ends_with("has_any = len(tf.config.list_physical_devices(\"GPU\")) > 0\n"), "{fixed}");
    client.shutdown();
}

#[test]
fn a_replacement_that_is_not_a_substitute_gets_only_a_message() {
    let uri = "file:///tmp/fixes/ctx.cu";
    let text = "#include <cuda.h>\nvoid f(CUcontext* ctx) {\n  CUresult r = cuCtxAttach(ctx, 0);\n}\n";
    let (mut client, _) = utf16_client();
    client.open(uri, "cuda", text);
    let published = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri);
    let diagnostics = published["params"]["diagnostics"].as_array().unwrap();
    let deprecated = diagnostics.iter().find(|d| d["code"] == "deprecated-api").expect("a deprecation");
    assert!(
        deprecated["message"]
            .as_str()
            .unwrap()
            .ends_with("No automatic fix: cuDevicePrimaryCtxRetain is not a drop-in substitute."),
        "{deprecated}"
    );
    let actions = actions_at(&mut client, uri, text, "cuCtxAttach", 2);
    assert!(!actions.iter().any(|a| a["kind"] == "quickfix"), "{actions:?}");
    client.shutdown();
}

#[test]
fn workspace_symbol_searches_the_catalog() {
    let (mut client, _) = utf16_client();
    let res = client.request("workspace/symbol", json!({ "query": "matmul" }));
    let names: Vec<&str> = res.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    for want in ["torch.matmul", "jax.numpy.matmul", "tensorflow.linalg.matmul", "mlx.core.matmul"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("cublas")), "{names:?}");
    let entries = client.request("tensorlens/searchCatalog", json!({ "query": "softmax", "limit": 5 }));
    assert_eq!(entries.as_array().unwrap().len(), 5);
    assert!(entries[0]["summary"].as_str().is_some_and(|s| !s.is_empty()));
    client.shutdown();
}

#[test]
fn notebook_cells_see_imports_from_other_cells() {
    let (mut client, _) = utf16_client();
    let cell0 = "vscode-notebook-cell:/home/u/exp.ipynb#W0sZmlsZQ%3D%3D";
    let cell1 = "vscode-notebook-cell:/home/u/exp.ipynb#W1sZmlsZQ%3D%3D";
    client.open(cell0, "python", "import torch\nimport torch.nn.functional as F\n");
    client.open(cell1, "python", "x = torch.randn(4, 8)\ny = F.softmax(x, dim=-1)\n");
    assert!(client.hover_text(cell1, 1, 7).starts_with("**torch.nn.functional.softmax**"));
    assert!(client.hover_text(cell0, 0, 9).starts_with("**PyTorch**"));
    client.shutdown();
}

#[test]
fn a_thousand_rapid_edits_stay_in_order() {
    let (mut client, _) = Client::start(json!({ "general": { "positionEncodings": ["utf-16"] } }), None);
    let uri = "file:///tmp/burst.py";
    let mut text = String::from("import torch\r\n# 张量 🔥\n");
    client.open(uri, "python", &text);
    // A deterministic mix of inserts and deletes, with multi-byte text and CRLF, sent without waiting.
    let pieces = ["x", "张", "🔥", "\r\n", "torch.", "é", "\n", "(", ")"];
    let mut seed: u64 = 0x5eed;
    for version in 2..1002 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Character boundaries, except inside "\r\n", which LSP positions cannot address.
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .filter(|&i| !(text[..i].ends_with('\r') && text[i..].starts_with('\n')))
            .collect();
        let a = boundaries[(seed >> 33) as usize % boundaries.len()];
        let b = boundaries[(seed >> 17) as usize % boundaries.len()];
        let (start, end) = (a.min(b), a.max(b).min(a.min(b) + 6));
        let end = *boundaries.iter().find(|&&x| x >= end).unwrap();
        let insert = if seed % 3 == 0 { "" } else { pieces[(seed >> 7) as usize % pieces.len()] };
        let (sl, sc) = utf16_pos(&text, start);
        let (el, ec) = utf16_pos(&text, end);
        text.replace_range(start..end, insert);
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version },
                    "contentChanges": [{ "range": { "start": { "line": sl, "character": sc }, "end": { "line": el, "character": ec } }, "text": insert }] }),
        );
    }
    let state = client.request("tensorlens/viewFileText", json!({ "uri": uri }));
    assert_eq!(state["version"], 1001);
    assert_eq!(state["text"].as_str().unwrap(), text);
    client.shutdown();
}

#[test]
fn bad_input_gets_empty_answers_not_crashes() {
    let (mut client, _) = utf16_client();
    let uri = "file:///tmp/bad.py";
    client.open(uri, "python", "import torch\ntorch.zeros(1)\n");
    // Positions past the end.
    assert_eq!(client.hover(uri, 99, 0), Value::Null);
    assert!(client.hover_text(uri, 1, 999).is_empty());
    // An inverted range.
    let res = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": 1, "character": 9 }, "end": { "line": 1, "character": 0 } }, "context": { "diagnostics": [] } }),
    );
    assert!(res.as_array().unwrap().iter().any(|a| a["title"] == "Open documentation for torch.zeros"));
    // Edits and requests for documents that were never opened.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": "file:///nope.py", "version": 3 }, "contentChanges": [{ "text": "x" }] }),
    );
    assert_eq!(client.hover("file:///nope.py", 0, 0), Value::Null);
    // Unknown schemes and languages are held but not analysed.
    client.open("zzz-scheme:/weird/thing.txt", "plaintext", "torch.zeros(1)");
    assert_eq!(client.hover("zzz-scheme:/weird/thing.txt", 0, 7), Value::Null);
    // An unknown command is an error answer, not a crash.
    let res = client.request_raw("workspace/executeCommand", json!({ "command": "tensorlens.nope", "arguments": [] }));
    assert!(res["error"]["message"].as_str().unwrap().contains("unknown command"));
    // A minified one-line file and deeply nested code.
    let minified = format!("import torch;{}", "x=torch.ones(1);".repeat(50_000));
    client.open("file:///tmp/min.py", "python", &minified);
    assert!(client.hover_text("file:///tmp/min.py", 0, 13 + 16 * 40_000 + 9).starts_with("**torch.ones**"));
    let nested = format!("import torch\nx = {}torch.ones(1){}\n", "(".repeat(5_000), ")".repeat(5_000));
    client.open("file:///tmp/nested.py", "python", &nested);
    client.hover("file:///tmp/nested.py", 1, 5_000 + 4 + 7);
    let nested_c = format!("void f() {{ {} cudaFree(0); {} }}\n", "{".repeat(3_000), "}".repeat(3_000));
    client.open("file:///tmp/nested.cu", "cuda-cpp", &nested_c);
    client.hover("file:///tmp/nested.cu", 0, 3_000 + 12);
    // A 10 MB file: held, not analysed, and the server keeps answering.
    let big = "import torch\n".to_string() + &"y = torch.ones(1)\n".repeat(600_000);
    client.open("file:///tmp/big.py", "python", &big);
    assert_eq!(client.hover("file:///tmp/big.py", 1, 11), Value::Null);
    assert!(client.hover_text(uri, 1, 8).starts_with("**torch.zeros**"), "still answering after the big file");
    client.shutdown();
}

#[test]
fn a_panicking_feature_costs_one_answer_and_tells_the_user_once() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve").env("TENSORLENS_FAULT", "hover,analysis");
    let (mut client, _) = Client::spawn(command, json!({}), None);
    // Analysis panics on open: the document keeps its text, the server keeps serving.
    let uri = "file:///tmp/fault.py";
    let text = "import torch\ntorch.zeros(1)\n";
    client.open(uri, "python", text);
    let held = client.request("tensorlens/viewFileText", json!({ "uri": uri }));
    assert_eq!(held["text"], text, "{held}");
    // Hover panics: each hover is an internal error naming the feature, not a lost request.
    for _ in 0..2 {
        let answer = client.request_raw(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 1, "character": 8 } }),
        );
        let message = answer["error"]["message"].as_str().unwrap_or_else(|| panic!("not an error: {answer}"));
        assert!(message.starts_with("hover failed: fault injected at hover"), "{message}");
        assert_eq!(answer["error"]["code"], -32603, "{answer}");
    }
    // Other features still answer.
    let found = client.request("workspace/symbol", json!({ "query": "matmul" }));
    assert!(found.as_array().is_some_and(|a| !a.is_empty()), "{found}");
    let shown: Vec<String> = client
        .notifications
        .iter()
        .filter(|n| n["method"] == "window/showMessage")
        .map(|n| n["params"]["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(shown.iter().filter(|m| m.contains("hover failed")).count(), 1, "{shown:?}");
    assert_eq!(shown.iter().filter(|m| m.contains("analysing a document failed")).count(), 1, "{shown:?}");
    // An edit (whose analysis panics again) is still applied to the text.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": "import jax\n" }] }),
    );
    let held = client.request("tensorlens/viewFileText", json!({ "uri": uri }));
    assert_eq!((held["text"].as_str(), held["version"].as_i64()), (Some("import jax\n"), Some(2)), "{held}");
    client.shutdown();
}

#[test]
fn changes_that_make_no_sense_are_refused_and_the_document_kept() {
    let (mut client, _) = utf16_client();
    let uri = "file:///tmp/refused.py";
    let text = "import torch\ntorch.zeros(1)\n";
    client.open(uri, "python", text);
    let change = |client: &mut Client, version: i32, changes: Value| {
        client.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": changes }),
        );
    };
    let range = |sl: u32, sc: u32, el: u32, ec: u32| json!({ "start": { "line": sl, "character": sc }, "end": { "line": el, "character": ec } });
    // An end before its start (applied with its ends swapped, it would delete most of the file).
    change(&mut client, 2, json!([{ "range": range(1, 9, 0, 3), "text": "" }]));
    // A line past the end, after a valid change in the same batch: none of the batch applies.
    change(
        &mut client,
        3,
        json!([{ "range": range(0, 0, 0, 0), "text": "#" }, { "range": range(9, 0, 9, 1), "text": "x" }]),
    );
    // A version going backwards, and a document that is not open.
    change(&mut client, 0, json!([{ "text": "gone" }]));
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": "file:///tmp/never-opened.py", "version": 5 }, "contentChanges": [{ "text": "x" }] }),
    );
    let state = client.request("tensorlens/viewFileText", json!({ "uri": uri }));
    assert_eq!(state["text"].as_str().unwrap(), text);
    assert_eq!(state["version"], 1);
    assert!(client.hover_text(uri, 1, 8).starts_with("**torch.zeros**"), "alive and answering on the same text");
    // The client's next sync is applied as usual.
    change(&mut client, 4, json!([{ "range": range(1, 6, 1, 11), "text": "ones" }]));
    let state = client.request("tensorlens/viewFileText", json!({ "uri": uri }));
    assert_eq!(state["text"].as_str().unwrap(), "import torch\ntorch.ones(1)\n");
    client.shutdown();
}

#[test]
fn an_empty_message_does_not_hold_back_the_ones_behind_it() {
    // Found by the fuzz: tower-lsp-server read `Content-Length: 0` as "no message yet" and left the
    // messages already read after it waiting for the client's next write, which never came.
    let (mut client, _) = utf16_client();
    let request =
        json!({ "jsonrpc": "2.0", "id": "after-empty", "method": "workspace/symbol", "params": { "query": "matmul" } });
    let body = request.to_string();
    client.send_raw(format!("Content-Length: 0\r\n\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    let answer = client.wait_for(|m| m["id"] == "after-empty");
    assert!(answer["result"].as_array().is_some_and(|symbols| !symbols.is_empty()), "{answer}");
    client.shutdown();
}

#[test]
fn dollar_requests_are_answered_and_dollar_notifications_ignored() {
    // Found by the fuzz: a `$/` request (one with an id) was never answered.
    let (mut client, _) = utf16_client();
    let res = client.request_raw("$/someExtension", json!({}));
    assert_eq!(res["error"]["code"], -32601, "{res}");
    client.notify("$/someExtension", json!({}));
    client.open("file:///tmp/dollar.py", "python", "import torch\ntorch.zeros(1)\n");
    assert!(client.hover_text("file:///tmp/dollar.py", 1, 8).starts_with("**torch.zeros**"));
    assert!(
        !client.notifications.iter().any(|m| m.get("id").is_some() && m.get("method").is_none()),
        "no stray answers"
    );
    client.shutdown();
}

#[test]
fn user_catalog_files_extend_and_report() {
    let root = std::env::temp_dir().join(format!("tensorlens-ws-{}", std::process::id()));
    let dir = root.join(".tensorlens/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ourlib.toml"),
        "[system]\nid = \"ourlib\"\nname = \"OurLib\"\ngroup = \"research\"\nmaintainer = \"the team\"\nsummary = \"Our in-house kernels.\"\ndocs = \"https://intranet.example.com/ourlib\"\npython_modules = [\"ourlib\"]\n\n[[symbols]]\nname = \"ourlib.fused_adam\"\nkind = \"function\"\nsignature = \"fused_adam(params, lr)\"\nsummary = \"Our fused Adam step.\"\ndocs = \"https://intranet.example.com/ourlib/fused_adam\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("broken.toml"), "[system\nid = \"x\"\n").unwrap();
    let (mut client, _) = Client::start(json!({}), Some(&root));
    let broken_uri = format!("file://{}", dir.join("broken.toml").display());
    let diags =
        client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == broken_uri);
    assert_eq!(diags["params"]["diagnostics"][0]["severity"], 1);
    let uri = format!("file://{}/use.py", root.display());
    client.open(&uri, "python", "import ourlib\nourlib.fused_adam(p, 1e-3)\nimport torch\ntorch.ones(1)\n");
    assert!(client.hover_text(&uri, 1, 9).starts_with("**ourlib.fused_adam**"));
    assert!(client.hover_text(&uri, 3, 7).starts_with("**torch.ones**"), "built-in catalog still there");
    client.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn catalog_paths_from_settings_and_watched_files_reload() {
    let root = std::env::temp_dir().join(format!("tensorlens-watch-{}", std::process::id()));
    let team = root.join("team-catalog");
    std::fs::create_dir_all(&team).unwrap();
    let card = |id: &str, module: &str, symbol: &str| {
        format!(
            "[system]\nid = \"{id}\"\nname = \"{id}\"\ngroup = \"research\"\nmaintainer = \"us\"\nsummary = \"In-house.\"\ndocs = \"https://example.com\"\npython_modules = [\"{module}\"]\n\n[[symbols]]\nname = \"{module}.{symbol}\"\nkind = \"function\"\nsummary = \"Ours.\"\ndocs = \"https://example.com/{symbol}\"\n"
        )
    };
    std::fs::write(team.join("teamlib.toml"), card("teamlib", "teamlib", "train")).unwrap();
    let capabilities = json!({ "workspace": { "didChangeWatchedFiles": { "dynamicRegistration": true } } });
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    let (mut client, _) =
        Client::spawn_with_options(command, capabilities, Some(&root), json!({ "catalogPaths": [team] }));
    let registration = client.wait_for(|n| n["method"] == "client/registerCapability");
    assert_eq!(registration["params"]["registrations"][0]["method"], "workspace/didChangeWatchedFiles");
    let uri = format!("file://{}/use.py", root.display());
    client.open(&uri, "python", "import teamlib, newlib\nteamlib.train()\nnewlib.evaluate()\n");
    // User catalogs load in the background after `initialized`: wait until the hover shows it.
    assert!(eventually(|| client.hover_text(&uri, 1, 10).starts_with("**teamlib.train**")));
    assert_eq!(client.hover(&uri, 2, 9), Value::Null);

    // A new file appears in the workspace catalog folder: the watcher reports it, the server reloads.
    let dir = root.join(".tensorlens/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("newlib.toml"), card("newlib", "newlib", "evaluate")).unwrap();
    let changed = format!("file://{}", dir.join("newlib.toml").display());
    client.notify("workspace/didChangeWatchedFiles", json!({ "changes": [{ "uri": changed, "type": 1 }] }));
    assert!(eventually(|| client.hover_text(&uri, 2, 9).starts_with("**newlib.evaluate**")));
    client.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn hovers_racing_catalog_reloads_always_answer_from_one_catalog() {
    // Each version of the user catalog puts a different number of symbols before `mylib.alpha`,
    // so a document recognized against one version and looked up in another would show a pad's
    // summary (or fail); every answer must be alpha's, of some version.
    let root = std::env::temp_dir().join(format!("tensorlens-race-{}", std::process::id()));
    let dir = root.join(".tensorlens/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    let version = |n: usize| {
        let mut toml = String::from(
            "[system]\nid = \"mylib\"\nname = \"My lib\"\ngroup = \"research\"\nmaintainer = \"us\"\nsummary = \"In-house.\"\ndocs = \"https://example.com\"\npython_modules = [\"mylib\"]\n",
        );
        for i in 0..(n * 7) % 11 {
            toml += &format!("\n[[symbols]]\nname = \"mylib.pad{i}\"\nkind = \"function\"\nsummary = \"Pad {i}.\"\ndocs = \"https://example.com/p\"\n");
        }
        toml += &format!("\n[[symbols]]\nname = \"mylib.alpha\"\nkind = \"function\"\nsummary = \"Alpha version {n}.\"\ndocs = \"https://example.com/a\"\n");
        toml
    };
    let file = dir.join("mylib.toml");
    std::fs::write(&file, version(0)).unwrap();
    let capabilities = json!({ "workspace": { "didChangeWatchedFiles": { "dynamicRegistration": true } } });
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    let (mut client, _) = Client::spawn_with_options(command, capabilities, Some(&root), json!({}));
    let uri = format!("file://{}/use.py", root.display());
    client.open(&uri, "python", "import mylib\nmylib.alpha()\nmylib.alpha(1)\n");
    assert!(eventually(|| client.hover_text(&uri, 1, 8).contains("Alpha version 0.")));
    let changed = format!("file://{}", file.display());
    let mut seen = std::collections::BTreeSet::new();
    for n in 1..=30 {
        // Written whole and renamed into place: a reader must not see half a file, which would be
        // a catalog without mylib (consistent, but not what this test is about).
        std::fs::write(dir.join("next.tmp"), version(n)).unwrap();
        std::fs::rename(dir.join("next.tmp"), &file).unwrap();
        client.notify("workspace/didChangeWatchedFiles", json!({ "changes": [{ "uri": changed, "type": 2 }] }));
        let ids: Vec<i64> = (0..6)
            .map(|k| {
                let params =
                    json!({ "textDocument": { "uri": uri }, "position": { "line": 1 + k % 2, "character": 8 } });
                client.send_request("textDocument/hover", params)
            })
            .collect();
        for id in ids {
            let answer = client.response_to(id);
            let text = answer["result"]["contents"]["value"].as_str().unwrap_or_else(|| panic!("no hover: {answer}"));
            assert!(text.starts_with("**mylib.alpha**") && !text.contains("Pad "), "{text}");
            let shown = text.split("Alpha version ").nth(1).and_then(|rest| rest.split('.').next()).unwrap();
            seen.insert(shown.parse::<usize>().unwrap());
        }
    }
    assert!(eventually(|| client.hover_text(&uri, 1, 8).contains("Alpha version 30.")));
    assert!(seen.len() > 1, "the hovers never saw a reload: {seen:?}");
    client.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn catalog_file_problems_land_on_their_line() {
    let root = std::env::temp_dir().join(format!("tensorlens-live-{}", std::process::id()));
    let dir = root.join(".tensorlens/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    let (mut client, _) = Client::start(json!({}), Some(&root));
    let uri = format!("file://{}", dir.join("mine.toml").display());
    let text = "[system]\nid = \"mine\"\nname = \"Mine\"\ngroup = \"research\"\nmaintainer = \"me\"\nsummary = \"Mine.\"\ndocs = \"https://example.com\"\n\n[[symbols]]\nname = \"mine.f\"\nkind = \"gizmo\"\nsummary = \"F.\"\ndocs = \"https://example.com/f\"\n";
    client.open(&uri, "toml", text);
    let diags = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri);
    let first = &diags["params"]["diagnostics"][0];
    assert!(first["message"].as_str().unwrap().contains("gizmo"), "{first}");
    assert_eq!(first["range"]["start"]["line"], 10, "the line of kind = \"gizmo\"");
    // A TOML syntax error, typed: reported where it is.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": "[system]\nid = \n" }] }),
    );
    let diags = client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["version"] == 2);
    assert_eq!(diags["params"]["diagnostics"][0]["range"]["start"]["line"], 1);
    client.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
}

/// Polls a condition that becomes true once background work finishes; false after the time-out.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + client::TIMEOUT;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

fn utf16_pos(text: &str, byte: usize) -> (u32, u32) {
    let before = &text[..byte];
    // LSP lines end at \n, \r\n or \r.
    let mut line = 0u32;
    let mut line_start = 0usize;
    let bytes = before.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line += 1;
            line_start = i + 1;
        }
        i += 1;
    }
    // Callers never pass an offset between \r and \n, which no LSP position can name.
    let col = text[line_start..byte].encode_utf16().count() as u32;
    (line, col)
}

fn apply_edits(text: &str, edits: &[Value]) -> String {
    let offset = |pos: &Value| -> usize {
        let (line, character) = (pos["line"].as_u64().unwrap() as usize, pos["character"].as_u64().unwrap() as usize);
        let line_start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        let mut units = 0;
        for (i, c) in text[line_start..].char_indices() {
            if units >= character || c == '\n' {
                return line_start + i;
            }
            units += c.len_utf16();
        }
        text.len()
    };
    let mut edits: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| (offset(&e["range"]["start"]), offset(&e["range"]["end"]), e["newText"].as_str().unwrap().to_string()))
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, new_text) in edits {
        out.replace_range(start..end, &new_text);
    }
    out
}
