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
    // NVRTC and its toolkit too, as a user of both has: the SASS comes from its newer nvdisasm.
    let settings = json!({ "pythonPath": python, "cudaArch": "sm_90", "nvrtcPath": super::cuda_support::toolkit() });
    Client::spawn_with_options(command, capabilities, None, settings).0
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

fn show_ir(client: &mut Client, uri: &str, kernel: &str, ir: &str, config: Option<u64>) -> Value {
    let args = json!({ "uri": uri, "kernel": kernel, "ir": ir, "config": config });
    client.request("workspace/executeCommand", json!({ "command": "tensorlens.showIr", "arguments": [args] }))
}

#[test]
fn every_ir_of_a_triton_kernel_opens_per_configuration() {
    let Some(python) = triton_python() else { return };
    let mut client = triton_client(&python);
    let (uri, text) = fixture("matmul.py");
    client.open(&uri, "python", &text);
    // What each form must hold to be the real thing, not a placeholder.
    for (ir, language, marks) in [
        ("ttir", "mlir", &["tt.func", "tt.dot"][..]),
        ("ttgir", "mlir", &["#ttg.", "ttg.local_alloc"][..]),
        ("llir", "llvm", &["define ", "matmul_kernel"][..]),
        ("ptx", "ptx", &[".entry matmul_kernel", "mma"][..]),
        ("sass", "sass", &["EXIT", "//## File"][..]),
    ] {
        let answer = show_ir(&mut client, &uri, "matmul_kernel", ir, Some(2));
        assert_eq!(answer["languageId"], language, "{ir}: {answer}");
        let body = answer["text"].as_str().unwrap_or_default();
        for mark in marks {
            assert!(body.contains(mark), "{ir} lacks {mark}: {}", &body[..body.len().min(400)]);
        }
        assert_eq!(answer["config"], "BLOCK_M=128 BLOCK_N=64 BLOCK_K=32 GROUP_M=4 num_warps=4 num_stages=2");
        assert_eq!(answer["configs"].as_array().map(Vec::len), Some(3), "{answer}");
        // The same text in a file an editor can open.
        let file = answer["uri"].as_str().unwrap().strip_prefix("file://").unwrap().to_string();
        assert_eq!(std::fs::read_to_string(file).unwrap(), body);
    }
    // The SASS names the user's lines: the tl.dot line is among them.
    let sass = show_ir(&mut client, &uri, "matmul_kernel", "sass", None);
    let dot_line = find(&text, "acc = tl.dot(a, b, acc)", 0).0 + 1;
    let path = uri.strip_prefix("file://").unwrap();
    assert!(sass["text"].as_str().unwrap().contains(&format!("File \"{path}\", line {dot_line}")), "{dot_line}");

    // Bad requests get clear answers, not a panic or a silent default.
    let beyond = show_ir(&mut client, &uri, "matmul_kernel", "ttgir", Some(7));
    assert!(beyond["error"].as_str().unwrap().contains("no configuration 7: the kernel has 3"), "{beyond}");
    let args = json!({ "uri": uri, "kernel": "matmul_kernel", "ir": "cubin" });
    let bad =
        client.request_raw("workspace/executeCommand", json!({ "command": "tensorlens.showIr", "arguments": [args] }));
    assert!(bad["error"]["message"].as_str().unwrap().contains("unknown variant `cubin`"), "{bad}");
    client.shutdown();
}

#[test]
fn the_lines_a_triton_kernel_spills_on_become_hints() {
    let Some(python) = triton_python() else { return };
    let mut client = triton_client(&python);
    let (uri, text) = fixture("spills.py");
    client.open(&uri, "python", &text);
    let answer = analyze(&mut client, &uri, "big_tile_kernel");
    assert!(answer["configs"][0]["spill_stores"].as_u64().unwrap() > 0, "{answer}");
    // The hints come after the answer, from the SASS of the config that spills.
    let published = client.wait_for(|n| {
        n["method"] == "textDocument/publishDiagnostics"
            && n["params"]["diagnostics"].as_array().is_some_and(|d| d.iter().any(|d| d["source"] == "tensorlens"))
    });
    let hints: Vec<&Value> =
        published["params"]["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "tensorlens").collect();
    assert!(hints.iter().all(|d| d["severity"] == 4), "hints, not warnings: {hints:?}");
    let (first, last) = (find(&text, "def big_tile_kernel", 0).0, find(&text, "tl.store(out_ptr", 0).0);
    let in_kernel = |d: &&Value| {
        let line = d["range"]["start"]["line"].as_u64().unwrap() as u32;
        (first..=last).contains(&line)
    };
    assert!(hints.iter().all(in_kernel), "{hints:?}");
    let spilling: Vec<&&Value> =
        hints.iter().filter(|d| d["message"].as_str().unwrap().contains("registers spilled to local memory")).collect();
    assert!(!spilling.is_empty(), "{hints:?}");
    assert!(spilling[0]["message"].as_str().unwrap().contains("ROWS=64 COLS=64 num_warps=1"), "{spilling:?}");
    client.shutdown();
}

#[test]
fn a_triton_compile_can_be_cancelled_and_the_next_one_runs() {
    let Some(python) = triton_python() else { return };
    let mut client = triton_client(&python);
    let (uri, text) = fixture("matmul.py");
    client.open(&uri, "python", &text);
    let args =
        json!({ "command": "tensorlens.analyzeKernel", "arguments": [{ "uri": uri, "kernel": "matmul_kernel" }] });
    let started = std::time::Instant::now();
    let cancelled = client.send_request("workspace/executeCommand", args.clone());
    std::thread::sleep(std::time::Duration::from_millis(300));
    client.notify("$/cancelRequest", json!({ "id": cancelled }));
    let response = client.response_to(cancelled);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    eprintln!("cancelled after {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    // The worker was stopped mid-compile; the next request starts a fresh one and answers.
    let answer = client.request("workspace/executeCommand", args);
    assert_eq!(answer["configs"].as_array().map(Vec::len), Some(3), "{answer}");
    client.shutdown();
}

#[test]
fn helpers_imported_from_other_files_of_the_package_compile_with_the_kernel() {
    let Some(python) = triton_python() else { return };
    let mut client = triton_client(&python);
    let (uri, text) = fixture("imported/fused_mlp.py");
    client.open(&uri, "python", &text);
    let answer = analyze(&mut client, &uri, "gated_act_kernel");
    // activations.py, which imports numerics.py in turn: three files in one compile.
    assert!(answer.get("error").is_none(), "{answer}");
    let config = &answer["configs"][0];
    assert!(config["registers"].as_u64().unwrap() > 0, "{answer}");
    assert_eq!(config["constexprs"]["USE_GELU"], true);

    // The same kernel beside no helper module: the compile fails on the call, and the hover says
    // which import was not found.
    let dir = std::env::temp_dir().join(format!("tensorlens-lonely-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lonely = dir.join("fused_mlp.py");
    std::fs::write(&lonely, &text).unwrap();
    let lonely_uri = format!("file://{}", lonely.display());
    client.open(&lonely_uri, "python", &text);
    let failed = analyze(&mut client, &lonely_uri, "gated_act_kernel");
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("gelu_tanh")), "{failed}");
    assert!(failed["markdown"].as_str().unwrap().contains("which was not found beside it"), "{failed}");
    let _ = std::fs::remove_dir_all(&dir);
    client.shutdown();
}
