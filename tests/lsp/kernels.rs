//! Kernel analysis over LSP with the real NVRTC and ptxas: lenses, the commands, progress,
//! diagnostics that clear when fixed, hovers, cancellation, and clear messages when something is
//! missing.

use serde_json::{json, Value};

use super::client::{find, fixture, Client};
use super::cuda_support::toolkit;

/// A client that takes lens refreshes and progress, with NVRTC from the test toolkit.
fn kernel_client() -> (Client, Value) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    let capabilities =
        json!({ "workspace": { "codeLens": { "refreshSupport": true } }, "window": { "workDoneProgress": true } });
    Client::spawn_with_options(command, capabilities, None, json!({ "nvrtcPath": toolkit() }))
}

fn lenses(client: &mut Client, uri: &str) -> Vec<Value> {
    let result = client.request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }));
    result.as_array().cloned().unwrap_or_default()
}

fn analyze(client: &mut Client, args: Value) -> Value {
    client
        .request_raw("workspace/executeCommand", json!({ "command": "tensorlens.analyzeKernel", "arguments": [args] }))
}

fn nvrtc_diagnostics(params: &Value) -> Vec<Value> {
    params["diagnostics"].as_array().into_iter().flatten().filter(|d| d["source"] == "nvrtc").cloned().collect()
}

#[test]
fn lens_command_progress_and_hover_for_a_kernel() {
    let (uri, text) = fixture("kernels/matmul.cu");
    let (mut client, init) = kernel_client();
    assert_eq!(init["capabilities"]["codeLensProvider"]["resolveProvider"], true);
    let commands = init["capabilities"]["executeCommandProvider"]["commands"].as_array().unwrap();
    assert!(commands.contains(&json!("tensorlens.analyzeKernel")) && commands.contains(&json!("tensorlens.showPtx")));
    client.open(&uri, "cuda-cpp", &text);

    let (name_line, name_col) = find(&text, "matmul_tiled(", 0);
    let before = lenses(&mut client, &uri);
    let titles: Vec<&str> = before.iter().map(|l| l["command"]["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Analyze", "Time"], "{before:?}");
    assert_eq!(before[0]["range"]["start"]["line"], name_line);

    // A cursor anywhere in the body picks the kernel.
    let (body_line, _) = find(&text, "float acc = 0.0f;", 0);
    let response = analyze(&mut client, json!({ "uri": uri, "position": { "line": body_line, "character": 4 } }));
    let result = &response["result"];
    assert_eq!(result["name"], "matmul_tiled", "{response}");
    assert!(result["registers"].as_u64().unwrap() > 0);
    assert_eq!(result["shared_bytes"], 2048, "two 16x16 float tiles");
    assert_eq!((result["block_size"].as_u64(), result["block_size_source"].as_str()), (Some(256), Some("launch")));
    let summary = result["summary"].as_str().unwrap().to_string();
    assert!(summary.starts_with("sm_90 · ") && summary.contains("regs") && summary.contains("occupancy"), "{summary}");
    assert_eq!(result["cached"], false);

    // Progress began and ended; the client was asked to refresh its lenses.
    client.wait_for(|m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "begin");
    client.wait_for(|m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end");
    client.wait_for(|m| m["method"] == "workspace/codeLens/refresh");

    let after = lenses(&mut client, &uri);
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[2]["command"]["title"], summary);
    assert_eq!(after[2]["command"]["command"], "tensorlens.showPtx");

    let hover = client.hover_text(&uri, name_line, name_col + 2);
    assert!(
        hover.contains("**matmul_tiled**") && hover.contains("registers") && hover.contains("launch at line"),
        "{hover}"
    );

    // Show PTX: the text, and a file holding it.
    let ptx = client.request(
        "workspace/executeCommand",
        json!({ "command": "tensorlens.showPtx", "arguments": [{ "uri": uri, "kernel": "matmul_tiled" }] }),
    );
    assert_eq!(ptx["languageId"], "ptx");
    let ptx_text = ptx["text"].as_str().unwrap();
    assert!(ptx_text.contains(".entry") && ptx_text.contains("matmul_tiled"), "{ptx_text:.200}");
    let file = ptx["uri"].as_str().unwrap().strip_prefix("file://").unwrap().to_string();
    assert_eq!(std::fs::read_to_string(file).unwrap(), ptx_text);

    // Unchanged kernels are not compiled again, even when host code around them changed.
    let (host_line, host_col) = find(&text, "dim3 block(TILE, TILE);", 0);
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{
            "range": { "start": { "line": host_line, "character": host_col }, "end": { "line": host_line, "character": host_col } },
            "text": "int unused_host_variable = 1; " }] }),
    );
    let again = analyze(&mut client, json!({ "uri": uri, "kernel": "matmul_tiled" }));
    assert_eq!(again["result"]["cached"], true, "{again}");
    assert_eq!(again["result"]["summary"], summary.as_str());

    let toolchain = client.request("workspace/executeCommand", json!({ "command": "tensorlens.kernelToolchain" }));
    assert!(toolchain["summary"].as_str().unwrap().starts_with("NVRTC 13."), "{toolchain}");
    assert_eq!(toolchain["arch"], "sm_90");
    client.shutdown();
}

