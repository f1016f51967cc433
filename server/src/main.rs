//! The `tensorlens` binary: argument parsing, logging set-up and stdio wiring.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tensorlens", version, about = "Language server for deep-learning and GPU code", long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
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
    /// Work with the ecosystem catalog.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
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
        Command::Catalog { command } => match command {
            CatalogCommand::Search { query, limit, json } => tensorlens::cli::catalog_search(&query, limit, json),
            CatalogCommand::Check { dir } => tensorlens::cli::catalog_check(&dir),
            CatalogCommand::Systems => tensorlens::cli::catalog_systems(),
            CatalogCommand::Stats => tensorlens::cli::catalog_stats(),
            CatalogCommand::Show { names } => tensorlens::cli::catalog_show(&names),
            CatalogCommand::Export => tensorlens::cli::catalog_export(),
        },
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tensorlens: {err:#}");
            ExitCode::FAILURE
        }
    }
}
