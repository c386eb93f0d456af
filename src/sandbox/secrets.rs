//! The environment a child process of `shell` gets: this process's, minus every variable
//! [`codex_actors::audit::redact::is_secret_name`] calls a credential. The same rule decides
//! which values the audit log masks, so what a program may not see is also what the log
//! never shows. Decided by name only: a secret kept under an innocent name (or inside
//! another variable's value, such as a proxy URL with a password) still gets through.

use codex_actors::audit::redact::is_secret_name;

/// The environment of this process without the secrets, for a child.
pub fn scrubbed_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| !k.to_str().is_none_or(is_secret_name))
        .collect()
}
