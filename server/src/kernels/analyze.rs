//! One kernel from source to resources and occupancy: device-code closure, NVRTC, ptxas,
//! occupancy for the block size in use. Blocking; callers run it off the request loop. Compiles are
//! cached by what went into them, so asking again for an unchanged kernel costs nothing.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::device_code::{CudaSource, IncludeResolver, KernelDef};
use super::includes::{self, IncludePolicy};
use super::occupancy::{self, KernelResources};
use super::ptxas::{self, Resources};
use super::sass;
use super::toolchain::{Settings, Toolchain, DEFAULT_BLOCK_SIZE};
use super::{nvrtc, Cancel};
use crate::ide::markdown::{code, escape_markdown as esc};

/// What nvcc's implicit host includes give kernels and NVRTC does not: fixed-width integers, the
/// integer and float limits, INFINITY and NAN, math constants. With CCCL (CUDA 13 ships it, and
/// `cuda_fp16.h` or `cooperative_groups.h` pull it in) its NVRTC versions are used, so definitions
/// never clash; without it, ours, with the same types CCCL gives NVRTC.
/// It is given to NVRTC as an in-memory header that every compile pre-includes: a `#line` in the
/// program itself would keep NVRTC from precompiling the headers.
pub const PRELUDE: &str = r#"#ifndef TENSORLENS_PRELUDE
#define TENSORLENS_PRELUDE
#if __has_include(<cuda/std/cstdint>)
#include <cuda/std/cstdint>
#include <cuda/std/climits>
#include <cuda/std/cfloat>
#else
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef long long intptr_t;
typedef unsigned long long uintptr_t;
#define INT_MAX 2147483647
#define INT_MIN (-INT_MAX - 1)
#define UINT_MAX 4294967295U
#define LLONG_MAX 9223372036854775807LL
#define LLONG_MIN (-LLONG_MAX - 1LL)
#define FLT_MAX 3.402823466e+38F
#define FLT_MIN 1.175494351e-38F
#define FLT_EPSILON 1.192092896e-07F
#define DBL_MAX 1.7976931348623158e+308
#define DBL_MIN 2.2250738585072014e-308
#define DBL_EPSILON 2.2204460492503131e-16
#endif
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#ifndef HUGE_VALF
#define HUGE_VALF INFINITY
#endif
#ifndef M_PI
#define M_E 2.7182818284590452354
#define M_LN2 0.69314718055994530942
#define M_PI 3.14159265358979323846
#define M_PI_2 1.57079632679489661923
#define M_SQRT2 1.41421356237309504880
#endif
#endif
"#;

/// The stable JSON interface (`tensorlens kernel analyze --json`, the LSP command's answer).
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub name: String,
    pub qualified_name: String,
    /// What was compiled: `reduce<float, 256>` for a template.
    pub name_expression: String,
    /// The PTX entry name.
    pub lowered_name: String,
    pub arch: String,
    pub registers: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
    /// Static shared memory per block.
    pub shared_bytes: u32,
    /// Dynamic shared memory assumed per block (launch or annotation `smem=`).
    pub dynamic_shared_bytes: u32,
    pub local_bytes: u32,
    pub stack_bytes: u32,
    pub constant_bytes: u32,
    pub barriers: u32,
    pub block_size: u32,
    /// Where the block size came from.
    pub block_size_source: BlockSizeSource,
    /// The 1-based line of the launch the block size came from.
    pub block_size_line: Option<u32>,
    /// Theoretical occupancy, 0 to 1; `None` when the arch is unknown or the block cannot run.
    pub occupancy: Option<f64>,
    pub active_blocks: Option<u32>,
    /// `registers`, `shared_memory`, `warps`, `blocks`.
    pub limiter: Option<occupancy::Limiter>,
    /// Why occupancy could not be computed.
    pub occupancy_problem: Option<String>,
    /// A block size that reaches a higher occupancy, when there is one.
    pub better_block_size: Option<u32>,
    pub better_occupancy: Option<f64>,
    /// Compiler warnings, on lines of the analysed source.
    pub warnings: Vec<CompilerMessage>,
    /// Headers NVRTC cannot compile that were left out (host and C library headers).
    pub dropped_includes: Vec<String>,
    /// Includes that were not read, each with why: outside the workspace, not a regular file, too
    /// large, named by a macro (see `includes.rs`). They are among `warnings` too, on their lines.
    pub refused_includes: Vec<String>,
    pub compile_ms: f64,
    pub ptxas_ms: f64,
    /// True when the compile and ptxas results came from the cache.
    pub cached: bool,
}

