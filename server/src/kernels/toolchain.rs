//! Finding the CUDA pieces analysis needs: NVRTC (loaded into this process through cudarc's
//! dynamic loading), `ptxas`, the CUDA include folder, and a GPU's architecture when one is present.
//! Everything missing becomes a message that says what to install; nothing here panics when CUDA is
//! absent, because cudarc does panic when asked to use a library it cannot open.
//!
//! In a workspace the editor does not trust (`workspaceTrusted: false`), no program or library that
//! lies inside a workspace folder is run or loaded, whether a setting names it or discovery finds it
//! (a `.venv` in the project, a `PATH` entry into it); each one passed over is named, with why, in
//! [`Toolchain::ignored`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The kernel settings users can give (`tensorlens` settings object, camelCase keys).
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Target architecture (`sm_90`) when no GPU says otherwise.
    pub cuda_arch: Option<String>,
    /// `libnvrtc.so.*` itself or a folder holding it (or its `lib`/`lib64`).
    pub nvrtc_path: Option<PathBuf>,
    /// The `ptxas` binary or its folder.
    pub ptxas_path: Option<PathBuf>,
    /// Extra include folders, searched before the CUDA include folder.
    pub cuda_include_paths: Vec<PathBuf>,
    /// Extra NVRTC options (`-DTILE=32`, `--use_fast_math`).
    pub nvrtc_flags: Vec<String>,
    /// Block size for occupancy when no launch or annotation gives one.
    pub kernel_block_size: Option<u32>,
    /// Template arguments per kernel name, for template kernels without an annotation:
    /// `{"reduce": "float, 256"}`.
    pub kernel_template_args: std::collections::BTreeMap<String, String>,
    /// Command prefix that runs the timing worker elsewhere: `["ssh", "gpu-host"]`,
    /// `["srun", "--gres=gpu:1"]`. Empty: on this machine.
    pub timing_launcher: Vec<String>,
    /// The tensorlens binary on the far side of the launcher (default `tensorlens`).
    pub timing_worker: Option<String>,
    /// Time budget per measurement in seconds (default 15).
    pub timing_seconds: Option<f64>,
    /// Relative noise under which sampling stops (default 0.005 = 0.5%).
    pub timing_noise: Option<f64>,
    /// Keep L2 warm between samples instead of clearing it.
    pub timing_hot: bool,
    /// The Python that compiles Triton kernels (it needs `triton`); else the active virtual or
    /// conda environment's, else `python3`.
    pub python_path: Option<PathBuf>,
    /// `false` turns timing off (editors send it for untrusted workspaces).
    pub timing_enabled: Option<bool>,
    /// `false` when the editor does not trust the workspace: no program or library inside
    /// `workspace_roots` is used, and timing is off. Clients that say nothing are trusted.
    pub workspace_trusted: Option<bool>,
    /// An architecture asked for explicitly (the CLI's `--arch`): wins over the GPU's.
    #[serde(skip)]
    pub arch_override: Option<String>,
    /// A block size asked for explicitly (the CLI's `--block`): wins over launches and annotations.
    #[serde(skip)]
    pub block_override: Option<u32>,
    /// The workspace folders: those whose files a kernel may include (see `includes.rs`), and in
    /// which an untrusted workspace's programs and libraries are not used. The server's workspace
    /// folders, the current folder for the CLI. Not a user setting.
    #[serde(skip)]
    pub workspace_roots: Vec<PathBuf>,
}

pub const DEFAULT_ARCH: &str = "sm_90";
pub const DEFAULT_BLOCK_SIZE: u32 = 256;
const INSTALL_HINT: &str = "install the PyPI wheels `nvidia-cuda-nvrtc nvidia-cuda-nvcc nvidia-cuda-runtime` \
(pip install ...) or a CUDA toolkit, or point the `nvrtcPath` / `ptxasPath` settings at them";

impl Settings {
    /// Whether the workspace is trusted (the default, for clients that do not say).
    pub fn trusted(&self) -> bool {
        self.workspace_trusted != Some(false)
    }

    /// Whether kernels may be run: timing not turned off, and the workspace trusted.
    pub fn timing_allowed(&self) -> bool {
        self.trusted() && self.timing_enabled != Some(false)
    }
}

