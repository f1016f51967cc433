//! `tensorlens kernel ...` end to end: the real binary, the real NVRTC and ptxas from the PyPI
//! wheels. Resource numbers are checked against ptxas run by hand on the PTX the binary prints,
//! read with a parser of our own, so a bug in the crate's report reader cannot hide here.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;

use crate::support;

const SM90_WARPS: u32 = 64;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kernels").join(name)
}

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nvrtc").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    }

    fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn finish(output: Output) -> Run {
    let run = Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    // Whatever the input, the binary answers with a message, never a panic.
    assert!(!run.stderr.contains("panicked"), "the binary panicked:\n{}", run.stderr);
    run
}

/// `tensorlens kernel <args> --nvrtc-path <toolkit>`.
fn kernel<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tensorlens"))
        .arg("kernel")
        .args(args)
        .arg("--nvrtc-path")
        .arg(support::toolkit())
        .output()
        .expect("run tensorlens");
    finish(output)
}

/// `tensorlens kernel <args>` in an environment where no CUDA can be found by accident.
fn kernel_scrubbed<S: AsRef<OsStr>>(args: &[S], home: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tensorlens"))
        .arg("kernel")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .output()
        .expect("run tensorlens");
    finish(output)
}

fn analyze_json(file: &Path, extra: &[&str]) -> (Run, Vec<Value>) {
    let mut args: Vec<&OsStr> = vec!["analyze".as_ref(), file.as_os_str(), "--json".as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    let run = kernel(&args);
    let values = run.json();
    (run, values)
}

fn by_name(values: &[Value], name: &str) -> Value {
    values.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no line for `{name}` in {values:#?}")).clone()
}

fn u32_of(value: &Value, key: &str) -> u32 {
    value[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not a number in {value}")) as u32
}

/// What `ptxas -v` says about one entry.
#[derive(Debug, PartialEq, Eq)]
struct PtxasSays {
    registers: u32,
    shared_bytes: u32,
    spill_stores: u32,
    spill_loads: u32,
}

/// The number written just before `unit` in `line`: `4096` for (`..., 4096 bytes smem`, ` bytes smem`).
fn number_before(line: &str, unit: &str) -> Option<u32> {
    let head = &line[..line.find(unit)?];
    head.rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Reads the lines ptxas prints for `entry`, between its "Compiling entry function" line and the
/// next one.
fn read_ptxas(report: &str, entry: &str) -> Option<PtxasSays> {
    let start = format!("Compiling entry function '{entry}'");
    let block: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.contains(&start))
        .skip(1)
        .take_while(|l| !l.contains("Compiling entry function"))
        .collect();
    let used = block.iter().find(|l| l.contains("Used ") && l.contains(" registers"))?;
    let properties = block.iter().position(|l| l.trim_end().ends_with(&format!("Function properties for {entry}")))?;
    let spills = block.get(properties + 1)?;
    Some(PtxasSays {
        registers: number_before(used, " registers")?,
        shared_bytes: number_before(used, " bytes smem").unwrap_or(0),
        spill_stores: number_before(spills, " bytes spill stores")?,
        spill_loads: number_before(spills, " bytes spill loads")?,
    })
}

#[test]
fn own_ptxas_reader_reads_a_real_report() {
    let report = "ptxas info    : 0 bytes gmem\n\
ptxas info    : Compiling entry function '_Z1kPfi' for 'sm_90'\n\
ptxas info    : Function properties for _Z1kPfi\n    \
256 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads\n\
ptxas info    : Used 40 registers, used 1 barriers, 256 bytes cumulative stack size, 4096 bytes smem, 380 bytes cmem[0]\n\
ptxas info    : Compiling entry function '_Z1jv' for 'sm_90'\n\
ptxas info    : Function properties for _Z1jv\n    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
ptxas info    : Used 4 registers, used 0 barriers\n";
    let k = PtxasSays { registers: 40, shared_bytes: 4096, spill_stores: 12, spill_loads: 16 };
    assert_eq!(read_ptxas(report, "_Z1kPfi"), Some(k));
    let j = PtxasSays { registers: 4, shared_bytes: 0, spill_stores: 0, spill_loads: 0 };
    assert_eq!(read_ptxas(report, "_Z1jv"), Some(j));
    assert_eq!(read_ptxas(report, "_Z1k"), None);
}

/// `kernel ptx --kernel name`, then ptxas on it by hand.
fn ptxas_by_hand(file: &Path, name: &str, entry: &str, arch: &str, dir: &Path) -> PtxasSays {
    let ptx = kernel(&["ptx".as_ref(), file.as_os_str(), "--kernel".as_ref(), OsStr::new(name)]);
    assert!(ptx.ok, "kernel ptx {name} failed:\n{}", ptx.both());
    assert!(ptx.stdout.contains(&format!(".entry {entry}(")), "the PTX of {name} has no entry {entry}");
    let ptx_path = dir.join(format!("{name}.ptx"));
    std::fs::write(&ptx_path, &ptx.stdout).unwrap();
    let out = Command::new(support::toolkit().join("bin/ptxas"))
        .arg(format!("-arch={arch}"))
        .args(["-v", "-o", "/dev/null"])
        .arg(&ptx_path)
        .output()
        .expect("run ptxas");
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ptxas failed on {name}:\n{report}");
    read_ptxas(&report, entry).unwrap_or_else(|| panic!("ptxas said nothing about {entry}:\n{report}"))
}

#[test]
fn registers_equal_what_ptxas_reports() {
    let dir = scratch("registers");
    // The fixtures spill nothing; a kernel held to 32 registers by its launch bounds spills plenty.
    let spill = dir.join("spill.cu");
    std::fs::write(&spill, HEAVY.replace("__global__ void heavy", "__global__ void __launch_bounds__(1024, 2) heavy"))
        .unwrap();
    let fixtures: [(&str, PathBuf, &[&str]); 7] = [
        ("reduction.cu", fixture("reduction.cu"), &["reduce_sum"]),
        ("matmul.cu", fixture("matmul.cu"), &["matmul_tiled"]),
        ("softmax.cu", fixture("softmax.cu"), &["softmax_rows"]),
        ("template.cu", fixture("template.cu"), &["inclusive_scan"]),
        (
            "headers.cu",
            fixture("headers.cu"),
            &["half_axpy", "bf16_to_float", "block_sum_cg", "wmma_tile", "limits_and_printf"],
        ),
        ("cupy_kernels.py", fixture("cupy_kernels.py"), &["vector_add", "scale_kernel"]),
        ("spill.cu", spill, &["heavy"]),
    ];
    let mut rows = Vec::new();
    let mut spilled = 0;
    for (file, path, kernels) in fixtures {
        let (run, values) = analyze_json(&path, &[]);
        let analysed: Vec<&Value> = values.iter().filter(|v| v.get("error").is_none()).collect();
        let names: Vec<&str> = analysed.iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(names, kernels, "{file}: every kernel compiles, in file order:\n{}", run.both());
        // One ptx + ptxas per kernel, in parallel: the headers.cu compiles take a second or two each.
        let checked: Vec<(String, Value, PtxasSays)> = std::thread::scope(|scope| {
            let handles: Vec<_> = analysed
                .iter()
                .map(|&v| {
                    let (path, dir) = (&path, &dir);
                    scope.spawn(move || {
                        let name = v["name"].as_str().unwrap();
                        let entry = v["lowered_name"].as_str().unwrap();
                        let arch = v["arch"].as_str().unwrap();
                        (name.to_string(), v.clone(), ptxas_by_hand(path, name, entry, arch, dir))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (name, v, says) in checked {
            let ours = PtxasSays {
                registers: u32_of(&v, "registers"),
                shared_bytes: u32_of(&v, "shared_bytes"),
                spill_stores: u32_of(&v, "spill_stores"),
                spill_loads: u32_of(&v, "spill_loads"),
            };
            assert!(ours.registers > 0, "{file} {name}: {v}");
            spilled += ours.spill_stores + ours.spill_loads;
            rows.push(format!(
                "{file:<16} {name:<18} {:>4}/{:<4}   {:>6}/{:<6}   {:>4}/{:<4} {:>4}/{:<4}",
                ours.registers,
                says.registers,
                ours.shared_bytes,
                says.shared_bytes,
                ours.spill_stores,
                says.spill_stores,
                ours.spill_loads,
                says.spill_loads
            ));
            assert_eq!(ours, says, "{file} {name}: tensorlens (left) against ptxas -v by hand (right)");
        }
    }
    println!("tensorlens / ptxas -v by hand");
    println!(
        "{:<16} {:<18} {:>9}   {:>13}   {:>7} {:>7}",
        "file", "kernel", "registers", "shared bytes", "spill st", "ld"
    );
    for row in rows {
        println!("{row}");
    }
    assert!(spilled > 0, "the spill columns were compared on a kernel that spills");
    // The template kernel without arguments is the one line that is an error.
    let (_, template) = analyze_json(&fixture("template.cu"), &[]);
    assert!(by_name(&template, "needs_arguments")["error"].is_string());
    let scan = by_name(&template, "inclusive_scan");
    assert_eq!(scan["name_expression"], "scan::inclusive_scan<float, 512>");
    assert_eq!(u32_of(&scan, "shared_bytes"), 512 * 4, "__shared__ T buffer[BLOCK] with T = float, BLOCK = 512");
}

/// The 1-based line of the first line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no `{needle}`")) as u64 + 1
}

#[test]
fn errors_land_on_the_line_that_has_them() {
    let path = fixture("error.cu");
    let text = std::fs::read_to_string(&path).unwrap();
    let error_line = line_of(&text, "* scale");
    assert_eq!(error_line, 9);

    let (run, values) = analyze_json(&path, &[]);
    assert!(!run.ok, "one kernel failed, so the exit status says so");
    assert!(run.stderr.contains("1 of 2 kernels"), "{}", run.stderr);
    assert_eq!(values.len(), 2);
    let broken = by_name(&values, "broken");
    assert!(broken["error"].as_str().unwrap().contains("scale"), "{broken}");
    let messages = broken["messages"].as_array().expect("messages");
    let at_scale = messages
        .iter()
        .find(|m| m["message"].as_str().unwrap().contains("\"scale\""))
        .unwrap_or_else(|| panic!("no message naming scale: {broken}"));
    assert_eq!(at_scale["line"], error_line, "{broken}");
    assert_eq!(at_scale["severity"], "error");
    assert_eq!(broken["line"], line_of(&text, "void broken"));
    let fine = by_name(&values, "fine");
    assert!(fine.get("error").is_none() && u32_of(&fine, "registers") > 0, "{fine}");

    // The plain report says the same thing, file:line first.
    let plain = kernel(&["analyze".as_ref(), path.as_os_str()]);
    assert!(!plain.ok);
    let expected = format!("error.cu:{error_line}: error: identifier \"scale\" is undefined");
    assert!(plain.stdout.contains(&expected), "{}", plain.stdout);

    let dir = scratch("errors");
    let fixed = dir.join("error.cu");
    std::fs::write(&fixed, text.replace("* scale", "* 0.5f")).unwrap();
    let (run, values) = analyze_json(&fixed, &[]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(values.len(), 2);
    assert!(values.iter().all(|v| v.get("error").is_none() && u32_of(v, "registers") > 0), "{values:?}");
}

#[test]
fn template_kernels_take_arguments_from_annotations_and_launches() {
    let path = fixture("template.cu");
    let text = std::fs::read_to_string(&path).unwrap();
    let (run, values) = analyze_json(&path, &["--kernel", "needs_arguments"]);
    assert!(!run.ok);
    let error = values[0]["error"].as_str().unwrap();
    assert!(
        error.contains("instantiate=needs_arguments<") && error.contains("template <typename T, int BLOCK>"),
        "{error}"
    );

    let dir = scratch("template");
    let definition = "template <typename T, int BLOCK>\n__global__ void needs_arguments";
    assert!(text.contains(definition));
    let annotated = dir.join("annotated.cu");
    let annotation = "// tensorlens: instantiate=needs_arguments<int, 4>\n";
    std::fs::write(&annotated, text.replace(definition, &format!("{annotation}{definition}"))).unwrap();
    let (run, values) = analyze_json(&annotated, &["--kernel", "needs_arguments"]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(values[0]["name_expression"], "scan::needs_arguments<int, 4>");
    assert_eq!(values[0]["lowered_name"], "_ZN4scan15needs_argumentsIiLi4EEEvPT_");

    // A launch with explicit arguments instantiates it, and gives the block size.
    let launched = dir.join("launched.cu");
    let host = "void run(float* p) { needs_arguments<float, 8><<<1, 64>>>(p); }\n\n";
    std::fs::write(&launched, text.replace("}  // namespace scan", &format!("{host}}}  // namespace scan"))).unwrap();
    let launched_text = std::fs::read_to_string(&launched).unwrap();
    let (run, values) = analyze_json(&launched, &["--kernel", "needs_arguments"]);
    assert!(run.ok, "{}", run.both());
    let v = &values[0];
    assert_eq!(v["name_expression"], "scan::needs_arguments<float, 8>");
    assert_eq!(v["lowered_name"], "_ZN4scan15needs_argumentsIfLi8EEEvPT_");
    assert_eq!((u32_of(v, "block_size"), v["block_size_source"].as_str()), (64, Some("launch")));
    assert_eq!(v["block_size_line"], line_of(&launched_text, "<<<1, 64>>>"));
}

/// Theoretical occupancy on sm_90, worked out here from the published limits: 64 warp slots, 32
/// blocks, 64K registers given per warp in 256s and to warps in groups of four, 228 KiB of shared
/// memory given in 128-byte steps plus 1 KiB the driver keeps per block.
fn sm90_occupancy(registers: u32, shared: u32, block: u32) -> (u32, f64, &'static str) {
    let warps = block.div_ceil(32);
    let per_warp = (registers * 32).div_ceil(256) * 256;
    let by_registers = 65536 / (per_warp * 4) * 4 / warps;
    let by_shared = 228 * 1024 / ((shared + 1024).div_ceil(128) * 128);
    let limits =
        [("warps", SM90_WARPS / warps), ("blocks", 32), ("registers", by_registers), ("shared_memory", by_shared)];
    let blocks = limits.iter().map(|l| l.1).min().unwrap();
    let limiter = limits.iter().find(|l| l.1 == blocks).unwrap().0;
    (blocks, f64::from(blocks * warps) / f64::from(SM90_WARPS), limiter)
}

fn assert_occupancy_adds_up(v: &Value) {
    let occupancy = v["occupancy"].as_f64().unwrap_or_else(|| panic!("no occupancy: {v}"));
    assert!(occupancy > 0.0 && occupancy <= 1.0, "{v}");
    let limiter = v["limiter"].as_str().unwrap();
    assert!(["registers", "shared_memory", "warps", "blocks"].contains(&limiter), "{v}");
    let shared = u32_of(v, "shared_bytes") + u32_of(v, "dynamic_shared_bytes");
    let (blocks, expected, expected_limiter) = sm90_occupancy(u32_of(v, "registers"), shared, u32_of(v, "block_size"));
    assert_eq!((u32_of(v, "active_blocks"), occupancy, limiter), (blocks, expected, expected_limiter), "{v}");
}

const HEAVY: &str = r#"#define N 80
// Eighty accumulators that all stay live through the loop: far more registers than a light kernel.
__global__ void heavy(const float* __restrict__ in, float* __restrict__ out, int n) {
    float acc[N];
#pragma unroll
    for (int j = 0; j < N; ++j) acc[j] = in[threadIdx.x + j * 32];
    for (int k = 0; k < n; ++k) {
        float x = in[k];
#pragma unroll
        for (int j = 0; j < N; ++j) acc[j] = fmaf(acc[j], x, acc[(j + 7) % N]);
    }
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j) s += acc[j] * (j + 1);
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

void launch(const float* in, float* out, int n) { heavy<<<n, 512>>>(in, out, n); }
"#;

#[test]
fn block_size_comes_from_launches_annotations_and_the_command_line() {
    let (run, values) = analyze_json(&fixture("matmul.cu"), &[]);
    assert!(run.ok, "{}", run.both());
    let matmul = &values[0];
    assert_eq!((u32_of(matmul, "block_size"), matmul["block_size_source"].as_str()), (256, Some("launch")));
    assert_eq!(matmul["block_size_line"], 28);
    assert_eq!(u32_of(matmul, "shared_bytes"), 2 * 16 * 16 * 4, "As and Bs");
    assert_occupancy_adds_up(matmul);

    let (run, values) = analyze_json(&fixture("softmax.cu"), &[]);
    assert!(run.ok, "{}", run.both());
    let softmax = &values[0];
    assert_eq!((u32_of(softmax, "block_size"), softmax["block_size_source"].as_str()), (128, Some("annotation")));
    assert!(softmax["block_size_line"].is_null());
    assert_occupancy_adds_up(softmax);

    let (run, values) = analyze_json(&fixture("matmul.cu"), &["--block", "96"]);
    assert!(run.ok, "{}", run.both());
    let asked = &values[0];
    assert_eq!((u32_of(asked, "block_size"), asked["block_size_source"].as_str()), (96, Some("asked for")));
    assert_eq!(asked["registers"], matmul["registers"]);
    assert_occupancy_adds_up(asked);

    // Many live accumulators: registers, not warp slots, decide occupancy.
    let dir = scratch("block_size");
    let heavy_path = dir.join("heavy.cu");
    std::fs::write(&heavy_path, HEAVY).unwrap();
    let (run, values) = analyze_json(&heavy_path, &[]);
    assert!(run.ok, "{}", run.both());
    let heavy = &values[0];
    let registers = u32_of(heavy, "registers");
    println!("heavy: {registers} registers, occupancy {} at block 512", heavy["occupancy"]);
    assert!(registers > 64, "eighty live floats need more than 64 registers: {heavy}");
    assert_eq!((u32_of(heavy, "block_size"), heavy["block_size_line"].as_u64()), (512, Some(line_of(HEAVY, "<<<"))));
    assert_eq!(heavy["limiter"], "registers");
    assert!(heavy["occupancy"].as_f64().unwrap() < 1.0);
    assert_occupancy_adds_up(heavy);
    // The best occupancy, searched here over every whole number of warps. Which of the block sizes
    // that reach it is suggested is a policy; any of them must really reach it.
    let best = (1..=32u32).map(|w| sm90_occupancy(registers, 0, w * 32).1).fold(0.0, f64::max);
    if best > heavy["occupancy"].as_f64().unwrap() {
        assert_eq!(heavy["better_occupancy"].as_f64(), Some(best), "{heavy}");
        let suggested = u32_of(heavy, "better_block_size");
        assert_eq!(sm90_occupancy(registers, 0, suggested).1, best, "{heavy}");
    } else {
        assert!(heavy["better_block_size"].is_null(), "{heavy}");
    }

    // A register cap as nvcc users give it.
    let (run, values) = analyze_json(&heavy_path, &["--nvrtc-flag=-maxrregcount=32"]);
    assert!(run.ok, "{}", run.both());
    let capped = &values[0];
    assert!(u32_of(capped, "registers") > 0);
    // NVRTC takes -maxrregcount but leaves no trace of it in the PTX; ptxas must get it too.
    assert!(u32_of(capped, "registers") <= 32, "{capped}");
}

/// Installed by pip (`pip install tensorlens[cuda]`), the binary sits at `<env>/bin/tensorlens` with
/// NVIDIA's wheels under `<env>/lib/python3.X/site-packages/nvidia`; started by an editor or JupyterLab
/// with that environment not activated (no VIRTUAL_ENV, no CUDA_HOME), it still finds them there.
#[test]
fn the_wheels_beside_the_binary_are_found_without_an_active_environment() {
    let dir = scratch("beside_the_binary");
    let home = dir.join("home");
    let env = dir.join("env");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(env.join("bin")).unwrap();
    let site = env.join("lib/python3.12/site-packages");
    std::fs::create_dir_all(&site).unwrap();
    // The unpacked wheels' `nvidia` folder, linked where pip would have put it.
    std::os::unix::fs::symlink(support::toolkit().parent().unwrap(), site.join("nvidia")).unwrap();
    let binary = env.join("bin/tensorlens");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_tensorlens"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_tensorlens"), &binary).unwrap();
    }
    let run_installed = |args: &[&OsStr]| {
        let output = Command::new(&binary)
            .arg("kernel")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .output()
            .expect("run the installed tensorlens");
        finish(output)
    };

    let run = run_installed(&["toolchain".as_ref(), "--json".as_ref()]);
    assert!(run.ok, "{}", run.both());
    let toolchain: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let nvrtc = toolchain["nvrtc"]["Ok"]["path"].as_str().unwrap_or_default();
    assert_eq!(Path::new(nvrtc), site.join("nvidia/cu13/lib/libnvrtc.so.13"), "{}", run.stdout);
    let toolkit = support::toolkit().canonicalize().unwrap();
    for tool in ["ptxas", "nvdisasm"] {
        assert_eq!(toolchain[tool]["Ok"].as_str().map(PathBuf::from), Some(toolkit.join("bin").join(tool)), "{tool}");
    }
    assert!(
        toolchain["include_dirs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == &Value::from(toolkit.join("include").to_str())),
        "{}",
        run.stdout
    );

    // And a kernel compiles and is read by ptxas with nothing else given.
    let run = run_installed(&["analyze".as_ref(), fixture("matmul.cu").as_os_str(), "--json".as_ref()]);
    assert!(run.ok, "{}", run.both());
    assert!(run.json().iter().all(|v| v["registers"].as_u64().is_some_and(|r| r > 0)), "{}", run.stdout);

    // The same binary outside a bin/ folder, with the environment not beside it, finds no NVRTC.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(&binary, elsewhere.join("tensorlens")).unwrap();
    let output = Command::new(elsewhere.join("tensorlens"))
        .args(["kernel", "toolchain", "--json"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .output()
        .unwrap();
    let toolchain: Value = serde_json::from_slice(&output.stdout).unwrap();
    if Path::new("/usr/local/cuda/lib64").exists() {
        return; // a machine with a CUDA toolkit finds that one instead
    }
    assert!(toolchain["nvrtc"]["Err"].is_string(), "{toolchain}");
}

#[test]
fn bad_input_gets_clear_messages() {
    let dir = scratch("bad_input");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let matmul = fixture("matmul.cu");

    let run = kernel_scrubbed(
        &["analyze".as_ref(), matmul.as_os_str(), "--nvrtc-path".as_ref(), "/nonexistent".as_ref()],
        &home,
    );
    assert!(!run.ok);
    let said = run.both();
    assert!(said.contains("NVRTC") && said.contains("pip install") && said.contains("nvidia-cuda-nvrtc"), "{said}");

    // A good NVRTC with a wrong ptxas path.
    let run = kernel_scrubbed(
        &[
            "analyze".as_ref(),
            matmul.as_os_str(),
            "--nvrtc-path".as_ref(),
            support::toolkit().as_os_str(),
            "--ptxas-path".as_ref(),
            "/nonexistent/ptxas".as_ref(),
        ],
        &home,
    );
    // A wrong path is reported, not passed over for the ptxas beside NVRTC.
    assert!(!run.ok && run.both().contains("/nonexistent/ptxas"), "{}", run.both());

    // An NVRTC with no ptxas beside it: a folder holding only a link to the library.
    let lone = dir.join("lone");
    std::fs::create_dir_all(lone.join("lib")).unwrap();
    std::os::unix::fs::symlink(support::toolkit().join("lib/libnvrtc.so.13"), lone.join("lib/libnvrtc.so.13")).unwrap();
    let run =
        kernel_scrubbed(&["analyze".as_ref(), matmul.as_os_str(), "--nvrtc-path".as_ref(), lone.as_os_str()], &home);
    assert!(!run.ok);
    let said = run.both();
    assert!(said.contains("ptxas") && said.contains("nvidia-cuda-nvcc"), "{said}");
    let run = kernel_scrubbed(
        &[
            "analyze".as_ref(),
            matmul.as_os_str(),
            "--nvrtc-path".as_ref(),
            lone.as_os_str(),
            "--ptxas-path".as_ref(),
            "/nonexistent/ptxas".as_ref(),
        ],
        &home,
    );
    assert!(!run.ok);
    let said = run.both();
    assert!(said.contains("ptxas was not found at /nonexistent/ptxas"), "{said}");
    assert!(said.contains("nvidia-cuda-nvcc"), "{said}");

    let run = kernel(&["analyze".as_ref(), fixture("headers.cu").as_os_str(), "--kernel".as_ref(), "nope".as_ref()]);
    assert!(!run.ok);
    assert!(run.stderr.contains("no kernel named `nope`"), "{}", run.stderr);
    for name in ["half_axpy", "bf16_to_float", "block_sum_cg", "wmma_tile", "limits_and_printf"] {
        assert!(run.stderr.contains(name), "{name} is not listed: {}", run.stderr);
    }

    let host_only = dir.join("host_only.cu");
    std::fs::write(&host_only, "__device__ int one() { return 1; }\nint main() { return 0; }\n").unwrap();
    let run = kernel(&["analyze".as_ref(), host_only.as_os_str()]);
    assert!(!run.ok);
    assert!(run.stderr.contains("no __global__"), "{}", run.stderr);

    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "__global__ void k(float* p) { p[0] = 1.0f; }\n").unwrap();
    let run = kernel(&["analyze".as_ref(), notes.as_os_str()]);
    assert!(!run.ok);
    assert!(run.stderr.contains("notes.txt") && run.stderr.contains("not a CUDA"), "{}", run.stderr);

    let missing = dir.join("missing.cu");
    let run = kernel(&["analyze".as_ref(), missing.as_os_str()]);
    assert!(!run.ok);
    assert!(run.stderr.contains("cannot read") && run.stderr.contains("missing.cu"), "{}", run.stderr);
}

/// A small deterministic generator, so that a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

#[test]
fn garbage_never_panics() {
    let dir = scratch("garbage");
    let mut rng = Lcg(0x5eed);
    let mut files = Vec::new();
    // Bytes that are not UTF-8, and a kernel with a NUL byte in it.
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    files.push(("bytes.cu".to_string(), bytes));
    files.push(("nul.cu".to_string(), b"__global__ void k(float* p) { p[0] = 1.0f; }\n\0\0 int x;\n".to_vec()));
    // CUDA-shaped nonsense: unbalanced brackets, half launches, stray annotations and templates.
    let tokens = [
        "__global__",
        "void",
        "k",
        "kk",
        "template",
        "<",
        ">",
        "typename T",
        "int B",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "<<<",
        ">>>",
        ";",
        ",",
        "\n",
        "// tensorlens: instantiate=",
        "// tensorlens: block=",
        "/*",
        "*/",
        "\"",
        "'",
        "#include <",
        "#define",
        "__shared__",
        "float*",
        "dim3",
        "namespace n",
        "extern \"C\"",
        "::",
        "é",
        "\\",
        "__device__",
        "1",
        "0x",
        "=",
        "#if",
        "#endif",
        "R\"(",
    ];
    for seed in 0..12 {
        let text: String = (0..60 + seed * 20).map(|_| format!("{} ", rng.pick(&tokens))).collect();
        files.push((format!("tokens{seed}.cu"), text.into_bytes()));
    }
    let python =
        "src = r'''\n__global__ void k(float* p) { p[0] = 1; \n'''\nother = \"\"\"__global__ void j(\"\"\"\nx = '''";
    files.push(("strings.py".to_string(), python.as_bytes().to_vec()));
    for (name, content) in files {
        let path = dir.join(&name);
        std::fs::write(&path, content).unwrap();
        // `finish` fails the test on a panic; any exit status is fine.
        let run = kernel(&["analyze".as_ref(), path.as_os_str(), "--json".as_ref()]);
        if run.ok {
            for v in run.json() {
                assert!(u32_of(&v, "registers") > 0, "{name}: {v}");
            }
        } else {
            assert!(!run.stderr.trim().is_empty(), "{name}: a failure says why");
        }
        kernel(&["ptx".as_ref(), path.as_os_str(), "--kernel".as_ref(), "k".as_ref()]);
    }
}

#[test]
fn a_hundred_kernels_in_one_file() {
    let dir = scratch("hundred");
    let mut text = String::from(
        "#include <cuda_runtime.h>\n\n__device__ float helper(float v, int k) { return v * (k + 1) + 0.5f; }\n\n",
    );
    let mut shared = BTreeMap::new();
    for i in 0..100u32 {
        let body = match i % 3 {
            0 => format!("out[i] = helper(in[i], {i});"),
            1 => format!(
                "float s = 0.0f; for (int j = 0; j < {}; ++j) s += helper(in[i + j], j) * {i}.0f; out[i] = s;",
                i % 7 + 1
            ),
            _ => {
                let size = 32 * (i % 4 + 1);
                shared.insert(format!("k{i:03}"), size * 4);
                format!("__shared__ float t[{size}]; t[threadIdx.x % {size}] = in[i]; __syncthreads(); out[i] = t[(threadIdx.x + 1) % {size}] + {i};")
            }
        };
        text += &format!(
            "__global__ void k{i:03}(const float* in, float* out, int n) {{\n    int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (i >= n) return;\n    {body}\n}}\n\n"
        );
    }
    let path = dir.join("hundred.cu");
    std::fs::write(&path, &text).unwrap();
    let started = Instant::now();
    let (run, values) = analyze_json(&path, &[]);
    let elapsed = started.elapsed();
    println!("100 kernels analysed in {:.2} s", elapsed.as_secs_f64());
    assert!(run.ok, "{}", run.both());
    assert_eq!(values.len(), 100);
    for (i, v) in values.iter().enumerate() {
        let name = format!("k{i:03}");
        assert_eq!(v["name"], name.as_str(), "file order");
        assert!(v.get("error").is_none() && u32_of(v, "registers") > 0, "{v}");
        assert_eq!(u32_of(v, "shared_bytes"), shared.get(&name).copied().unwrap_or(0), "{v}");
        assert_eq!(v["line"], line_of(&text, &format!("void {name}(")));
    }
}

#[test]
fn kernels_in_python_strings() {
    let (run, values) = analyze_json(&fixture("cupy_kernels.py"), &[]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(values.len(), 2);
    let add = by_name(&values, "vector_add");
    assert_eq!(add["line"], 6);
    assert_eq!(add["lowered_name"], "vector_add", "extern \"C\" keeps the name");
    let scale = by_name(&values, "scale_kernel");
    assert_eq!(scale["line"], 16);
    let dropped: Vec<&str> = scale["dropped_includes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(dropped.contains(&"torch/extension.h"), "{scale}");
    assert_eq!((u32_of(&scale, "block_size"), scale["block_size_source"].as_str()), (128, Some("launch")));
    assert_eq!(scale["block_size_line"], 22);
}