impl Analysis {
    /// `sm_90 · 32 regs · 0 B spill · 4 KiB smem · occupancy 75% (registers)`.
    pub fn summary(&self) -> String {
        let spill = self.spill_stores + self.spill_loads;
        let occupancy = match (self.occupancy, self.limiter) {
            (Some(o), Some(l)) => format!("occupancy {:.0}% ({})", o * 100.0, l.describe()),
            _ => "occupancy ?".to_string(),
        };
        format!(
            "{} · {} regs · {} spill · {} smem · {occupancy}",
            self.arch,
            self.registers,
            bytes(spill),
            bytes(self.shared_bytes + self.dynamic_shared_bytes)
        )
    }

    /// `launch at line 42`, `annotation`, `default`.
    pub fn block_size_origin(&self) -> String {
        match self.block_size_line {
            Some(line) => format!("{} at line {line}", self.block_size_source.label()),
            None => self.block_size_source.label().to_string(),
        }
    }

    /// A few lines of markdown for hovers.
    pub fn markdown(&self) -> String {
        // The name and arch may come from a comment in the file, so they are escaped as any text is.
        let mut out =
            format!("**{}** on {}: {}\n\n", esc(&self.name_expression), code(&self.arch), esc(&self.summary()));
        out += &format!(
            "- registers {} · spill stores {} B, loads {} B · local {} B · stack {} B\n",
            self.registers, self.spill_stores, self.spill_loads, self.local_bytes, self.stack_bytes
        );
        out += &format!(
            "- shared memory {} static + {} dynamic · barriers {}\n",
            bytes(self.shared_bytes),
            bytes(self.dynamic_shared_bytes),
            self.barriers
        );
        match (self.occupancy, self.active_blocks) {
            (Some(o), Some(blocks)) => {
                out += &format!(
                    "- occupancy {:.0}% at block size {} ({}): {blocks} blocks per SM\n",
                    o * 100.0,
                    self.block_size,
                    self.block_size_origin()
                )
            }
            _ => {
                out += &format!(
                    "- occupancy unknown at block size {}: {}\n",
                    self.block_size,
                    self.occupancy_problem.as_deref().unwrap_or("unknown architecture")
                )
            }
        }
        if let (Some(size), Some(o)) = (self.better_block_size, self.better_occupancy) {
            out += &format!("- block size {size} would reach {:.0}%\n", o * 100.0);
        }
        if !self.dropped_includes.is_empty() {
            let headers: Vec<String> = self.dropped_includes.iter().map(|h| code(h)).collect();
            out += &format!("- left out host headers: {}\n", headers.join(", "));
        }
        for refused in &self.refused_includes {
            out += &format!("- {}\n", esc(refused));
        }
        out
    }
}

/// `0 B`, `4 KiB`, `1.5 KiB`.
pub fn bytes(n: u32) -> String {
    if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// An error or warning from NVRTC, placed in the analysed source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompilerMessage {
    pub severity: Severity,
    /// Zero-based line and byte column in the analysed source; the column is the compiler's caret.
    pub line: u32,
    pub column: Option<u32>,
    pub message: String,
    /// Set when the message is about another file (a header, the prelude); `line` then points at
    /// the kernel's name.
    pub elsewhere: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    /// Not the compiler's: where the SASS spills or spends its instructions.
    Hint,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{0}")]
    NoNvrtc(String),
    #[error("{0}")]
    NoPtxas(String),
    #[error("`{kernel}` did not compile: {}", first_error(.messages))]
    Compile { kernel: String, messages: Vec<CompilerMessage>, log: String },
    #[error(
        "`{kernel}` is a template (template <{params}>): name its arguments in a comment above it, \
         e.g. `// tensorlens: instantiate={kernel}<...>`, or in the `kernelTemplateArgs` setting"
    )]
    TemplateArguments { kernel: String, params: String },
    #[error("{0}")]
    Nvrtc(String),
    #[error("{0}")]
    Ptxas(String),
    #[error("{0}")]
    Sass(String),
    #[error("cancelled")]
    Cancelled,
}

