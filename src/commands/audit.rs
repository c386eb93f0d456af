//! `codex audit list | show | tail | stats | verify | export`: reading the audit logs of
//! past runs.
//!
//! Runs live in `<workspace>/.codex/runs/<run_id>/audit.jsonl`. A `RUN` argument is a run
//! id, a unique prefix of one, or `last` (the greatest id: ids start with their UTC start
//! time, so that is the newest run). The hash chain is checked by the engine
//! ([`codex_actors::audit::verify`]); this module only reads files and formats text. Every
//! formatting function is pure (records in, text out) and snapshot-tested.
//!
//! `show`, `tail`, `stats` and `export` read the complete lines of a log, whether or not
//! its chain verifies: run `verify` to know whether to trust them.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use codex_actors::audit::{
    is_being_written, parse_records, verify, AuditEvent, AuditRecord, BudgetOp, Verification, KINDS,
};

use crate::cli::ExportFormat;
use crate::output::tokens;

pub use crate::runs::{resolve, run_ids, runs_dir};

/// Reads a log's bytes, saying which run on failure.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the audit log {}", path.display()))
}

/// `codex audit list`: one line per run.
pub fn list(workspace: &Path) -> Result<String> {
    let ids = run_ids(workspace)?;
    if ids.is_empty() {
        return Ok(format!(
            "No runs in {} yet.\n",
            runs_dir(workspace).display()
        ));
    }
    let mut rows = vec![[
        "RUN".to_owned(),
        "AGENTS".into(),
        "TOKENS".into(),
        "RECORDS".into(),
        "STATE".into(),
    ]];
    for id in ids {
        let path = runs_dir(workspace).join(&id).join("audit.jsonl");
        let bytes = read(&path)?;
        let end = Unfinished::of(&path);
        rows.push(list_row(&id, &parse_records(&bytes), &verify(&bytes), end));
    }
    Ok(table(&rows))
}

/// What a log without `run_finished` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// Its run is writing it now.
    Running,
    /// Nothing writes it: its process ended without finishing it (killed, crashed, power
    /// lost).
    Killed,
}

impl Unfinished {
    /// Asks the log's writer lock (see [`is_being_written`]).
    pub fn of(path: &Path) -> Self {
        if is_being_written(path) {
            Unfinished::Running
        } else {
            Unfinished::Killed
        }
    }

    fn label(self) -> &'static str {
        match self {
            Unfinished::Running => "running",
            Unfinished::Killed => "killed",
        }
    }
}

/// The tokens a log's model calls charged: what an unfinished log holds.
fn logged_tokens(records: &[AuditRecord]) -> u64 {
    records
        .iter()
        .map(|r| match &r.event {
            AuditEvent::ModelCall { usage, .. } => usage.total(),
            _ => 0,
        })
        .sum()
}

fn list_row(id: &str, records: &[AuditRecord], v: &Verification, end: Unfinished) -> [String; 5] {
    let agents = records
        .iter()
        .find_map(|r| match &r.event {
            AuditEvent::RunStarted { agents, .. } => Some(agents.join(",")),
            _ => None,
        })
        .unwrap_or_default();
    let finished = records.iter().rev().find_map(|r| match &r.event {
        AuditEvent::RunFinished {
            total_tokens,
            success_count,
            total_count,
            cancelled,
            ..
        } => Some((*total_tokens, *success_count, *total_count, *cancelled)),
        _ => None,
    });
    let (used, state) = match finished {
        Some((t, s, n, cancelled)) => {
            let how = if cancelled { "cancelled" } else { "finished" };
            (tokens(t), format!("{how} {s}/{n}"))
        }
        None => (
            tokens(logged_tokens(records)),
            format!("{} (no run_finished)", end.label()),
        ),
    };
    let state = if v.intact() {
        state
    } else {
        format!("{state}, TAMPERED")
    };
    [
        id.to_owned(),
        agents,
        used,
        records.len().to_string(),
        state,
    ]
}

