//! Protected paths: what no agent may write, whatever its `write` rules say, and what it
//! may not read unless its definition opts in. Pure code, consulted by
//! [`super::PolicyRules::decide`] before an agent's own rules, so `codex policy check`, the
//! audit log and every tool give the same answer, and a denial names the protecting rule.
//!
//! Three groups:
//!
//! - **Never writable** ([`never_writable`]): a path with a component that is `.codex` or
//!   `.git` (compared case-insensitively, ignoring the zero-width characters some
//!   filesystems drop, and `git~1`, an 8.3 short name of `.git`): definitions, runs and
//!   their audit logs, configuration, git metadata; any file named `HEAD`, without which
//!   no directory is a git repository (so an agent cannot assemble one whose `config`
//!   runs its commands); and the extra paths the application adds
//!   ([`crate::Permissions::protected`]: `$CODEX_HOME` when it lies inside the workspace,
//!   the anchor file). No definition can opt back in.
//! - **Run later by other tools** ([`EXECUTED_LATER`]): `.envrc`, `.cargo/config*`,
//!   `build.rs`, `.github/workflows/**`, `.vscode/tasks.json`, `Makefile` (and `makefile`,
//!   `GNUmakefile`), `.pre-commit-config.yaml`, `.husky/**`, and any file named `config`
//!   (a git `config` beside an existing `HEAD` runs `core.fsmonitor`; telling it from
//!   other `config` files needs the disk, and this module is pure, so all are guarded; the
//!   writing tools refuse a `config` beside a `HEAD` even after an opt-in).
//!   Denied by default; a definition opts back in by naming the rule
//!   (`tools.fs.write_protected: ["build.rs"]`, [`crate::Permissions::write_protected`]).
//! - **Secret files, for reading** ([`SECRET_FILES`]): `.env*`, `*.pem`, `*.key`, and `id_*`
//!   without an extension (SSH private keys; `id_rsa.pub` and `id_map.rs` stay readable).
//!   Opt-in by name: `tools.fs.read_secrets: [".env*"]`
//!   ([`crate::Permissions::read_secrets`]). Searches never read them
//!   ([`is_secret_file`]).

/// A rule of the "run later by other tools" group: its name (what a definition writes to
/// opt in) and whether it covers a path's components.
pub struct ProtectedRule {
    /// The name a definition uses to opt back in, and that denials show.
    pub name: &'static str,
    matches: fn(&[&str]) -> bool,
}

/// Files other tools execute later: denied to writes unless the definition opts in.
pub const EXECUTED_LATER: &[ProtectedRule] = &[
    ProtectedRule {
        name: ".envrc",
        matches: |c| last(c) == ".envrc",
    },
    ProtectedRule {
        name: ".cargo/config*",
        matches: |c| parent(c) == Some(".cargo") && last(c).starts_with("config"),
    },
    ProtectedRule {
        name: "build.rs",
        matches: |c| last(c) == "build.rs",
    },
    ProtectedRule {
        name: ".github/workflows/**",
        matches: |c| {
            c.windows(2)
                .any(|w| w[0] == ".github" && w[1] == "workflows")
        },
    },
    ProtectedRule {
        name: ".vscode/tasks.json",
        matches: |c| parent(c) == Some(".vscode") && last(c) == "tasks.json",
    },
    ProtectedRule {
        name: "Makefile",
        matches: |c| matches!(last(c), "Makefile" | "makefile" | "GNUmakefile"),
    },
    ProtectedRule {
        name: ".pre-commit-config.yaml",
        matches: |c| {
            matches!(
                last(c),
                ".pre-commit-config.yaml" | ".pre-commit-config.yml"
            )
        },
    },
    ProtectedRule {
        name: ".husky/**",
        matches: |c| c.contains(&".husky"),
    },
    ProtectedRule {
        name: "config",
        // `.cargo/config` has its own rule (and opt-in).
        matches: |c| last(c).eq_ignore_ascii_case("config") && parent(c) != Some(".cargo"),
    },
];

/// Secret-looking files: denied to reads unless the definition opts in.
pub const SECRET_FILES: &[ProtectedRule] = &[
    ProtectedRule {
        name: ".env*",
        matches: |c| last(c).starts_with(".env"),
    },
    ProtectedRule {
        name: "*.pem",
        matches: |c| ends_with_ignore_case(last(c), ".pem"),
    },
    ProtectedRule {
        name: "*.key",
        matches: |c| ends_with_ignore_case(last(c), ".key"),
    },
    ProtectedRule {
        name: "id_*",
        matches: |c| last(c).starts_with("id_") && !last(c).contains('.'),
    },
];

fn last<'a>(components: &[&'a str]) -> &'a str {
    components.last().copied().unwrap_or("")
}

fn parent<'a>(components: &[&'a str]) -> Option<&'a str> {
    components.len().checked_sub(2).map(|i| components[i])
}

fn ends_with_ignore_case(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len()
        && name.is_char_boundary(name.len() - suffix.len())
        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// `name` without the characters HFS+ ignores in names (zero-width joiners, direction
/// marks, BOM), lowercased: what a case-insensitive filesystem compares.
fn folded(name: &str) -> String {
    name.chars()
        .filter(
            |c| !matches!(*c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x206A..=0x206F | 0xFEFF),
        )
        .collect::<String>()
        .to_lowercase()
}

/// Why `path` (workspace-relative, resolved) may never be written, if it may not.
pub fn never_writable(path: &str) -> Option<String> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for c in &components {
        match folded(c).as_str() {
            ".codex" => {
                return Some(
                    "protected: `.codex/**` (definitions, runs, audit logs) is never writable"
                        .into(),
                )
            }
            ".git" | "git~1" => {
                return Some("protected: `.git` (git metadata) is never writable".into())
            }
            _ => {}
        }
    }
    if folded(last(&components)) == "head" {
        return Some(
            "protected: a file named `HEAD` is never writable (it would make a directory a git repository)"
                .into(),
        );
    }
    None
}