fn first_error(messages: &[CompilerMessage]) -> String {
    messages
        .iter()
        .find(|m| m.severity == Severity::Error)
        .map(|m| format!("line {}: {}", m.line + 1, m.message))
        .unwrap_or_else(|| "see the compiler log".to_string())
}

/// Everything one analysis needs besides the source.
pub struct Target<'a> {
    pub source: &'a CudaSource,
    pub kernel: &'a KernelDef,
    /// The file name errors are reported under; also the folder local includes come from.
    pub path: &'a str,
    pub includes: IncludeResolver,
    /// Maps a zero-based line of the source to the document's (they differ for strings in Python).
    pub line_in_document: &'a dyn Fn(usize) -> usize,
}

#[derive(Clone)]
struct Compiled {
    ptx: Arc<str>,
    lowered_name: String,
    resources: Resources,
    warnings: Vec<CompilerMessage>,
    compile_ms: f64,
    ptxas_ms: f64,
}

/// Runs analyses and remembers compiles by a hash of everything that went into them.
#[derive(Default)]
pub struct Analyzer {
    cache: Mutex<HashMap<u64, Compiled>>,
}

const CACHE_ENTRIES: usize = 256;

impl Analyzer {
    pub fn analyze(
        &self,
        toolchain: &Toolchain,
        settings: &Settings,
        target: &Target,
        cancel: &Cancel,
    ) -> Result<Analysis, AnalyzeError> {
        let Outcome { compiled, cached, name_expression, arch, dropped_includes, refused, .. } =
            self.compile(toolchain, settings, target, cancel)?;
        let kernel = target.kernel;
        let (block_size, block_size_source, launch_line) = block_size(target.source, kernel, settings);
        let dynamic_shared_bytes = dynamic_shared(target.source, kernel);
        let resources = KernelResources {
            registers_per_thread: compiled.resources.registers,
            static_shared_bytes: compiled.resources.shared_bytes,
            dynamic_shared_bytes,
        };
        let limits = occupancy::parse_arch(&arch).and_then(occupancy::arch_limits);
        let (computed, problem) = match limits {
            None => (None, Some(format!("no occupancy table for {arch}"))),
            Some(limits) => match occupancy::occupancy(limits, &resources, block_size) {
                Ok(o) => (Some(o), None),
                Err(err) => (None, Some(err.to_string())),
            },
        };
        let better = limits.and_then(|l| better_block_size(l, &resources, block_size, computed.map(|c| c.occupancy)));
        let r = &compiled.resources;
        Ok(Analysis {
            name: kernel.name.clone(),
            qualified_name: kernel.qualified_name.clone(),
            name_expression,
            lowered_name: compiled.lowered_name.clone(),
            arch,
            registers: r.registers,
            spill_stores: r.spill_stores,
            spill_loads: r.spill_loads,
            shared_bytes: r.shared_bytes,
            dynamic_shared_bytes,
            local_bytes: r.local_bytes,
            stack_bytes: r.stack_frame_bytes,
            constant_bytes: r.constant_bytes,
            barriers: r.barriers,
            block_size,
            block_size_source,
            block_size_line: launch_line.map(|line| (target.line_in_document)(line as usize) as u32 + 1),
            occupancy: computed.map(|o| o.occupancy),
            active_blocks: computed.map(|o| o.active_blocks),
            limiter: computed.map(|o| o.limiter),
            occupancy_problem: problem,
            better_block_size: better.map(|b| b.block_size),
            better_occupancy: better.map(|b| b.occupancy),
            refused_includes: refused.iter().map(|m| m.message.clone()).collect(),
            warnings: refused.into_iter().chain(compiled.warnings.iter().cloned()).collect(),
            dropped_includes,
            compile_ms: compiled.compile_ms,
            ptxas_ms: compiled.ptxas_ms,
            cached,
        })
    }

    /// The PTX of the kernel, compiled (or taken from the cache) as `analyze` would.
    pub fn ptx(
        &self,
        toolchain: &Toolchain,
        settings: &Settings,
        target: &Target,
        cancel: &Cancel,
    ) -> Result<Arc<str>, AnalyzeError> {
        Ok(self.compile(toolchain, settings, target, cancel)?.compiled.ptx)
    }