/// `codex audit show`: the records that pass the filters, one line each.
pub fn show(records: &[AuditRecord], agent: Option<&str>, kind: Option<&str>) -> Result<String> {
    if let Some(k) = kind {
        if !KINDS.contains(&k) {
            bail!(
                "unknown record type `{k}`; the types are: {}",
                KINDS.join(", ")
            );
        }
    }
    let mut out = String::new();
    for r in records
        .iter()
        .filter(|r| agent.is_none_or(|a| r.event.agent() == Some(a)))
        .filter(|r| kind.is_none_or(|k| r.event.kind() == k))
    {
        out.push_str(&record_line(r));
        out.push('\n');
    }
    Ok(out)
}

/// One record as a line: sequence number, time, type, agent, and what happened.
pub fn record_line(r: &AuditRecord) -> String {
    format!(
        "{:>5}  {}  {:<17}  {:<14}  {}",
        r.seq,
        r.ts.format("%H:%M:%S%.3f"),
        r.event.kind(),
        escaped(r.event.agent().unwrap_or("-")),
        escaped(&summary(&r.event))
    )
}

/// `s` with every control character (newline, carriage return, escape sequences, ...)
/// written as an escape, so that a record cannot forge lines or drive the terminal.
pub fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a record says, in a few words.
pub fn summary(e: &AuditEvent) -> String {
    match e {
        AuditEvent::RunStarted {
            agents,
            total_budget,
        } => format!(
            "agents {}; total budget {}",
            agents.join(", "),
            tokens(*total_budget)
        ),
        AuditEvent::AgentStarted(a) => {
            let name = codex_actors::identity::AgentName::parse(&a.agent_name);
            let lineage = match name.parent() {
                Some(p) => format!(" (delegated by {p}, depth {})", name.depth()),
                None => String::new(),
            };
            format!("attempt {}{lineage}: {}", a.attempt, one_line(&a.goal))
        }
        AuditEvent::AgentFinished(a) => {
            let mut s = format!(
                "{} after {} attempt{}, {:.1}s, {} tokens",
                a.status.label(),
                a.attempt,
                if a.attempt == 1 { "" } else { "s" },
                a.duration_secs.unwrap_or_default(),
                tokens(a.tokens_used)
            );
            if !a.artifacts.is_empty() {
                s.push_str(&format!(", artifacts: {}", a.artifacts.join(", ")));
            }
            if let Some(err) = &a.error {
                s.push_str(&format!(": {}", one_line(err)));
            }
            s
        }
        AuditEvent::ModelCall {
            attempt,
            turn,
            model,
            granted,
            usage,
            usage_estimated,
            tool_calls,
            error,
            ..
        } => {
            let mut s = format!(
                "attempt {attempt} turn {turn}, {model}: {} in + {} out{} of {} granted, {tool_calls} tool call{}",
                tokens(usage.input_tokens),
                tokens(usage.output_tokens),
                if *usage_estimated { " (estimated)" } else { "" },
                tokens(*granted),
                if *tool_calls == 1 { "" } else { "s" }
            );
            if let Some(err) = error {
                s.push_str(&format!("; failed: {}", one_line(err)));
            }
            s
        }
        AuditEvent::BudgetDecision {
            op,
            requested,
            granted,
            released,
            overrun,
            available,
            denied,
            ..
        } => match (op, denied) {
            (BudgetOp::Reserve, Some(why)) => {
                format!("reserve {}: DENIED, {why}", tokens(*requested))
            }
            (BudgetOp::Reserve, None) => format!(
                "reserve {}: granted {}, {} left",
                tokens(*requested),
                tokens(*granted),
                tokens(*available)
            ),
            (BudgetOp::Commit, _) => {
                let mut s = format!(
                    "commit {} used: charged {}, released {}, {} left",
                    tokens(*requested),
                    tokens(*granted),
                    tokens(*released),
                    tokens(*available)
                );
                if *overrun > 0 {
                    s.push_str(&format!(", OVERRUN {}", tokens(*overrun)));
                }
                s
            }
            (BudgetOp::Release, _) => {
                format!("release {}, {} left", tokens(*released), tokens(*available))
            }
            (BudgetOp::ChargeInFlight, _) => format!(
                "charge {} for a call abandoned in flight (its whole reservation), {} left",
                tokens(*granted),
                tokens(*available)
            ),
            (BudgetOp::Carve, _) => format!(
                "carve {} for a delegated agent: got {}, {} left",
                tokens(*requested),
                tokens(*granted),
                tokens(*available)
            ),
            (BudgetOp::Close, _) => format!(
                "close: {} returned to the delegating agent, which has {} left",
                tokens(*released),
                tokens(*available)
            ),
        },
        AuditEvent::AgentDelegated {
            child,
            target,
            child_depth,
            goal,
            transport,
            wanted,
            envelope,
            refused,
            ..
        } => match (child, refused) {
            (Some(child), _) => format!(
                "delegate to {target} as {child} (depth {child_depth}, {}), budget {} of {} asked: {}",
                transport.as_deref().unwrap_or("in-process"),
                tokens(*envelope),
                tokens(*wanted),
                one_line(goal)
            ),
            (None, why) => format!(
                "delegate to {target} REFUSED: {}",
                one_line(why.as_deref().unwrap_or("no reason"))
            ),
        },
        AuditEvent::PolicyDecision {
            tool,
            access,
            allowed,
            rule,
            ..
        } => format!(
            "{} {} for {tool} ({rule})",
            if *allowed { "allow" } else { "DENY" },
            access
        ),
        AuditEvent::ToolCall {
            tool,
            arguments,
            outcome,
            error,
            output_bytes,
            ..
        } => {
            let mut s = format!(
                "{tool} {}: {outcome}, {output_bytes} bytes",
                clip(arguments, 100)
            );
            if let Some(err) = error {
                s.push_str(&format!(" ({})", one_line(err)));
            }
            s
        }
        AuditEvent::AgentRestarted {
            attempt,
            delay_ms,
            reason,
            ..
        } => format!("attempt {attempt} in {delay_ms} ms: {}", one_line(reason)),
        AuditEvent::ContextCompacted {
            turn,
            elided,
            dropped,
            prompt_tokens,
            cap,
            ..
        } => format!(
            "before turn {turn}: {elided} tool outputs elided, {dropped} messages compacted; \
             prompt {} of {} tokens",
            tokens(*prompt_tokens),
            tokens(*cap)
        ),
        AuditEvent::ServiceRestarted { service, reason } => {
            format!("{service} service: {}", one_line(reason))
        }
        AuditEvent::RunFinished {
            total_tokens,
            success_count,
            total_count,
            wall_secs,
            cancelled,
        } => format!(
            "{success_count}/{total_count} agents completed, {} tokens, {wall_secs:.1}s{}",
            tokens(*total_tokens),
            if *cancelled { ", cancelled" } else { "" }
        ),
        AuditEvent::AttemptPlaced {
            attempt, worker, ..
        } => format!("attempt {attempt} runs on worker {worker}"),
        AuditEvent::RemoteRefused {
            attempt,
            worker,
            request,
            why,
            ..
        } => format!(
            "REFUSED {request} of attempt {attempt} from worker {worker}: {}",
            one_line(why)
        ),
        AuditEvent::ServerStarted {
            server,
            sandbox,
            unsandboxed,
        } => match (sandbox, unsandboxed) {
            (_, Some(why)) => format!("server `{server}` started WITHOUT the OS sandbox: {}", one_line(why)),
            (Some(s), None) => format!("server `{server}` started in the OS sandbox: {s}"),
            (None, None) => format!("server `{server}` started"),
        },
        AuditEvent::Worktree {
            action,
            commit,
            sha256,
            files,
            ..
        } => match (action, sha256, files) {
            (codex_actors::audit::WorktreeAction::Created, _, _) => {
                format!("worktree created at base {commit}")
            }
            (_, sha, files) => format!(
                "change recorded: {} file(s), result {commit}, patch sha256 {}",
                files.unwrap_or(0),
                sha.as_deref().unwrap_or("?")
            ),
        },
    }
}