#[test]
fn compile_errors_land_on_the_line_and_clear_when_fixed() {
    let dir = std::env::temp_dir().join(format!("tensorlens-lsp-kernels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, text) = fixture("kernels/error.cu");
    let path = dir.join("error.cu");
    std::fs::write(&path, &text).unwrap();
    let uri = format!("file://{}", path.display());
    let (mut client, _) = kernel_client();
    client.open(&uri, "cuda-cpp", &text);

    let response = analyze(&mut client, json!({ "uri": uri, "kernel": "broken" }));
    let result = &response["result"];
    assert!(result["error"].as_str().unwrap().contains("identifier \"scale\" is undefined"), "{response}");
    let (error_line, scale_col) = find(&text, "scale;", 0);
    let published = client
        .wait_for(|m| m["method"] == "textDocument/publishDiagnostics" && !nvrtc_diagnostics(&m["params"]).is_empty());
    let diagnostics = nvrtc_diagnostics(&published["params"]);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0]["severity"], 1);
    assert_eq!(diagnostics[0]["range"]["start"], json!({ "line": error_line, "character": scale_col }));
    assert_eq!(diagnostics[0]["range"]["end"], json!({ "line": error_line, "character": scale_col + 5 }));
    let failed_lens = lenses(&mut client, &uri);
    assert!(failed_lens
        .iter()
        .any(|l| l["command"]["title"].as_str().unwrap().starts_with("✗ `broken` did not compile")));

    // Fix it, save: the kernel is analysed again and its diagnostics go away.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{
            "range": { "start": { "line": error_line, "character": scale_col }, "end": { "line": error_line, "character": scale_col + 5 } },
            "text": "2.0f" }] }),
    );
    client.notifications.clear();
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    client.wait_for(|m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["version"] == 2
            && nvrtc_diagnostics(&m["params"]).is_empty()
    });
    let fixed = lenses(&mut client, &uri);
    let broken_result =
        fixed.iter().filter(|l| l["range"]["start"]["line"] == find(&text, "broken(", 0).0).nth(2).unwrap();
    assert!(broken_result["command"]["title"].as_str().unwrap().starts_with("sm_90 · "), "{fixed:?}");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_get_clear_answers() {
    let (uri, text) = fixture("kernels/reduction.cu");
    let (mut client, _) = kernel_client();
    client.open(&uri, "cuda-cpp", &text);
    let (host_line, _) = find(&text, "float host_sum", 0);
    let outside = analyze(&mut client, json!({ "uri": uri, "position": { "line": host_line, "character": 0 } }));
    assert!(outside["error"]["message"].as_str().unwrap().contains("not in a kernel"), "{outside}");
    let unknown = analyze(&mut client, json!({ "uri": uri, "kernel": "nope" }));
    assert!(unknown["error"]["message"].as_str().unwrap().contains("no kernel named `nope`"), "{unknown}");
    let not_open = analyze(&mut client, json!({ "uri": "file:///nowhere.cu", "kernel": "k" }));
    assert!(not_open["error"]["message"].as_str().unwrap().contains("is not open"), "{not_open}");
    let malformed = client
        .request_raw("workspace/executeCommand", json!({ "command": "tensorlens.analyzeKernel", "arguments": [3] }));
    assert!(malformed["error"]["message"].as_str().unwrap().contains("takes one argument"), "{malformed}");
    let none = client.request_raw("workspace/executeCommand", json!({ "command": "tensorlens.analyzeKernel" }));
    assert!(none["error"].is_object(), "{none}");
    // Still serving.
    assert!(client
        .hover_text(&uri, find(&text, "cudaMalloc", 0).0, find(&text, "cudaMalloc", 2).1)
        .contains("cudaMalloc"));
    client.shutdown();
}

