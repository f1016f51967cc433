#![allow(dead_code)] // Shared with the LSP tests, which use a part of it.
//! Finding the toolkit folder that `tests/cuda/setup` installs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The unpacked wheels' `nvidia/cu13` folder, installing it on first use. Panics with the setup
/// script's output when it cannot be installed: these tests must not pass quietly without it.
pub fn toolkit() -> &'static PathBuf {
    static TOOLKIT: OnceLock<PathBuf> = OnceLock::new();
    TOOLKIT.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let output = Command::new("bash").arg(repo.join("tests/cuda/setup")).output().expect("run tests/cuda/setup");
        assert!(output.status.success(), "tests/cuda/setup failed:\n{}", String::from_utf8_lossy(&output.stderr));
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// Builds the stand-in NVIDIA driver (tests/cuda/fake_libcuda.c) with cc, once per test binary.
/// The folder holding the stand-in as both `libcuda.so.1` and `libcuda.so`.
pub fn stand_in() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fake-libcuda");
        std::fs::create_dir_all(&dir).unwrap();
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cuda/fake_libcuda.c");
        let built = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(dir.join("libcuda.so.1"))
            .arg(&source)
            .output()
            .expect("run cc");
        assert!(built.status.success(), "building the stand-in failed:\n{}", String::from_utf8_lossy(&built.stderr));
        let _ = std::fs::remove_file(dir.join("libcuda.so"));
        std::os::unix::fs::symlink("libcuda.so.1", dir.join("libcuda.so")).unwrap();
        dir
    })
}