/// `codex audit tail` without `--follow`: the last `n` records.
pub fn tail(records: &[AuditRecord], n: usize) -> String {
    let skip = records.len().saturating_sub(n);
    records[skip..]
        .iter()
        .map(|r| record_line(r) + "\n")
        .collect()
}

/// `codex audit tail --follow`: prints the last `n` records, then every new complete line
/// as it is written (polling the file), until a `run_finished` record is printed.
pub fn follow(path: &Path, n: usize, out: &mut impl Write) -> Result<()> {
    let bytes = read(path)?;
    let records = parse_records(&bytes);
    out.write_all(tail(&records, n).as_bytes())?;
    out.flush()?;
    if records.iter().any(|r| r.event.kind() == "run_finished") {
        return Ok(());
    }
    // Continue after the last complete line.
    let mut offset = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) as u64;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut pending = Vec::new();
    loop {
        file.seek(SeekFrom::Start(offset))?;
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)?;
        offset += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        let complete = pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let lines: Vec<u8> = pending.drain(..complete).collect();
        for r in parse_records(&lines) {
            writeln!(out, "{}", record_line(&r))?;
            if r.event.kind() == "run_finished" {
                out.flush()?;
                return Ok(());
            }
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `codex audit verify`: the verdict in words, and the exit status (0 intact and
/// complete, 1 tampered, 3 intact but incomplete).
pub fn verify_report(run_id: &str, v: &Verification) -> (String, u8) {
    let lines = |n: usize| format!("{n} line{}", if n == 1 { "" } else { "s" });
    if let Some(b) = &v.broken {
        let text = format!(
            "TAMPERED: run {run_id}, line {}: {}\n{} before it verified; nothing from line {} on can be trusted.\n",
            b.line,
            b.reason,
            lines(v.verified),
            b.line
        );
        return (text, 1);
    }
    let mut text = format!(
        "OK: run {run_id}, {} verified (hash chain intact).\n",
        lines(v.verified)
    );
    if let Some(torn) = v.torn_line {
        text.push_str(&format!(
            "Line {torn} is torn (a write cut short, as by a crash) and was ignored.\n"
        ));
    }
    let code = if v.finished && v.torn_line.is_none() {
        text.push_str("The run finished: the log is complete.\n");
        0
    } else if v.finished {
        text.push_str(
            "INCOMPLETE: the run finished, but a write after its last record was cut short.\n",
        );
        3
    } else {
        text.push_str(
            "INCOMPLETE: the log does not end with run_finished: the run was interrupted, \
             is still running, or lines were cut from its end.\n",
        );
        3
    };
    text.push_str(&format!("Head hash: {}\n", v.head));
    (text, code)
}

/// `codex audit verify` with the run's anchor (`$CODEX_HOME/anchors.jsonl`, see
/// `codex_actors::audit::anchor`): a log whose chain is intact but that no longer ends
/// where the anchor says it ended is reported as rewritten after the run ended (exit 1),
/// distinctly from a log that is incomplete because the run never ended (exit 3).
pub fn verify_anchored(run_id: &str, bytes: &[u8], anchors: Option<&Path>) -> (String, u8) {
    use codex_actors::audit::anchor::{check, find, AnchorCheck};
    let verification = codex_actors::audit::verify(bytes);
    let (mut text, code) = verify_report(run_id, &verification);
    let anchor = anchors
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| find(&t, run_id));
    match check(bytes, anchor.as_ref()) {
        AnchorCheck::Rewritten(why) => (
            format!(
                "REWRITTEN after the run ended: run {run_id}: {why}.\nThe anchor in {} was written when the run ended; the log no longer matches it.\n{text}",
                anchors.map_or(String::new(), |p| p.display().to_string())
            ),
            1,
        ),
        AnchorCheck::Matches => {
            text.push_str("Anchored: the log ends as it did when the run ended.\n");
            (text, code)
        }
        AnchorCheck::Unanchored => {
            text.push_str("No anchor: the run has not ended, or ended before anchors were kept.\n");
            (text, code)
        }
    }
}

/// `codex audit export`: the log in `format`, written to `out`.
pub fn export(bytes: &[u8], format: ExportFormat, out: &mut impl Write) -> Result<()> {
    match format {
        ExportFormat::Jsonl => {
            let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            out.write_all(&bytes[..complete])?;
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["seq", "ts", "type", "agent", "summary", "prev_hash", "hash"])?;
            for r in parse_records(bytes) {
                w.write_record([
                    r.seq.to_string(),
                    r.ts.to_rfc3339(),
                    r.event.kind().to_owned(),
                    r.event.agent().unwrap_or("").to_owned(),
                    summary(&r.event),
                    r.prev_hash.clone(),
                    r.hash.clone(),
                ])?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct AgentStats {
    status: Option<String>,
    tokens: u64,
    model_calls: usize,
    tool_calls: usize,
    denials: usize,
    restarts: usize,
    duration: Option<f64>,
}

#[derive(Default)]
struct ModelStats {
    calls: usize,
    input: u64,
    output: u64,
}

/// `codex audit stats`: tokens per agent and per model, tool calls, denials, restarts and
/// durations.
pub fn stats(run_id: &str, records: &[AuditRecord], end: Unfinished) -> String {
    let mut agents: BTreeMap<String, AgentStats> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut models: BTreeMap<String, ModelStats> = BTreeMap::new();
    let mut tools: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut service_restarts: BTreeMap<String, usize> = BTreeMap::new();
    let mut finished = None;
    for r in records {
        if let AuditEvent::RunStarted { agents: names, .. } = &r.event {
            order.clone_from(names);
        }
        if let Some(a) = r.event.agent() {
            if !order.iter().any(|n| n == a) {
                order.push(a.to_owned());
            }
        }
        match &r.event {
            AuditEvent::ModelCall { model, usage, .. } => {
                let a = agents
                    .entry(r.event.agent().unwrap_or_default().to_owned())
                    .or_default();
                a.tokens += usage.total();
                a.model_calls += 1;
                let m = models.entry(model.clone()).or_default();
                m.calls += 1;
                m.input += usage.input_tokens;
                m.output += usage.output_tokens;
            }
            AuditEvent::BudgetDecision {
                op: BudgetOp::ChargeInFlight,
                granted,
                ..
            } => {
                // A call abandoned in flight: charged, though no model_call answered it.
                agents
                    .entry(r.event.agent().unwrap_or_default().to_owned())
                    .or_default()
                    .tokens += granted;
            }
            AuditEvent::ToolCall { tool, outcome, .. } => {
                let a = agents
                    .entry(r.event.agent().unwrap_or_default().to_owned())
                    .or_default();
                a.tool_calls += 1;
                *tools
                    .entry((tool.clone(), outcome.to_string()))
                    .or_default() += 1;
            }
            AuditEvent::PolicyDecision { allowed: false, .. } => {
                agents
                    .entry(r.event.agent().unwrap_or_default().to_owned())
                    .or_default()
                    .denials += 1;
            }
            AuditEvent::AgentRestarted { .. } => {
                agents
                    .entry(r.event.agent().unwrap_or_default().to_owned())
                    .or_default()
                    .restarts += 1;
            }
            AuditEvent::AgentFinished(f) => {
                let a = agents.entry(f.agent_name.clone()).or_default();
                a.status = Some(f.status.label().to_owned());
                a.duration = f.duration_secs;
            }
            AuditEvent::ServiceRestarted { service, .. } => {
                *service_restarts.entry(service.clone()).or_default() += 1;
            }
            AuditEvent::RunFinished {
                wall_secs,
                cancelled,
                ..
            } => finished = Some((*wall_secs, *cancelled)),
            _ => {}
        }
    }
    let state = match finished {
        Some((wall, false)) => format!("finished in {wall:.1}s"),
        Some((wall, true)) => format!("cancelled after {wall:.1}s"),
        None => format!("{} (no run_finished record)", end.label()),
    };
    let mut out = format!("Run {run_id}: {} records, {state}\n\n", records.len());
    let mut rows = vec![[
        "AGENT",
        "STATUS",
        "TOKENS",
        "MODEL CALLS",
        "TOOL CALLS",
        "DENIALS",
        "RESTARTS",
        "DURATION",
    ]
    .map(String::from)];
    let mut total = AgentStats::default();
    for name in &order {
        let a = agents.remove(name).unwrap_or_default();
        total.tokens += a.tokens;
        total.model_calls += a.model_calls;
        total.tool_calls += a.tool_calls;
        total.denials += a.denials;
        total.restarts += a.restarts;
        rows.push([
            name.clone(),
            a.status.unwrap_or_else(|| end.label().into()),
            tokens(a.tokens),
            a.model_calls.to_string(),
            a.tool_calls.to_string(),
            a.denials.to_string(),
            a.restarts.to_string(),
            a.duration.map_or("-".into(), |d| format!("{d:.1}s")),
        ]);
    }
    rows.push([
        "total".into(),
        String::new(),
        tokens(total.tokens),
        total.model_calls.to_string(),
        total.tool_calls.to_string(),
        total.denials.to_string(),
        total.restarts.to_string(),
        finished.map_or("-".into(), |(w, _)| format!("{w:.1}s")),
    ]);
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![["MODEL", "CALLS", "INPUT", "OUTPUT", "TOTAL"].map(String::from)];
    for (name, m) in &models {
        rows.push([
            name.clone(),
            m.calls.to_string(),
            tokens(m.input),
            tokens(m.output),
            tokens(m.input + m.output),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![["TOOL", "OK", "DENIED", "ERROR"].map(String::from)];
    let names: std::collections::BTreeSet<&String> = tools.keys().map(|(t, _)| t).collect();
    for name in names {
        let count = |o: &str| {
            tools
                .get(&(name.clone(), o.to_owned()))
                .copied()
                .unwrap_or(0)
                .to_string()
        };
        rows.push([name.clone(), count("ok"), count("denied"), count("error")]);
    }
    out.push_str(&table(&rows));
    let restarts: Vec<String> = service_restarts
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    out.push_str(&format!(
        "\nService restarts: {}\n",
        if restarts.is_empty() {
            "none".into()
        } else {
            restarts.join(", ")
        }
    ));
    out
}

/// Left-aligned columns separated by two spaces (numbers would read better right-aligned,
/// but one rule for every column keeps the tables simple to scan and to diff).
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| r.clone().map(|c| escaped(&c)))
        .collect();
    let mut widths = [0; N];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    format!("{}…", s.chars().take(max - 1).collect::<String>())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_server_start_says_whether_it_runs_in_the_os_sandbox() {
        let started = |sandbox: Option<&str>, unsandboxed: Option<&str>| {
            summary(&AuditEvent::ServerStarted {
                server: "gh".into(),
                sandbox: sandbox.map(str::to_owned),
                unsandboxed: unsandboxed.map(str::to_owned),
            })
        };
        insta::assert_snapshot!(
            [
                started(Some("landlock ABI 7, seccomp"), None),
                started(None, Some("[mcp_servers.gh] sandbox = false: calls the API")),
            ]
            .join("\n"),
            @r"
        server `gh` started in the OS sandbox: landlock ABI 7, seccomp
        server `gh` started WITHOUT the OS sandbox: [mcp_servers.gh] sandbox = false: calls the API
        "
        );
    }
    use codex_actors::audit::chain::GENESIS;
    use codex_actors::audit::{AgentExecutionEvent, Broken};
    use codex_actors::{AgentStatus, Usage};

    /// A small run: two agents, one restart, one denial; timestamps 100 ms apart.
    fn records() -> Vec<AuditRecord> {
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap();
        let exec =
            |agent: &str, attempt, status, tokens_used, error: Option<&str>| AgentExecutionEvent {
                agent_name: agent.into(),
                attempt,
                status,
                goal: format!("goal of {agent}"),
                start_time: start,
                end_time: (status != AgentStatus::Running).then_some(start),
                duration_secs: (status != AgentStatus::Running).then_some(1.25),
                tokens_used,
                artifacts: if agent == "reviewer" {
                    vec!["artifacts/review.md".into()]
                } else {
                    vec![]
                },
                error: error.map(str::to_owned),
            };
        let model_call = |agent: &str, turn, input, output, tool_calls| AuditEvent::ModelCall {
            agent: agent.into(),
            attempt: 1,
            turn,
            model: "replay".into(),
            granted: 4000,
            max_output_tokens: 3500,
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
            },
            usage_estimated: false,
            tool_calls,
            error: None,
            truncated: false,
        };
        let events = vec![
            AuditEvent::RunStarted {
                agents: vec!["reviewer".into(), "tester".into()],
                total_budget: 11_000,
            },
            AuditEvent::AgentStarted(exec("reviewer", 1, AgentStatus::Running, 0, None)),
            AuditEvent::AgentStarted(exec("tester", 1, AgentStatus::Running, 0, None)),
            AuditEvent::BudgetDecision {
                agent: "reviewer".into(),
                op: BudgetOp::Reserve,
                requested: 4500,
                granted: 4000,
                released: 0,
                overrun: 0,
                available: 2000,
                denied: None,
            },
            model_call("reviewer", 0, 400, 60, 1),
            AuditEvent::BudgetDecision {
                agent: "reviewer".into(),
                op: BudgetOp::Commit,
                requested: 460,
                granted: 460,
                released: 3540,
                overrun: 0,
                available: 5540,
                denied: None,
            },
            AuditEvent::PolicyDecision {
                agent: "reviewer".into(),
                tool: "write_file".into(),
                access: codex_actors::tool::Access::Write("src/main.rs".into()),
                allowed: false,
                rule: "no write rule matches".into(),
            },
            AuditEvent::ToolCall {
                agent: "reviewer".into(),
                tool: "write_file".into(),
                call_id: "call_0_0".into(),
                arguments: r#"{"path":"src/main.rs"}"#.into(),
                outcome: codex_actors::ToolOutcome::Denied,
                error: Some("permission denied".into()),
                output_bytes: 17,
                sandbox: None,
            },
            AuditEvent::AgentRestarted {
                agent: "tester".into(),
                attempt: 2,
                delay_ms: 100,
                reason: "panicked: boom".into(),
            },
            AuditEvent::ServiceRestarted {
                service: "audit".into(),
                reason: "killed".into(),
            },
            model_call("tester", 0, 300, 40, 0),
            model_call("reviewer", 1, 500, 90, 0),
            AuditEvent::AgentFinished(exec("tester", 2, AgentStatus::Completed, 340, None)),
            AuditEvent::AgentFinished(exec(
                "reviewer",
                1,
                AgentStatus::BudgetExceeded,
                1050,
                Some("budget exhausted"),
            )),
            AuditEvent::RunFinished {
                total_tokens: 1390,
                success_count: 1,
                total_count: 2,
                wall_secs: 1.5,
                cancelled: false,
            },
        ];
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| AuditRecord {
                seq: i as u64 + 1,
                ts: start + chrono::Duration::milliseconds(100 * i as i64),
                run_id: "20261124T060000Z-abcdef".into(),
                prev_hash: GENESIS.into(),
                hash: GENESIS.into(),
                parent: None,
                depth: 0,
                event,
            })
            .collect()
    }

    #[test]
    fn stats_read_well() {
        insta::assert_snapshot!(stats(
            "20261124T060000Z-abcdef",
            &records(),
            Unfinished::Killed
        ));
    }

    #[test]
    fn show_prints_a_line_per_record() {
        insta::assert_snapshot!(show(&records(), None, None).unwrap());
    }

    #[test]
    fn show_filters_by_agent_and_type() {
        let out = show(&records(), Some("reviewer"), Some("model_call")).unwrap();
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out
            .lines()
            .all(|l| l.contains("model_call") && l.contains("reviewer")));
    }

    #[test]
    fn show_rejects_an_unknown_type_and_lists_the_known_ones() {
        let err = show(&records(), None, Some("tool"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown record type `tool`"), "{err}");
        assert!(err.contains("tool_call"), "{err}");
    }

    #[test]
    fn tail_prints_the_last_records() {
        let out = tail(&records(), 2);
        assert_eq!(out.lines().count(), 2);
        assert!(out.lines().last().unwrap().contains("run_finished"));
    }

    fn verification(broken: Option<Broken>, torn: Option<usize>, finished: bool) -> Verification {
        Verification {
            verified: 14,
            broken,
            torn_line: torn,
            head: "ab".repeat(32),
            last_seq: 14,
            finished,
        }
    }

    #[test]
    fn verify_reports_read_well_and_carry_the_exit_status() {
        let cases = [
            verification(None, None, true),
            verification(None, Some(15), false),
            Verification {
                verified: 6,
                ..verification(
                    Some(Broken {
                        line: 7,
                        reason: "its content does not match its hash".into(),
                    }),
                    None,
                    false,
                )
            },
        ];
        let mut out = String::new();
        for v in &cases {
            let (text, code) = verify_report("r1", v);
            out.push_str(&format!("exit status {code}\n{text}\n"));
        }
        insta::assert_snapshot!(out);
    }

    #[test]
    fn list_rows_say_whether_a_run_finished_and_whether_its_log_is_intact() {
        let recs = records();
        let row = list_row(
            "r1",
            &recs,
            &verification(None, None, true),
            Unfinished::Killed,
        );
        assert_eq!(row[1], "reviewer,tester");
        assert_eq!(row[4], "finished 1/2");
        let row = list_row(
            "r1",
            &recs[..5],
            &verification(
                Some(Broken {
                    line: 3,
                    reason: String::new(),
                }),
                None,
                false,
            ),
            Unfinished::Running,
        );
        assert_eq!(row[4], "running (no run_finished), TAMPERED");
    }

    #[test]
    fn a_killed_run_is_listed_as_killed_with_the_tokens_its_log_holds() {
        let recs = records();
        let unfinished = &recs[..recs.len() - 1];
        let row = list_row(
            "r1",
            unfinished,
            &verification(None, None, false),
            Unfinished::Killed,
        );
        assert_eq!(row[4], "killed (no run_finished)");
        assert_eq!(row[2], tokens(logged_tokens(unfinished)));
        assert_ne!(row[2], "0");
        let text = stats("r1", &recs[..4], Unfinished::Killed);
        assert!(text.contains("killed (no run_finished record)"), "{text}");
        assert!(!text.contains("running"), "{text}");
    }

    #[test]
    fn show_escapes_control_characters_in_every_field() {
        let mut recs = records();
        let forged = "x\n    99  06:00:00.000  run_finished  -  \u{1b}[31mforged\r";
        for r in &mut recs {
            if let AuditEvent::ToolCall { tool, error, .. } = &mut r.event {
                *tool = forged.into();
                *error = Some(forged.into());
            }
        }
        let out = show(&recs, None, None).unwrap();
        assert_eq!(out.lines().count(), recs.len(), "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out}");
        let text = stats("r1", &recs, Unfinished::Killed);
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
