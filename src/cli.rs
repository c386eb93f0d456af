//! The command line, as clap derive types. Parsing only: each command's behaviour lives in
//! `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run LLM coding agents in parallel, under budgets, permissions and an audit log.
#[derive(Debug, Parser)]
#[command(name = "codex", version, about, propagate_version = true)]
pub struct Cli {
    /// Workspace root (default: the current directory).
    #[arg(short = 'C', long = "cd", global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one agent on a goal.
    #[command(
        after_help = "Example:\n  codex delegate code-reviewer --goal \"Review src/ for unsafe code\" \\\n    --scope src --budget 8000 --provider openai --model gpt-4.1\n  codex -C demo delegate code-reviewer --goal \"Review src/\" --replay demo/replay.yaml"
    )]
    Delegate(DelegateArgs),
    /// Run several agents at once, each on its own goal.
    #[command(
        after_help = "Example (on the bundled demo workspace):\n  codex -C demo delegate-parallel code-reviewer,test-gen \\\n    --goals \"Review the parser,Write tests for the parser\" --budgets 5000,3000 \\\n    --replay demo/replay.yaml -o demo/results.json"
    )]
    DelegateParallel(DelegateParallelArgs),
    /// List, show and validate agent definitions.
    #[command(
        after_help = "Examples:\n  codex agents list\n  codex agents show code-reviewer\n  codex agents validate .codex/agents/my-agent.yaml"
    )]
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Read, check and export the audit logs of past runs.
    #[command(
        after_help = "RUN is a run id, a unique prefix of one, or `last`.\n\nExamples:\n  codex audit list\n  codex audit verify last\n  codex audit show last --agent code-reviewer --type tool_call\n  codex audit stats 20261124T0609\n  codex audit export last --format csv > audit.csv"
    )]
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  codex completion bash > ~/.local/share/bash-completion/completions/codex\n  codex completion zsh > ~/.zfunc/_codex\n  codex completion fish > ~/.config/fish/completions/codex.fish"
    )]
    Completion {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Ask the policy what an agent may do.
    #[command(
        after_help = "Examples:\n  codex policy check code-reviewer --write src/main.rs\n  codex policy check researcher --url https://docs.rs/tokio\n  codex policy check test-gen --exec cargo"
    )]
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Serve the agents over MCP on stdin/stdout (or Streamable HTTP): tools `delegate`,
    /// `delegate_parallel`, `list_agents`, `create_agent`, and `read_file`, `grep`,
    /// `codebase_search` (read-only).
    #[command(
        after_help = "Examples:\n  codex -C path/to/workspace mcp-server --budget 200000 --provider openai --model gpt-4.1   (an MCP client's server command)\n  codex -C path/to/workspace mcp-server --http 127.0.0.1:8765 --budget 200000   (shared by several clients)"
    )]
    McpServer(McpServerArgs),
    /// Let the model write an agent definition from a description, check it, show it, and
    /// run it on its goal.
    #[command(
        after_help = "Examples:\n  codex agent-create \"Review Rust code for panics\" --dry-run\n  codex -C demo agent-create \"Write docs for src/\" --name docs-writer --save --budget 20000"
    )]
    AgentCreate(AgentCreateArgs),
    /// Check and try the OS sandbox that agents' programs run in.
    #[command(
        after_help = "Examples:\n  codex sandbox check\n  codex sandbox run test-gen -- cargo test --offline\n  codex sandbox run code-reviewer -- cat ../secret.txt"
    )]
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// Show what the isolated agents of a run changed (each in its own git worktree).
    #[command(
        after_help = "RUN is a run id, a unique prefix of one, or `last`.\n\nExamples:\n  codex changes last\n  codex changes last test-gen --stat\n  codex changes 20261124T0609 --json"
    )]
    Changes {
        /// The run.
        #[arg(default_value = "last")]
        run: String,
        /// Only this agent's change.
        agent: Option<String>,
        /// Files and lines added/removed instead of the diff.
        #[arg(long)]
        stat: bool,
        /// The changes' summaries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply agents' changes to your working tree: a three-way merge against it, each
    /// agent all or nothing (your tree untouched on a conflict), in the order given.
    #[command(after_help = "Examples:\n  codex apply last code-reviewer test-gen")]
    Apply {
        /// The run (an id, a unique prefix, or `last`).
        run: String,
        /// The agents whose changes to apply, in order; the first conflict stops.
        #[arg(required = true)]
        agents: Vec<String>,
    },
    /// Remove agents' worktrees without applying them (their patches are kept).
    #[command(after_help = "Examples:\n  codex discard last\n  codex discard last test-gen")]
    Discard {
        /// The run (an id, a unique prefix, or `last`).
        run: String,
        /// Only this agent's worktree (default: every agent's of the run).
        agent: Option<String>,
    },
    /// Remove the worktrees of ended runs: those whose change was applied, and those of
    /// runs that ended before the retention period (never a running run's); the patches
    /// stay.
    #[command(after_help = "Examples:\n  codex gc --dry-run\n  codex gc --older-than 1d")]
    Gc {
        /// The retention period: `7d`, `12h`, `30m` (default: `[worktrees] retention` of
        /// the config file, else 7d).
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Override a setting of codex-actors.toml (`-c worktrees.retention=3d`).
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
    /// Continue a run that was killed or interrupted: finished agents keep their results,
    /// the others continue from their checkpoints with the budget they had left.
    #[command(
        after_help = "RUN is a run id, a unique prefix of one, or `last`.\n\nExamples:\n  codex -C demo resume last --replay demo/replay.yaml\n  codex resume 20261124T0609 --provider openai --model gpt-4.1 -o results.json"
    )]
    Resume(ResumeArgs),
    /// Run agent attempts for the runs of a cluster (`--cluster` on the run commands):
    /// takes them from the cluster's NATS JetStream work queue, each in a git worktree of
    /// this checkout (-C), with models and keys configured here.
    #[command(
        after_help = "Example:\n  nats-server -js -sd /var/lib/nats &\n  codex -C ~/src/project worker --nats nats://coordinator:4222 --name w1 --slots 4"
    )]
    Worker(WorkerArgs),
}

