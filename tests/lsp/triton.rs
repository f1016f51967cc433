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

/// A server that compiles Triton kernels with `python` and times them through a launcher that
/// gives the worker the stand-in driver (tests/cuda/fake_libcuda.c), logging its calls to `log`:
/// the path a real run takes, up to the GPU.
fn timing_client(python: &std::path::Path, log: &std::path::Path, knobs: &[&str], extra: Value) -> Client {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve").env_remove("LD_LIBRARY_PATH");
    let capabilities = json!({ "workspace": { "codeLens": { "refreshSupport": true } } });
    let mut launcher = vec![
        "env".to_string(),
        format!("LD_LIBRARY_PATH={}", super::cuda_support::stand_in().display()),
        format!("FAKE_CUDA_LOG={}", log.display()),
    ];
    launcher.extend(knobs.iter().map(|k| k.to_string()));
    let mut options = json!({
        "pythonPath": python,
        "timingLauncher": launcher,
        "timingWorker": env!("CARGO_BIN_EXE_tensorlens"),
        "timingSeconds": 4,
    });
    if let (Some(options), Some(extra)) = (options.as_object_mut(), extra.as_object()) {
        options.extend(extra.clone());
    }
    Client::spawn_with_options(command, capabilities, None, options).0
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tensorlens-triton-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The stand-in's log: one JSON object a driver call.
fn driver_calls(log: &std::path::Path, call: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("stand-in log line ({e}): {l}")))
        .filter(|c| c["call"] == call)
        .collect()
}

fn time(client: &mut Client, uri: &str, kernel: &str) -> Value {
    let args = json!({ "uri": uri, "kernel": kernel });
    client.request("workspace/executeCommand", json!({ "command": "tensorlens.timeKernel", "arguments": [args] }))
}