/// What was found, with a reason for each thing that was not.
#[derive(Debug, Clone, Serialize)]
pub struct Toolchain {
    pub nvrtc: Result<Nvrtc, String>,
    pub ptxas: Result<PathBuf, String>,
    /// For the SASS view and the per-line spill and hot-spot hints.
    pub nvdisasm: Result<PathBuf, String>,
    pub include_dirs: Vec<PathBuf>,
    pub gpu: Option<Gpu>,
    /// Programs and libraries not used because they lie inside the untrusted workspace, each a
    /// sentence naming the path, where it came from and why.
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nvrtc {
    pub path: PathBuf,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gpu {
    pub name: String,
    /// `sm_90`.
    pub arch: String,
}

impl Toolchain {
    pub fn discover(settings: &Settings) -> Toolchain {
        let roots: &[PathBuf] = if settings.trusted() { &[] } else { &settings.workspace_roots };
        let mut guard = Guard::new(roots);
        let nvrtc = load_nvrtc(settings.nvrtc_path.as_deref(), &mut guard);
        let nvrtc_lib_dir = nvrtc.as_ref().ok().and_then(|n| n.path.parent().map(Path::to_path_buf));
        let ptxas = find_ptxas(settings.ptxas_path.as_deref(), nvrtc_lib_dir.as_deref(), &mut guard);
        let nvdisasm = find_nvdisasm(ptxas.as_ref().ok(), &mut guard);
        let include_dirs = include_dirs(&settings.cuda_include_paths, nvrtc_lib_dir.as_deref());
        // The driver is opened by its bare name, so the loader's path must be safe for it too.
        let gpu = if guard.loader_hazard.is_none() { gpu().clone() } else { None };
        Toolchain { nvrtc, ptxas, nvdisasm, include_dirs, gpu, ignored: guard.ignored }
    }

    /// The architecture to compile for: the GPU's, else the setting, else `sm_90`.
    pub fn target_arch(&self, settings: &Settings) -> String {
        if let Some(arch) = &settings.arch_override {
            return arch.clone();
        }
        match (&self.gpu, &settings.cuda_arch) {
            (Some(gpu), _) => gpu.arch.clone(),
            (None, Some(arch)) => arch.clone(),
            (None, None) => DEFAULT_ARCH.to_string(),
        }
    }

    /// A one-line state for status bars and health checks.
    pub fn summary(&self) -> String {
        let nvrtc = match &self.nvrtc {
            Ok(n) => format!("NVRTC {}", n.version),
            Err(_) => "no NVRTC".to_string(),
        };
        let ptxas = if self.ptxas.is_ok() { "ptxas" } else { "no ptxas" };
        let gpu = self.gpu.as_ref().map_or("no GPU".to_string(), |g| format!("{} ({})", g.name, g.arch));
        match self.ignored.len() {
            0 => format!("{nvrtc} · {ptxas} · {gpu}"),
            1 => format!("{nvrtc} · {ptxas} · {gpu} · 1 path in the untrusted workspace ignored"),
            n => format!("{nvrtc} · {ptxas} · {gpu} · {n} paths in the untrusted workspace ignored"),
        }
    }
}

/// Why `path` (a program `what` names) may not run here, when the workspace is not trusted and the
/// program lies inside it. A bare name is looked up on `PATH` first.
pub fn refused_program(settings: &Settings, path: &Path, what: &str) -> Option<String> {
    if settings.trusted() {
        return None;
    }
    let resolved = if path.components().count() == 1 {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join(path)).find(|c| c.is_file()))
            .unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let mut guard = Guard::new(&settings.workspace_roots);
    (!guard.allows(&resolved, what)).then(|| guard.ignored.pop().unwrap_or_default())
}

/// Keeps programs and libraries inside an untrusted workspace's folders from being used: a cloned
/// repository can hold a `ptxas` or a `libnvrtc.so` of its own, but it cannot put one anywhere else.
/// With no roots (a trusted workspace) it allows everything.
struct Guard {
    /// Each root as given and as it resolves (symlinks), both compared.
    roots: Vec<(PathBuf, Option<PathBuf>)>,
    /// A `LD_LIBRARY_PATH` entry inside a root, with that root: libraries loaded by bare name
    /// (NVRTC as cudarc opens it, the driver) could come from there.
    loader_hazard: Option<(PathBuf, PathBuf)>,
    ignored: Vec<String>,
}

impl Guard {
    fn new(roots: &[PathBuf]) -> Guard {
        let roots: Vec<(PathBuf, Option<PathBuf>)> =
            roots.iter().map(|root| (lexical(root), root.canonicalize().ok())).collect();
        let mut guard = Guard { roots, loader_hazard: None, ignored: Vec::new() };
        if let Some(path) = std::env::var_os("LD_LIBRARY_PATH") {
            // An empty entry means the current folder, which may well be the workspace.
            let dirs =
                std::env::split_paths(&path).map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d });
            let hazard = dirs.into_iter().find_map(|dir| Some((guard.root_of(&dir)?, dir)));
            guard.loader_hazard = hazard;
        }
        if let Some((root, dir)) = &guard.loader_hazard {
            let note = format!(
                "libraries opened by name (NVRTC, the CUDA driver) were not loaded: LD_LIBRARY_PATH holds {}, \
                 inside the workspace folder {}, which is not trusted",
                dir.display(),
                root.display()
            );
            guard.ignored.push(note);
        }
        guard
    }

    /// The workspace folder `path` lies in, by its path as given or by where it leads.
    fn root_of(&self, path: &Path) -> Option<PathBuf> {
        if self.roots.is_empty() {
            return None;
        }
        let forms = [Some(lexical(path)), path.canonicalize().ok()];
        self.roots.iter().find_map(|(root, resolved)| {
            let inside = forms
                .iter()
                .flatten()
                .any(|p| p.starts_with(root) || resolved.as_ref().is_some_and(|resolved| p.starts_with(resolved)));
            inside.then(|| root.clone())
        })
    }

    /// Whether `path` may be run or loaded; when not, says so in `ignored`. `what` names where the
    /// path came from (``the `ptxasPath` setting``, `NVRTC` for one discovery found).
    fn allows(&mut self, path: &Path, what: &str) -> bool {
        let Some(root) = self.root_of(path) else { return true };
        let note = format!(
            "{what} {} was not used: it lies inside the workspace folder {}, which is not trusted",
            path.display(),
            root.display()
        );
        tracing::warn!("{note}");
        if !self.ignored.contains(&note) {
            self.ignored.push(note);
        }
        false
    }
}

