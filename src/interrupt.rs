//! The signals that end a run: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, systemd,
//! Docker) and SIGHUP (a closed terminal) are one and the same request.
//!
//! [`listen`] installs the handlers as the first thing a long-running command does (so a
//! signal during setup is not fatal either) and hands out [`Interrupts`], a cheap clonable
//! view of "has a signal arrived, and which". The first signal is announced on stderr and
//! observed by whoever waits in [`Interrupts::received`]: the run commands cancel every
//! agent, release their reservations, flush the audit log, print the summary and write `-o`
//! as usual. A second signal means "now": the process kills what it started (the process
//! groups of its shell tools, its MCP servers) and exits at once with `128 + signal`
//! ([`Signal::exit_code`]). The audit log needs nothing more for that: every record is
//! written whole and fsynced before an agent goes on, so what is on disk verifies (at worst
//! it is "incomplete": no `run_finished`).

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// A signal that asks a run to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: `kill`, `timeout`, service managers.
    Terminate,
    /// SIGHUP: the terminal went away.
    Hangup,
}

impl Signal {
    /// Its conventional name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// Its number.
    fn number(self) -> u8 {
        match self {
            Signal::Hangup => 1,
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }

    /// The exit status of a process that ends at once because of it: `128 + signal`, as a
    /// shell reports a process killed by it (130, 143, 129).
    pub fn exit_code(self) -> u8 {
        128 + self.number()
    }
}

/// Whether (and which) signal has arrived. Clones observe the same signals.
#[derive(Debug, Clone)]
pub struct Interrupts(watch::Receiver<Option<Signal>>);

impl Interrupts {
    /// Waits for the first signal (returns at once if it already arrived).
    pub async fn received(&mut self) -> Signal {
        // Copied out at once: the borrow guard must not live across an await.
        let arrived = self.0.wait_for(Option::is_some).await.map(|s| *s);
        match arrived {
            Ok(s) => s.expect("waited for Some"),
            // The listener never ends while the process runs; if it did, no signal comes.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Installs the handlers (see the module docs); must run inside the tokio runtime.
pub fn listen() -> Result<Interrupts> {
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let sig = tokio::select! {
                Some(()) = int.recv() => Signal::Interrupt,
                Some(()) = term.recv() => Signal::Terminate,
                Some(()) = hup.recv() => Signal::Hangup,
                else => return,
            };
            if first {
                first = false;
                eprintln!(
                    "\n{}: cancelling every agent (results are still written; send it again \
                     to exit at once)",
                    sig.name()
                );
                let _ = tx.send(Some(sig));
            } else {
                eprintln!(
                    "\n{} again: exiting at once; the audit log keeps every record written \
                     so far (check it with `codex audit verify last`)",
                    sig.name()
                );
                kill_children();
                std::process::exit(i32::from(sig.exit_code()));
            }
        }
    });
    Ok(Interrupts(rx))
}

/// Kills this process's children before an immediate exit: a shell tool's program leads
/// its own process group (see `tools::process`), so its whole group is killed; any other
/// child (an MCP server) by itself.
#[cfg(target_os = "linux")]
fn kill_children() {
    use rustix::process::{kill_process, kill_process_group, Pid, Signal as Sig};
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((ppid, pgid)) = parent_and_group(&stat) else {
            continue;
        };
        if ppid != me as i32 {
            continue;
        }
        let Some(child) = Pid::from_raw(pid) else {
            continue;
        };
        if pgid == pid {
            let _ = kill_process_group(child, Sig::KILL);
        } else {
            let _ = kill_process(child, Sig::KILL);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn kill_children() {}

/// The parent pid and process group of a `/proc/PID/stat` line (`pid (comm) state ppid
/// pgrp ...`; `comm` may contain spaces and parentheses, so fields are read after the
/// last `)`).
fn parent_and_group(stat: &str) -> Option<(i32, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((ppid, pgid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal_number() {
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Terminate.exit_code(), 143);
        assert_eq!(Signal::Hangup.exit_code(), 129);
    }

    #[test]
    fn stat_lines_are_read_after_the_command_name() {
        let stat = "4242 (odd) name (x)) S 17 4242 4242 0 -1 4194560";
        assert_eq!(parent_and_group(stat), Some((17, 4242)));
        assert_eq!(parent_and_group("garbage"), None);
    }
}
