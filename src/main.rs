//! `codex`: run LLM coding agents in parallel under budgets, permissions and an audit log.
#![allow(dead_code)] // skeleton: removed once commands are wired

mod cli;
mod commands;
mod definition;
mod providers;
mod tools;

fn main() {
    let _cli = <cli::Cli as clap::Parser>::parse();
}
