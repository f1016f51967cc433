//! The server's side of the Triton compile worker (`triton_worker.py`, shipped inside the binary):
//! which Python runs it, the requests it takes and the answers it gives. Triton is a Python
//! package, so the compile runs in the user's environment, in a worker kept warm between requests
//! (`process::LineWorker`); a compile that hangs or crashes costs the worker, never the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::process::{LineWorker, ProcessError};
use super::toolchain::Settings;
use super::triton::Literal;
use super::triton_modules::HelperModule;
use super::triton_timing::LaunchInfo;
use super::Cancel;

/// The worker script, written to the cache folder on first use.
pub const SCRIPT: &str = include_str!("triton_worker.py");

/// A Python that can run the worker: the `pythonPath` setting, else the active virtual or conda
/// environment's, else `python3` on `PATH`; with where it came from, for messages.
pub fn python(settings: &Settings) -> (PathBuf, &'static str) {
    if let Some(path) = &settings.python_path {
        return (path.clone(), "the `pythonPath` setting");
    }
    for (var, what) in
        [("VIRTUAL_ENV", "the active virtual environment"), ("CONDA_PREFIX", "the active conda environment")]
    {
        if let Some(prefix) = std::env::var_os(var) {
            let python = Path::new(&prefix).join("bin").join("python");
            if python.is_file() {
                return (python, what);
            }
        }
    }
    (PathBuf::from("python3"), "`python3` on PATH")
}

/// Where the worker script is written: `$XDG_CACHE_HOME/tensorlens/triton_worker-<hash>.py`, so a
/// new build never runs an old script.
fn script_path() -> std::io::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("tensorlens");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("triton_worker-{:016x}.py", super::document::text_hash(SCRIPT)));
    if std::fs::read_to_string(&path).ok().as_deref() != Some(SCRIPT) {
        // Written whole, then renamed: a second server starting at the same time never runs half.
        let partial = dir.join(format!("triton_worker-{}.partial", std::process::id()));
        std::fs::write(&partial, SCRIPT)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(path)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TritonError {
    #[error("could not write the Triton worker script: {0}")]
    Script(String),
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// Triton cannot be imported by that Python.
    #[error(
        "Triton is not usable with {python} ({from}): {error}. Install it there (`pip install triton`), or point the \
         `pythonPath` setting at a Python that has it"
    )]
    NoTriton { python: String, from: &'static str, error: String },
    /// The worker refused the request or failed inside (not a compile error of the kernel).
    #[error("the Triton worker: {0}")]
    Worker(String),
}

/// One configuration to compile.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRequest {
    pub constexprs: Vec<(String, Literal)>,
    pub num_warps: u32,
    pub num_stages: u32,
    /// Parameters to compile as 16-divisible (`tt.divisibility=16`), as a launch specializes them.
    pub divisibility_16: Vec<String>,
}

/// Everything that goes into a compile; also the key results are cached by.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileRequest {
    pub filename: String,
    pub source: String,
    pub kernel: String,
    pub signature: Vec<(String, String)>,
    pub configs: Vec<ConfigRequest>,
    /// `90` for sm_90.
    pub arch: u32,
    /// IR texts wanted back: `ttir`, `ttgir`, `llir`, `ptx`, `sass`.
    pub want: Vec<&'static str>,
    /// The nvdisasm for the SASS, when the toolchain has one: a newer one than Triton bundles
    /// marks spill stores and loads.
    pub nvdisasm: Option<PathBuf>,
    /// Helper modules the source imports (`triton_modules`).
    pub modules: Vec<HelperModule>,
    /// What could not be followed into them, for people; not sent.
    pub notes: Vec<String>,
}

/// `[(k, v)]` as a JSON object in that order (Triton matches the signature to the parameters).
struct Ordered<'a, V>(&'a [(String, V)]);

impl<V: Serialize> Serialize for Ordered<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Options {
    num_warps: u32,
    num_stages: u32,
}

#[derive(Serialize)]
struct WireConfig<'a> {
    constexprs: Ordered<'a, Literal>,
    options: Options,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    divisibility_16: &'a [String],
}

#[derive(Serialize)]
struct WireCompile<'a> {
    id: u64,
    op: &'static str,
    filename: &'a str,
    source: &'a str,
    kernel: &'a str,
    signature: Ordered<'a, String>,
    arch: u32,
    want: &'a [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    nvdisasm: Option<&'a Path>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    modules: &'a [HelperModule],
    configs: Vec<WireConfig<'a>>,
}

/// What one configuration compiled to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compiled {
    pub name: String,
    pub arch: String,
    pub num_warps: u32,
    pub num_stages: u32,
    pub registers: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
    pub shared_bytes: u32,
    #[serde(default)]
    pub local_bytes: u32,
    pub compile_ms: f64,
    #[serde(default)]
    pub triton_ms: Option<f64>,
    #[serde(default)]
    pub cache_hit: bool,
    pub triton: String,
    #[serde(default)]
    pub ir: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What launching it takes (the worker's `launch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchInfo>,
}

/// A compile error of the kernel's own code, on a 1-based line and column of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompileFailure {
    #[serde(default)]
    pub stage: Option<String>,
    pub error: String,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub column: Option<u32>,
    #[serde(default)]
    pub function: Option<String>,
}

/// Each configuration's outcome, in the order asked.
pub type Outcomes = Vec<Result<Compiled, CompileFailure>>;

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    results: Vec<serde_json::Value>,
}