#[test]
fn without_nvrtc_the_answer_says_what_to_install() {
    let home = std::env::temp_dir().join(format!("tensorlens-empty-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    for var in ["LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV"] {
        command.env_remove(var);
    }
    command.env("HOME", &home).env("PATH", "/usr/bin:/bin");
    let (mut client, _) = Client::spawn_with_options(command, json!({}), None, json!({ "nvrtcPath": "/nonexistent" }));
    let (uri, text) = fixture("kernels/reduction.cu");
    client.open(&uri, "cuda-cpp", &text);
    let started = std::time::Instant::now();
    let response = analyze(&mut client, json!({ "uri": uri, "kernel": "reduce_sum" }));
    let error = response["result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("NVRTC") && error.contains("nvidia-cuda-nvrtc"), "{response}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "answers quickly: {:?}", started.elapsed());
    let lens = lenses(&mut client, &uri);
    assert!(lens[2]["command"]["title"].as_str().unwrap().starts_with("✗ NVRTC"), "{lens:?}");
    let toolchain = client.request("workspace/executeCommand", json!({ "command": "tensorlens.kernelToolchain" }));
    assert!(toolchain["summary"].as_str().unwrap().starts_with("no NVRTC"), "{toolchain}");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn compiles_run_off_the_request_loop_and_can_be_cancelled() {
    let (uri, text) = fixture("kernels/headers.cu");
    let (mut client, _) = kernel_client();
    client.open(&uri, "cuda-cpp", &text);
    // cooperative_groups makes this compile take a second or more.
    let args =
        json!({ "command": "tensorlens.analyzeKernel", "arguments": [{ "uri": uri, "kernel": "block_sum_cg" }] });
    let slow = client.send_request("workspace/executeCommand", args.clone());
    let (line, col) = find(&text, "atomicAdd", 2);
    let hover = client.hover_text(&uri, line, col);
    assert!(hover.contains("atomicAdd"), "{hover}");
    assert!(!client.has_response(slow), "the hover was answered while the kernel was still compiling");
    assert!(client.response_to(slow)["result"]["registers"].as_u64().unwrap() > 0);

    // Cancel a compile of another kernel right away: the request ends as cancelled.
    let args = json!({ "command": "tensorlens.analyzeKernel", "arguments": [{ "uri": uri, "kernel": "wmma_tile" }] });
    let cancelled = client.send_request("workspace/executeCommand", args);
    client.notify("$/cancelRequest", json!({ "id": cancelled }));
    let response = client.response_to(cancelled);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    // And the server goes on answering.
    assert!(client.hover_text(&uri, line, col).contains("atomicAdd"));
    client.shutdown();
}

#[test]
fn settings_that_arrive_after_start_up_find_nvrtc() {
    // Clients may send their settings only after start-up; a first look without them must not
    // stick.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    for var in ["LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV"] {
        command.env_remove(var);
    }
    let home = std::env::temp_dir().join(format!("tensorlens-late-settings-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    command.env("HOME", &home);
    let (mut client, _) = Client::spawn(command, json!({}), None);
    let before = client.request("workspace/executeCommand", json!({ "command": "tensorlens.kernelToolchain" }));
    assert!(before["summary"].as_str().unwrap().starts_with("no NVRTC"), "{before}");
    client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "tensorlens": { "nvrtcPath": toolkit() } } }),
    );
    let after = client.request("workspace/executeCommand", json!({ "command": "tensorlens.kernelToolchain" }));
    assert!(after["summary"].as_str().unwrap().starts_with("NVRTC 13."), "{after}");
    // An empty settings change (eglot sends one right after connecting) keeps the settings.
    client.notify("workspace/didChangeConfiguration", json!({ "settings": {} }));
    let kept = client.request("workspace/executeCommand", json!({ "command": "tensorlens.kernelToolchain" }));
    assert!(kept["summary"].as_str().unwrap().starts_with("NVRTC 13."), "{kept}");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&home);
}

/// A server whose timing worker finds the stand-in driver (tests/cuda/fake_libcuda.c) through the
/// launcher prefix, as `ssh gpu-host` would find a real one.
fn timing_client(extra: Value) -> (Client, Value) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve").env_remove("LD_LIBRARY_PATH");
    let capabilities =
        json!({ "workspace": { "codeLens": { "refreshSupport": true } }, "window": { "workDoneProgress": true } });
    let mut options = json!({ "nvrtcPath": toolkit() });
    if let (Some(options), Some(extra)) = (options.as_object_mut(), extra.as_object()) {
        options.extend(extra.clone());
    }
    Client::spawn_with_options(command, capabilities, None, options)
}

const TIMED_KERNEL: &str = "// tensorlens: n=1<<20 block=128\n__global__ void scale(float* x, float s, int n) {\n    int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (i < n) x[i] *= s;\n}\n";

