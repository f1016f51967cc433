//! A hostile workspace, end to end: a user catalog whose entries carry `javascript:` and
//! `command:` links and markup in their words, and a kernel whose includes reach for a device
//! file, a file outside the workspace and a symlink out of it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::client::{find, Client};

/// A fresh folder under the temp folder; removed first if a run before left it.
fn temp_folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tensorlens-trust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uri_of(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Markup counts only where no backslash escapes its first character.
fn has_unescaped(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| !text[..at].ends_with('\\'))
}

const EVIL_CATALOG: &str = r#"[system]
id = "evilpkg"
name = "EvilPkg"
group = "research"
maintainer = "<img src=x onerror=alert(1)>"
summary = "A package."
docs = "https://example.com/evilpkg"
guide = "command:workbench.action.terminal.new"
python_modules = ["evilpkg"]

[[symbols]]
name = "evilpkg.run"
kind = "function"
summary = "[run](command:workbench.action.terminal.new) <img src=x onerror=alert(1)> **now**"
docs = "javascript:alert(1)"

[[symbols]]
name = "evilpkg.open"
kind = "function"
summary = "Opens `x`](command:workbench.action.terminal.new)."
docs = "command:workbench.action.terminal.new"
"#;

#[test]
fn a_hostile_user_catalog_gets_no_link_and_no_markup_through() {
    let root = temp_folder("catalog");
    let dir = root.join(".tensorlens/catalog");
    std::fs::create_dir_all(&dir).unwrap();
    let catalog_file = dir.join("evilpkg.toml");
    std::fs::write(&catalog_file, EVIL_CATALOG).unwrap();
    let (mut client, _) = Client::start(json!({}), Some(&root));

    // The catalog file hears about each refused link, at its value; the file itself still loads.
    let catalog_uri = uri_of(&catalog_file);
    let published =
        client.wait_for(|n| n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == catalog_uri);
    let diagnostics = published["params"]["diagnostics"].as_array().unwrap().clone();
    assert_eq!(diagnostics.len(), 3, "{diagnostics:?}");
    for diagnostic in &diagnostics {
        let message = diagnostic["message"].as_str().unwrap();
        assert!(message.contains("is not an https URL; the link is left out"), "{message}");
        assert!(!message.contains("this file is not loaded"), "{message}");
    }
    let lines: Vec<u64> = diagnostics.iter().map(|d| d["range"]["start"]["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [7, 14, 20], "guide, then each symbol's docs");

    let uri = uri_of(&root.join("use.py"));
    let text = "import evilpkg\nevilpkg.run()\nevilpkg.open()\n";
    client.open(&uri, "python", text);
    let (run_line, run_col) = find(text, "run()", 1);
    assert!(super::eventually(|| client.hover_text(&uri, run_line, run_col).starts_with("**evilpkg.run**")));
    let run = client.hover_text(&uri, run_line, run_col);
    assert!(run.contains("\\[run\\](command:workbench.action.terminal.new) \\<img src=x"), "{run}");
    let (open_line, open_col) = find(text, "open()", 1);
    let open = client.hover_text(&uri, open_line, open_col);
    assert!(open.contains("Opens `x`\\](command:"), "{open}");
    let (card_line, card_col) = find(text, "evilpkg", 2);
    let card = client.hover_text(&uri, card_line, card_col);
    assert!(card.contains("\\<img src=x onerror=alert(1)>"), "{card}");
    for hover in [&run, &open, &card] {
        for markup in ["](command:", "](javascript:", "<img", "**now"] {
            assert!(!has_unescaped(hover, markup), "{markup:?} in\n{hover}");
        }
        assert!(!hover.contains("javascript:"), "{hover}");
    }
    assert!(card.contains("[Documentation](https://example.com/evilpkg)") && !card.contains("[Guide]"), "{card}");

    // No document link and no code action leads anywhere but https.
    let links = client.request("textDocument/documentLink", json!({ "textDocument": { "uri": uri } }));
    let targets: Vec<&str> = links.as_array().unwrap().iter().filter_map(|l| l["target"].as_str()).collect();
    assert!(!targets.is_empty() && targets.iter().all(|t| t.starts_with("https://")), "{targets:?}");
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "context": { "diagnostics": [] },
                "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 2, "character": 14 } } }),
    );
    let opened: Vec<String> = actions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["command"]["arguments"][0].as_str().map(str::to_string))
        .collect();
    assert!(!opened.is_empty() && opened.iter().all(|u| u.starts_with("https://")), "{opened:?}");
    client.shutdown();
    std::fs::remove_dir_all(&root).unwrap();
}