/// `path` made absolute (against the current folder) with `.` and `..` folded, without touching
/// the file system; symlinks are what `canonicalize` is compared for.
fn lexical(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The CUDA major versions whose NVRTC we can drive, newest first.
const NVRTC_NAMES: &[&str] = &["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

/// NVRTC can only be loaded once per process (cudarc keeps the first library it opens), so the
/// first successful load wins; a later change of `nvrtcPath` needs a restart, and says so. A
/// failure is not remembered: settings that arrive later (a client sends them after start-up)
/// get their own try.
fn load_nvrtc(setting: Option<&Path>, guard: &mut Guard) -> Result<Nvrtc, String> {
    static LOADED: std::sync::Mutex<Option<Nvrtc>> = std::sync::Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(nvrtc) = &*loaded {
        // Loaded before the workspace lost its trust (another settings payload): it cannot be
        // unloaded, but it is not called either.
        if !guard.allows(&nvrtc.path, "NVRTC (loaded earlier)") {
            return Err(format!(
                "NVRTC from {} lies inside the untrusted workspace and is not used; restart the server",
                nvrtc.path.display()
            ));
        }
        if let Some(wanted) = setting.filter(|wanted| !nvrtc.path.starts_with(wanted)) {
            tracing::warn!("NVRTC from {} is loaded; restart to use {}", nvrtc.path.display(), wanted.display());
        }
        return Ok(nvrtc.clone());
    }
    let nvrtc = load_nvrtc_once(setting, guard)?;
    *loaded = Some(nvrtc.clone());
    Ok(nvrtc)
}

fn load_nvrtc_once(setting: Option<&Path>, guard: &mut Guard) -> Result<Nvrtc, String> {
    if let Some((root, dir)) = &guard.loader_hazard {
        return Err(format!(
            "NVRTC was not loaded: LD_LIBRARY_PATH holds {}, inside the workspace folder {}, which is not trusted \
             (trust the workspace, or start the editor without that entry)",
            dir.display(),
            root.display()
        ));
    }
    // A setting pointing into the untrusted workspace is passed over as if absent (and named in
    // `ignored`); what discovery finds elsewhere is still used.
    let ignored_setting = setting.filter(|path| !guard.allows(path, "the `nvrtcPath` setting"));
    let setting = setting.filter(|_| ignored_setting.is_none());
    if let Some(path) = setting {
        let found = path.is_file()
            || NVRTC_NAMES
                .iter()
                .any(|name| nvrtc_search_dirs(Some(path)).iter().take(3).any(|dir| dir.join(name).is_file()));
        if !found {
            return Err(format!(
                "NVRTC (libnvrtc.so) was not found at {} (the `nvrtcPath` setting): fix the setting, or {INSTALL_HINT}",
                path.display()
            ));
        }
    }
    let mut tried = Vec::new();
    for dir in nvrtc_search_dirs(setting) {
        for name in NVRTC_NAMES {
            let candidate = if dir.is_file() { dir.clone() } else { dir.join(name) };
            if !candidate.is_file() || !guard.allows(&candidate, "NVRTC") {
                continue;
            }
            tried.push(candidate.display().to_string());
            // Loading by full path first makes cudarc's later load by bare name (`libnvrtc.so.13`)
            // find this same library: the dynamic loader matches already loaded sonames.
            // SAFETY: libnvrtc's initialisers have no preconditions.
            match unsafe { libloading::Library::new(&candidate) } {
                Ok(lib) => {
                    std::mem::forget(lib);
                    return finish_nvrtc_load(Some(candidate));
                }
                Err(err) => tracing::warn!("could not load {}: {err}", candidate.display()),
            }
        }
    }
    // Last, whatever the dynamic loader finds on its own (LD_LIBRARY_PATH, ldconfig).
    finish_nvrtc_load(None).map_err(|err| {
        if let Some(path) = ignored_setting {
            format!(
                "NVRTC (libnvrtc.so) was not found: the `nvrtcPath` setting ({}) lies inside the workspace, which is \
                 not trusted, so it was ignored; trust the workspace, or {INSTALL_HINT}",
                path.display()
            )
        } else if tried.is_empty() {
            format!("NVRTC (libnvrtc.so) was not found: {INSTALL_HINT}")
        } else {
            format!("NVRTC was found but could not be loaded ({}): {err}", tried.join(", "))
        }
    })
}

fn finish_nvrtc_load(path: Option<PathBuf>) -> Result<Nvrtc, String> {
    // SAFETY: only probes whether the library opens.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err("libnvrtc is not on the loader's path".to_string());
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present (checked above), so cudarc's loader does not panic.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(format!("nvrtcVersion failed: {status:?}"));
    }
    let path = path.or_else(|| loaded_library_path("libnvrtc")).unwrap_or_else(|| PathBuf::from("libnvrtc.so"));
    Ok(Nvrtc { path, version: format!("{major}.{minor}") })
}

/// Where a library this process has loaded lives, from `/proc/self/maps`.
fn loaded_library_path(stem: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().filter_map(|line| line.split_whitespace().nth(5)).find_map(|path| {
        let file = Path::new(path).file_name()?.to_str()?;
        (file.starts_with(stem) && !file.contains("builtins")).then(|| PathBuf::from(path))
    })
}

/// Folders that may hold NVRTC, most specific first: the setting, CUDA_HOME / CUDA_PATH, the
/// Python environment's NVIDIA wheels, the usual toolkit folder.
fn nvrtc_search_dirs(setting: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(path) = setting {
        dirs.push(path.to_path_buf());
        dirs.push(path.join("lib"));
        dirs.push(path.join("lib64"));
    }
    for home in cuda_homes() {
        dirs.push(home.join("lib64"));
        dirs.push(home.join("lib"));
    }
    dirs.extend(wheel_roots().into_iter().map(|root| root.join("lib")));
    dirs.push(PathBuf::from("/usr/local/cuda/lib64"));
    dirs
}

fn cuda_homes() -> Vec<PathBuf> {
    ["CUDA_HOME", "CUDA_PATH"].iter().filter_map(std::env::var_os).map(PathBuf::from).collect()
}

/// `site-packages/nvidia/cu13` (and `cu12`) in the Python environments of [`wheel_prefixes`]:
/// where `pip install nvidia-cuda-nvrtc` (or `tensorlens[cuda]`) puts the library.
fn wheel_roots() -> Vec<PathBuf> {
    wheel_roots_in(&wheel_prefixes())
}

/// The environments that may hold NVIDIA's wheels, most specific first: the active virtual
/// environment, the one this binary is installed in (pip, pipx and conda put it at
/// `<prefix>/bin/tensorlens`, and a JupyterLab or an editor may start it without activating that
/// environment), the active conda environment, the user's and the system's Python.
fn wheel_prefixes() -> Vec<PathBuf> {
    let mut prefixes: Vec<PathBuf> = Vec::new();
    prefixes.extend(std::env::var_os("VIRTUAL_ENV").map(PathBuf::from));
    // On Linux this is where /proc/self/exe leads, so a pipx link on PATH leads to its venv.
    prefixes.extend(std::env::current_exe().ok().and_then(|exe| binary_prefix(&exe)));
    prefixes.extend(std::env::var_os("CONDA_PREFIX").map(PathBuf::from));
    prefixes.extend(std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local")));
    prefixes.push(PathBuf::from("/usr/local"));
    prefixes.push(PathBuf::from("/usr"));
    let mut seen = std::collections::HashSet::new();
    prefixes.retain(|prefix| seen.insert(lexical(prefix)));
    prefixes
}

/// `<prefix>` of a binary installed at `<prefix>/bin/NAME`.
fn binary_prefix(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    bin.parent().filter(|prefix| !prefix.as_os_str().is_empty()).map(Path::to_path_buf)
}

fn wheel_roots_in(prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for prefix in prefixes {
        let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else { continue };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("python3")))
            .collect();
        pythons.sort();
        for python in pythons.iter().rev() {
            for packages in ["site-packages", "dist-packages"] {
                for major in ["cu13", "cu12"] {
                    roots.push(python.join(packages).join("nvidia").join(major));
                }
            }
        }
    }
    roots
}

