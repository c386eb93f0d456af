//! Watching a run: what is printed while the agents work.
//!
//! Four modes, chosen by `codex delegate[-parallel]` ([`Mode::choose`]):
//!
//! - [`Mode::Live`] (stdout is a terminal): a line per agent, redrawn in place with
//!   indicatif: its status and current step (calling the model, or the tool it runs), the
//!   tokens it used as a bar against its budget, its elapsed time and restarts.
//! - [`Mode::Plain`] (stdout is not a terminal: a pipe, a log file, CI): the `[start]`,
//!   `[restart]` and `[done]` / `[fail]` lines of [`crate::output::event_line`], one per
//!   event, never redrawn.
//! - [`Mode::Quiet`] (`--quiet`): nothing while the run lasts.
//! - [`Mode::Json`] (`--json`): every event as one JSON object per line on stdout, in the
//!   manner of `codex exec --json`: `run_started`, then the engine's events
//!   (`agent_started`, `model_call_started`, `turn_completed` with its usage, `tool_started`,
//!   `tool_called`, `agent_restarting`, `agent_delegated` for a child about to start,
//!   `agent_finished`), then `run_finished` with the whole report. Delegated agents get a
//!   line (live) or their own `[delegate]` / `[start]` / `[done]` lines (plain) as they come. Nothing else goes to stdout, so a consumer can parse it line by line.
//!
//! The state shown per agent is an [`AgentView`], updated by pure [`AgentView::apply`] and
//! tested without a terminal; indicatif only draws it. The watcher reads an unbounded
//! channel, so a slow terminal never slows the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use codex_actors::audit::Redactor;
use codex_actors::{AgentStatus, RunEvent, RunReport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::output;

/// How a run is shown while it lasts (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars, redrawn in place.
    Live,
    /// One line per start, restart and end.
    Plain,
    /// Nothing until the summary.
    Quiet,
    /// JSON Lines on stdout, nothing else.
    Json,
}

impl Mode {
    /// `--json` wins, then `--quiet`; otherwise live on a terminal, plain elsewhere.
    pub fn choose(json: bool, quiet: bool, terminal: bool) -> Mode {
        match (json, quiet, terminal) {
            (true, _, _) => Mode::Json,
            (_, true, _) => Mode::Quiet,
            (_, _, true) => Mode::Live,
            _ => Mode::Plain,
        }
    }
}

/// What the live view shows about one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    /// Its budget (the bar's length).
    pub budget: u64,
    /// Tokens used over all its attempts (the bar's position).
    pub tokens_used: u64,
    /// How often it was restarted.
    pub restarts: u32,
    /// Its status: `None` while it waits for a slot or runs.
    pub status: Option<AgentStatus>,
    /// Whether it has started.
    pub started: bool,
    /// What it is doing, in a few words.
    pub step: String,
}

impl AgentView {
    /// An agent not yet started.
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            tokens_used: 0,
            restarts: 0,
            status: None,
            started: false,
            step: "queued".into(),
        }
    }

    /// Updates the view with an event about this agent.
    pub fn apply(&mut self, event: &RunEvent) {
        match event {
            RunEvent::AgentStarted { attempt, .. } => {
                self.started = true;
                self.step = if *attempt == 1 {
                    "starting".into()
                } else {
                    format!("attempt {attempt} starting")
                };
            }
            RunEvent::ModelCallStarted { turn, .. } => {
                self.step = format!("turn {turn}: calling the model");
            }
            RunEvent::TurnCompleted {
                turn,
                tokens_used,
                tool_calls,
                truncated,
                ..
            } => {
                self.tokens_used = *tokens_used;
                self.step = match tool_calls {
                    0 => format!("turn {turn}: answered"),
                    n => format!("turn {turn}: {n} tool call{}", plural(*n)),
                };
                if *truncated {
                    self.step.push_str(" (cut off by the output cap)");
                }
            }
            RunEvent::AgentDelegated { parent, .. } => {
                self.step = format!("delegated by {parent}");
            }
            RunEvent::ContextCompacted {
                turn,
                elided,
                dropped,
                ..
            } => {
                self.step = match dropped {
                    0 => format!("turn {}: {elided} old tool outputs elided", turn + 1),
                    _ => format!("turn {}: context compacted", turn + 1),
                };
            }
            RunEvent::ToolStarted { tool, .. } => self.step = format!("running {tool}"),
            RunEvent::ToolCalled { tool, outcome, .. } => self.step = format!("{tool}: {outcome}"),
            RunEvent::AgentRestarting {
                reason, delay_ms, ..
            } => {
                self.restarts += 1;
                self.step = format!("restarting in {delay_ms} ms: {}", first_line(reason));
            }
            RunEvent::AgentFinished(report) => {
                self.status = Some(report.status);
                self.tokens_used = report.tokens_used;
                self.restarts = report.restarts;
                self.step = match &report.error {
                    Some(e) => format!("{}: {}", report.status.label(), first_line(e)),
                    None => report.status.label().to_owned(),
                };
            }
        }
    }

    /// The text after the bar: status or step, and restarts.
    pub fn message(&self) -> String {
        let restarts = match self.restarts {
            0 => String::new(),
            n => format!(" · {n} restart{}", plural(n as usize)),
        };
        format!("{}{restarts}", self.step)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn first_line(s: &str) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(79).collect::<String>())
    } else {
        line
    }
}

