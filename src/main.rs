//! `codex`: run LLM coding agents in parallel under budgets, permissions and an audit log.
//!
//! This crate is the application: the command line, agent definitions, model providers,
//! tools and output. The engine (actors, budgets, policy, audit) is the `codex-actors`
//! crate.

mod cli;
mod commands;
mod definition;
mod output;
mod providers;
use codex::tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{AgentsCommand, Cli, Command};
use commands::run::RunOptions;
use commands::tasks;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODEX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    let workspace = workspace(cli.workspace.as_deref())?;
    match cli.command {
        Command::Delegate(args) => {
            let task = tasks::from_delegate(&args);
            let opts = RunOptions {
                run: &args.run,
                total_budget: None,
                max_concurrency: None,
            };
            runtime()?.block_on(commands::run::run(&workspace, vec![task], opts))
        }
        Command::DelegateParallel(args) => {
            let tasks = tasks::from_parallel(&args)?;
            let opts = RunOptions {
                run: &args.run,
                total_budget: args.total_budget,
                max_concurrency: args.max_concurrency,
            };
            runtime()?.block_on(commands::run::run(&workspace, tasks, opts))
        }
        Command::Agents { command } => agents(&workspace, command),
        Command::Policy {
            command: cli::PolicyCommand::Check(args),
        } => commands::policy::check(&workspace, &args),
    }
}

fn agents(workspace: &Path, command: AgentsCommand) -> Result<ExitCode> {
    match command {
        AgentsCommand::List => {
            let catalog = definition::Catalog::load(workspace)?;
            warn_all(catalog.warnings());
            print!("{}", commands::agents::list(&catalog));
        }
        AgentsCommand::Show { name } => {
            let catalog = definition::Catalog::load(workspace)?;
            warn_all(catalog.warnings());
            print!("{}", commands::agents::show(&catalog, &name)?);
        }
        AgentsCommand::Validate { files } => {
            let (report, ok) = commands::agents::validate(&files, workspace);
            print!("{report}");
            if !ok {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// The workspace root: `-C DIR` or the current directory, made absolute.
fn workspace(dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    dir.canonicalize().with_context(|| {
        format!(
            "workspace {} is not an accessible directory (see -C)",
            dir.display()
        )
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
