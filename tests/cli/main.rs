//! The command line: `tensorlens explain`, `catalog search`, `catalog check`, and their errors.

use std::process::Command;

fn tensorlens(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tensorlens")).args(args).output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn explain_prints_references_with_positions() {
    let (ok, out, _) = tensorlens(&["explain", &fixture("train.py"), &fixture("gemm.cu")]);
    assert!(ok);
    let line = out.lines().find(|l| l.contains(" torch.nn.functional.gelu ")).expect("gelu line");
    assert!(line.trim_start().starts_with("20:28 "), "{line}");
    assert!(line.contains("call") && line.contains("PyTorch"), "{line}");
    assert!(out.lines().any(|l| l.contains("decorator") && l.contains("jax.jit")));
    assert!(out.lines().any(|l| l.contains("kernel launch") && l.contains("sgemm_tiled")));
    assert!(out.lines().any(|l| l.contains("unchecked-status") && l.contains("cudaMalloc")));
    assert!(out.lines().any(|l| l.contains("deprecated-api") && l.contains("torch.cuda.amp.GradScaler")));
}

#[test]
fn explain_json_is_one_object_per_line() {
    let (ok, out, _) = tensorlens(&["explain", "--json", &fixture("gemm.cu")]);
    assert!(ok);
    let values: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let malloc = values.iter().find(|v| v["name"] == "cudaMalloc").expect("cudaMalloc");
    assert_eq!(malloc["role"], "call");
    assert_eq!(malloc["known"], true);
    assert!(malloc["docs"].as_str().unwrap().starts_with("https://docs.nvidia.com/"));
}

#[test]
fn explain_finds_cuda_builtins_in_macro_bodies() {
    let dir = std::env::temp_dir().join(format!("tensorlens-cli-macro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("reduce.cuh");
    std::fs::write(&file, "#define WARP_SUM(v) \\\n  (v) + __shfl_xor_sync(0xffffffff, (v), 16)\n").unwrap();
    let (ok, out, err) = tensorlens(&["explain", "--json", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let values: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let shfl = values.iter().find(|v| v["name"] == "__shfl_xor_sync").expect("__shfl_xor_sync");
    assert_eq!((shfl["line"].as_u64(), shfl["column"].as_u64()), (Some(2), Some(9)));
    assert_eq!(shfl["role"], "call");
    assert_eq!(shfl["system"], "CUDA");
    assert_eq!(shfl["known"], true);
}

#[test]
fn explain_reports_bad_files_clearly() {
    let dir = std::env::temp_dir().join(format!("tensorlens-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let latin1 = dir.join("latin1.py");
    std::fs::write(&latin1, b"import torch\n# caf\xe9\ntorch.ones(1)\n").unwrap();
    let (ok, out, err) = tensorlens(&["explain", latin1.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(out.contains("torch.ones"), "{out}");

    let (ok, _, err) = tensorlens(&["explain", dir.join("missing.py").to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("missing.py") && err.contains("cannot read"), "{err}");
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let (ok, _, err) = tensorlens(&["explain", notes.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a Python, CUDA or C/C++ file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn catalog_search_and_check() {
    let (ok, out, _) = tensorlens(&["catalog", "search", "matmul", "--limit", "40"]);
    assert!(ok);
    assert!(out.lines().next().unwrap().starts_with("torch.matmul") || out.contains("torch.matmul"), "{out}");
    assert!(out.contains("mlx.core.matmul"));
    let (ok, out, _) = tensorlens(&["catalog", "search", "zzzzzz"]);
    assert!(ok && out.contains("nothing in the catalog matches"));

    let dir = std::env::temp_dir().join(format!("tensorlens-cat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.toml"), "[system]\nid = \"bad\"\nname = \"Bad\"\ngroup = \"nowhere\"\nmaintainer = \"m\"\nsummary = \"s\"\ndocs = \"http://insecure\"\n").unwrap();
    let (ok, out, _) = tensorlens(&["catalog", "check", dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("group \"nowhere\"") && out.contains("not an https URL"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_and_help() {
    let (ok, out, _) = tensorlens(&["--version"]);
    assert!(ok && out.starts_with("tensorlens "));
    let (ok, out, _) = tensorlens(&["--help"]);
    assert!(ok && out.contains("serve") && out.contains("explain") && out.contains("catalog"));
}

#[test]
fn settings_lists_every_key_with_what_it_gives_access_to() {
    let (ok, out, _) = tensorlens(&["settings", "--json"]);
    assert!(ok, "{out}");
    let rows: Vec<serde_json::Value> = out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("no {key} in {out}"));
    assert_eq!(rows.len(), tensorlens::settings::SETTINGS.len());
    assert_eq!(
        (&row("ptxasPath")["access"], &row("ptxasPath")["default"]),
        (&"runs-program".into(), &serde_json::Value::Null)
    );
    assert_eq!(row("cudaIncludePaths")["access"], "reads-files");
    assert_eq!(row("workspaceTrusted")["source"], "editor");
    let (ok, text, _) = tensorlens(&["settings"]);
    assert!(ok && text.contains("timingLauncher") && text.contains("runs a program"), "{text}");
}
