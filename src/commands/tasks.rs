//! Turning `delegate` / `delegate-parallel` flags into one [`Task`] per agent.
//!
//! Goals, scopes and budgets give one value per agent, or one value for all. Any other
//! count is an error before anything runs, naming the flag and both counts. A goal may
//! contain commas, so `--goal` may be repeated instead of `--goals`, once per agent.

use anyhow::{bail, Context, Result};

use crate::assembly::task::Task;
use crate::cli::{DelegateArgs, DelegateParallelArgs};

/// The task of `codex delegate`.
pub fn from_delegate(args: &DelegateArgs) -> Task {
    Task {
        agent: args.agent.trim().to_owned(),
        goal: Some(args.goal.clone()),
        scope: args.scope.clone(),
        budget: args.budget,
        deadline: None,
    }
}

/// The tasks of `codex delegate-parallel`, in the order the agents were named.
pub fn from_parallel(args: &DelegateParallelArgs) -> Result<Vec<Task>> {
    let agents = split(&args.agents);
    if agents.is_empty() || agents.iter().any(String::is_empty) {
        bail!(
            "`{}` is not a list of agents; name them separated by commas, e.g. `code-reviewer,test-gen`",
            args.agents
        );
    }
    let n = agents.len();
    let goals = match &args.goals {
        Some(g) => spread("--goals", split(g), n)?,
        None if args.goal.is_empty() => vec![None; n],
        None => spread("--goal", args.goal.clone(), n)?,
    };
    let scopes = match &args.scopes {
        Some(s) => spread("--scopes", split(s), n)?,
        None => vec![None; n],
    };
    let budgets = match &args.budgets {
        Some(b) => spread("--budgets", parse_budgets(b)?, n)?,
        None => vec![None; n],
    };
    Ok(agents
        .into_iter()
        .zip(goals)
        .zip(scopes)
        .zip(budgets)
        .map(|(((agent, goal), scope), budget)| Task {
            agent,
            goal,
            scope,
            budget,
            deadline: None,
        })
        .collect())
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(|s| s.trim().to_owned()).collect()
}

fn parse_budgets(list: &str) -> Result<Vec<u64>> {
    split(list)
        .iter()
        .map(|b| {
            b.replace('_', "").parse::<u64>().with_context(|| {
                format!("--budgets: `{b}` is not a number of tokens (e.g. `--budgets 5000,3000`)")
            })
        })
        .collect()
}

/// One value per agent, or one for all.
fn spread<T: Clone>(flag: &str, values: Vec<T>, n: usize) -> Result<Vec<Option<T>>> {
    match values.len() {
        1 => Ok(vec![Some(values[0].clone()); n]),
        len if len == n => Ok(values.into_iter().map(Some).collect()),
        len => bail!(
            "{flag} has {len} values for {n} agents; give one value per agent, or one for all{}",
            if flag == "--goals" {
                " (a goal that contains commas needs `--goal`, repeated once per agent)"
            } else {
                ""
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Vec<Task>> {
        let cli = crate::cli::Cli::try_parse_from(
            ["codex", "delegate-parallel"].iter().chain(args).copied(),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::DelegateParallel(a) => from_parallel(&a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn one_value_per_agent_is_matched_in_order() {
        let t = parse(&["a,b", "--goals", "g1,g2", "--budgets", "5000,3000"]).unwrap();
        assert_eq!(t[0].goal.as_deref(), Some("g1"));
        assert_eq!(t[1].budget, Some(3000));
    }

    #[test]
    fn one_value_is_given_to_every_agent() {
        let t = parse(&["a,b,c", "--goals", "same", "--scopes", "src"]).unwrap();
        assert!(t.iter().all(|t| t.goal.as_deref() == Some("same")));
        assert!(t.iter().all(|t| t.scope.as_deref() == Some("src")));
    }

    #[test]
    fn a_wrong_count_names_the_flag_and_both_counts() {
        let e = parse(&["a,b,c", "--budgets", "1,2"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--budgets has 2 values for 3 agents"), "{e}");
    }

    #[test]
    fn repeated_goal_flags_allow_commas_in_goals() {
        let t = parse(&["a,b", "--goal", "fix x, y and z", "--goal", "test it"]).unwrap();
        assert_eq!(t[0].goal.as_deref(), Some("fix x, y and z"));
        assert_eq!(t[1].goal.as_deref(), Some("test it"));
    }

    #[test]
    fn a_goals_count_mismatch_suggests_repeating_goal() {
        let e = parse(&["a,b", "--goals", "x, y, z"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--goal`, repeated"), "{e}");
    }

    #[test]
    fn a_budget_that_is_not_a_number_is_named() {
        let e = parse(&["a", "--budgets", "lots"]).unwrap_err().to_string();
        assert!(e.contains("`lots`"), "{e}");
    }

    #[test]
    fn an_empty_agent_name_is_refused() {
        assert!(parse(&["a,,b"]).is_err());
    }

    #[test]
    fn goals_may_be_left_to_the_definitions() {
        let t = parse(&["a,b"]).unwrap();
        assert!(t.iter().all(|t| t.goal.is_none()));
    }
}
