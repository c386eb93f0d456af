//! `codex`: run LLM coding agents in parallel under budgets, permissions and an audit log.

mod cli;
mod definition;
mod providers;
mod tools;

fn main() {
    let _ = clap::Parser::parse_from::<_, &str>(["codex", "agents", "list"]) as cli::Cli;
}
