//! A hostile workspace, end to end: a cloned repository holding its own `ptxas` and `libnvrtc.so`
//! (each leaves a marker file behind when run or loaded), named by the settings or planted where
//! discovery looks (a `.venv`). Untrusted, the server must run and load none of them, say so in the
//! toolchain answer, still analyse kernels with the real tools, and stay up. Trusted, the same paths
//! are used, so the markers appear: that is what makes the untrusted checks able to fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::client::Client;
use super::cuda_support::toolkit;

const KERNEL: &str = "__global__ void scale(float* x, float a, int n) {\n    int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (i < n) x[i] *= a;\n}\n";

/// The repository's files, and where its programs would leave their marks.
struct Hostile {
    root: PathBuf,
    ptxas: PathBuf,
    nvrtc_dir: PathBuf,
    venv: PathBuf,
    kernel_uri: String,
}

impl Hostile {
    fn new(name: &str) -> Hostile {
        let root = std::env::temp_dir().join(format!("tensorlens-trust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("tools/bin")).unwrap();
        let ptxas = root.join("tools/bin/ptxas");
        write_script(&ptxas, &root.join("ran-ptxas"));
        let nvrtc_dir = root.join("tools/lib");
        build_library(&nvrtc_dir.join("libnvrtc.so.13"), &root.join("loaded-nvrtc"));
        // Where `pip install nvidia-cuda-nvrtc nvidia-cuda-nvcc` into the project's .venv puts them.
        let venv = root.join(".venv");
        let wheel = venv.join("lib/python3.12/site-packages/nvidia/cu13");
        build_library(&wheel.join("lib/libnvrtc.so.13"), &root.join("loaded-venv-nvrtc"));
        write_script(&wheel.join("bin/ptxas"), &root.join("ran-venv-ptxas"));
        std::fs::write(root.join("scale.cu"), KERNEL).unwrap();
        let kernel_uri = format!("file://{}", root.join("scale.cu").display());
        Hostile { root, ptxas, nvrtc_dir, venv, kernel_uri }
    }

    /// The markers that exist: which of the planted programs ran or libraries were loaded.
    fn marks(&self) -> Vec<&'static str> {
        ["ran-ptxas", "loaded-nvrtc", "loaded-venv-nvrtc", "ran-venv-ptxas"]
            .into_iter()
            .filter(|mark| self.root.join(mark).exists())
            .collect()
    }

    /// `tensorlens serve` with the workspace as its root, no CUDA from the environment but what
    /// `env` adds, and `options` as its initializationOptions.
    fn serve(&self, env: &[(&str, &Path)], options: Value) -> Client {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tensorlens"));
        command.arg("serve").current_dir(&self.root);
        for var in ["CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH"] {
            command.env_remove(var);
        }
        for (var, value) in env {
            command.env(var, value);
        }
        let (mut client, _) = Client::spawn_with_options(command, json!({}), Some(&self.root), options);
        client.open(&self.kernel_uri, "cuda-cpp", KERNEL);
        client
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A `ptxas` that leaves `marker` and fails.
fn write_script(path: &Path, marker: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display())).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A shared library whose initialiser leaves `marker`: loading it is running its code. It has no
/// soname, so the loader never hands it out for a later load by name.
fn build_library(path: &Path, marker: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let source = path.with_extension("c");
    let code = format!(
        "#include <stdio.h>\n__attribute__((constructor)) static void planted(void) {{\n  FILE* f = fopen(\"{}\", \"w\");\n  if (f) fclose(f);\n}}\n",
        marker.display()
    );
    std::fs::write(&source, code).unwrap();
    let built = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(path).arg(&source).output().expect("run cc");
    assert!(built.status.success(), "building the planted library failed:\n{}", String::from_utf8_lossy(&built.stderr));
    std::fs::remove_file(source).unwrap();
}

fn toolchain(client: &mut Client) -> Value {
    client.request("workspace/executeCommand", json!({ "command": "tensorlens.kernelToolchain" }))
}

fn run(client: &mut Client, command: &str, uri: &str) -> Value {
    client.request_raw(
        "workspace/executeCommand",
        json!({ "command": command, "arguments": [{ "uri": uri, "kernel": "scale" }] }),
    )
}

fn ignored(toolchain: &Value) -> Vec<String> {
    toolchain["ignored"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

#[test]
fn an_untrusted_workspace_cannot_make_the_server_run_its_programs() {
    let ws = Hostile::new("settings");
    let toolkit = toolkit();
    let options = json!({ "workspaceTrusted": false, "nvrtcPath": ws.nvrtc_dir, "ptxasPath": ws.ptxas });
    let mut client = ws.serve(&[("CUDA_HOME", toolkit)], options);

    // The settings are passed over, with why, and discovery finds the real tools outside.
    let answer = toolchain(&mut client);
    let notes = ignored(&answer);
    let says = |setting: &str, path: &Path| {
        notes
            .iter()
            .any(|n| n.contains(setting) && n.contains(&path.display().to_string()) && n.contains("not trusted"))
    };
    assert!(says("nvrtcPath", &ws.nvrtc_dir) && says("ptxasPath", &ws.ptxas), "{answer:#}");
    assert!(answer["summary"].as_str().unwrap().contains("untrusted workspace ignored"), "{answer:#}");
    let nvrtc = answer["nvrtc"]["Ok"]["path"].as_str().unwrap_or_else(|| panic!("{answer:#}"));
    let ptxas = answer["ptxas"]["Ok"].as_str().unwrap_or_else(|| panic!("{answer:#}"));
    assert!(!nvrtc.starts_with(ws.root.to_str().unwrap()) && !ptxas.starts_with(ws.root.to_str().unwrap()));

    // Analysis still works, with the real ptxas; timing, which would run the kernel, is refused.
    let analysis = run(&mut client, "tensorlens.analyzeKernel", &ws.kernel_uri);
    assert!(analysis["result"]["registers"].as_u64().is_some_and(|r| r > 0), "{analysis:#}");
    let timing = run(&mut client, "tensorlens.timeKernel", &ws.kernel_uri);
    assert!(timing["error"]["message"].as_str().unwrap().contains("not trusted"), "{timing:#}");

    // A later settings payload that says nothing about trust keeps the workspace untrusted.
    client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "tensorlens": { "ptxasPath": ws.ptxas, "cudaArch": "sm_80" } } }),
    );
    let again = run(&mut client, "tensorlens.analyzeKernel", &ws.kernel_uri);
    assert_eq!(again["result"]["arch"], "sm_80", "the new settings apply: {again:#}");
    assert!(again["result"]["registers"].as_u64().is_some_and(|r| r > 0), "{again:#}");
    assert!(ignored(&toolchain(&mut client)).iter().any(|n| n.contains("ptxasPath")));