fn titles(client: &mut Client, uri: &str, line: u32) -> Vec<String> {
    lenses(client, uri)
        .iter()
        .filter(|l| l["range"]["start"]["line"] == line)
        .map(|l| l["command"]["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_triton_kernel_is_timed_through_the_worker_and_the_launcher() {
    let Some(python) = triton_python() else { return };
    let dir = scratch("time");
    let log = dir.join("driver.log");
    let mut client = timing_client(&python, &log, &["FAKE_CUDA_MS=0.0400,0.0401,0.0399,0.0400"], json!({}));
    let (_, fixture_text) = fixture("vector_add.py");
    // The fixture's kernel, with the problem size written above it.
    let text = fixture_text.replace("@triton.jit\n", "# tensorlens: n=1<<20\n@triton.jit\n");
    let uri = format!("file://{}", dir.join("vector_add.py").display());
    client.open(&uri, "python", &text);
    let line = find(&text, "def add_kernel", 4).0;
    assert_eq!(titles(&mut client, &uri, line), ["Analyze", "Time"]);

    let record = time(&mut client, &uri, "add_kernel");
    assert!(record["error"].is_null(), "{record:#}");
    assert_eq!(record["timing"]["device"]["name"], "tensorlens stand-in GPU", "{record:#}");
    assert!(record["summary"].as_str().unwrap().starts_with("⏱ 40.0 µs ±0."), "{record:#}");
    assert_eq!(record["fastest"], "BLOCK_SIZE=1024 num_warps=4 num_stages=3");
    let config = &record["configs"][0];
    assert_eq!(config["entry"], "add_kernel");
    // The entry the worker named is the one the PTX declares: the stand-in finds `.entry add_kernel(`
    // in the PTX the worker loaded, and reads each parameter with the size the PTX gives it.
    let found = driver_calls(&log, "cuModuleGetFunction");
    assert_eq!((found[0]["name"].as_str(), found[0]["found"].as_bool()), (Some("add_kernel"), Some(true)));
    let launch = &driver_calls(&log, "cuLaunchKernel")[0];
    assert_eq!(launch["grid"], json!([1024, 1, 1]), "cdiv(n, BLOCK_SIZE): {launch}");
    assert_eq!(launch["block"], json!([128, 1, 1]), "32 × num_warps, the PTX's .reqntid: {launch}");
    assert_eq!(launch["shared"], 0);
    let params: Vec<(u64, u64)> = launch["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["bytes"].as_u64().unwrap(), p["value"].as_u64().unwrap()))
        .collect();
    let buffers: Vec<u64> = driver_calls(&log, "cuMemAlloc").iter().map(|c| c["pointer"].as_u64().unwrap()).collect();
    assert_eq!(
        params,
        [(8, buffers[0]), (8, buffers[1]), (8, buffers[2]), (4, 1 << 20), (8, 0), (8, 0)],
        "three buffers, n, and the two scratch pointers Triton appends, null: {launch}"
    );
    let sizes: Vec<u64> = driver_calls(&log, "cuMemAlloc").iter().map(|c| c["bytes"].as_u64().unwrap()).collect();
    assert_eq!(&sizes[..3], [4 << 20, 4 << 20, 4 << 20], "n fp32 each");
    // x and y are only loaded from, out only stored to: 3 × 4 B an element moved.
    assert_eq!(record["spec"]["bytes"], 12.0 * f64::from(1 << 20), "{record:#}");
    let explained =
        record["spec"]["explained"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>();
    for line in [
        "n = 1048576 (annotation)",
        "grid = 1024 (cdiv(n, BLOCK_SIZE) with BLOCK_SIZE = 1024",
        "block = 128 (32 × num_warps=4, one Triton program)",
        "global_scratch: null",
        "x_ptr: 1048576 × 4 B buffer, read",
        "out_ptr: 1048576 × 4 B buffer, written",
        "tt.divisibility=16 on x_ptr, y_ptr, out_ptr, n_elements",
        "compiled for sm_90 by Triton 3.9.0, the arch of the timing GPU (tensorlens stand-in GPU)",
    ] {
        assert!(explained.iter().any(|e| e.contains(line)), "{line:?} not in {explained:#?}");
    }

    // The lens and hover show it, and a second run compares with the first.
    let after = titles(&mut client, &uri, line);
    assert!(after.iter().any(|t| t.starts_with("⏱ 40.0 µs")), "{after:?}");
    let second = time(&mut client, &uri, "add_kernel");
    assert_eq!(second["change_percent"], 0.0, "{second:#}");
    assert_eq!(second["configs"][0]["change_percent"], 0.0, "{second:#}");
    let hover = client.hover_text(&uri, line, 6);
    assert!(
        hover.contains("**Timing**") && hover.contains("tensorlens stand-in GPU") && hover.contains("grid = 1024"),
        "{hover}"
    );
    let history = client.request("tensorlens/kernelTimings", json!({ "uri": uri }));
    assert_eq!(history["kernels"][0]["history"].as_array().map(Vec::len), Some(2), "{history:#}");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

const AUTOTUNED: &str = r#"import triton
import triton.language as tl


# tensorlens: n=1<<20 scale=0.5
@triton.autotune(
    configs=[
        triton.Config({"BLOCK_SIZE": 256}, num_warps=2),
        triton.Config({"BLOCK_SIZE": 1024}, num_warps=4),
        triton.Config({"BLOCK_SIZE": 512}, num_warps=4),
    ],
    key=["n"],
)
@triton.jit
def scale_kernel(x_ptr, out_ptr, n, scale, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * scale, mask=mask)
"#;

#[test]
fn every_autotune_config_is_timed_and_the_fastest_named() {
    let Some(python) = triton_python() else { return };
    let dir = scratch("autotune");
    let log = dir.join("driver.log");
    // A launch takes 10 ns a block: the config with the fewest blocks (BLOCK_SIZE=1024) is fastest.
    let mut client = timing_client(&python, &log, &["FAKE_CUDA_US_PER_BLOCK=0.01"], json!({ "timingSeconds": 6 }));
    let uri = format!("file://{}", dir.join("scale.py").display());
    client.open(&uri, "python", AUTOTUNED);
    let record = time(&mut client, &uri, "scale_kernel");
    assert!(record["error"].is_null(), "{record:#}");
    let configs = record["configs"].as_array().unwrap();
    let labels: Vec<&str> = configs.iter().map(|c| c["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "BLOCK_SIZE=256 num_warps=2 num_stages=3",
            "BLOCK_SIZE=1024 num_warps=4 num_stages=3",
            "BLOCK_SIZE=512 num_warps=4 num_stages=3"
        ]
    );
    let medians: Vec<f64> = configs.iter().map(|c| c["timing"]["summary"]["median"].as_f64().unwrap()).collect();
    for (median, blocks) in medians.iter().zip([4096.0, 1024.0, 2048.0]) {
        assert!((median - blocks * 10e-9).abs() < 1e-9, "{medians:?}");
    }
    assert_eq!(record["fastest"], "BLOCK_SIZE=1024 num_warps=4 num_stages=3");
    assert_eq!(record["timing"]["summary"]["median"], configs[1]["timing"]["summary"]["median"]);
    assert!(
        record["summary"]
            .as_str()
            .unwrap()
            .ends_with("· fastest of 3 configs: BLOCK_SIZE=1024 num_warps=4 num_stages=3"),
        "{record:#}"
    );
    // Each config was launched as compiled: its own grid and 32 × num_warps threads, scale as an
    // fp32 0.5 (the annotation's value is not whole, so a launch passes a float).
    let launches: Vec<(Value, Value)> = driver_calls(&log, "cuLaunchKernel")
        .into_iter()
        .filter(|l| l["params"].is_array())
        .map(|l| (l["grid"].clone(), l["block"].clone()))
        .collect();
    assert_eq!(launches[0], (json!([4096, 1, 1]), json!([64, 1, 1])), "{launches:?}");
    let scale = &driver_calls(&log, "cuLaunchKernel")[0]["params"][3];
    assert_eq!((scale["type"].as_str(), scale["float"].as_f64()), (Some("f"), Some(0.5)), "{scale}");
    let budget = configs[0]["spec"]["explained"].to_string();
    assert!(budget.contains("measured for at most 2.0 s: the time-out of 6 s split between 3 configs"), "{budget}");
    let hover = client.hover_text(&uri, find(AUTOTUNED, "def scale_kernel", 4).0, 6);
    assert!(hover.contains("- BLOCK_SIZE=512 num_warps=4 num_stages=3: ⏱ 20.5 µs"), "{hover}");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_triton_kernel_without_an_evident_grid_gets_an_error_that_says_what_to_write() {
    // Needs neither Triton nor a GPU: the grid is settled before anything compiles or runs.
    let dir = scratch("grid");
    let log = dir.join("driver.log");
    let mut client = timing_client(std::path::Path::new("/nonexistent/python"), &log, &[], json!({}));
    let (_, fixture_text) = fixture("softmax.py");
    let text = fixture_text.replace("@triton.jit\n", "# tensorlens: BLOCK_COLS=1024\n@triton.jit\n");
    let uri = format!("file://{}", dir.join("softmax.py").display());
    client.open(&uri, "python", &text);
    let record = time(&mut client, &uri, "row_softmax_kernel");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("cannot tell the grid of `row_softmax_kernel`: it calls tl.num_programs")
            && error.contains("`# tensorlens: grid=...`, an expression over n, BLOCK_COLS, in_row_stride"),
        "{record:#}"
    );
    assert!(record["timing"].is_null() && record["configs"].as_array().is_none_or(Vec::is_empty), "{record:#}");
    let line = find(&text, "def row_softmax_kernel", 4).0;
    assert!(titles(&mut client, &uri, line).iter().any(|t| t.starts_with("⏱ ✗ cannot tell the grid")));
    assert!(!log.exists(), "no worker was started");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn timing_a_triton_kernel_without_a_gpu_says_so_before_compiling() {
    // No launcher: the worker runs here, where there is no driver. The GPU is asked for first, so
    // the answer comes at once and no Python runs (this one does not exist).
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve").env_remove("LD_LIBRARY_PATH");
    let options = json!({ "pythonPath": "/nonexistent/python" });
    let (mut client, _) = Client::spawn_with_options(command, json!({}), None, options);
    let (uri, text) = fixture("vector_add.py");
    client.open(&uri, "python", &text);
    let started = std::time::Instant::now();
    let record = time(&mut client, &uri, "add_kernel");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(error.contains("no NVIDIA driver") && error.contains("timingLauncher"), "{record:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
    client.shutdown();
}

#[test]
fn timing_a_triton_kernel_is_refused_in_an_untrusted_workspace() {
    let dir = scratch("untrusted");
    let log = dir.join("driver.log");
    let (_, text) = fixture("vector_add.py");
    std::fs::write(dir.join("vector_add.py"), &text).unwrap();
    let uri = format!("file://{}", dir.join("vector_add.py").display());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve").current_dir(&dir);
    let launcher = json!([
        "env",
        format!("LD_LIBRARY_PATH={}", super::cuda_support::stand_in().display()),
        format!("FAKE_CUDA_LOG={}", log.display())
    ]);
    let options = json!({ "workspaceTrusted": false, "timingLauncher": launcher, "timingWorker": env!("CARGO_BIN_EXE_tensorlens") });
    let (mut client, _) = Client::spawn_with_options(command, json!({}), Some(&dir), options);
    client.open(&uri, "python", &text);
    let line = find(&text, "def add_kernel", 4).0;
    assert_eq!(titles(&mut client, &uri, line), ["Analyze"], "no Time lens where timing is off");
    let refused = client.request_raw(
        "workspace/executeCommand",
        json!({ "command": "tensorlens.timeKernel", "arguments": [{ "uri": uri, "kernel": "add_kernel" }] }),
    );
    assert!(refused["error"]["message"].as_str().unwrap_or_default().contains("not trusted"), "{refused:#}");
    assert!(!log.exists(), "no worker was started");
    client.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