fn find_ptxas(setting: Option<&Path>, nvrtc_lib_dir: Option<&Path>, guard: &mut Guard) -> Result<PathBuf, String> {
    const NVCC_HINT: &str =
        "install the PyPI wheel `nvidia-cuda-nvcc` (pip install nvidia-cuda-nvcc) or a CUDA toolkit";
    // A setting pointing into the untrusted workspace is passed over (and named in `ignored`).
    let ignored_setting = setting.filter(|path| !guard.allows(path, "the `ptxasPath` setting"));
    let setting = setting.filter(|_| ignored_setting.is_none());
    // A path the user gave is the one they want: when it is wrong, say so rather than quietly
    // using another ptxas.
    if let Some(path) = setting {
        let candidates = [path.to_path_buf(), path.join("ptxas"), path.join("bin/ptxas")];
        return match candidates.into_iter().find(|c| c.is_file()) {
            Some(found) if guard.allows(&found, "ptxas from the `ptxasPath` setting") => Ok(found),
            Some(found) => Err(format!(
                "ptxas at {} (the `ptxasPath` setting) leads into the workspace, which is not trusted, so it was not run",
                found.display()
            )),
            None => Err(format!(
                "ptxas was not found at {} (the `ptxasPath` setting): fix the setting, or {NVCC_HINT}",
                path.display()
            )),
        };
    }
    let mut candidates = Vec::new();
    if let Some(lib) = nvrtc_lib_dir {
        // The wheels and toolkits both keep bin/ beside lib/.
        candidates.push(lib.join("../bin/ptxas"));
    }
    candidates.extend(cuda_homes().into_iter().map(|home| home.join("bin/ptxas")));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("ptxas")));
    }
    candidates.extend(wheel_roots().into_iter().map(|root| root.join("bin/ptxas")));
    candidates.push(PathBuf::from("/usr/local/cuda/bin/ptxas"));
    candidates
        .into_iter()
        .find(|c| c.is_file() && guard.allows(c, "ptxas"))
        .map(|c| c.canonicalize().unwrap_or(c))
        .ok_or_else(|| match ignored_setting {
            Some(path) => format!(
                "ptxas was not found: the `ptxasPath` setting ({}) lies inside the workspace, which is not trusted, \
                 so it was ignored; trust the workspace, or {NVCC_HINT}",
                path.display()
            ),
            None => format!("ptxas was not found: {NVCC_HINT}, or set `ptxasPath`"),
        })
}