/// `codex worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The NATS server (default: `[cluster] url` of the config file).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// This worker's name, recorded in the audit log of each attempt it runs (default:
    /// the host name and process id).
    #[arg(long)]
    pub name: Option<String>,
    /// Attempts run at once.
    #[arg(long, default_value_t = 2)]
    pub slots: usize,
    /// How often it tells the runs it is alive: `1s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub heartbeat: String,
    /// Override a setting of codex-actors.toml (`-c cluster.name=team-a`).
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
}

/// `codex resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to resume.
    #[arg(default_value = "last")]
    pub run: String,
    /// Models, `-o`, progress: as for the run commands.
    #[command(flatten)]
    pub run_args: RunArgs,
}

/// Where the models come from: flags shared by every command that calls a model.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelArgs {
    /// Play model turns from this replay script instead of calling a model (no key, no network).
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// The model provider: a preset (openai, openai-chat, anthropic, ollama, lmstudio,
    /// openrouter) or a `[providers.NAME]` of $CODEX_HOME/codex-actors.toml.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// The model to ask for (overrides agent definitions and the config file).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Override a setting of codex-actors.toml: a dotted key and a value, for example
    /// `-c providers.local.base_url=http://127.0.0.1:8080/v1` (repeatable).
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
}

/// Flags shared by the commands that run agents.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the models come from.
    #[command(flatten)]
    pub models: ModelArgs,

    /// Record the run's model turns to this file as a replay script, to replay the run
    /// later with `--replay FILE` (each agent's last attempt; no delays).
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,

    /// Write the run's results as JSON to this file (also after Ctrl-C).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Wall-clock limit per agent: `90s`, `10m`, `1h`; a bare number means minutes.
    #[arg(long, value_name = "DURATION")]
    pub deadline: Option<String>,

    /// Print no live progress, only the summary.
    #[arg(short = 'q', long, conflicts_with = "json")]
    pub quiet: bool,

    /// Stream the run's events as JSON Lines on stdout (and nothing else).
    #[arg(long)]
    pub json: bool,

    /// Run agents' programs in the OS sandbox (`on`, the default unless the config file's
    /// [sandbox] says otherwise) or with codex's own rights (`off`).
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<codex::sandbox::SandboxMode>,

    /// Where writing agents write: `worktree` (each its own git worktree; review with
    /// `codex changes`, keep with `codex apply`) or `shared` (the workspace itself).
    /// Default: `worktree` in a git repository for agents that may write.
    #[arg(long, value_name = "MODE", value_enum)]
    pub isolation: Option<crate::worktree::Isolation>,

    /// At the end, apply each completed isolated agent's change to your tree, in order,
    /// stopping at the first conflict (exit status 5; `codex apply` continues).
    #[arg(long)]
    pub apply: bool,

    /// Run the agents on the `codex worker`s of a cluster, through this NATS server
    /// (`nats://host:4222`, JetStream on); default: `[cluster] url` of the config file.
    /// Budget, policy, audit and supervision stay in this process.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
}