/// The test toolkit's folder, or `None` with the reason printed when NVRTC cannot be installed.
fn nvrtc_toolkit() -> Option<PathBuf> {
    match std::panic::catch_unwind(|| super::cuda_support::toolkit().clone()) {
        Ok(toolkit) if toolkit.join("lib/libnvrtc.so.13").is_file() => Some(toolkit),
        _ => {
            eprintln!("skipped: NVRTC is not installed here and tests/cuda/setup could not install it");
            None
        }
    }
}

/// What the outside file holds: a kernel whose name would be in the PTX had it been compiled.
const MARKER: &str = "tensorlens_outside_marker_5f3e";

#[test]
fn includes_outside_the_workspace_are_not_read_and_the_server_lives() {
    let Some(toolkit) = nvrtc_toolkit() else { return };
    let base = temp_folder("includes");
    let workspace = base.join("ws");
    std::fs::create_dir_all(workspace.join("src")).unwrap();
    std::fs::write(base.join("outside.h"), format!("__global__ void {MARKER}(int* p) {{ p[0] = 7; }}\n")).unwrap();
    std::os::unix::fs::symlink(base.join("outside.h"), workspace.join("src/link.h")).unwrap();
    std::fs::write(workspace.join("src/ok.h"), "#define SCALE 2.0f\n").unwrap();
    let path = workspace.join("src/k.cu");
    let text = "#include \"/dev/zero\"\n#include \"../../outside.h\"\n#include \"link.h\"\n#include \"ok.h\"\n\
                __global__ void k(float* x) { x[threadIdx.x] *= SCALE; }\n";
    std::fs::write(&path, text).unwrap();

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlens"));
    command.arg("serve");
    let (mut client, _) =
        Client::spawn_with_options(command, json!({}), Some(&workspace), json!({ "nvrtcPath": toolkit }));
    let uri = uri_of(&path);
    client.open(&uri, "cuda-cpp", text);

    let response = client.request_raw(
        "workspace/executeCommand",
        json!({ "command": "tensorlens.analyzeKernel", "arguments": [{ "uri": uri, "kernel": "k" }] }),
    );
    let result = &response["result"];
    let refused: Vec<&str> = result["refused_includes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(
        refused,
        [
            "include \"/dev/zero\" is not a regular file; not read",
            "include \"../../outside.h\" is outside the workspace; not read",
            "include \"link.h\" is outside the workspace; not read",
        ],
        "{response}"
    );
    assert!(result["registers"].as_u64().is_some(), "the kernel still compiles with what it may read: {response}");
    assert!(!response.to_string().contains(MARKER), "{response}");

    // Each refusal is a warning on its include's line.
    let published = client.wait_for(|n| {
        n["method"] == "textDocument/publishDiagnostics"
            && n["params"]["uri"] == uri
            && n["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    let warned: Vec<u64> = published["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["message"].as_str().is_some_and(|m| m.ends_with("not read")))
        .map(|d| d["range"]["start"]["line"].as_u64().unwrap())
        .collect();
    assert_eq!(warned, [0, 1, 2], "{published}");

    let ptx = client.request(
        "workspace/executeCommand",
        json!({ "command": "tensorlens.showPtx", "arguments": [{ "uri": uri, "kernel": "k" }] }),
    );
    let ptx_text = ptx["text"].as_str().unwrap();
    assert!(ptx_text.contains(".entry") && !ptx_text.contains(MARKER), "{ptx_text:.300}");

    // Still alive and answering.
    let (line, col) = find(text, "threadIdx", 0);
    assert!(client.hover_text(&uri, line, col).contains("threadIdx"));
    client.shutdown();
    std::fs::remove_dir_all(&base).unwrap();
}