/// nvdisasm beside the ptxas in use first (the same toolkit, or the `nvidia-cuda-nvdisasm` wheel
/// unpacked beside `nvidia-cuda-nvcc`), else where a ptxas would be looked for.
fn find_nvdisasm(ptxas: Option<&PathBuf>, guard: &mut Guard) -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> =
        ptxas.and_then(|p| p.parent()).map(|dir| dir.join("nvdisasm")).into_iter().collect();
    candidates.extend(cuda_homes().into_iter().map(|home| home.join("bin/nvdisasm")));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("nvdisasm")));
    }
    candidates.extend(wheel_roots().into_iter().map(|root| root.join("bin/nvdisasm")));
    candidates.push(PathBuf::from("/usr/local/cuda/bin/nvdisasm"));
    candidates.into_iter().find(|c| c.is_file() && guard.allows(c, "nvdisasm")).map(|c| c.canonicalize().unwrap_or(c)).ok_or_else(
        || "nvdisasm was not found (for SASS): install the PyPI wheel `nvidia-cuda-nvdisasm` (pip install nvidia-cuda-nvdisasm) or a CUDA toolkit".to_string(),
    )
}

/// Include folders for NVRTC: the user's, then the CUDA include folder beside the loaded NVRTC (or
/// under CUDA_HOME), then its `cccl` folder (CUDA 13 keeps libcu++ and `nv/target` there, and
/// `cooperative_groups.h` needs them).
fn include_dirs(user: &[PathBuf], nvrtc_lib_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = user.to_vec();
    let mut toolkit: Vec<PathBuf> = nvrtc_lib_dir.map(|lib| lib.join("../include")).into_iter().collect();
    toolkit.extend(cuda_homes().into_iter().map(|home| home.join("include")));
    toolkit.push(PathBuf::from("/usr/local/cuda/include"));
    if let Some(found) = toolkit.into_iter().find(|dir| dir.join("cuda_fp16.h").is_file()) {
        let found = found.canonicalize().unwrap_or(found);
        let cccl = found.join("cccl");
        dirs.push(found);
        if cccl.is_dir() {
            dirs.push(cccl);
        }
    }
    dirs
}