    /// The kernel's SASS with line info, for `arch`: the cached PTX assembled again with
    /// `-lineinfo` and disassembled by nvdisasm.
    pub fn sass(
        &self,
        toolchain: &Toolchain,
        settings: &Settings,
        target: &Target,
        cancel: &Cancel,
    ) -> Result<Sass, AnalyzeError> {
        let nvdisasm = toolchain.nvdisasm.as_ref().map_err(|e| AnalyzeError::Sass(e.clone()))?;
        let Outcome { compiled, arch, ptxas_options, .. } = self.compile(toolchain, settings, target, cancel)?;
        let ptxas_path = toolchain.ptxas.as_ref().map_err(|e| AnalyzeError::NoPtxas(e.clone()))?;
        let cubin =
            ptxas::assemble(ptxas_path, &compiled.ptx, &arch, &ptxas_options, cancel).map_err(|err| match err {
                ptxas::PtxasError::Cancelled => AnalyzeError::Cancelled,
                other => AnalyzeError::Ptxas(other.to_string()),
            })?;
        let text = sass::disassemble(nvdisasm, &cubin, cancel).map_err(|err| match err {
            sass::SassError::Cancelled => AnalyzeError::Cancelled,
            other => AnalyzeError::Sass(other.to_string()),
        })?;
        Ok(Sass { text: text.into(), arch })
    }

