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