/// The rule of the "run later" group that guards `path` and that `opt_in` does not name.
pub fn executed_later(path: &str, opt_in: &[String]) -> Option<&'static str> {
    first_guard(EXECUTED_LATER, path, opt_in)
}

/// The secret-file rule that guards a read of `path` and that `opt_in` does not name.
pub fn secret_read(path: &str, opt_in: &[String]) -> Option<&'static str> {
    first_guard(SECRET_FILES, path, opt_in)
}

/// Whether a file name looks like a secret ([`SECRET_FILES`]): searches skip such files.
pub fn is_secret_file(name: &str) -> bool {
    SECRET_FILES.iter().any(|r| (r.matches)(&[name]))
}

fn first_guard(
    rules: &'static [ProtectedRule],
    path: &str,
    opt_in: &[String],
) -> Option<&'static str> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    rules
        .iter()
        .find(|r| (r.matches)(&components) && !opt_in.iter().any(|o| o == r.name))
        .map(|r| r.name)
}

/// Whether `name` is a rule of `rules` (to check a definition's opt-ins).
pub fn is_rule_name(rules: &[ProtectedRule], name: &str) -> bool {
    rules.iter().any(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn git_and_codex_components_are_never_writable_in_any_case() {
        for p in [
            ".git/config",
            "vendor/.git/hooks/pre-commit",
            ".GIT/config",
            "a/.Git",
            ".g\u{200c}it/config",
            "GIT~1/config",
            ".codex/agents/helper.yaml",
            ".codex/runs/x/audit.jsonl",
            "sub/.CODEX/agents/a.yaml",
            "vendor/lib/HEAD",
            "HEAD",
            "x/head",
        ] {
            assert!(never_writable(p).is_some(), "{p}");
        }
        for p in [
            "x.git/a",
            "src/git.rs",
            "codex/a",
            "src/header.rs",
            "HEADER",
        ] {
            assert!(never_writable(p).is_none(), "{p}");
        }
    }

    #[test]
    fn executed_later_files_are_guarded_unless_opted_in() {
        for (p, rule) in [
            (".envrc", ".envrc"),
            (".cargo/config.toml", ".cargo/config*"),
            ("sub/.cargo/config", ".cargo/config*"),
            ("build.rs", "build.rs"),
            ("crates/x/build.rs", "build.rs"),
            (".github/workflows/ci.yml", ".github/workflows/**"),
            (".vscode/tasks.json", ".vscode/tasks.json"),
            ("Makefile", "Makefile"),
            ("sub/GNUmakefile", "Makefile"),
            (".pre-commit-config.yaml", ".pre-commit-config.yaml"),
            (".husky/pre-commit", ".husky/**"),
            ("vendor/lib/config", "config"),
        ] {
            assert_eq!(executed_later(p, &[]), Some(rule), "{p}");
            assert_eq!(executed_later(p, &[rule.to_owned()]), None, "{p}");
        }
        for p in [
            "src/build.rs.bak",
            "package.json",
            "src/config.rs",
            ".github/x.md",
        ] {
            assert_eq!(executed_later(p, &[]), None, "{p}");
        }
    }

    #[test]
    fn secret_files_are_guarded_for_reads_unless_opted_in() {
        for (p, rule) in [
            (".env", ".env*"),
            ("app/.env.local", ".env*"),
            ("certs/server.pem", "*.pem"),
            ("tls.KEY", "*.key"),
            ("home/.ssh/id_ed25519", "id_*"),
        ] {
            assert_eq!(secret_read(p, &[]), Some(rule), "{p}");
            assert_eq!(secret_read(p, &[rule.to_owned()]), None, "{p}");
        }
        for p in ["src/id_map.rs", ".ssh/id_rsa.pub", "src/keys.rs", "env.rs"] {
            assert_eq!(secret_read(p, &[]), None, "{p}");
        }
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.-]{1,8}".prop_filter("not . or ..", |c| c != "." && c != "..")
    }

    proptest! {
        /// Any path through a `.git` spelled in any case is never writable.
        #[test]
        fn any_path_through_git_in_any_case_is_never_writable(
            before in proptest::collection::vec(component(), 0..4),
            after in proptest::collection::vec(component(), 0..4),
            case in proptest::collection::vec(any::<bool>(), 4),
        ) {
            let git: String = ".git".chars().zip(case).map(|(ch, up)| if up { ch.to_ascii_uppercase() } else { ch }).collect();
            let path = before.iter().cloned().chain([git]).chain(after).collect::<Vec<_>>().join("/");
            prop_assert!(never_writable(&path).is_some(), "{}", path);
        }

        /// Any path inside `.codex` is never writable, at any depth.
        #[test]
        fn any_path_inside_codex_is_never_writable(
            before in proptest::collection::vec(component(), 0..3),
            after in proptest::collection::vec(component(), 0..4),
        ) {
            let path = before.iter().cloned().chain([".codex".to_owned()]).chain(after).collect::<Vec<_>>().join("/");
            prop_assert!(never_writable(&path).is_some(), "{}", path);
        }
    }
}