    fn compile(
        &self,
        toolchain: &Toolchain,
        settings: &Settings,
        target: &Target,
        cancel: &Cancel,
    ) -> Result<Outcome, AnalyzeError> {
        toolchain.nvrtc.as_ref().map_err(|e| AnalyzeError::NoNvrtc(e.clone()))?;
        let ptxas_path = toolchain.ptxas.as_ref().map_err(|e| AnalyzeError::NoPtxas(e.clone()))?;
        let kernel = target.kernel;
        let Prepared { program, options, ptxas_options, name_expression, arch, dropped_includes, refused } =
            prepare(toolchain, settings, target)?;
        let key = cache_key(&program, &options, &name_expression, &arch);
        let hit = lock(&self.cache).get(&key).cloned();
        if let Some(compiled) = hit {
            return Ok(Outcome {
                compiled,
                cached: true,
                name_expression,
                arch,
                dropped_includes,
                refused,
                ptxas_options,
            });
        }
        if cancel.is_cancelled() {
            return Err(AnalyzeError::Cancelled);
        }
        let started = Instant::now();
        let output = nvrtc::compile(&program, target.path, &[(PRELUDE_NAME, PRELUDE)], &options, &name_expression);
        let compile_ms = started.elapsed().as_secs_f64() * 1e3;
        let output = match output {
            Ok(output) => output,
            Err(nvrtc::CompileError::Rejected { log }) => {
                // A refused include is often why: its message comes first, on its line.
                let messages = refused.into_iter().chain(parse_log(&log, target.path, target.source, kernel)).collect();
                return Err(AnalyzeError::Compile { kernel: kernel.name.clone(), messages, log });
            }
            Err(nvrtc::CompileError::Nvrtc(message)) => return Err(AnalyzeError::Nvrtc(message)),
        };
        if cancel.is_cancelled() {
            return Err(AnalyzeError::Cancelled);
        }
        let started = Instant::now();
        let resources = ptxas::resources(ptxas_path, &output.ptx, &arch, &ptxas_options, &output.lowered_name, cancel)
            .map_err(|err| match err {
                ptxas::PtxasError::Cancelled => AnalyzeError::Cancelled,
                other => AnalyzeError::Ptxas(other.to_string()),
            })?;
        let compiled = Compiled {
            warnings: parse_log(&output.log, target.path, target.source, kernel),
            ptx: output.ptx.into(),
            lowered_name: output.lowered_name,
            resources,
            compile_ms,
            ptxas_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        Ok(Outcome { compiled, cached: false, name_expression, arch, dropped_includes, refused, ptxas_options })
    }
}

/// A kernel's SASS and the architecture it is for.
pub struct Sass {
    pub text: Arc<str>,
    pub arch: String,
}

/// A compile and what went into it.
struct Outcome {
    compiled: Compiled,
    cached: bool,
    name_expression: String,
    arch: String,
    dropped_includes: Vec<String>,
    /// Includes that were not read, as warnings on their lines.
    refused: Vec<CompilerMessage>,
    ptxas_options: Vec<String>,
}

/// Runs of spaces are hashed as one: an edit to host code the kernel does not use changes only the
/// length of a blanked stretch, and must not cost a recompile. Line breaks still count, since
/// they move the kernel's lines.
fn cache_key(program: &str, options: &[String], name_expression: &str, arch: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut previous_space = false;
    for byte in program.bytes() {
        let space = byte == b' ';
        if !(space && previous_space) {
            hasher.write_u8(byte);
        }
        previous_space = space;
    }
    (options, name_expression, arch).hash(&mut hasher);
    hasher.finish()
}

pub const PRELUDE_NAME: &str = "tensorlens_prelude.h";

/// What goes into NVRTC for one kernel.
pub struct Prepared {
    /// The kernel's device code, line for line with the source; the prelude is pre-included.
    pub program: String,
    pub options: Vec<String>,
    /// Options that only take effect in the assembler (`-maxrregcount`): NVRTC accepts them but
    /// leaves no trace of them in the PTX.
    pub ptxas_options: Vec<String>,
    pub name_expression: String,
    pub arch: String,
    pub dropped_includes: Vec<String>,
    /// Includes blanked out of `program` because they may not be read (`includes::confine`).
    pub refused: Vec<CompilerMessage>,
}

/// Builds the NVRTC program and options for `target`: public so that benchmarks can hand the
/// very same input to NVRTC and ptxas directly.
pub fn prepare(toolchain: &Toolchain, settings: &Settings, target: &Target) -> Result<Prepared, AnalyzeError> {
    let kernel = target.kernel;
    let launched_with = target.source.launches_of(&kernel.name).into_iter().find_map(|l| l.template_args);
    let name_expression = name_expression(kernel, settings, launched_with.as_deref())?;
    let arch = kernel.annotation.get("arch").map(str::to_string).unwrap_or_else(|| toolchain.target_arch(settings));
    let unit = target.source.unit_for(kernel, &target.includes);
    let mut search = toolchain.include_dirs.clone();
    search.extend(flag_include_dirs(&settings.nvrtc_flags));
    let policy = IncludePolicy::new(target.path, &settings.workspace_roots, &search);
    let (program, refused) = includes::confine(&unit.text, &policy);
    let refused = refused
        .into_iter()
        .map(|r| CompilerMessage {
            severity: Severity::Warning,
            line: r.line,
            column: None,
            message: r.message,
            elsewhere: None,
        })
        .collect();
    let mut options: Vec<String> = vec![
        format!("-arch={}", arch.replacen("sm_", "compute_", 1)),
        "-lineinfo".into(),
        format!("--pre-include={PRELUDE_NAME}"),
    ];
    options.extend(toolchain.include_dirs.iter().map(|dir| format!("-I{}", dir.display())));
    // NVRTC 13 can precompile the headers a unit starts with and reuse them while this process
    // lives: the first compile of a file that includes cooperative_groups.h or mma.h costs a little
    // more, the next ones a third of the time (1.3 s to 0.4 s for four CUDA headers).
    let major: u32 =
        toolchain.nvrtc.as_ref().map_or(0, |n| n.version.split('.').next().and_then(|v| v.parse().ok()).unwrap_or(0));
    if major >= 13 && program.lines().any(|line| line.trim_start().starts_with("#include")) {
        options.push("-pch".into());
    }
    options.extend(settings.nvrtc_flags.iter().cloned());
    let ptxas_options = settings
        .nvrtc_flags
        .iter()
        .filter_map(|flag| flag.trim_start_matches('-').strip_prefix("maxrregcount"))
        .map(|value| format!("-maxrregcount={}", value.trim_start_matches(['=', ' '])))
        .collect();
    Ok(Prepared {
        program,
        options,
        ptxas_options,
        name_expression,
        arch,
        dropped_includes: unit.dropped_includes,
        refused,
    })
}

/// Include folders the user's NVRTC flags add (`-Idir`, `-I dir`, `--include-path=dir`): NVRTC
/// searches them, so the include check must too. Configured by the user, so trusted.
fn flag_include_dirs(flags: &[String]) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let value = if let Some(rest) = flag.strip_prefix("--include-path").or_else(|| flag.strip_prefix("-I")) {
            match rest.strip_prefix('=').unwrap_or(rest) {
                "" => flags.next().map(String::as_str),
                dir => Some(dir),
            }
        } else {
            None
        };
        dirs.extend(value.map(std::path::PathBuf::from));
    }
    dirs
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The block size with the highest occupancy, when that beats `current`; among equals, the one
/// nearest the block size in use, so the suggestion is the smallest change to the launch.
fn better_block_size(
    limits: &occupancy::ArchLimits,
    resources: &KernelResources,
    block_size: u32,
    current: Option<f64>,
) -> Option<occupancy::Occupancy> {
    let best = occupancy::best_block_size(limits, resources)?;
    if current.is_some_and(|c| best.occupancy <= c + 1e-9) {
        return None;
    }
    (1..=limits.max_threads_per_block / limits.warp_size)
        .map(|warps| warps * limits.warp_size)
        .filter_map(|size| occupancy::occupancy(limits, resources, size).ok())
        .filter(|o| (o.occupancy - best.occupancy).abs() < 1e-9)
        .min_by_key(|o| (o.block_size.abs_diff(block_size), u32::MAX - o.block_size))
}

