//! Kernel analysis latency against its floor: the same program text and options handed to NVRTC
//! (through cudarc, as a plain script would) and ptxas run directly. What tensorlens adds is
//! finding the kernel, cutting its device code, temp files, polling ptxas and occupancy.
//!
//! Both sides run uncached and interleaved, so drift (thermal, other load) hits them alike. Also
//! reported: a cached re-analysis, which is what an unchanged kernel costs on a later request.
//!
//! Run: `cargo bench --bench kernel` (add `-- --quick` for fewer samples). Needs the CUDA wheels
//! that `tests/cuda/setup` installs.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cudarc::nvrtc::{result, sys};
use tensorlens::kernels::analyze::{prepare, Analyzer, PRELUDE, PRELUDE_NAME};
use tensorlens::kernels::document::DocumentKernels;
use tensorlens::kernels::toolchain::{Settings, Toolchain};
use tensorlens::kernels::Cancel;
use tensorlens::parse::Language;

/// (fixture, kernel): plain kernels, and one whose headers make NVRTC's front end the bulk.
const CASES: [(&str, &str); 4] = [
    ("matmul.cu", "matmul_tiled"),
    ("reduction.cu", "reduce_sum"),
    ("softmax.cu", "softmax_rows"),
    ("headers.cu", "half_axpy"),
];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 3 } else { 15 };
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let setup = Command::new("bash").arg(repo.join("tests/cuda/setup")).output().expect("run tests/cuda/setup");
    assert!(setup.status.success(), "tests/cuda/setup failed:\n{}", String::from_utf8_lossy(&setup.stderr));
    let toolkit = PathBuf::from(String::from_utf8(setup.stdout).unwrap().trim());
    let settings = Settings { nvrtc_path: Some(toolkit), ..Default::default() };
    // Loads NVRTC by full path first: cudarc's later load by soname, below, finds this library.
    let toolchain = Toolchain::discover(&settings);
    let nvrtc = toolchain.nvrtc.as_ref().expect("NVRTC");
    let ptxas = toolchain.ptxas.clone().expect("ptxas");
    println!("NVRTC {} ({}), ptxas {}", nvrtc.version, nvrtc.path.display(), ptxas.display());
    println!("{runs} uncached runs per side per kernel, interleaved, after one warm-up run each\n");

    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-kernel");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut rows = Vec::new();
    for (file, kernel) in CASES {
        let path = repo.join("tests/fixtures/kernels").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let path = path.display().to_string();
        let ptx_file = scratch.join(format!("{kernel}.ptx"));
        let ours = || analyze(&text, &path, kernel, &toolchain, &settings);
        let direct = || direct(&text, &path, kernel, &toolchain, &settings, &ptxas, &ptx_file);

        let (registers, _) = ours();
        let (direct_registers, _) = direct();
        assert_eq!(registers, direct_registers, "{kernel}: both sides must compile the same thing");
        let mut row = Row { kernel, ..Row::default() };
        for i in 0..runs {
            // Alternate who goes first, so neither always runs on a warmer cache.
            let (a, b) = if i % 2 == 0 {
                let a = ours().1;
                (a, direct().1)
            } else {
                let b = direct().1;
                (ours().1, b)
            };
            row.ours.push(a.uncached);
            row.cached.push(a.cached);
            row.direct.push(b.nvrtc + b.ptxas);
            row.direct_nvrtc.push(b.nvrtc);
            row.direct_ptxas.push(b.ptxas);
        }
        rows.push(row);
    }

    println!(
        "{:<14} {:>11} {:>11}   {:>11} {:>11}   {:>9}   {:>11} {:>11}   {:>10}",
        "kernel", "ours p50", "p90", "direct p50", "p90", "overhead", "NVRTC p50", "ptxas p50", "cached p50"
    );
    for row in &rows {
        println!(
            "{:<14} {:>11} {:>11}   {:>11} {:>11}   {:>8.1}%   {:>11} {:>11}   {:>10}",
            row.kernel,
            ms(median(&row.ours)),
            ms(p90(&row.ours)),
            ms(median(&row.direct)),
            ms(p90(&row.direct)),
            row.overhead(),
            ms(median(&row.direct_nvrtc)),
            ms(median(&row.direct_ptxas)),
            ms(median(&row.cached)),
        );
    }
    let overheads: Vec<f64> = rows.iter().map(Row::overhead).collect();
    let (low, high) = overheads.iter().fold((f64::MAX, f64::MIN), |(l, h), &o| (l.min(o), h.max(o)));
    let cached_worst = rows.iter().map(|r| median(&r.cached)).max().unwrap();
    println!(
        "\nanalyze costs {low:+.1}% to {high:+.1}% over NVRTC + ptxas called directly (medians); \
         a cached re-analysis takes at most {} (median)",
        ms(cached_worst)
    );
    let ours_total: Duration = rows.iter().map(|r| median(&r.ours)).sum();
    let direct_total: Duration = rows.iter().map(|r| median(&r.direct)).sum();
    println!(
        "overall overhead: {:+.1}% ({} against {}, sum of medians)",
        percent(ours_total, direct_total),
        ms(ours_total),
        ms(direct_total)
    );
}

#[derive(Default)]
struct Row {
    kernel: &'static str,
    ours: Vec<Duration>,
    direct: Vec<Duration>,
    direct_nvrtc: Vec<Duration>,
    direct_ptxas: Vec<Duration>,
    cached: Vec<Duration>,
}

