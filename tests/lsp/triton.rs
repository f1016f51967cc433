//! Triton kernels over LSP with the real Triton (installed by `tests/triton/setup` into
//! `.cache/triton/venv`): a lens on each kernel, the analysis per configuration, the cache, and a
//! compile error on the user's line. Skipped, with the reason printed, when Triton is not there.

use serde_json::{json, Value};

use super::client::{find, Client};

fn triton_python() -> Option<std::path::PathBuf> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/triton/venv/bin/python");
    if python.is_file() {
        return Some(python);
    }
    eprintln!("skipped: no Triton at {} (run tests/triton/setup)", python.display());
    None
}

fn fixture(name: &str) -> (String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/triton/fixtures").join(name);
    let path = path.canonicalize().unwrap();
    (format!("file://{}", path.display()), std::fs::read_to_string(&path).unwrap())
}

fn triton_client(python: &std::path::Path) -> Client {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    let capabilities = json!({ "workspace": { "codeLens": { "refreshSupport": true } } });
    Client::spawn_with_options(command, capabilities, None, json!({ "pythonPath": python, "cudaArch": "sm_90" })).0
}

fn lenses(client: &mut Client, uri: &str) -> Vec<Value> {
    let result = client.request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }));
    result.as_array().cloned().unwrap_or_default()
}

fn analyze(client: &mut Client, uri: &str, kernel: &str) -> Value {
    let args = json!({ "uri": uri, "kernel": kernel });
    client.request("workspace/executeCommand", json!({ "command": "tensorlens.analyzeKernel", "arguments": [args] }))
}

#[test]
fn a_triton_kernel_gets_a_lens_its_resources_and_a_cached_second_answer() {
    let Some(python) = triton_python() else { return };
    let mut client = triton_client(&python);
    let (uri, text) = fixture("vector_add.py");
    client.open(&uri, "python", &text);
    let before = lenses(&mut client, &uri);
    let name_line = find(&text, "def add_kernel", 4).0;
    assert!(
        before.iter().any(|l| l["command"]["title"] == "Analyze" && l["range"]["start"]["line"] == name_line),
        "{before:?}"
    );

    let answer = analyze(&mut client, &uri, "add_kernel");
    assert_eq!(answer["name"], "add_kernel", "{answer}");
    let config = &answer["configs"][0];
    // The launch `add_kernel[...](..., BLOCK_SIZE=1024)` gives the config; Triton's defaults the rest.
    assert_eq!(config["constexprs"]["BLOCK_SIZE"], 1024, "{answer}");
    assert_eq!((config["num_warps"].as_u64(), config["num_stages"].as_u64()), (Some(4), Some(3)));
    assert_eq!(config["arch"], "sm_90");
    assert!(config["registers"].as_u64().is_some_and(|r| r > 0 && r <= 255), "{config}");
    assert_eq!((config["spill_stores"].as_u64(), config["spill_loads"].as_u64()), (Some(0), Some(0)));
    assert!(config["occupancy"].as_f64().is_some_and(|o| o > 0.0), "{config}");
    assert!(config["assumed"][0].as_str().unwrap().contains("point to fp32"), "{config}");
    assert_eq!(answer["line"], name_line + 1);

    let after = lenses(&mut client, &uri);
    assert!(after.iter().any(|l| l["command"]["title"].as_str().is_some_and(|t| t.contains("regs"))), "{after:?}");
    let hover = client.hover_text(&uri, name_line, 6);
    assert!(hover.contains("(Triton)") && hover.contains("| config | regs |"), "{hover}");

    let started = std::time::Instant::now();
    let again = analyze(&mut client, &uri, "add_kernel");
    assert_eq!(again["configs"][0]["cached"], true, "{again}");
    assert_eq!(again["configs"][0]["registers"], config["registers"]);
    eprintln!("second analysis over LSP: {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    client.shutdown();
}

#[test]
fn a_triton_compile_error_lands_on_the_users_line() {
    let Some(python) = triton_python() else { return };
    let mut client = triton_client(&python);
    let (uri, text) = fixture("compile_errors.py");
    client.open(&uri, "python", &text);
    let answer = analyze(&mut client, &uri, "bad_dot_kernel");
    assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
    let error_line = find(&text, "c = tl.dot(a, b_t)", 0).0;
    assert_eq!(answer["messages"][0]["line"], error_line + 1, "{answer}");
    let diags = client.wait_for(|n| {
        n["method"] == "textDocument/publishDiagnostics"
            && n["params"]["diagnostics"].as_array().is_some_and(|d| d.iter().any(|d| d["source"] == "triton"))
    });
    let diag =
        diags["params"]["diagnostics"].as_array().unwrap().iter().find(|d| d["source"] == "triton").unwrap().clone();
    assert_eq!(diag["range"]["start"]["line"], error_line, "{diag}");
    assert!(diag["message"].as_str().unwrap().contains("Triton"), "{diag}");
    client.shutdown();
}