/// What NVRTC is asked to instantiate: the kernel's qualified name, with template arguments from
/// the annotation, the setting, a launch in the file (`scan<float, 4><<<...>>>`), or the defaults.
pub fn name_expression(
    kernel: &KernelDef,
    settings: &Settings,
    launched_with: Option<&str>,
) -> Result<String, AnalyzeError> {
    let Some(params) = &kernel.template_params else {
        return Ok(kernel.qualified_name.clone());
    };
    let scope = &kernel.qualified_name[..kernel.qualified_name.len() - kernel.name.len()];
    let written = kernel
        .annotation
        .get("instantiate")
        .or_else(|| settings.kernel_template_args.get(&kernel.name).map(String::as_str))
        .or(launched_with);
    match written.map(str::trim) {
        Some(full) if full.contains('<') => {
            Ok(if full.starts_with(&kernel.name) { format!("{scope}{full}") } else { full.to_string() })
        }
        Some(args) => Ok(format!("{}<{args}>", kernel.qualified_name)),
        None if kernel.template_defaults_complete => Ok(format!("{}<>", kernel.qualified_name)),
        None => Err(AnalyzeError::TemplateArguments { kernel: kernel.name.clone(), params: params.clone() }),
    }
}

/// Where the block size an analysis assumes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BlockSizeSource {
    /// The caller asked for this size (`tensorlens kernel analyze --block`).
    #[serde(rename = "asked for")]
    AskedFor,
    /// The `<<<grid, block>>>` of a launch in the same source.
    #[serde(rename = "launch")]
    Launch,
    /// A `// tensorlens: block=` annotation above the kernel.
    #[serde(rename = "annotation")]
    Annotation,
    /// The `kernelBlockSize` setting.
    #[serde(rename = "setting")]
    Setting,
    #[serde(rename = "default")]
    Default,
}

impl BlockSizeSource {
    pub fn label(self) -> &'static str {
        match self {
            BlockSizeSource::AskedFor => "asked for",
            BlockSizeSource::Launch => "launch",
            BlockSizeSource::Annotation => "annotation",
            BlockSizeSource::Setting => "setting",
            BlockSizeSource::Default => "default",
        }
    }
}

/// The block size occupancy is computed for, and where it came from: a launch of the kernel with
/// a constant block, else the annotation, else the setting, else 256.
pub fn block_size(source: &CudaSource, kernel: &KernelDef, settings: &Settings) -> (u32, BlockSizeSource, Option<u32>) {
    if let Some(size) = settings.block_override {
        return (size, BlockSizeSource::AskedFor, None);
    }
    for launch in source.launches_of(&kernel.name) {
        if let Some(size) = launch.block.as_deref().and_then(|b| constant_block(b, &source.text)) {
            return (size, BlockSizeSource::Launch, Some(launch.line));
        }
    }
    if let Some(size) = kernel.annotation.get("block").and_then(|b| constant_block(b, &source.text)) {
        return (size, BlockSizeSource::Annotation, None);
    }
    match settings.kernel_block_size {
        Some(size) => (size, BlockSizeSource::Setting, None),
        None => (DEFAULT_BLOCK_SIZE, BlockSizeSource::Default, None),
    }
}

/// Dynamic shared memory per block, from the launch's third configuration argument or `smem=`.
fn dynamic_shared(source: &CudaSource, kernel: &KernelDef) -> u32 {
    let from_launch = source
        .launches_of(&kernel.name)
        .into_iter()
        .find_map(|launch| launch.shared.as_deref().and_then(|s| constant_value(s, &source.text)));
    let from_annotation = || kernel.annotation.get("smem").and_then(|s| constant_value(s, &source.text));
    from_launch.or_else(from_annotation).map_or(0, |v| v.clamp(0, u32::MAX as i64) as u32)
}