/// The first JSON line of `--json` output.
pub fn run_started_json(run_id: &str, audit_log: &str, budgets: &[(String, u64)]) -> Value {
    json!({
        "type": "run_started",
        "run_id": run_id,
        "audit_log": audit_log,
        "agents": budgets
            .iter()
            .map(|(agent, budget)| json!({"agent": agent, "budget": budget}))
            .collect::<Vec<_>>(),
    })
}

/// The last JSON line of `--json` output: the report, as `-o` writes it, tagged.
pub fn run_finished_json(report: &RunReport, audit_log: &str) -> Value {
    let mut v = serde_json::to_value(report).expect("a report serializes");
    let map = v.as_object_mut().expect("a report is an object");
    map.insert("type".into(), "run_finished".into());
    map.insert("audit_log".into(), audit_log.into());
    v
}

/// Shows the run's events in `mode` until the channel closes (the run ended).
/// Every printed line is redacted first (keys and tokens, see [`Redactor`]): a model may
/// echo a secret into its answer or a tool's error.
pub async fn watch(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
    mode: Mode,
    budgets: Vec<(String, u64)>,
    redactor: Arc<Redactor>,
) {
    match mode {
        Mode::Quiet => drain(rx).await,
        Mode::Plain => {
            let mut budgets: BTreeMap<String, u64> = budgets.into_iter().collect();
            while let Some(event) = rx.recv().await {
                if let RunEvent::AgentDelegated { agent, budget, .. } = &event {
                    budgets.insert(agent.clone(), *budget);
                }
                let budget_of = |agent: &str| budgets.get(agent).copied().unwrap_or(0);
                if let Some(line) = output::event_line(&event, budget_of) {
                    if !print_line(redactor.redact(&line).into_owned()).await {
                        return drain(rx).await;
                    }
                }
            }
        }
        Mode::Json => {
            while let Some(event) = rx.recv().await {
                let mut json = serde_json::to_value(&event).expect("an event serializes");
                redactor.redact_json(&mut json);
                if !print_line(json.to_string()).await {
                    return drain(rx).await;
                }
            }
        }
        Mode::Live => live(rx, &budgets, &redactor).await,
    }
}

/// Reads the rest of the events without showing them.
async fn drain(mut rx: mpsc::UnboundedReceiver<RunEvent>) {
    while rx.recv().await.is_some() {}
}

/// Prints a line on stdout; false when stdout is gone (its reader closed the pipe: the
/// run goes on, quietly, and writes its results as usual). The write runs on tokio's
/// blocking pool: a stdout that blocks (a paused terminal, a pipe nobody reads) holds up
/// the printing, never a runtime worker, so the run and the signal handlers go on.
async fn print_line(line: String) -> bool {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
    })
    .await
    .unwrap_or(false)
}

