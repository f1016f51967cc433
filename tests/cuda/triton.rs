//! `tensorlens kernel analyze FILE.py` and the IR commands on Triton kernels, end to end: the real
//! binary, the real Triton (tests/triton/setup) and, as the oracle, `triton.compile` run by hand
//! (tests/triton/test_worker.py --oracle) on the signature and configuration the binary reports.
//! Skipped, with the reason printed, when Triton is not installed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::support;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn triton_python() -> Option<PathBuf> {
    let python = repo().join(".cache/triton/venv/bin/python");
    if python.is_file() {
        return Some(python);
    }
    eprintln!("skipped: no Triton at {} (run tests/triton/setup)", python.display());
    None
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/triton/fixtures").join(name).canonicalize().unwrap()
}

/// `tensorlens kernel <args> --python <venv> --nvrtc-path <toolkit>`: (success, stdout, stderr).
fn kernel(python: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tensorlens"))
        .arg("kernel")
        .args(args)
        .arg("--python")
        .arg(python)
        .arg("--nvrtc-path")
        .arg(support::toolkit())
        .output()
        .expect("run tensorlens");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn triton_numbers_equal_triton_compile_by_hand_for_the_configs_read_from_the_file() {
    let Some(python) = triton_python() else { return };
    let mut reported = Vec::new();
    for (file, kernels) in [("vector_add.py", 1), ("helper_call.py", 1), ("spills.py", 1), ("matmul.py", 3)] {
        let path = fixture(file);
        let (ok, stdout, stderr) = kernel(&python, &["analyze", path.to_str().unwrap(), "--json"]);
        assert!(ok, "{file}: {stderr}");
        let lines = json_lines(&stdout);
        assert_eq!(lines.len(), kernels, "{file}: one line per configuration: {stdout}");
        for line in lines {
            for key in ["name", "arch", "registers", "spill_stores", "spill_loads", "shared_bytes", "occupancy"] {
                assert!(!line[key].is_null(), "{file}: no {key} in {line}");
            }
            for key in ["limiter", "warnings", "compile_ms", "cached", "num_warps", "num_stages", "constexprs"] {
                assert!(line.get(key).is_some(), "{file}: no {key} in {line}");
            }
            reported.push((path.clone(), line));
        }
    }
    // The oracle compiles what the binary says it compiled.
    let mut oracle = Command::new(&python)
        .arg(repo().join("tests/triton/test_worker.py"))
        .arg("--oracle")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = oracle.stdin.take().unwrap();
    for (path, line) in &reported {
        let signature: serde_json::Map<String, Value> = line["signature"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0].as_str().unwrap().to_string(), pair[1].clone()))
            .collect();
        let job = json!({
            "file": path, "kernel": line["name"], "signature": signature, "constexprs": line["constexprs"],
            "options": { "num_warps": line["num_warps"], "num_stages": line["num_stages"] },
            "divisible": [], "arch": 90,
        });
        writeln!(stdin, "{job}").unwrap();
    }
    drop(stdin);
    let output = oracle.wait_with_output().unwrap();
    let answers = json_lines(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(answers.len(), reported.len(), "the oracle answered every job");
    for ((_, ours), by_hand) in reported.iter().zip(&answers) {
        for key in ["registers", "spill_stores", "spill_loads", "shared_bytes"] {
            assert_eq!(
                ours[key], by_hand[key],
                "{key} of {} {}: ours {ours}, by hand {by_hand}",
                ours["name"], ours["constexprs"]
            );
        }
    }
    assert!(reported.iter().any(|(_, l)| l["spill_stores"].as_u64().unwrap() > 0), "the spilling fixture spills");
}

#[test]
fn triton_compile_errors_and_missing_values_exit_1_with_the_line() {
    let Some(python) = triton_python() else { return };
    let path = fixture("compile_errors.py");
    let (ok, stdout, _) = kernel(&python, &["analyze", path.to_str().unwrap(), "--json"]);
    assert!(!ok, "a compile error is exit status 1");
    let lines = json_lines(&stdout);
    let bad_dot = lines.iter().find(|l| l["name"] == "bad_dot_kernel").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let dot_line = text.lines().position(|l| l.contains("c = tl.dot(a, b_t)")).unwrap() + 1;
    assert_eq!(bad_dot["messages"][0]["line"], dot_line, "{bad_dot}");
    for key in ["file", "line", "name", "error"] {
        assert!(!bad_dot[key].is_null(), "{key}: {bad_dot}");
    }
    // A constexpr nothing gives a value to: what to add, and exit status 1.
    let layernorm = fixture("layernorm.py");
    let (ok, stdout, _) = kernel(&python, &["analyze", layernorm.to_str().unwrap()]);
    assert!(!ok);
    assert!(stdout.contains("needs a value for BLOCK: add `# tensorlens: BLOCK=...`"), "{stdout}");
    // No such kernel names the ones there are.
    let (ok, _, stderr) = kernel(&python, &["ttgir", layernorm.to_str().unwrap(), "--kernel", "nope"]);
    assert!(!ok && stderr.contains("its kernels: layernorm_fwd_kernel"), "{stderr}");
}

#[test]
fn ir_commands_print_each_form_of_a_triton_and_a_cuda_kernel() {
    let Some(python) = triton_python() else { return };
    let add = fixture("vector_add.py");
    let add = add.to_str().unwrap();
    for (command, mark) in [
        ("ttir", "tt.func"),
        ("ttgir", "ttg.blocked"),
        ("llir", "define"),
        ("ptx", ".entry add_kernel"),
        ("sass", "EXIT"),
    ] {
        let (ok, stdout, stderr) = kernel(&python, &[command, add, "--kernel", "add_kernel"]);
        assert!(ok && stdout.contains(mark), "{command}: {stderr}\n{}", &stdout[..stdout.len().min(300)]);
        assert!(stderr.contains("add_kernel with BLOCK_SIZE=1024 num_warps=4 num_stages=3"), "{stderr}");
    }
    let (ok, _, stderr) = kernel(&python, &["ttgir", add, "--kernel", "add_kernel", "--config", "1"]);
    assert!(!ok && stderr.contains("no configuration 1: the kernel has 1"), "{stderr}");
    let cuda = repo().join("tests/fixtures/kernels/spills.cu");
    let (ok, sass, stderr) = kernel(&python, &["sass", cuda.to_str().unwrap(), "--kernel", "pairwise"]);
    assert!(ok && sass.contains("SpillRefill") && sass.contains("//## File"), "{stderr}");
    let (ok, _, stderr) = kernel(&python, &["llir", cuda.to_str().unwrap(), "--kernel", "pairwise"]);
    assert!(!ok && stderr.contains("llir is Triton's; a CUDA kernel has ptx and sass"), "{stderr}");
}
