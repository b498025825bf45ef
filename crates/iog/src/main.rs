//! `iog`: the command line of the Internet of GPUs.

mod args;
mod cmd_job;
mod cmd_ledger;
mod cmd_market;
mod cmd_network;
mod cmd_wasm;
mod cmd_worker;
mod display;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: start async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Demo(args) => cmd_network::demo(&global, args).await,
        Command::Up(args) => cmd_network::up(args).await,
        Command::Coordinator(args) => cmd_network::coordinator(args).await,
        Command::Worker(args) => cmd_worker::worker(&global, args).await,
        Command::Job(args) => cmd_job::job(&global, args).await,
        Command::Wallet(args) => cmd_ledger::wallet(&global, args).await,
        Command::Ledger(args) => cmd_ledger::ledger(&global, args).await,
        Command::Market(args) => cmd_market::market(&global, args).await,
        Command::Wasm(args) => cmd_wasm::wasm(args).await,
    }
}

/// Long-running roles log at `info`; client commands and the demo only warn,
/// so that progress bars stay readable. `RUST_LOG` overrides either.
fn init_logging(cli: &Cli) {
    let default = match cli.command {
        Command::Coordinator(_) | Command::Up(_) => "info",
        Command::Worker(ref args) if args.command.is_none() => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