/// The first GPU's name and architecture, asked of the driver once per process. `None` without a
/// driver or a device, which is the common case and not an error.
fn gpu() -> &'static Option<Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| {
        use cudarc::driver::{result, sys};
        // SAFETY: only probes whether libcuda opens; cudarc would panic on any call without it.
        if !unsafe { sys::is_culib_present() } {
            return None;
        }
        result::init().ok()?;
        let device = result::device::get(0).ok()?;
        // SAFETY: `device` is a valid handle from cuDeviceGet.
        let (major, minor) = unsafe {
            (
                result::device::get_attribute(
                    device,
                    sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                )
                .ok()?,
                result::device::get_attribute(
                    device,
                    sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                )
                .ok()?,
            )
        };
        let name = result::device::get_name(device).unwrap_or_else(|_| "GPU".to_string());
        Some(Gpu { name, arch: format!("sm_{major}{minor}") })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch workspace holding `bin/ptxas`, and a folder outside it holding a link into it.
    fn scratch(name: &str) -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("tensorlens-guard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let workspace = base.join("ws");
        std::fs::create_dir_all(workspace.join("bin")).unwrap();
        std::fs::write(workspace.join("bin/ptxas"), "#!/bin/sh\n").unwrap();
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(workspace.join("bin/ptxas"), outside.join("ptxas")).unwrap();
        std::os::unix::fs::symlink("/bin/sh", workspace.join("bin/sh-link")).unwrap();
        (base, workspace)
    }

    #[test]
    fn the_guard_refuses_paths_inside_the_workspace_however_they_are_spelled() {
        let (base, workspace) = scratch("spelled");
        let mut guard = Guard::new(std::slice::from_ref(&workspace));
        assert!(!guard.allows(&workspace.join("bin/ptxas"), "the `ptxasPath` setting"));
        // `..` that comes back in, a link from outside that leads in, and a link inside that leads out.
        assert!(!guard.allows(&workspace.join("bin/../bin/ptxas"), "ptxas"));
        assert!(!guard.allows(&base.join("outside/../ws/bin/ptxas"), "ptxas"));
        assert!(!guard.allows(&base.join("outside/ptxas"), "ptxas"));
        assert!(!guard.allows(&workspace.join("bin/sh-link"), "ptxas"));
        assert!(guard.allows(Path::new("/bin/sh"), "ptxas"));
        assert!(guard.allows(&base.join("outside"), "ptxas"), "a folder beside the workspace is not in it");
        let note = &guard.ignored[0];
        assert!(note.starts_with("the `ptxasPath` setting ") && note.contains("not trusted"), "{note}");
        assert!(note.contains(&workspace.display().to_string()), "{note}");
        assert_eq!(guard.ignored.len(), 5, "one note per path: {:?}", guard.ignored);

        let mut trusted = Guard::new(&[]);
        assert!(trusted.allows(&workspace.join("bin/ptxas"), "ptxas") && trusted.ignored.is_empty());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn the_wheels_of_the_binarys_own_environment_are_looked_for() {
        // As pip lays out a virtual, conda or pipx environment: the binary in bin/, the NVIDIA
        // wheels under lib/python3.X/site-packages/nvidia/cu13.
        let base = std::env::temp_dir().join(format!("tensorlens-prefix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let prefix = base.join("env");
        let cu13 = prefix.join("lib/python3.12/site-packages/nvidia/cu13");
        std::fs::create_dir_all(cu13.join("lib")).unwrap();
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        std::fs::write(cu13.join("lib/libnvrtc.so.13"), "").unwrap();

        assert_eq!(binary_prefix(&prefix.join("bin/tensorlens")), Some(prefix.clone()));
        assert_eq!(binary_prefix(Path::new("/usr/bin/tensorlens")), Some(PathBuf::from("/usr")));
        // A binary that is not in a bin/ folder (target/release, an unpacked archive) names none.
        assert_eq!(binary_prefix(Path::new("/work/target/release/tensorlens")), None);
        assert_eq!(binary_prefix(Path::new("bin/tensorlens")), None);

        let roots = wheel_roots_in(std::slice::from_ref(&prefix));
        assert_eq!(roots.first(), Some(&cu13), "{roots:?}");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn an_ignored_ptxas_setting_is_named_and_never_returned() {
        let (base, workspace) = scratch("ptxas");
        let planted = workspace.join("bin/ptxas");
        let mut guard = Guard::new(std::slice::from_ref(&workspace));
        match find_ptxas(Some(&planted), None, &mut guard) {
            // Discovery may find a real ptxas elsewhere on this machine; never the planted one.
            Ok(found) => assert!(!found.starts_with(&workspace), "{}", found.display()),
            Err(err) => assert!(err.contains("`ptxasPath` setting") && err.contains("ignored"), "{err}"),
        }
        assert!(guard.ignored.iter().any(|n| n.contains("ptxasPath") && n.contains(&planted.display().to_string())));
        // Trusted, the same setting is the one used.
        assert_eq!(find_ptxas(Some(&planted), None, &mut Guard::new(&[])), Ok(planted.clone()));
        let settings = Settings { workspace_trusted: Some(false), ..Settings::default() };
        assert!(!settings.trusted() && !settings.timing_allowed());
        let _ = std::fs::remove_dir_all(&base);
    }
}