    assert_eq!(ws.marks(), Vec::<&str>::new(), "a planted program ran or a planted library was loaded");
    client.shutdown();
}

#[test]
fn an_untrusted_workspace_cannot_plant_nvrtc_in_its_venv() {
    let ws = Hostile::new("venv");
    let mut client = ws.serve(&[("VIRTUAL_ENV", &ws.venv)], json!({ "workspaceTrusted": false }));
    let answer = toolchain(&mut client);
    let planted = ws.venv.join("lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13");
    assert!(
        ignored(&answer).iter().any(|n| n.starts_with("NVRTC ") && n.contains(&planted.display().to_string())),
        "{answer:#}"
    );
    // Whatever else this machine has may be found; nothing from the workspace is.
    if let Some(path) = answer["nvrtc"]["Ok"]["path"].as_str() {
        assert!(!path.starts_with(ws.root.to_str().unwrap()), "{answer:#}");
    }
    let analysis = run(&mut client, "tensorlens.analyzeKernel", &ws.kernel_uri);
    assert!(analysis.get("result").is_some(), "an answer, success or a message: {analysis:#}");
    assert_eq!(ws.marks(), Vec::<&str>::new(), "a planted program ran or a planted library was loaded");
    client.shutdown();
}

/// The control: the same workspace, trusted (the default for a client that does not say), uses
/// every one of those paths.
#[test]
fn a_trusted_workspace_uses_the_same_paths() {
    let ws = Hostile::new("trusted");
    let toolkit = toolkit();
    let mut client = ws.serve(&[("CUDA_HOME", toolkit)], json!({ "ptxasPath": ws.ptxas }));
    let analysis = run(&mut client, "tensorlens.analyzeKernel", &ws.kernel_uri);
    assert!(analysis["result"]["error"].as_str().is_some_and(|e| e.contains("ptxas")), "{analysis:#}");
    assert!(ignored(&toolchain(&mut client)).is_empty());
    client.shutdown();
    assert_eq!(ws.marks(), ["ran-ptxas"]);

    let mut client = ws.serve(&[], json!({ "nvrtcPath": ws.nvrtc_dir, "workspaceTrusted": true }));
    toolchain(&mut client);
    client.shutdown();
    assert_eq!(ws.marks(), ["ran-ptxas", "loaded-nvrtc"]);

    let mut client = ws.serve(&[("VIRTUAL_ENV", &ws.venv)], json!({}));
    toolchain(&mut client);
    client.shutdown();
    assert_eq!(ws.marks(), ["ran-ptxas", "loaded-nvrtc", "loaded-venv-nvrtc"]);
}