impl Row {
    fn overhead(&self) -> f64 {
        percent(median(&self.ours), median(&self.direct))
    }
}

struct OursTimes {
    uncached: Duration,
    cached: Duration,
}

struct DirectTimes {
    nvrtc: Duration,
    ptxas: Duration,
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let started = Instant::now();
    let out = f();
    (started.elapsed(), out)
}

/// What the CLI and the LSP do, from the document's text to the analysis, with nothing cached;
/// then the same request again on the now warm analyzer.
fn analyze(text: &str, path: &str, kernel: &str, toolchain: &Toolchain, settings: &Settings) -> (u32, OursTimes) {
    let analyzer = Analyzer::default();
    let cancel = Cancel::default();
    let run = || {
        let language = Language::from_path(path).expect("a CUDA file");
        let kernels = DocumentKernels::new(text, language);
        let site = kernels.named(kernel).expect("the kernel");
        kernels.analyze(site, path, &analyzer, toolchain, settings, &cancel).expect("analysis")
    };
    let (uncached, analysis) = timed(run);
    assert!(!analysis.cached);
    let (cached, again) = timed(run);
    assert!(again.cached);
    (analysis.registers, OursTimes { uncached, cached })
}

/// The same program and options NVRTC gets from tensorlens, compiled here with cudarc's thin
/// wrappers, and ptxas run on the PTX with its output captured. Only the input is prepared
/// outside the timing: that preparation is part of what the other side is charged for.
fn direct(
    text: &str,
    path: &str,
    kernel: &str,
    toolchain: &Toolchain,
    settings: &Settings,
    ptxas: &Path,
    ptx_file: &Path,
) -> (u32, DirectTimes) {
    let kernels = DocumentKernels::new(text, Language::from_path(path).unwrap());
    let site = kernels.named(kernel).unwrap();
    let lines = |line| kernels.line_in_document(site.source, line);
    let target = kernels.target(site, path, toolchain, &lines);
    let prepared = prepare(toolchain, settings, &target).expect("prepare");

    let started = Instant::now();
    let (ptx, lowered) = nvrtc_compile(&prepared.program, path, &prepared.options, &prepared.name_expression);
    let nvrtc = started.elapsed();

    let started = Instant::now();
    std::fs::write(ptx_file, ptx).unwrap();
    let output = Command::new(ptxas)
        .arg(format!("-arch={}", prepared.arch))
        .args(["-v", "-o", "/dev/null"])
        .arg(ptx_file)
        .output()
        .expect("run ptxas");
    let ptxas_time = started.elapsed();
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ptxas failed:\n{report}");
    (registers_of(&report, &lowered), DirectTimes { nvrtc, ptxas: ptxas_time })
}

/// Create (with the prelude as the one in-memory header the options pre-include), name, compile,
/// read PTX and the lowered name; panics on any failure (the fixtures compile).
fn nvrtc_compile(program: &str, name: &str, options: &[String], expression: &str) -> (String, String) {
    let source = CString::new(program).unwrap();
    let name = CString::new(name).unwrap();
    let expression = CString::new(expression).unwrap();
    let header = CString::new(PRELUDE).unwrap();
    let header_name = CString::new(PRELUDE_NAME).unwrap();
    let mut prog: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: the strings are live and NUL-terminated; one header, one name.
    unsafe {
        sys::nvrtcCreateProgram(&mut prog, source.as_ptr(), name.as_ptr(), 1, &header.as_ptr(), &header_name.as_ptr())
            .result()
            .expect("nvrtcCreateProgram");
    }
    // SAFETY: `prog` lives until destroy_program below; the C strings outlive every call.
    unsafe {
        sys::nvrtcAddNameExpression(prog, expression.as_ptr()).result().expect("nvrtcAddNameExpression");
        if let Err(err) = result::compile_program(prog, options) {
            let log = result::get_program_log(prog).map(|l| c_string(&l)).unwrap_or_default();
            panic!("nvrtcCompileProgram: {err:?}\n{log}");
        }
        let ptx = c_string(&result::get_ptx(prog).expect("nvrtcGetPTX"));
        let mut lowered: *const c_char = std::ptr::null();
        sys::nvrtcGetLoweredName(prog, expression.as_ptr(), &mut lowered).result().expect("nvrtcGetLoweredName");
        let lowered = CStr::from_ptr(lowered).to_string_lossy().into_owned();
        result::destroy_program(prog).expect("nvrtcDestroyProgram");
        (ptx, lowered)
    }
}

fn c_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// "Used N registers" in the lines ptxas prints for `entry`.
fn registers_of(report: &str, entry: &str) -> u32 {
    let start = format!("Compiling entry function '{entry}'");
    let used = report
        .lines()
        .skip_while(|l| !l.contains(&start))
        .find(|l| l.contains("Used ") && l.contains(" registers"))
        .unwrap_or_else(|| panic!("ptxas said nothing about {entry}:\n{report}"));
    let head = &used[..used.find(" registers").unwrap()];
    head.rsplit(' ').next().unwrap().parse().unwrap()
}

fn percent(ours: Duration, direct: Duration) -> f64 {
    (ours.as_secs_f64() / direct.as_secs_f64() - 1.0) * 100.0
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 0.5)
}

fn p90(samples: &[Duration]) -> Duration {
    percentile(samples, 0.9)
}

fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