/// A block configuration's thread count when it is constant: `256`, `BLOCK`, `dim3(16, 16)`,
/// `threads` where the file says `const int threads = 128;`, `dim3 block(32, 8)`.
pub fn constant_block(expr: &str, text: &str) -> Option<u32> {
    let expr = expr.trim();
    let product = |inner: &str| -> Option<i64> {
        inner.split(',').map(|part| constant_value(part, text)).try_fold(1i64, |acc, v| v.map(|v| acc * v))
    };
    let value = if let Some(inner) =
        expr.strip_prefix("dim3").map(str::trim).and_then(|r| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')'))
    {
        product(inner)?
    } else if let Some(inner) = dim3_variable(expr, text) {
        product(&inner)?
    } else {
        constant_value(expr, text)?
    };
    u32::try_from(value).ok().filter(|&v| v > 0)
}

/// `dim3 block(32, 8);` or `dim3 block = dim3(32, 8);` for `block`: the arguments.
fn dim3_variable(name: &str, text: &str) -> Option<String> {
    if !is_identifier(name) {
        return None;
    }
    text.lines().rev().find_map(|line| {
        let rest = line.trim().strip_prefix("dim3")?.trim_start();
        let rest = rest.strip_prefix(name)?.trim_start();
        let rest = rest
            .strip_prefix('=')
            .map(|r| r.trim_start().strip_prefix("dim3").unwrap_or(r).trim_start())
            .unwrap_or(rest);
        let inner = rest.strip_prefix('(').or_else(|| rest.strip_prefix('{'))?;
        let end = inner.find([')', '}'])?;
        Some(inner[..end].to_string())
    })
}

/// An integer literal, a product of them, or a name the file defines as one (`#define BLOCK 256`,
/// `const int BLOCK = 256;`, `constexpr int BLOCK = 256;`).
pub fn constant_value(expr: &str, text: &str) -> Option<i64> {
    let expr = expr.trim().trim_start_matches('(').trim_end_matches(')').trim();
    if expr.contains('*') {
        return expr
            .split('*')
            .map(|p| constant_value(p, text))
            .try_fold(1i64, |acc, v| v.map(|v| acc.saturating_mul(v)));
    }
    if let Some(value) = integer_literal(expr) {
        return Some(value);
    }
    if !is_identifier(expr) {
        return None;
    }
    text.lines().find_map(|line| {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#define") {
            let mut words = rest.split_whitespace();
            return (words.next()? == expr).then(|| integer_literal(words.next()?)).flatten();
        }
        let (left, right) = line.split_once('=')?;
        let declared = left.split_whitespace().last()?;
        let is_constant = left.split_whitespace().any(|w| matches!(w, "const" | "constexpr"));
        (declared == expr && is_constant).then(|| integer_literal(right.trim().trim_end_matches(';').trim())).flatten()
    })
}

fn integer_literal(text: &str) -> Option<i64> {
    let digits = text.trim().trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    digits.parse().ok()
}

fn is_identifier(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads NVRTC's log: `file(line): error: message`, then the source line and a caret line. Lines
/// in `path` are lines of the analysed source; messages about other files land on the kernel name.
pub fn parse_log(log: &str, path: &str, source: &CudaSource, kernel: &KernelDef) -> Vec<CompilerMessage> {
    let kernel_line = source.text[..kernel.name_range.start].matches('\n').count() as u32;
    let lines: Vec<&str> = log.lines().collect();
    let mut messages = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((file, line_no, severity, message)) = split_message(line) else { continue };
        let caret = lines.get(i + 2).and_then(|caret| {
            let trimmed = caret.trim_start();
            (trimmed == "^").then(|| (caret.len() - trimmed.len()).saturating_sub(2) as u32)
        });
        let (line, column, elsewhere) = if file == path {
            (line_no.saturating_sub(1), caret, None)
        } else {
            (kernel_line, None, Some(format!("{file}({line_no})")))
        };
        let message = match &elsewhere {
            Some(place) => format!("{message} (in {place})"),
            None => message.to_string(),
        };
        messages.push(CompilerMessage { severity, line, column, message, elsewhere });
    }
    messages
}

