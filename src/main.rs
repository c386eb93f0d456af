//! `codex`: run LLM coding agents in parallel under budgets, permissions and an audit log.
//!
//! This crate is the application: the command line, agent definitions, model providers,
//! tools and output. The engine (actors, budgets, policy, audit) is the `codex-actors`
//! crate.

mod assembly;
mod atomic_file;
mod cli;
mod cluster;
mod commands;
mod containment;
mod definition;
mod exit;
mod interrupt;
mod mcp;
mod mcp_client;
mod output;
mod progress;
mod providers;
mod resume;
mod runs;
mod worktree;
use codex::tools;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use clap::CommandFactory;
use cli::{AgentsCommand, AuditCommand, Cli, Command};

fn main() -> ExitCode {
    // `codex __sandbox-exec ...`: this process is the sandbox of an agent's program.
    codex::sandbox::enter::run_if_helper();
    one_malloc_arena_per_core();
    containment::harden_process();
    let cli = Cli::parse();
    init_tracing();
    quiet_handled_panics();
    match run(cli) {
        Ok(code) => code,
        // A reader that went away (`codex audit show last | head`) is not an error to
        // print; the status is the conventional one of a program stopped by SIGPIPE.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(exit::BROKEN_PIPE),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

/// glibc gives threads that allocate at once their own arenas, up to eight per core; the
/// runtime's workers and the tools' blocking threads (up to 64) reach that, and memory one
/// arena freed is not reused by another. One arena per core, the number of runtime
/// workers, kept a thousand agents' peak RSS 3-7 MiB lower at no measured CPU cost
/// (BENCHMARKS.md section 7). Set before any thread starts; `MALLOC_ARENA_MAX` or
/// `GLIBC_TUNABLES` in the environment take precedence.
fn one_malloc_arena_per_core() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && std::env::var_os("GLIBC_TUNABLES").is_none()
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let cores = i32::try_from(cores).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, cores) };
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODEX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
}

/// Panics on the runtime's worker threads are an agent's (or a service's) crash: ractor
/// catches them and the supervisor restarts the actor, and the run's output already says
/// so. They go to the log (`CODEX_LOG=debug`) instead of stderr; any other panic is a bug
/// of this program and is printed as usual.
fn quiet_handled_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("tokio-runtime-worker"));
        if worker {
            tracing::debug!("an actor panicked (handled by its supervisor): {info}");
        } else {
            default(info);
        }
    }));
}

