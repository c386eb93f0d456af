//! `codex policy check`: one access of one agent, decided by the engine's matcher.
//!
//! The access is built the way the tools build theirs: a path is resolved against the
//! workspace (`..` applied, symlinks followed, [`tools::paths::resolve`]) so the answer
//! matches what a tool call would get, including `outside the workspace`. The agent's
//! permissions come from its definition, with `--scope` applied, and are decided by
//! [`PolicyRules::decide`], the function the PolicyActor runs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use codex_actors::policy::{Decision, PolicyRules};
use codex_actors::tool::Access;

use crate::cli::PolicyCheckArgs;
use crate::definition::{normalize_scope, Catalog};
use crate::tools::paths;

/// Prints the decision and its rule; exit 0 when allowed, 1 when denied.
pub fn check(workspace: &Path, args: &PolicyCheckArgs) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::load(workspace)?;
    let def = &catalog.require(&args.agent)?.definition;
    let scope = normalize_scope(args.scope.as_deref().unwrap_or("")).context("invalid --scope")?;
    // The spec a run would give this agent: the same protected paths.
    let mut spec = def.to_spec(Some("policy check".into()), Some(scope.clone()), None, None)?;
    crate::containment::confine(workspace, &mut spec)?;
    let rules = PolicyRules::compile_within(&spec.permissions, &scope, &spec.ancestors)?;
    let access = access(workspace, args)?;
    let decision = rules.decide(&access);
    println!("{}", render(&args.agent, &access, &decision));
    Ok(if decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The access the flags describe, paths resolved like the tools resolve them.
fn access(workspace: &Path, args: &PolicyCheckArgs) -> anyhow::Result<Access> {
    let resolve = |raw: &str| paths::resolve(workspace, raw).map_err(|e| anyhow!("{e}"));
    if let Some(p) = &args.read {
        return Ok(resolve(p)?.read_access());
    }
    if let Some(p) = &args.write {
        return Ok(resolve(p)?.write_access());
    }
    if let Some(u) = &args.url {
        return Ok(Access::Network(u.clone()));
    }
    match &args.exec {
        Some(program) => Ok(Access::Exec(program.clone())),
        None => Err(anyhow!("give one of --read, --write, --url, --exec")),
    }
}

fn render(agent: &str, access: &Access, decision: &Decision) -> String {
    let verdict = if decision.allowed {
        "allowed"
    } else {
        "denied"
    };
    format!(
        "{verdict}: {agent} may {}{access}\nrule: {}",
        if decision.allowed { "" } else { "not " },
        decision.rule
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_decision_and_rule() {
        let d = Decision {
            allowed: false,
            rule: "write: outside scope `src`".into(),
        };
        let out = render("a", &Access::Write("tests/x.rs".into()), &d);
        assert_eq!(
            out,
            "denied: a may not write `tests/x.rs`\nrule: write: outside scope `src`"
        );
    }
}