/// `k.cu(12): error: ...`, `k.cu(3): warning #177-D: ...`, `x.h(9): catastrophic error: ...`.
fn split_message(line: &str) -> Option<(&str, u32, Severity, &str)> {
    let open = line.find("): ")?;
    let (head, rest) = (&line[..open], &line[open + 3..]);
    let paren = head.rfind('(')?;
    let line_no: u32 = head[paren + 1..].parse().ok()?;
    let (kind, message) = rest.split_once(": ")?;
    let severity = if kind.contains("error") {
        Severity::Error
    } else if kind.starts_with("warning") {
        Severity::Warning
    } else {
        return None;
    };
    Some((&head[..paren], line_no, severity, message.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_from_constants_the_file_defines() {
        let text = "#define BLOCK 128\nconst int threads = 64;\nconstexpr int TILE = 16;\ndim3 block2d(16, 8);\nint not_const = 5;\n";
        assert_eq!(constant_block("256", text), Some(256));
        assert_eq!(constant_block("BLOCK", text), Some(128));
        assert_eq!(constant_block("threads", text), Some(64));
        assert_eq!(constant_block("dim3(TILE, TILE)", text), Some(256));
        assert_eq!(constant_block("dim3(32)", text), Some(32));
        assert_eq!(constant_block("block2d", text), Some(128));
        assert_eq!(constant_block("TILE * 4", text), Some(64));
        assert_eq!(constant_block("not_const", text), None);
        assert_eq!(constant_block("n / 2", text), None);
        assert_eq!(constant_block("0", text), None);
        assert_eq!(constant_block("-1", text), None);
    }

    #[test]
    fn reads_compiler_messages_with_their_caret_column() {
        let source = CudaSource::new("__global__ void k(float* a) {\n  a[0] = undefined_thing;\n}\n".to_string());
        let kernel = source.kernels().remove(0);
        let log = "k.cu(2): error: identifier \"undefined_thing\" is undefined\n    a[0] = undefined_thing;\n           ^\n\n\
                   k.cu(2): warning #177-D: variable \"x\" was declared but never referenced\n    int x;\n        ^\n\n\
                   /cuda/include/x.h(50): catastrophic error: cannot open source file \"nv/target\"\n  #include <nv/target>\n  ^\n\n\
                   1 error detected in the compilation of \"k.cu\".\n";
        let messages = parse_log(log, "k.cu", &source, &kernel);
        assert_eq!(messages.len(), 3);
        assert_eq!((messages[0].severity, messages[0].line, messages[0].column), (Severity::Error, 1, Some(9)));
        assert_eq!(messages[0].message, "identifier \"undefined_thing\" is undefined");
        assert_eq!((messages[1].severity, messages[1].column), (Severity::Warning, Some(6)));
        assert_eq!((messages[2].line, messages[2].elsewhere.as_deref()), (0, Some("/cuda/include/x.h(50)")));
        assert!(parse_log("garbage (1): nothing\n", "k.cu", &source, &kernel).is_empty());
    }

    #[test]
    fn template_kernels_need_arguments_from_somewhere() {
        let source = CudaSource::new(
            "namespace ops {\n// tensorlens: instantiate=scan<float, 4>\ntemplate <typename T, int B>\n__global__ void scan(T* x) {}\n\
             template <typename T, int B>\n__global__ void bare(T* x) {}\ntemplate <typename T = float, int B = 2>\n__global__ void defaults(T* x) {}\n}\n"
                .to_string(),
        );
        let kernels = source.kernels();
        let settings = Settings::default();
        assert_eq!(name_expression(&kernels[0], &settings, None).unwrap(), "ops::scan<float, 4>");
        let err = name_expression(&kernels[1], &settings, None).unwrap_err();
        assert!(err.to_string().contains("instantiate=bare<...>"), "{err}");
        let mut with_setting = Settings::default();
        with_setting.kernel_template_args.insert("bare".into(), "int, 8".into());
        assert_eq!(name_expression(&kernels[1], &with_setting, None).unwrap(), "ops::bare<int, 8>");
        assert_eq!(name_expression(&kernels[1], &settings, Some("double, 2")).unwrap(), "ops::bare<double, 2>");
        assert_eq!(name_expression(&kernels[2], &settings, None).unwrap(), "ops::defaults<>");
    }
}
