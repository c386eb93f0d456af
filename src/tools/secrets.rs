//! Which environment variables a child process must not see: [`is_secret`].
//!
//! `shell` starts programs with the engine's environment minus every variable that looks
//! like a credential, decided by name only: names ending in `_KEY`, `_TOKEN`, `_SECRET`,
//! `_PASSWORD` and the like, names containing `SECRET`, `PASSWORD`, `TOKEN`, `API_KEY`,
//! `PRIVATE_KEY` or `CREDENTIAL`, and a list of well-known ones (provider keys, cloud and
//! registry credentials, `DATABASE_URL`, `SSH_AUTH_SOCK`, which would let a program use the
//! user's SSH keys). The trade-off: a secret kept under an innocent name (or inside another
//! variable's value, such as a proxy URL with a password) still gets through; when in
//! doubt a name is treated as secret.

/// Name endings that mark a credential.
const SUFFIXES: &[&str] = &[
    "_KEY",
    "_TOKEN",
    "_SECRET",
    "_PASSWORD",
    "_PASSWD",
    "_PASS",
    "_PAT",
    "_CREDENTIALS",
    "_AUTH",
];
/// Name parts that mark a credential anywhere in the name.
const PARTS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
];
/// Well-known credentials whose names the rules above would miss, and the provider keys
/// (listed for the record even where a rule catches them).
const KNOWN: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "MISTRAL_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DATABASE_URL",
    "SSH_AUTH_SOCK",
    "KEY",
    "NETRC",
    "PGPASS",
];

/// Whether the variable `name` may hold a secret and must be kept from child processes.
pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    KNOWN.contains(&upper.as_str())
        || SUFFIXES.iter().any(|s| upper.ends_with(s))
        || PARTS.iter().any(|p| upper.contains(p))
}

/// The environment of this process without the secrets, for a child.
pub fn scrubbed_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| !k.to_str().is_none_or(is_secret))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_secret() {
        for name in [
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "my_service_key",
            "DB_PASSWORD",
            "DATABASE_URL",
            "SSH_AUTH_SOCK",
            "CLIENT_SECRET_VALUE",
        ] {
            assert!(is_secret(name), "{name}");
        }
    }

    #[test]
    fn ordinary_variables_pass() {
        for name in [
            "PATH",
            "HOME",
            "LANG",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "TERM",
            "USER",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }
}
