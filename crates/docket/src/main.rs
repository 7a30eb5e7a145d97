//! `docket`, the one binary: wires the library crates into commands for operators, auditors and
//! analysts. It owns argument parsing, the wall clock, logging setup and exit codes; everything
//! it runs lives in the libraries.

// The command line's output is its interface.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a CLI prints its results"
)]

mod audit;
mod bench;
mod bench_http;
mod bench_sla;
mod config;
mod projections_cli;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: malloc and free were a tenth of the whole server's
/// CPU under load (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "docket",
    version,
    about = "An event-sourced customer-service ticket engine"
)]
struct Cli {
    /// The event store: `sqlite://path/file.db` (created on first use) or `postgres://…`.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = store::DEFAULT_URL)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the HTTP API (on the embedded SQLite default unless --database-url says otherwise).
    Serve(serve::ServeArgs),
    /// Tools for auditors.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Read models: lag and rebuild.
    #[command(subcommand)]
    Projections(projections_cli::ProjectionsCommand),
    /// Benchmarks that print their figures next to the raw limit of the same database.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOCKET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(&cli.database_url, args).await,
            Command::Projections(command) => projections_cli::run(&cli.database_url, command).await,
            Command::Audit(command) => audit::run(&cli.database_url, command).await,
            Command::Bench(command) => bench::run(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