async fn live(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
    budgets: &[(String, u64)],
    redactor: &Redactor,
) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
    let style = ProgressStyle::with_template(
        "{prefix:<16.bold} [{bar:24.cyan/blue}] {human_pos:>7}/{human_len:<7} {elapsed:>4}  {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let width = budgets.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut views: BTreeMap<String, (AgentView, ProgressBar)> = BTreeMap::new();
    let add = |name: &str, budget: u64| {
        let view = AgentView::new(budget);
        let bar = multi.add(ProgressBar::new(budget).with_style(style.clone()));
        bar.set_prefix(format!("{name:<width$}"));
        bar.set_message(view.message());
        (view, bar)
    };
    for (name, budget) in budgets {
        views.insert(name.clone(), add(name, *budget));
    }
    while let Some(event) = rx.recv().await {
        // A delegated agent gets its line when it is delegated to.
        if let RunEvent::AgentDelegated { agent, budget, .. } = &event {
            views.insert(agent.clone(), add(agent, *budget));
        }
        let Some((view, bar)) = views.get_mut(event.agent()) else {
            continue;
        };
        let was_started = view.started;
        view.apply(&event);
        if view.started && !was_started {
            bar.reset_elapsed();
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        bar.set_position(view.tokens_used.min(view.budget));
        bar.set_message(view.message());
        if let RunEvent::AgentFinished(report) = &event {
            bar.abandon_with_message(view.message());
            let _ = multi.println(redactor.redact(&output::agent_line(report)));
        }
    }
    let _ = multi.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use codex_actors::{AgentReport, Usage};

    fn started(attempt: u32) -> RunEvent {
        RunEvent::AgentStarted {
            agent: "a".into(),
            attempt,
        }
    }

    #[test]
    fn json_wins_over_quiet_and_terminals_get_the_live_view() {
        assert_eq!(Mode::choose(true, true, true), Mode::Json);
        assert_eq!(Mode::choose(false, true, true), Mode::Quiet);
        assert_eq!(Mode::choose(false, false, true), Mode::Live);
        assert_eq!(Mode::choose(false, false, false), Mode::Plain);
    }

    #[test]
    fn the_view_follows_an_agent_through_its_steps() {
        let mut v = AgentView::new(6000);
        let mut seen = vec![v.message()];
        for e in [
            started(1),
            RunEvent::ModelCallStarted {
                agent: "a".into(),
                attempt: 1,
                turn: 1,
            },
            RunEvent::TurnCompleted {
                agent: "a".into(),
                attempt: 1,
                turn: 1,
                usage: Usage {
                    input_tokens: 400,
                    output_tokens: 20,
                },
                tokens_used: 420,
                tool_calls: 2,
                truncated: false,
            },
            RunEvent::ToolStarted {
                agent: "a".into(),
                tool: "read_file".into(),
            },
            RunEvent::ToolCalled {
                agent: "a".into(),
                tool: "read_file".into(),
                outcome: codex_actors::ToolOutcome::Denied,
            },
            RunEvent::AgentRestarting {
                agent: "a".into(),
                reason: "panicked:\n boom".into(),
                delay_ms: 100,
            },
            started(2),
        ] {
            v.apply(&e);
            seen.push(format!("{:>4} tok | {}", v.tokens_used, v.message()));
        }
        insta::assert_snapshot!(seen.join("\n"));
    }

    #[test]
    fn a_finished_agent_shows_its_status_tokens_and_error() {
        let mut v = AgentView::new(5000);
        v.apply(&started(1));
        v.apply(&RunEvent::AgentFinished(AgentReport {
            agent: "a".into(),
            goal: "g".into(),
            scope: String::new(),
            status: AgentStatus::BudgetExceeded,
            tokens_used: 4990,
            budget: 5000,
            duration_secs: 1.0,
            restarts: 1,
            artifacts: vec![],
            error: Some("budget exhausted".into()),
            final_message: None,
            parent: None,
            depth: 0,
            truncated: false,
        }));
        assert_eq!(v.status, Some(AgentStatus::BudgetExceeded));
        assert_eq!(v.tokens_used, 4990);
        assert_eq!(v.message(), "budget exceeded: budget exhausted · 1 restart");
    }

    #[test]
    fn json_events_are_tagged_objects() {
        let line = serde_json::to_string(&RunEvent::ToolCalled {
            agent: "a".into(),
            tool: "grep".into(),
            outcome: codex_actors::ToolOutcome::Ok,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"type":"tool_called","agent":"a","tool":"grep","outcome":"ok"}"#
        );
    }
}