/// `codex delegate`.
#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// The agent to run, by name.
    pub agent: String,
    /// What the agent should achieve.
    #[arg(long)]
    pub goal: String,
    /// The subtree the agent works on (its writes are limited to it).
    #[arg(long, value_name = "PATH")]
    pub scope: Option<String>,
    /// Token budget (default: the definition's).
    #[arg(long, value_name = "N")]
    pub budget: Option<u64>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `codex delegate-parallel`.
#[derive(Debug, Args)]
pub struct DelegateParallelArgs {
    /// Agents to run, comma-separated; each at most once.
    #[arg(value_name = "AGENTS")]
    pub agents: String,
    /// Goals, comma-separated: one per agent, or one for all.
    #[arg(long, value_name = "G1,G2", conflicts_with = "goal")]
    pub goals: Option<String>,
    /// A goal; repeat once per agent, in order (for goals that contain commas).
    #[arg(long, value_name = "GOAL")]
    pub goal: Vec<String>,
    /// Scopes, comma-separated: one per agent, or one for all.
    #[arg(long, value_name = "S1,S2")]
    pub scopes: Option<String>,
    /// Token budgets, comma-separated: one per agent, or one for all.
    #[arg(long, value_name = "N1,N2")]
    pub budgets: Option<String>,
    /// The run's global token budget (default: the sum of the agents' budgets).
    #[arg(long, value_name = "N")]
    pub total_budget: Option<u64>,
    /// Run at most this many agents at once (default: all; at least 1).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_concurrency: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `codex mcp-server`.
#[derive(Debug, Args)]
pub struct McpServerArgs {
    /// Tokens the server may spend over all the calls of its session; a request that
    /// asks for more gets what remains (none left: refused).
    #[arg(long, value_name = "N")]
    pub budget: Option<u64>,
    /// Serve over Streamable HTTP at http://ADDR/mcp instead of stdin/stdout, for several
    /// clients sharing one session budget. An address other than loopback needs a bearer
    /// token in CODEX_MCP_TOKEN.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Where the models come from.
    #[command(flatten)]
    pub models: ModelArgs,
}

/// `codex agent-create`.
#[derive(Debug, Args)]
pub struct AgentCreateArgs {
    /// What the agent should be and do, in words.
    pub prompt: String,
    /// Token budget of the model calls that write the definition plus the new agent's run
    /// (which gets what the calls left); also the definition's `budget`.
    #[arg(long, value_name = "N")]
    pub budget: Option<u64>,
    /// Save the definition as `.codex/agents/NAME.yaml`.
    #[arg(long)]
    pub save: bool,
    /// With --save: replace an existing file.
    #[arg(long, requires = "save")]
    pub force: bool,
    /// The agent's name (replaces the one the model chose).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only write and show the definition; do not run it.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the run's results as JSON to this file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where the model comes from.
    #[command(flatten)]
    pub models: ModelArgs,
}

/// `codex agents ...`.
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List the agents available here, and where each is defined.
    #[command(after_help = "Example:\n  codex -C path/to/workspace agents list")]
    List,
    /// Show an agent's definition and its effective permissions.
    #[command(after_help = "Example:\n  codex agents show code-reviewer")]
    Show {
        /// The agent's name.
        name: String,
    },
    /// Check definition files (default: every definition found). An unknown field is an
    /// error (a typo would be ignored at run time), unless `--allow-unknown`.
    #[command(after_help = "Example:\n  codex agents validate .codex/agents/*.yaml")]
    Validate {
        /// Files to check.
        files: Vec<PathBuf>,
        /// Report unknown fields as warnings instead of errors.
        #[arg(long)]
        allow_unknown: bool,
    },
}

