//! Timing up to the driver boundary, without a GPU: the real worker (`tensorlens kernel worker`,
//! started by `tensorlens kernel time`) loads a stand-in `libcuda.so.1` (tests/cuda/fake_libcuda.c,
//! built here with cc) through cudarc's dynamic loading, exactly as it would load the driver. The
//! stand-in records every call and reports scripted event times; these tests check the calls the
//! worker makes and that the statistics come out of the reported times. They prove the plumbing,
//! not GPU numbers: `gpu_*` tests do that on a machine with a GPU.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, stand_in};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("timing").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const VECTOR_ADD: &str = "\
// tensorlens: n=1<<20 block=128 bytes=3*n*4 flops=n
__global__ void vector_add(const float* a, const float* b, float* c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}
";

struct Timed {
    output: Output,
    log: Vec<Value>,
    elapsed: Duration,
}

impl Timed {
    fn json(&self) -> Value {
        let stdout = String::from_utf8_lossy(&self.output.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {}", self.stderr()))
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn calls(&self, name: &str) -> Vec<&Value> {
        self.log.iter().filter(|c| c["call"] == name).collect()
    }
}

/// `tensorlens kernel time` on `source` with the stand-in driver and `env` as its knobs.
fn time(dir: &Path, source: &str, extra: &[&str], env: &[(&str, &str)], driver: bool) -> Timed {
    let file = dir.join("kernel.cu");
    std::fs::write(&file, source).unwrap();
    let log = dir.join("driver.log");
    let _ = std::fs::remove_file(&log);
    let mut command = Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.args(["kernel", "time", "--kernel", "vector_add", "--json", "--nvrtc-path"]);
    command.arg(support::toolkit()).arg(&file).args(extra);
    command.env("FAKE_CUDA_LOG", &log).env_remove("CUDA_HOME").env_remove("CUDA_PATH");
    command.env("LD_LIBRARY_PATH", if driver { stand_in().as_os_str() } else { "".as_ref() });
    for (key, value) in env {
        command.env(key, value);
    }
    let started = Instant::now();
    let output = command.output().expect("run tensorlens");
    let elapsed = started.elapsed();
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stand-in log line ({e}): {l}")))
        .collect();
    Timed { output, log, elapsed }
}

/// Per-launch milliseconds the stand-in reports in turn: 0.2% noise around 40 µs.
const STEADY_MS: &str = "0.0400,0.0401,0.0399,0.0400";

#[test]
fn the_worker_makes_the_driver_calls_a_measurement_needs() {
    let dir = scratch("calls");
    let run = time(&dir, VECTOR_ADD, &[], &[("FAKE_CUDA_MS", STEADY_MS)], true);
    assert!(run.output.status.success(), "{}", run.stderr());
    let result = run.json();

    // The real PTX from NVRTC is loaded, and the kernel is found by its lowered name in it.
    let load = run.calls("cuModuleLoadDataEx");
    assert_eq!(load.len(), 1);
    assert_eq!(load[0]["has_version"], true);
    let function = run.calls("cuModuleGetFunction");
    assert_eq!(function[0]["name"], "_Z10vector_addPKfS0_Pfi");
    assert_eq!(function[0]["found"], true);

    // Three buffers of n floats, filled, then an L2-sized flush buffer.
    let allocations: Vec<u64> = run.calls("cuMemAlloc").iter().map(|c| c["bytes"].as_u64().unwrap()).collect();
    assert_eq!(allocations, [4 << 20, 4 << 20, 4 << 20, 52_428_800]);
    assert_eq!(run.calls("cuMemcpyHtoD").len(), 3);
    let pointers: Vec<u64> = run.calls("cuMemAlloc").iter().map(|c| c["pointer"].as_u64().unwrap()).collect();

    // Launch configuration and parameter values, read with the sizes the PTX declares.
    let launch = run.calls("cuLaunchKernel")[0];
    assert_eq!(launch["grid"], serde_json::json!([8192, 1, 1]), "n / block");
    assert_eq!(launch["block"], serde_json::json!([128, 1, 1]));
    assert_eq!(launch["shared"], 0);
    let params: Vec<(u64, u64)> = launch["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["bytes"].as_u64().unwrap(), p["value"].as_u64().unwrap()))
        .collect();
    assert_eq!(params, [(8, pointers[0]), (8, pointers[1]), (8, pointers[2]), (4, 1 << 20)]);

    // Warm-up first (one launch, untimed), then one timed launch to size the batch: 1 ms / 40 µs.
    let elapsed = run.calls("cuEventElapsedTime");
    assert_eq!(elapsed[0]["launches"], 1);
    assert_eq!(result["batch"], 25);
    assert!(elapsed[1..].iter().all(|e| e["launches"] == 25));
    // Cold mode: L2 written before every sample.
    let samples = elapsed.len() - 1;
    let flushes = run.calls("cuMemsetD8");
    assert_eq!(flushes.len(), samples);
    assert!(flushes.iter().all(|f| f["bytes"] == 52_428_800));
    assert_eq!(result["l2_flush_bytes"], 52_428_800);

    // The statistics are those of the reported times: per-launch 40.0, 40.1, 39.9, 40.0 µs in turn.
    let summary = &result["summary"];
    assert_eq!(summary["samples"].as_u64().unwrap() as usize, samples);
    let close = |value: &Value, want: f64| (value.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&summary["median"], 40.0e-6), "{summary}");
    assert!(close(&summary["min"], 39.9e-6) && close(&summary["max"], 40.1e-6), "{summary}");
    assert!(summary["noise"].as_f64().unwrap() < 0.005);
    assert_eq!(result["stop"], "converged");
    // At least 10 samples and 0.5 s of sampled time (25 launches × 40 µs = 1 ms per sample).
    assert!(samples >= 500, "{samples} samples");
    assert_eq!(result["noisy"], false);

    // Bandwidth against the device's peak: 3 × 4 MiB in 40 µs on a 2,619 MHz × 5,120-bit bus.
    let device = &result["device"];
    assert_eq!(device["name"], "tensorlens stand-in GPU");
    assert!(close(&device["peak_bandwidth_gbs"], 2.0 * 2_619_000e3 * 5120.0 / 8.0 / 1e9));
    let bandwidth = 3.0 * 4.0 * (1u64 << 20) as f64 / 40.0e-6 / 1e9;
    assert!((result["bandwidth_gbs"].as_f64().unwrap() - bandwidth).abs() < 1e-6 * bandwidth, "{result}");
    assert!((result["flops_per_second"].as_f64().unwrap() - (1u64 << 20) as f64 / 40.0e-6).abs() < 1.0);
    assert!(result["summary_text"].as_str().unwrap().starts_with("⏱ 40.0 µs ±0."), "{result}");
    assert_eq!(result["spec"]["n"], 1 << 20);
}

#[test]
fn hot_mode_leaves_l2_alone() {
    let dir = scratch("hot");
    let run = time(&dir, VECTOR_ADD, &["--hot"], &[("FAKE_CUDA_MS", STEADY_MS)], true);
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(run.calls("cuMemsetD8").is_empty());
    assert_eq!(run.json()["l2_flush_bytes"], 0);
}

#[test]
fn noise_that_never_settles_is_flagged_at_the_time_out() {
    let dir = scratch("noisy");
    let run = time(&dir, VECTOR_ADD, &["--seconds", "1"], &[("FAKE_CUDA_MS", "0.040,0.048,0.036,0.044")], true);
    assert!(run.output.status.success(), "{}", run.stderr());
    let result = run.json();
    assert_eq!(result["stop"], "timed_out");
    assert_eq!(result["noisy"], true);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn inferred_specs_are_what_gets_launched() {
    let dir = scratch("inferred");
    let source = "__global__ void vector_add(const double* x, double* y, double alpha, long n) { }\n";
    let run = time(&dir, source, &["--n", "1000"], &[("FAKE_CUDA_MS", STEADY_MS)], true);
    assert!(run.output.status.success(), "{}", run.stderr());
    let allocations: Vec<u64> = run.calls("cuMemAlloc").iter().map(|c| c["bytes"].as_u64().unwrap()).collect();
    assert_eq!(&allocations[..2], [8000, 8000]);
    let launch = run.calls("cuLaunchKernel")[0];
    // Block 256 (analysis default), grid cdiv(1000, 256).
    assert_eq!(launch["grid"], serde_json::json!([4, 1, 1]));
    let params = launch["params"].as_array().unwrap();
    assert_eq!((params[2]["bytes"].as_u64(), params[2]["float"].as_f64()), (Some(8), Some(1.0)));
    assert_eq!((params[3]["bytes"].as_u64(), params[3]["value"].as_u64()), (Some(8), Some(1000)));
    let explained = run.json()["spec"]["explained"].to_string();
    assert!(
        explained.contains("x: 1000 × 8 B buffer, read")
            && explained.contains("y: 1000 × 8 B buffer, read and written")
    );
}

#[test]
fn dynamic_shared_memory_past_48_kib_is_allowed_before_the_launch() {
    // The driver refuses a launch asking for more than 48 KiB of dynamic shared memory unless the
    // function's limit was raised first (the stand-in does the same), as Triton's kernels often do.
    let dir = scratch("shared");
    let source = VECTOR_ADD.replace("flops=n", "flops=n smem=96*1024");
    let run = time(&dir, &source, &[], &[("FAKE_CUDA_MS", STEADY_MS)], true);
    assert!(run.output.status.success(), "{}", run.stderr());
    let raised = run.calls("cuFuncSetAttribute");
    assert_eq!(raised.len(), 1, "{:?}", run.log);
    assert_eq!((raised[0]["attribute"].as_i64(), raised[0]["value"].as_i64()), (Some(8), Some(96 * 1024)));
    assert_eq!(run.calls("cuLaunchKernel")[0]["shared"], 96 * 1024);

    // At 48 KiB nothing needs raising; past what the GPU has, the driver's refusal is the answer.
    let run =
        time(&dir, &VECTOR_ADD.replace("flops=n", "flops=n smem=48*1024"), &[], &[("FAKE_CUDA_MS", STEADY_MS)], true);
    assert!(run.output.status.success() && run.calls("cuFuncSetAttribute").is_empty(), "{}", run.stderr());
    let run = time(&dir, &VECTOR_ADD.replace("flops=n", "flops=n smem=300*1024"), &[], &[], true);
    assert!(!run.output.status.success());
    assert!(run.stderr().contains("allowing 307200 bytes of dynamic shared memory"), "{}", run.stderr());
    assert!(run.calls("cuLaunchKernel").is_empty());
}

#[test]
fn failures_name_what_happened() {
    let dir = scratch("failures");
    // No driver at all: answered within a second, with the launcher hint.
    let run = time(&dir, VECTOR_ADD, &[], &[], false);
    assert!(!run.output.status.success());
    assert!(run.stderr().contains("no NVIDIA driver") && run.stderr().contains("timingLauncher"), "{}", run.stderr());
    assert!(run.elapsed < Duration::from_secs(3), "{:?}", run.elapsed);

    let run = time(&dir, VECTOR_ADD, &[], &[("FAKE_CUDA_DEVICES", "0")], true);
    assert!(run.stderr().contains("sees no GPU"), "{}", run.stderr());

    let run = time(&dir, VECTOR_ADD, &[], &[("FAKE_CUDA_PTX_TOO_NEW", "1")], true);
    let stderr = run.stderr();
    assert!(stderr.contains("older than the NVRTC") && stderr.contains("Unsupported .version"), "{stderr}");

    // An illegal address in the warm-up launch: reported, and the worker exits (its context is lost).
    let run = time(&dir, VECTOR_ADD, &[], &[("FAKE_CUDA_FAIL_LAUNCH", "1")], true);
    assert!(run.stderr().contains("an illegal memory access was encountered"), "{}", run.stderr());

    // A kernel that never finishes: the worker is killed at the time-out.
    let run = time(&dir, VECTOR_ADD, &["--timeout", "2"], &[("FAKE_CUDA_HANG", "1")], true);
    assert!(run.stderr().contains("did not finish within 2 s"), "{}", run.stderr());
    assert!(run.elapsed < Duration::from_secs(8), "{:?}", run.elapsed);
}

#[test]
fn a_launcher_prefix_runs_the_worker() {
    // `env` stands in for ssh or srun: the worker only finds the driver through what the launcher
    // sets, so a measurement proves the prefix was used.
    let dir = scratch("launcher");
    let library_path = format!("LD_LIBRARY_PATH={}", stand_in().display());
    let binary = env!("CARGO_BIN_EXE_tensorlens");
    let run = time(
        &dir,
        VECTOR_ADD,
        &["--launcher", "env", "--launcher", &library_path, "--remote", binary],
        &[("FAKE_CUDA_MS", STEADY_MS)],
        false,
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    assert_eq!(run.json()["device"]["name"], "tensorlens stand-in GPU");
}

/// On a machine with a GPU: times real kernels and compares with CuPy's measurement
/// (tests/cuda/gpu_check.py, which also runs without Rust). Elsewhere it prints why it skipped.
#[test]
fn gpu_timing_is_plausible_and_agrees_with_an_independent_measurement() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cuda/gpu_check.py");
    let output = Command::new("python3")
        .arg(script)
        .args(["--binary", env!("CARGO_BIN_EXE_tensorlens"), "--nvrtc-path"])
        .arg(support::toolkit())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "GPU checks failed:\n{stdout}");
    assert!(stdout.contains("SKIPPED") || stdout.contains("vector_add:"), "{stdout}");
}

/// The GPU check script itself, run against the stand-in so that its every step but CuPy's is
/// exercised here too (a script that only ever runs on GPU machines would rot unseen).
#[test]
fn the_gpu_check_script_runs_against_the_stand_in() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cuda/gpu_check.py");
    let output = Command::new("python3")
        .arg(script)
        .args(["--binary", env!("CARGO_BIN_EXE_tensorlens"), "--nvrtc-path"])
        .arg(support::toolkit())
        .env("LD_LIBRARY_PATH", stand_in())
        .env("FAKE_CUDA_MS", STEADY_MS)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("tensorlens stand-in GPU (sm_90), peak 3352 GB/s"), "{stdout}");
    assert!(stdout.contains("copy:       ⏱ 40.0 µs") && stdout.contains("TFLOP/s"), "{stdout}");
}
