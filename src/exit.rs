//! The exit statuses of `codex`, in one place (README's "Exit status" table lists them,
//! and `tests/cli.rs` checks each through the binary).
//!
//! | status | meaning |
//! |---|---|
//! | 0 | every agent completed (other commands: success) |
//! | 1 | a run ended with an agent that did not complete (failed, budget exceeded, timed out, max turns, cancelled by a first signal); `audit verify`: tampered; `agents validate`: invalid; `policy check`: denied |
//! | 2 | an error before the run: bad flags, a malformed definition, an unreadable script, a log that cannot take a first record |
//! | 3 | `audit verify`: intact but incomplete |
//! | 4 | the run ended (its summary printed) but `-o` or `--record` could not be written; an old file keeps its content |
//! | 5 | `codex apply` or a run's `--apply`: an agent's change conflicted with your tree and was not applied (nor those after it) |
//! | 128 + n | a second signal n ended the process at once (130 SIGINT, 143 SIGTERM, 129 SIGHUP); also `agent-create` interrupted before its run |
//! | 141 | stdout was closed by its reader (`codex ... \| head -1`); nothing is printed about it |

/// A run ended with an agent that did not complete.
pub const AGENT_NOT_COMPLETED: u8 = 1;
/// An error before the run (or any other command's error).
pub const ERROR: u8 = 2;
/// The run ended but a file it should write (`-o`, `--record`) could not be written.
pub const RESULTS_NOT_WRITTEN: u8 = 4;
/// `codex apply` / `--apply`: a change conflicted and was not applied.
pub const CHANGE_CONFLICT: u8 = 5;
/// Stdout was closed by its reader: `128 + SIGPIPE`, what a shell reports for a program
/// killed by the signal.
pub const BROKEN_PIPE: u8 = 141;