/// `codex audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List the runs of this workspace, newest last.
    #[command(after_help = "Example:\n  codex -C path/to/workspace audit list")]
    List,
    /// Print a run's records, one line each.
    #[command(
        after_help = "Examples:\n  codex audit show last\n  codex audit show last --agent test-gen --type policy_decision"
    )]
    Show {
        /// A run id, a unique prefix of one, or `last`.
        run: String,
        /// Only records about this agent.
        #[arg(long, value_name = "AGENT")]
        agent: Option<String>,
        /// Only records of this type (`tool_call`, `model_call`, `policy_decision`, ...).
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
    },
    /// Print a run's last records; with --follow, keep printing new ones until it finishes.
    #[command(
        after_help = "Examples:\n  codex audit tail last\n  codex audit tail last -n 50 --follow"
    )]
    Tail {
        /// A run id, a unique prefix of one, or `last`.
        run: String,
        /// How many records to print first.
        #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
        lines: usize,
        /// Keep printing records as they are written, until the run finishes (or Ctrl-C).
        #[arg(short, long)]
        follow: bool,
    },
    /// Tokens per agent and per model, tool calls, denials, restarts and durations.
    #[command(after_help = "Example:\n  codex audit stats last")]
    Stats {
        /// A run id, a unique prefix of one, or `last`.
        run: String,
    },
    /// Check a log's hash chain. Exit status: 0 intact and complete, 1 tampered (the
    /// first bad line is named), 3 intact but incomplete (a torn last line, or no
    /// `run_finished`: the run was interrupted, is still running, or its end was cut).
    #[command(
        after_help = "Examples:\n  codex audit verify last\n  codex audit verify 20261124T060926Z-713c24"
    )]
    Verify {
        /// A run id, a unique prefix of one, or `last`.
        run: String,
    },
    /// Write a run's records to stdout as JSON Lines (verbatim) or CSV.
    #[command(
        after_help = "Examples:\n  codex audit export last --format jsonl > audit.jsonl\n  codex audit export last --format csv > audit.csv"
    )]
    Export {
        /// A run id, a unique prefix of one, or `last`.
        run: String,
        /// The output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
}

/// `codex audit export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The complete lines of the log, exactly as written (hashes still verify).
    Jsonl,
    /// One row per record: seq, ts, type, agent, summary, prev_hash, hash.
    Csv,
}

/// `codex policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide one access for an agent, as its tools would: prints the decision and the rule
    /// (exit 0 allowed, 1 denied).
    #[command(
        after_help = "Examples:\n  codex policy check code-reviewer --read src/lib.rs\n  codex policy check test-gen --write tests/a.rs --scope tests"
    )]
    Check(PolicyCheckArgs),
}

/// `codex policy check`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("access").required(true).multiple(false)))]
pub struct PolicyCheckArgs {
    /// The agent, by name.
    pub agent: String,
    /// A path to read (resolved like the tools do: `..` and symlinks followed).
    #[arg(long, value_name = "PATH", group = "access")]
    pub read: Option<String>,
    /// A path to write (resolved like the tools do).
    #[arg(long, value_name = "PATH", group = "access")]
    pub write: Option<String>,
    /// A URL to fetch.
    #[arg(long, value_name = "URL", group = "access")]
    pub url: Option<String>,
    /// A program to run, by name.
    #[arg(long, value_name = "PROGRAM", group = "access")]
    pub exec: Option<String>,
    /// The agent's scope (writes are limited to it).
    #[arg(long, value_name = "PATH")]
    pub scope: Option<String>,
}

/// A count that must be at least 1 (`--max-concurrency 0` would run nothing).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => {
            Err("must be at least 1 (0 would run no agent); omit it to run all at once".into())
        }
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; give a whole number of agents, at least 1")),
    }
}

/// `codex sandbox ...`.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Print what this machine supports, and try a sandboxed program (exit 1 if it fails).
    Check,
    /// Run a program in the sandbox an agent's `shell` would give it.
    Run {
        /// The agent, by name.
        agent: String,
        /// The agent's scope (default: the whole workspace).
        #[arg(long, value_name = "PATH")]
        scope: Option<String>,
        /// The program (a bare name, looked up on PATH) and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "PROGRAM ARGS")]
        argv: Vec<String>,
    },
}