/// Reads one result of a `configs` answer.
fn outcome(value: serde_json::Value) -> Result<Result<Compiled, CompileFailure>, TritonError> {
    let ok = value.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
    let kind = value.get("kind").and_then(|v| v.as_str()).map(str::to_string);
    if ok {
        return serde_json::from_value(value).map(Ok).map_err(|e| TritonError::Worker(format!("its answer: {e}")));
    }
    match kind.as_deref() {
        Some("compile") => {
            serde_json::from_value(value).map(Err).map_err(|e| TritonError::Worker(format!("its answer: {e}")))
        }
        _ => Err(TritonError::Worker(value.get("error").and_then(|e| e.as_str()).unwrap_or("no answer").to_string())),
    }
}

pub struct TritonWorker {
    worker: LineWorker,
    python: PathBuf,
    from: &'static str,
}

impl TritonWorker {
    pub fn new(python: PathBuf, from: &'static str) -> Result<TritonWorker, TritonError> {
        let script = script_path().map_err(|e| TritonError::Script(e.to_string()))?;
        let command = vec![python.display().to_string(), script.display().to_string()];
        Ok(TritonWorker { worker: LineWorker::new("Triton worker", command), python, from })
    }

    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Compiles every configuration of `request` in one round trip.
    pub fn compile(
        &mut self,
        request: &CompileRequest,
        timeout: Duration,
        cancel: &Cancel,
    ) -> Result<Outcomes, TritonError> {
        let line = self.worker.exchange(
            |id| {
                let wire = WireCompile {
                    id,
                    op: "compile",
                    filename: &request.filename,
                    source: &request.source,
                    kernel: &request.kernel,
                    signature: Ordered(&request.signature),
                    arch: request.arch,
                    want: &request.want,
                    nvdisasm: request.nvdisasm.as_deref(),
                    modules: &request.modules,
                    configs: request
                        .configs
                        .iter()
                        .map(|c| WireConfig {
                            constexprs: Ordered(&c.constexprs),
                            options: Options { num_warps: c.num_warps, num_stages: c.num_stages },
                            divisibility_16: &c.divisibility_16,
                        })
                        .collect(),
                };
                serde_json::to_string(&wire).expect("requests serialize")
            },
            timeout,
            cancel,
        )?;
        let answer: Answer =
            serde_json::from_str(&line).map_err(|e| TritonError::Worker(format!("its answer: {e}")))?;
        if !answer.ok {
            let error = answer.error.unwrap_or_default();
            return Err(match answer.kind.as_deref() {
                Some("environment") => {
                    TritonError::NoTriton { python: self.python.display().to_string(), from: self.from, error }
                }
                _ => TritonError::Worker(error),
            });
        }
        answer.results.into_iter().map(outcome).collect()
    }

    pub fn stop(&mut self) {
        self.worker.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_the_signature_in_parameter_order() {
        let signature = vec![("z_ptr".to_string(), "*fp32".to_string()), ("a".to_string(), "i32".to_string())];
        let constexprs = vec![("BLOCK".to_string(), Literal::Int(64)), ("A".to_string(), Literal::Bool(true))];
        let wire = WireCompile {
            id: 7,
            op: "compile",
            filename: "/w/k.py",
            source: "src",
            kernel: "k",
            signature: Ordered(&signature),
            arch: 90,
            want: &["ptx"],
            nvdisasm: None,
            modules: &[],
            configs: vec![WireConfig {
                constexprs: Ordered(&constexprs),
                options: Options { num_warps: 4, num_stages: 3 },
                divisibility_16: &[],
            }],
        };
        assert_eq!(
            serde_json::to_string(&wire).unwrap(),
            r#"{"id":7,"op":"compile","filename":"/w/k.py","source":"src","kernel":"k","signature":{"z_ptr":"*fp32","a":"i32"},"arch":90,"want":["ptx"],"configs":[{"constexprs":{"BLOCK":64,"A":true},"options":{"num_warps":4,"num_stages":3}}]}"#
        );
    }

    #[test]
    fn a_missing_python_or_triton_is_a_clear_error() {
        let mut worker = TritonWorker::new(PathBuf::from("/nonexistent/python"), "the `pythonPath` setting").unwrap();
        let request = CompileRequest {
            filename: "/w/k.py".into(),
            source: String::new(),
            kernel: "k".into(),
            signature: Vec::new(),
            configs: Vec::new(),
            arch: 90,
            want: Vec::new(),
            nvdisasm: None,
            modules: Vec::new(),
            notes: Vec::new(),
        };
        let err = worker.compile(&request, Duration::from_secs(5), &Cancel::default()).unwrap_err();
        assert!(err.to_string().contains("could not start the Triton worker `/nonexistent/python"), "{err}");
        // A Python without triton (the system one, when it has none) says what to install.
        let (python, from) = (PathBuf::from("python3"), "`python3` on PATH");
        let has_triton = std::process::Command::new(&python).args(["-c", "import triton"]).output();
        if has_triton.is_ok_and(|o| !o.status.success()) {
            let mut worker = TritonWorker::new(python, from).unwrap();
            let err = worker.compile(&request, Duration::from_secs(20), &Cancel::default()).unwrap_err();
            assert!(matches!(err, TritonError::NoTriton { .. }), "{err:?}");
            assert!(err.to_string().contains("pip install triton"), "{err}");
        }
    }
}
