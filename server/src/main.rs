//! The `tensorlens` binary: argument parsing, logging set-up and stdio wiring.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tensorlens::kernels::ir::IrKind;

#[derive(Parser)]
#[command(name = "tensorlens", version, about = "Language server for deep-learning and GPU code", long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // Parsed once; boxing would only obscure the clap definitions.
enum Command {
    /// Serve the Language Server Protocol on stdin/stdout (what editors run).
    Serve {
        /// Accepted for clients that pass it; stdio is the only transport.
        #[arg(long, hide = true)]
        stdio: bool,
    },
    /// Print what tensorlens recognizes in source files: position, name, system and summary.
    Explain {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// One JSON object per reference, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Compile CUDA and Triton kernels and report registers, spills, shared memory and occupancy.
    Kernel {
        #[command(subcommand)]
        command: KernelCommand,
    },
    /// Work with the ecosystem catalog.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// List every setting the server reads: type, default, what it gives access to, what it does.
    Settings {
        /// One JSON object per setting, one per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum KernelCommand {
    /// Analyze every kernel of a file (.cu, .cuh, C++, or Python with CUDA in strings), or one.
    Analyze {
        file: std::path::PathBuf,
        #[arg(long)]
        kernel: Option<String>,
        #[command(flatten)]
        options: KernelOptions,
        /// One JSON object per kernel, one per line (the stable interface for scripts and plugins).
        #[arg(long)]
        json: bool,
    },
    /// Print the PTX of one kernel (NVRTC's for CUDA, Triton's for a @triton.jit kernel).
    Ptx(IrCommand),
    /// Print the SASS of one kernel (ptxas and nvdisasm), with the source line of each run of
    /// instructions.
    Sass(IrCommand),
    /// Print Triton's TTIR (Triton IR) of one Triton kernel.
    Ttir(IrCommand),
    /// Print Triton's TTGIR (Triton GPU IR, with layouts) of one Triton kernel.
    Ttgir(IrCommand),
    /// Print the LLVM IR Triton makes of one Triton kernel.
    Llir(IrCommand),
    /// Time one kernel on the GPU (through the worker, as the editor does) and print the result.
    Time {
        file: std::path::PathBuf,
        #[arg(long)]
        kernel: String,
        /// Problem size (overrides `n=` in the annotation).
        #[arg(long)]
        n: Option<u64>,
        /// Keep L2 warm between samples (default: cleared before each).
        #[arg(long)]
        hot: bool,
        /// Run the worker through this command prefix, e.g. --launcher ssh --launcher gpu-host.
        #[arg(long)]
        launcher: Vec<String>,
        /// The tensorlens binary on the other side of the launcher.
        #[arg(long)]
        remote: Option<String>,
        /// Time budget in seconds (default 15).
        #[arg(long)]
        seconds: Option<f64>,
        /// Seconds after which the worker is killed (default: the budget plus 30 s for start-up).
        #[arg(long)]
        timeout: Option<f64>,
        #[command(flatten)]
        options: KernelOptions,
        #[arg(long)]
        json: bool,
    },
    /// The timing worker: JSON lines on stdin/stdout, one CUDA context (started by the server).
    Worker,
    /// Show which NVRTC, ptxas, CUDA headers and GPU would be used.
    Toolchain {
        #[command(flatten)]
        options: KernelOptions,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct IrCommand {
    file: std::path::PathBuf,
    #[arg(long)]
    kernel: String,
    /// Which configuration of a Triton kernel, numbered from 0 in the order `kernel analyze`
    /// prints them (default 0).
    #[arg(long)]
    config: Option<usize>,
    #[command(flatten)]
    options: KernelOptions,
}

#[derive(clap::Args)]
struct KernelOptions {
    /// Target architecture (default: the GPU's, else sm_90).
    #[arg(long)]
    arch: Option<String>,
    /// Block size for occupancy (default: a constant launch in the file, an annotation, 256).
    #[arg(long)]
    block: Option<u32>,
    /// libnvrtc.so or the folder holding it.
    #[arg(long)]
    nvrtc_path: Option<std::path::PathBuf>,
    /// The ptxas binary or its folder.
    #[arg(long)]
    ptxas_path: Option<std::path::PathBuf>,
    /// Extra include folder (repeatable).
    #[arg(long = "include", short = 'I')]
    include: Vec<std::path::PathBuf>,
    /// Extra NVRTC option, e.g. --nvrtc-flag=-DTILE=32 (repeatable).
    #[arg(long = "nvrtc-flag", allow_hyphen_values = true)]
    nvrtc_flags: Vec<String>,
    /// The Python with triton installed, for Triton kernels (default: the active virtual or
    /// conda environment's, else python3).
    #[arg(long)]
    python: Option<std::path::PathBuf>,
}

impl IrCommand {
    fn run(self, kind: IrKind) -> anyhow::Result<()> {
        tensorlens::cli::kernel_ir(&self.file, &self.kernel, kind, self.config, &self.options.settings())
    }
}

impl KernelOptions {
    fn settings(self) -> tensorlens::kernels::toolchain::Settings {
        tensorlens::kernels::toolchain::Settings {
            nvrtc_path: self.nvrtc_path,
            ptxas_path: self.ptxas_path,
            cuda_include_paths: self.include,
            nvrtc_flags: self.nvrtc_flags,
            arch_override: self.arch,
            block_override: self.block,
            python_path: self.python,
            // The command line's workspace is the folder it runs in.
            workspace_roots: std::env::current_dir().into_iter().collect(),
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Search symbols across all systems (`matmul` finds torch, jax.numpy, tensorflow, mlx, cuBLAS).
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Check user catalog files (a folder of .toml files, as in .tensorlens/catalog).
    Check { dir: std::path::PathBuf },
    /// List the systems in the catalog.
    Systems,
    /// Coverage per system: symbols, signatures, curated summaries, URLs, equivalents, sources.
    Stats,
    /// Every symbol as JSON lines: name, kind, system, signature, whether curated, source, docs.
    Export,
    /// Show what the catalog holds about names (exit status 1 when one is missing).
    Show {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !matches!(args.command, Command::Serve { .. }) {
        // Command-line output piped into `head` should end quietly, as other Unix tools do, rather
        // than panic on a closed stdout. (The server handles its own closed stdout.)
        // SAFETY: setting a signal's disposition to the default has no preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Logs go to stderr: stdout carries the protocol.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TENSORLENS_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let res = match args.command {
        Command::Serve { .. } => {
            limit_malloc_arenas();
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
            match runtime {
                Ok(runtime) => {
                    runtime.block_on(tensorlens::lsp::serve_stdio());
                    Ok(())
                }
                Err(err) => Err(anyhow::format_err!("cannot start the async runtime: {err}")),
            }
        }
        Command::Explain { files, json } => tensorlens::cli::explain(&files, json),
        Command::Kernel { command } => match command {
            KernelCommand::Analyze { file, kernel, options, json } => {
                tensorlens::cli::kernel_analyze(&file, kernel.as_deref(), &options.settings(), json)
            }
            KernelCommand::Ptx(ir) => ir.run(IrKind::Ptx),
            KernelCommand::Sass(ir) => ir.run(IrKind::Sass),
            KernelCommand::Ttir(ir) => ir.run(IrKind::Ttir),
            KernelCommand::Ttgir(ir) => ir.run(IrKind::Ttgir),
            KernelCommand::Llir(ir) => ir.run(IrKind::Llir),
            KernelCommand::Toolchain { options, json } => tensorlens::cli::kernel_toolchain(&options.settings(), json),
            KernelCommand::Time { file, kernel, n, hot, launcher, remote, seconds, timeout, options, json } => {
                let mut settings = options.settings();
                settings.timing_hot = hot;
                settings.timing_launcher = launcher;
                settings.timing_worker = remote;
                settings.timing_seconds = seconds;
                tensorlens::cli::kernel_time(&file, &kernel, n, timeout, &settings, json)
            }
            KernelCommand::Worker => tensorlens::kernels::worker::serve(),
        },
        Command::Catalog { command } => match command {
            CatalogCommand::Search { query, limit, json } => tensorlens::cli::catalog_search(&query, limit, json),
            CatalogCommand::Check { dir } => tensorlens::cli::catalog_check(&dir),
            CatalogCommand::Systems => tensorlens::cli::catalog_systems(),
            CatalogCommand::Stats => tensorlens::cli::catalog_stats(),
            CatalogCommand::Show { names } => tensorlens::cli::catalog_show(&names),
            CatalogCommand::Export => tensorlens::cli::catalog_export(),
        },
        Command::Settings { json } => tensorlens::cli::settings(json),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tensorlens: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates at once an arena of its own and keeps what is freed in
/// it: the server's blocking threads (an analysis, a window, diagnostics at the same moment)
/// then hold several copies' worth of a big file. Two arenas keep the peak near one.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