fn run(cli: Cli) -> Result<ExitCode> {
    let workspace = workspace(cli.workspace.as_deref())?;
    match cli.command {
        Command::Delegate(args) => runtime()?.block_on(async {
            let interrupts = interrupt::listen()?;
            commands::run::delegate(&workspace, &args, interrupts).await
        }),
        Command::DelegateParallel(args) => runtime()?.block_on(async {
            let interrupts = interrupt::listen()?;
            commands::run::delegate_parallel(&workspace, &args, interrupts).await
        }),
        Command::McpServer(args) => {
            let token = std::env::var(mcp::serve::TOKEN_VAR)
                .ok()
                .filter(|t| !t.is_empty());
            let rt = runtime()?;
            let served = rt.block_on(async {
                let server =
                    mcp::server::CodexServer::new(workspace, args.models, args.budget).await?;
                match args.http {
                    Some(addr) => mcp::serve::http(server, addr, token).await,
                    None => mcp::serve::stdio(server).await,
                }
            });
            // A read of stdin may still block a runtime thread: do not wait for it.
            rt.shutdown_timeout(std::time::Duration::from_millis(100));
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume(args) => runtime()?.block_on(async {
            let interrupts = interrupt::listen()?;
            commands::resume::resume(&workspace, &args, interrupts).await
        }),
        Command::Worker(args) => runtime()?.block_on(async {
            let interrupts = interrupt::listen()?;
            commands::worker::run(&workspace, &args, interrupts).await
        }),
        Command::AgentCreate(args) => runtime()?.block_on(async {
            let interrupts = interrupt::listen()?;
            commands::agent_create::run(&workspace, &args, interrupts).await
        }),
        Command::Agents { command } => agents(&workspace, command),
        Command::Audit { command } => audit(&workspace, command),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "codex", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy {
            command: cli::PolicyCommand::Check(args),
        } => commands::policy::check(&workspace, &args),
        Command::Sandbox { command } => {
            runtime()?.block_on(commands::sandbox::run(&workspace, command))
        }
        Command::Changes {
            run,
            agent,
            stat,
            json,
        } => commands::changes::show(&workspace, &run, agent.as_deref(), stat, json),
        Command::Apply { run, agents } => commands::changes::apply(&workspace, &run, &agents),
        Command::Gc {
            older_than,
            dry_run,
            config,
        } => commands::gc::gc(&workspace, older_than.as_deref(), dry_run, &config),
        Command::Discard { run, agent } => {
            commands::changes::discard(&workspace, &run, agent.as_deref())
        }
    }
}

fn audit(workspace: &Path, command: AuditCommand) -> Result<ExitCode> {
    use commands::audit as a;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match command {
        AuditCommand::List => write!(stdout, "{}", a::list(workspace)?)?,
        AuditCommand::Show { run, agent, kind } => {
            let (_, path) = a::resolve(workspace, &run)?;
            let records = codex_actors::audit::parse_records(&a::read(&path)?);
            write!(
                stdout,
                "{}",
                a::show(&records, agent.as_deref(), kind.as_deref())?
            )?;
        }
        AuditCommand::Tail { run, lines, follow } => {
            let (_, path) = a::resolve(workspace, &run)?;
            if follow {
                a::follow(&path, lines, &mut stdout)?;
            } else {
                let records = codex_actors::audit::parse_records(&a::read(&path)?);
                write!(stdout, "{}", a::tail(&records, lines))?;
            }
        }
        AuditCommand::Stats { run } => {
            let (id, path) = a::resolve(workspace, &run)?;
            let records = codex_actors::audit::parse_records(&a::read(&path)?);
            let end = a::Unfinished::of(&path);
            write!(stdout, "{}", a::stats(&id, &records, end))?;
        }
        AuditCommand::Verify { run } => {
            let (id, path) = a::resolve(workspace, &run)?;
            let anchors = containment::anchor_path();
            let (text, code) = a::verify_anchored(&id, &a::read(&path)?, anchors.as_deref());
            write!(stdout, "{text}")?;
            let dir = path.parent().expect("a log has a directory");
            // Apply and discard come after the log was anchored: their own log (see ledger).
            if let Some((text, intact)) = worktree::ledger::verify(dir, &id, anchors.as_deref()) {
                write!(stdout, "{text}")?;
                if !intact {
                    return Ok(ExitCode::from(1));
                }
            }
            return Ok(ExitCode::from(code));
        }
        AuditCommand::Export { run, format } => {
            let (_, path) = a::resolve(workspace, &run)?;
            a::export(&a::read(&path)?, format, &mut stdout)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn agents(workspace: &Path, command: AgentsCommand) -> Result<ExitCode> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match command {
        AgentsCommand::List => {
            let catalog = definition::Catalog::load(workspace)?;
            warn_all(catalog.warnings());
            write!(stdout, "{}", commands::agents::list(&catalog))?;
        }
        AgentsCommand::Show { name } => {
            let catalog = definition::Catalog::load(workspace)?;
            warn_all(catalog.warnings());
            write!(stdout, "{}", commands::agents::show(&catalog, &name)?)?;
        }
        AgentsCommand::Validate {
            files,
            allow_unknown,
        } => {
            let unknown = match allow_unknown {
                true => commands::agents::Unknown::Warn,
                false => commands::agents::Unknown::Fail,
            };
            let (report, ok) = commands::agents::validate(&files, workspace, unknown);
            write!(stdout, "{report}")?;
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
        // Tools do their file work on the blocking pool. Its default, 512 threads, is what a
        // thousand agents reading at once reached: hundreds of threads, each with its own
        // stack and allocator pages. 64 keep two cores busy; the rest wait their turn.
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