#[test]
fn timing_without_a_gpu_says_so_quickly() {
    let (mut client, _) = timing_client(json!({}));
    let uri = "file:///tmp/tensorlens-timing-none.cu";
    client.open(uri, "cuda-cpp", TIMED_KERNEL);
    let started = std::time::Instant::now();
    let response = client.request_raw(
        "workspace/executeCommand",
        json!({ "command": "tensorlens.timeKernel", "arguments": [{ "uri": uri, "kernel": "scale" }] }),
    );
    let error = response["result"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("no NVIDIA driver") && error.contains("timingLauncher"), "{response}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    let titles: Vec<String> =
        lenses(&mut client, uri).iter().map(|l| l["command"]["title"].as_str().unwrap().to_string()).collect();
    assert!(titles.iter().any(|t| t.starts_with("⏱ ✗ no NVIDIA driver")), "{titles:?}");
    assert!(client.hover_text(uri, 1, 17).contains("no NVIDIA driver"));
    client.shutdown();
}

#[test]
fn timing_through_a_launcher_gives_lenses_hovers_and_history() {
    let launcher = json!([
        "env",
        format!("LD_LIBRARY_PATH={}", super::cuda_support::stand_in().display()),
        "FAKE_CUDA_MS=0.0400,0.0401,0.0399,0.0400"
    ]);
    let (mut client, _) =
        timing_client(json!({ "timingLauncher": launcher, "timingWorker": env!("CARGO_BIN_EXE_tensorlens") }));
    let uri = "file:///tmp/tensorlens-timing-launcher.cu";
    client.open(uri, "cuda-cpp", TIMED_KERNEL);
    let time = |client: &mut Client| {
        client.request("workspace/executeCommand", json!({ "command": "tensorlens.timeKernel", "arguments": [{ "uri": uri, "position": { "line": 3, "character": 8 } }] }))
    };
    let first = time(&mut client);
    assert!(first["summary"].as_str().unwrap().starts_with("⏱ 40.0 µs ±0."), "{first}");
    assert_eq!(first["timing"]["device"]["name"], "tensorlens stand-in GPU");
    assert_eq!(first["spec"]["n"], 1 << 20);
    assert!(first["change_percent"].is_null());
    client.wait_for(|m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end");
    let second = time(&mut client);
    assert_eq!(second["change_percent"], 0.0, "{second}");
    let titles: Vec<String> =
        lenses(&mut client, uri).iter().map(|l| l["command"]["title"].as_str().unwrap().to_string()).collect();
    assert!(titles.iter().any(|t| t.starts_with("⏱ 40.0 µs") && t.ends_with("(+0.0% vs before)")), "{titles:?}");
    let hover = client.hover_text(uri, 1, 17);
    assert!(
        hover.contains("**Timing**") && hover.contains("tensorlens stand-in GPU") && hover.contains("n = 1048576"),
        "{hover}"
    );
    let history = client.request("tensorlens/kernelTimings", json!({ "uri": uri }));
    let runs = history["kernels"][0]["history"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[1]["timing"]["samples"].as_array().unwrap().len() >= 10);
    client.shutdown();
}

#[test]
fn timing_can_be_turned_off() {
    let (mut client, _) = timing_client(json!({ "timingEnabled": false }));
    let uri = "file:///tmp/tensorlens-timing-off.cu";
    client.open(uri, "cuda-cpp", TIMED_KERNEL);
    let titles: Vec<String> =
        lenses(&mut client, uri).iter().map(|l| l["command"]["title"].as_str().unwrap().to_string()).collect();
    assert_eq!(titles, ["Analyze"]);
    let refused = client.request_raw(
        "workspace/executeCommand",
        json!({ "command": "tensorlens.timeKernel", "arguments": [{ "uri": uri, "kernel": "scale" }] }),
    );
    assert!(refused["error"]["message"].as_str().unwrap().contains("timing is off"), "{refused}");
    client.shutdown();
}

#[test]
fn a_cuda_kernel_s_sass_opens_and_its_spilling_lines_become_hints() {
    let (uri, text) = fixture("kernels/spills.cu");
    let (mut client, _) = kernel_client();
    client.open(&uri, "cuda-cpp", &text);
    let show = |client: &mut Client, ir: &str| {
        let args = json!({ "uri": uri, "kernel": "pairwise", "ir": ir });
        client.request("workspace/executeCommand", json!({ "command": "tensorlens.showIr", "arguments": [args] }))
    };
    let sass = show(&mut client, "sass");
    assert_eq!(sass["languageId"], "sass", "{sass}");
    let body = sass["text"].as_str().unwrap();
    let path = uri.strip_prefix("file://").unwrap();
    assert!(body.contains("EXIT") && body.contains(&format!("//## File \"{path}\", line")), "{}", &body[..800]);
    assert!(body.contains("SpillRefill"), "ptxas spills here and nvdisasm marks it");
    let ptx = show(&mut client, "ptx");
    assert!(ptx["text"].as_str().unwrap().contains(".entry _Z8pairwise"), "{ptx}");
    let ttgir = show(&mut client, "ttgir");
    assert_eq!(ttgir["error"], "ttgir is Triton's; a CUDA kernel has ptx and sass", "{ttgir}");

    let answer = client.request(
        "workspace/executeCommand",
        json!({ "command": "tensorlens.analyzeKernel", "arguments": [{ "uri": uri, "kernel": "pairwise" }] }),
    );
    assert!(answer["spill_stores"].as_u64().unwrap() > 0, "{answer}");
    let published = client.wait_for(|n| {
        n["method"] == "textDocument/publishDiagnostics"
            && n["params"]["diagnostics"].as_array().is_some_and(|d| d.iter().any(|d| d["source"] == "tensorlens"))
    });
    let hints: Vec<Value> = published["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["source"] == "tensorlens")
        .cloned()
        .collect();
    // The spills come from the loop that keeps the sixteen loads live, and the loads' line.
    let product = find(&text, "s += v[a].x", 0).0;
    let loads = find(&text, "v[k] = in[i * 16 + k]", 0).0;
    let spill_lines: Vec<u64> = hints
        .iter()
        .filter(|d| d["message"].as_str().unwrap().contains("registers spilled"))
        .map(|d| d["range"]["start"]["line"].as_u64().unwrap())
        .collect();
    assert!(
        spill_lines.iter().all(|l| [product as u64, loads as u64].contains(l)) && !spill_lines.is_empty(),
        "{hints:?}"
    );
    assert!(
        hints.iter().all(|d| d["severity"] == 4 && d["message"].as_str().unwrap().ends_with("— sm_90")),
        "{hints:?}"
    );
    client.shutdown();
}

/// A file with hundreds of kernels gets its lenses without their commands (most of the answer's
/// size); `codeLens/resolve` fills in each the same as a small file's would be, and a lens whose
/// kernel was edited away since falls back to Analyze.
#[test]
fn lenses_of_a_file_with_many_kernels_are_resolved_as_shown() {
    let mut text = String::from("#include <cuda_runtime.h>\n");
    for i in 0..150 {
        text += &format!(
            "__global__ void k{i}(float* x, int n) {{\n    int i = threadIdx.x;\n    if (i < n) x[i] += {i}.0f;\n}}\n"
        );
    }
    let uri = "file:///tmp/many/kernels.cu";
    let (mut client, _) = kernel_client();
    client.open(uri, "cuda-cpp", &text);
    let sent = lenses(&mut client, uri);
    assert_eq!(sent.len(), 300, "Analyze and Time per kernel");
    assert!(sent.iter().all(|l| l.get("command").is_none() && l.get("data").is_some()), "{}", sent[0]);
    for (i, lens) in sent.iter().enumerate() {
        let resolved = client.request("codeLens/resolve", lens.clone());
        assert_eq!(resolved["range"], lens["range"]);
        let (title, command) =
            if i % 2 == 0 { ("Analyze", "tensorlens.analyzeKernel") } else { ("Time", "tensorlens.timeKernel") };
        assert_eq!(resolved["command"]["title"], title, "{resolved}");
        assert_eq!(resolved["command"]["command"], command);
        assert_eq!(resolved["command"]["arguments"][0], json!({ "uri": uri, "kernel": format!("k{}", i / 2) }));
    }
    // k7 renamed: its old Time lens resolves to Analyze k7, which then says what is wrong.
    let (line, col) = find(&text, "void k7(", 5);
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{
            "range": { "start": { "line": line, "character": col }, "end": { "line": line, "character": col + 2 } },
            "text": "renamed" }] }),
    );
    let stale = client.request("codeLens/resolve", sent[15].clone());
    assert_eq!(stale["command"]["title"], "Analyze", "{stale}");
    assert_eq!(stale["command"]["arguments"][0]["kernel"], "k7");
    // Data that is not ours is an error, not a panic.
    let bad = client.request_raw("codeLens/resolve", json!({ "range": sent[0]["range"], "data": "nope" }));
    assert!(bad.get("error").is_some(), "{bad}");
    assert_eq!(lenses(&mut client, uri).len(), 300, "still serving");
    client.shutdown();
}
