//! From a definition (plus command-line values) to the engine's [`AgentSpec`].
//!
//! The permission mapping is documented on the [`super`] module. Paths and globs are
//! normalised here, before the engine's matcher sees them: `./` prefixes go, `.` means
//! everything, and an entry with no glob characters (`artifacts`, `artifacts/`,
//! `docs/index.md`) becomes `entry/**`, which the matcher treats as the entry itself and
//! everything below it.

use std::num::NonZeroU64;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use codex_actors::context::ContextPolicy;
use codex_actors::delegate::DELEGATE_TOOL;
use codex_actors::policy::PolicyRules;
use codex_actors::{AgentSpec, Permissions};

use codex_actors::restart::RestartPolicy;

use super::schema::{AgentDefinition, RestartSection, WriteAccess};

/// Budget (tokens) when neither the definition nor the command line sets one.
pub const DEFAULT_BUDGET: u64 = 10_000;
/// Turns per attempt when the definition sets none.
pub const DEFAULT_MAX_TURNS: u32 = 20;
/// The smallest `policies.context.max_tokens` accepted.
pub const MIN_CONTEXT_TOKENS: u64 = 1_024;
/// Output tokens per turn when the definition sets none.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

/// Tools offered to an agent that may read.
const READ_TOOLS: [&str; 5] = [
    "read_file",
    "list_dir",
    "grep",
    "find_files",
    "codebase_search",
];
/// Tools offered to an agent that may write.
const WRITE_TOOLS: [&str; 2] = ["write_file", "apply_patch"];

impl AgentDefinition {
    /// The permissions this definition grants, normalised but not yet checked (see
    /// [`Self::checked_permissions`]).
    ///
    /// Guarantees the mapping of the module documentation: read = `policies.permissions.
    /// filesystem`, else `**` if `tools.fs.read`, else nothing; write = the `tools.fs.write`
    /// list, or the read set for `true`, or nothing; network = `tools.net.allow` then
    /// `policies.permissions.network` (no duplicates); exec = `tools.shell.exec`.
    pub fn permissions(&self) -> Permissions {
        let read: Vec<String> = match (&self.policies.permissions.filesystem, self.tools.fs.read) {
            (Some(globs), _) => globs.iter().map(|g| normalize_glob(g)).collect(),
            (None, true) => vec!["**".to_owned()],
            (None, false) => Vec::new(),
        };
        let write = match &self.tools.fs.write {
            WriteAccess::None => Vec::new(),
            WriteAccess::AsRead => read.clone(),
            WriteAccess::Paths(paths) => paths.iter().map(|p| normalize_glob(p)).collect(),
        };
        let mut network = self.tools.net.allow.clone();
        for url in &self.policies.permissions.network {
            if !network.contains(url) {
                network.push(url.clone());
            }
        }
        Permissions {
            read,
            write,
            network,
            exec: self.tools.shell.exec.clone(),
            mcp: self.tools.mcp.clone(),
            delegate: self.tools.delegate.agents.clone(),
            protected: Vec::new(),
            write_protected: self.tools.fs.write_protected.clone(),
            read_secrets: self.tools.fs.read_secrets.clone(),
        }
    }

    /// [`Self::permissions`], checked: every path glob is workspace-relative and compiles,
    /// every URL pattern compiles (with writes limited to `scope`).
    ///
    /// Guarantees: an error names the agent and the offending pattern.
    pub fn checked_permissions(&self, scope: &str) -> anyhow::Result<Permissions> {
        let perms = self.permissions();
        for glob in perms.read.iter().chain(&perms.write) {
            check_relative(glob)
                .with_context(|| format!("agent `{}`: invalid path glob", self.name))?;
        }
        check_opt_ins(&self.name, &perms)?;
        PolicyRules::compile(&perms, scope).map_err(|e| anyhow!("agent `{}`: {e}", self.name))?;
        Ok(perms)
    }

    /// The engine spec for one run of this agent. The command-line values, when given,
    /// override the definition's.
    ///
    /// Guarantees: the goal is non-blank (else an error naming the agent and `--goal`); the
    /// scope is workspace-relative and normalised (`./src/` → `src`); the budget is positive
    /// ([`DEFAULT_BUDGET`] if neither side sets one); the permissions compile; the tools
    /// offered follow from the permissions ([`offered_tools`]). The instructions are the
    /// definition's, followed by its success criteria and expected artifacts, if any.
    pub fn to_spec(
        &self,
        goal: Option<String>,
        scope: Option<String>,
        budget: Option<u64>,
        deadline: Option<Duration>,
    ) -> anyhow::Result<AgentSpec> {
        let goal = self.effective_goal(goal)?;
        let scope = normalize_scope(scope.as_deref().unwrap_or(""))
            .with_context(|| format!("agent `{}`: invalid --scope", self.name))?;
        let budget = self.effective_budget(budget)?;
        let deadline = match deadline {
            Some(d) if d.is_zero() => bail!("agent `{}`: the deadline must be positive", self.name),
            Some(d) => Some(d),
            None => self.deadline.map(|d| d.0),
        };
        let permissions = self.checked_permissions(&scope)?;
        let mut spec = AgentSpec::new(&self.name, goal, budget);
        spec.instructions = self.full_instructions();
        spec.scope = scope;
        spec.deadline = deadline;
        spec.max_turns = self.max_turns.map_or(DEFAULT_MAX_TURNS, |n| n.get());
        spec.max_output_tokens = self
            .max_output_tokens
            .map_or(DEFAULT_MAX_OUTPUT_TOKENS, NonZeroU64::get);
        spec.tools = offered_tools(&permissions);
        spec.permissions = permissions;
        spec.redact_secrets = self.policies.secrets.redact;
        spec.context = self.context_policy()?;
        spec.restart_from = self.restart.from.unwrap_or_default();
        spec.restart = restart_policy(&self.restart);
        Ok(spec)
    }

    /// `policies.context` as the engine enforces it.
    fn context_policy(&self) -> anyhow::Result<ContextPolicy> {
        let context = &self.policies.context;
        let max_tokens = context.max_tokens.map(NonZeroU64::get);
        if let Some(n) = max_tokens.filter(|&n| n < MIN_CONTEXT_TOKENS) {
            bail!(
                "agent `{}`: policies.context.max_tokens is {n}, too small to hold the \
                 instructions, a turn and an answer; give at least {MIN_CONTEXT_TOKENS}",
                self.name
            );
        }
        Ok(ContextPolicy {
            max_tokens,
            retention: context.retention.unwrap_or_default(),
        })
    }

    fn effective_goal(&self, goal: Option<String>) -> anyhow::Result<String> {
        let non_blank = |g: &String| !g.trim().is_empty();
        goal.filter(non_blank)
            .or_else(|| self.goal.clone().filter(non_blank))
            .ok_or_else(|| {
                anyhow!(
                    "agent `{}` has no default goal: give one with --goal \"...\"",
                    self.name
                )
            })
    }

    fn effective_budget(&self, budget: Option<u64>) -> anyhow::Result<u64> {
        match budget {
            Some(0) => bail!("agent `{}`: the budget must be positive", self.name),
            Some(b) => Ok(b),
            None => Ok(self.budget.map_or(DEFAULT_BUDGET, NonZeroU64::get)),
        }
    }

    /// The instructions, then `Success criteria:` and `Expected artifacts:` as bullet lists
    /// (each section only if the definition has entries).
    pub fn full_instructions(&self) -> String {
        let mut text = self.instructions.trim_end().to_owned();
        let sections = [
            ("Success criteria:", &self.success_criteria),
            ("Expected artifacts:", &self.artifacts),
        ];
        for (title, items) in sections {
            if items.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(title);
            for item in items {
                text.push_str("\n- ");
                text.push_str(item);
            }
        }
        text
    }
}

/// `restart:` as the engine applies it: the agent default
/// ([`RestartPolicy::agent_default`]) with `type`, `max` and `within` over it. A `max`
/// above the default streak cap (`max_consecutive_failures`) raises the cap to `max + 1`
/// failures, so that `max` restarts are really granted to an agent that keeps failing the
/// same way.
pub fn restart_policy(section: &RestartSection) -> RestartPolicy {
    let mut policy = RestartPolicy::agent_default();
    if let Some(kind) = section.kind {
        policy.restart = kind;
    }
    if let Some(max) = section.max {
        policy.max_restarts = max;
        policy.max_consecutive_failures =
            policy.max_consecutive_failures.max(max.saturating_add(1));
    }
    if let Some(within) = section.within {
        policy.period = within.0;
    }
    policy
}

/// The tools offered to the model for these permissions: `read_file`, `list_dir`, `grep`,
/// `find_files`, `codebase_search` if anything may be read; `write_file`, `apply_patch` if
/// anything may be written; `shell` if `shell.exec` names a program; `web_fetch` if a URL
/// pattern is allowed; `delegate` if the agent may delegate to some agent. (MCP tools are
/// added by the run from the servers it started.)
pub fn offered_tools(perms: &Permissions) -> Vec<String> {
    let mut tools = Vec::new();
    if !perms.read.is_empty() {
        tools.extend(READ_TOOLS.iter().map(|t| t.to_string()));
    }
    if !perms.write.is_empty() {
        tools.extend(WRITE_TOOLS.iter().map(|t| t.to_string()));
    }
    if !perms.exec.is_empty() {
        tools.push("shell".to_owned());
    }
    if !perms.network.is_empty() {
        tools.push("web_fetch".to_owned());
    }
    if !perms.delegate.is_empty() {
        tools.push(DELEGATE_TOOL.to_owned());
    }
    tools
}

/// Normalises a workspace-relative scope: `./src/` → `src`, `.` or `` → `` (everything).
///
/// Guarantees: the result has no `.`/empty components and no trailing `/`; absolute paths
/// and `..` components are errors.
pub fn normalize_scope(scope: &str) -> anyhow::Result<String> {
    let trimmed = scope.trim();
    check_relative(trimmed)?;
    Ok(trimmed
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/"))
}

/// Checks one path glob as written in a definition: workspace-relative, and compiling once
/// normalised. The message names the glob.
pub(crate) fn check_path_glob(glob: &str) -> anyhow::Result<()> {
    check_relative(glob.trim())?;
    let perms = Permissions {
        read: vec![normalize_glob(glob)],
        ..Permissions::default()
    };
    PolicyRules::compile(&perms, "")?;
    Ok(())
}

/// Checks one URL pattern as written in a definition. The message names the pattern.
pub(crate) fn check_url_pattern(pattern: &str) -> anyhow::Result<()> {
    let perms = Permissions {
        network: vec![pattern.to_owned()],
        ..Permissions::default()
    };
    PolicyRules::compile(&perms, "")?;
    Ok(())
}

/// Every opt-in names a rule of its group; the error lists the names there are.
fn check_opt_ins(agent: &str, perms: &Permissions) -> anyhow::Result<()> {
    use codex_actors::policy::protected::{
        is_rule_name, ProtectedRule, EXECUTED_LATER, SECRET_FILES,
    };
    let groups: [(&str, &[String], &[ProtectedRule]); 2] = [
        (
            "tools.fs.write_protected",
            &perms.write_protected,
            EXECUTED_LATER,
        ),
        ("tools.fs.read_secrets", &perms.read_secrets, SECRET_FILES),
    ];
    for (field, names, rules) in groups {
        if let Some(bad) = names.iter().find(|n| !is_rule_name(rules, n)) {
            let valid: Vec<&str> = rules.iter().map(|r| r.name).collect();
            bail!(
                "agent `{agent}`: {field} names `{bad}`, which is no rule of that group; use one of {} (`.git`, `.codex`, `HEAD` and $CODEX_HOME can never be opted into)",
                valid.join(", ")
            );
        }
    }
    Ok(())
}

/// Rejects absolute paths and `..` components.
fn check_relative(path: &str) -> anyhow::Result<()> {
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..2) == Some(":") {
        bail!("`{path}` is absolute; use a path relative to the workspace");
    }
    if path.split(['/', '\\']).any(|c| c == "..") {
        bail!("`{path}` contains `..`; use a path inside the workspace");
    }
    Ok(())
}

/// `./src/**` → `src/**`; `.` → `**`; `artifacts/`, `artifacts` → `artifacts/**`.
fn normalize_glob(glob: &str) -> String {
    let mut g = glob.trim();
    while let Some(rest) = g.strip_prefix("./") {
        g = rest;
    }
    let g = g.trim_end_matches('/');
    if g.is_empty() || g == "." {
        "**".to_owned()
    } else if g.contains(['*', '?', '[', '{']) {
        g.to_owned()
    } else {
        format!("{g}/**")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(yaml: &str) -> AgentDefinition {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn perms(yaml: &str) -> Permissions {
        def(yaml).permissions()
    }

    #[test]
    fn fs_read_true_reads_everything() {
        let p = perms("name: a\ntools: {fs: {read: true}}");
        assert_eq!(p.read, vec!["**"]);
        assert!(p.write.is_empty());
    }

    #[test]
    fn filesystem_permissions_replace_read_all() {
        let p = perms(
            "name: a\ntools: {fs: {read: true}}\npolicies: {permissions: {filesystem: [./src/**, ./tests/**]}}",
        );
        assert_eq!(p.read, vec!["src/**", "tests/**"]);
    }

    #[test]
    fn no_read_flag_and_no_filesystem_reads_nothing() {
        let p = perms("name: a");
        assert_eq!(p, Permissions::default());
    }

    #[test]
    fn write_list_dirs_become_recursive_globs() {
        let p = perms("name: a\ntools: {fs: {write: [./artifacts/, docs, 'src/*.rs', .]}}");
        assert_eq!(p.write, vec!["artifacts/**", "docs/**", "src/*.rs", "**"]);
    }

    #[test]
    fn write_true_writes_where_it_reads() {
        let p = perms(
            "name: a\ntools: {fs: {write: true}}\npolicies: {permissions: {filesystem: [src/**]}}",
        );
        assert_eq!(p.write, vec!["src/**"]);
    }

    #[test]
    fn write_false_writes_nothing() {
        let p = perms("name: a\ntools: {fs: {read: true, write: false}}");
        assert!(p.write.is_empty());
    }

    #[test]
    fn network_is_the_union_of_net_allow_and_permissions() {
        let p = perms(
            "name: a\ntools: {net: {allow: ['https://docs.rs/*']}}\n\
             policies: {permissions: {network: ['https://api.github.com/*', 'https://docs.rs/*']}}",
        );
        assert_eq!(
            p.network,
            vec!["https://docs.rs/*", "https://api.github.com/*"]
        );
    }

    #[test]
    fn exec_is_shell_exec() {
        let p = perms("name: a\ntools: {shell: {exec: [cargo, git]}}");
        assert_eq!(p.exec, vec!["cargo", "git"]);
    }

    #[test]
    fn read_tools_are_offered_only_with_read_globs() {
        let spec = def("name: a\ngoal: g\ntools: {fs: {read: true}}")
            .to_spec(None, None, None, None)
            .unwrap();
        let expected = [
            "read_file",
            "list_dir",
            "grep",
            "find_files",
            "codebase_search",
        ];
        assert_eq!(spec.tools, expected);
    }

    #[test]
    fn write_file_is_offered_only_with_write_globs() {
        let spec = def("name: a\ngoal: g\ntools: {fs: {write: [out/]}}")
            .to_spec(None, None, None, None)
            .unwrap();
        assert_eq!(spec.tools, vec!["write_file", "apply_patch"]);
    }

    #[test]
    fn shell_and_web_fetch_follow_exec_and_network_permissions() {
        let spec = def("name: a\ngoal: g\ntools: {shell: {exec: [cargo]}, net: {allow: ['https://docs.rs/*']}, mcp: [gh.search]}")
            .to_spec(None, None, None, None)
            .unwrap();
        assert_eq!(spec.tools, vec!["shell", "web_fetch"]);
        assert_eq!(spec.permissions.exec, vec!["cargo"]);
        assert_eq!(spec.permissions.mcp, vec!["gh.search"]);
    }

    #[test]
    fn missing_goal_names_the_agent_and_the_flag() {
        let e = def("name: reviewer")
            .to_spec(None, None, None, None)
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`reviewer`") && msg.contains("--goal"),
            "{msg}"
        );
    }

    #[test]
    fn command_line_values_override_the_definition() {
        let d = def("name: a\ngoal: default\nbudget: 8000\ndeadline: 10m");
        let spec = d
            .to_spec(
                Some("mine".into()),
                Some("./src/".into()),
                Some(500),
                Some(Duration::from_secs(30)),
            )
            .unwrap();
        assert_eq!(
            (
                spec.goal.as_str(),
                spec.scope.as_str(),
                spec.budget,
                spec.deadline
            ),
            ("mine", "src", 500, Some(Duration::from_secs(30)))
        );
    }

    #[test]
    fn definition_values_and_defaults_fill_the_rest() {
        let spec = def("name: a\ngoal: default\ndeadline: 10m")
            .to_spec(None, None, None, None)
            .unwrap();
        assert_eq!(spec.goal, "default");
        assert_eq!(spec.budget, DEFAULT_BUDGET);
        assert_eq!(spec.deadline, Some(Duration::from_secs(600)));
        assert_eq!((spec.max_turns, spec.max_output_tokens), (20, 4096));
    }

    #[test]
    fn zero_budget_override_is_rejected() {
        let e = def("name: a\ngoal: g").to_spec(None, None, Some(0), None);
        assert!(e.unwrap_err().to_string().contains("budget"));
    }

    #[test]
    fn scope_is_normalised() {
        assert_eq!(normalize_scope("./src/api/").unwrap(), "src/api");
        assert_eq!(normalize_scope(".").unwrap(), "");
        assert_eq!(normalize_scope("").unwrap(), "");
        assert_eq!(normalize_scope("a//b/./c").unwrap(), "a/b/c");
    }

    #[test]
    fn absolute_or_parent_scope_is_rejected() {
        for bad in ["/etc", "../x", "src/../../x", "C:/x"] {
            let e = normalize_scope(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn absolute_write_glob_is_rejected_naming_agent_and_pattern() {
        let mut d = def("name: a");
        d.tools.fs.write = WriteAccess::Paths(vec!["/etc/".into()]);
        let msg = format!("{:#}", d.checked_permissions("").unwrap_err());
        assert!(msg.contains("agent `a`") && msg.contains("/etc"), "{msg}");
    }

    #[test]
    fn invalid_glob_is_rejected_naming_the_pattern() {
        let mut d = def("name: a");
        d.policies.permissions.filesystem = Some(vec!["src/[".into()]);
        let e = d.checked_permissions("").unwrap_err();
        assert!(e.to_string().contains("src/["), "{e}");
    }

    #[test]
    fn success_criteria_and_artifacts_follow_the_instructions() {
        let d = def("name: a\ninstructions: Do it.\nsuccess_criteria: [done]\nartifacts: [out.md]");
        assert_eq!(
            d.full_instructions(),
            "Do it.\n\nSuccess criteria:\n- done\n\nExpected artifacts:\n- out.md"
        );
    }

    fn restart_of(yaml: &str) -> RestartPolicy {
        def(yaml)
            .to_spec(Some("g".into()), None, None, None)
            .unwrap()
            .restart
    }

    #[test]
    fn no_restart_settings_keep_the_engine_default_for_agents() {
        assert_eq!(restart_of("name: a"), RestartPolicy::agent_default());
        assert_eq!(
            restart_of("name: a\nrestart: {from: goal}"),
            RestartPolicy::agent_default()
        );
    }

    #[test]
    fn restart_type_max_and_within_replace_the_defaults() {
        use codex_actors::restart::RestartType;
        let p = restart_of("name: a\nrestart: {type: temporary, max: 1, within: 10m}");
        let default = RestartPolicy::agent_default();
        assert_eq!(p.restart, RestartType::Temporary);
        assert_eq!(p.max_restarts, 1);
        assert_eq!(p.period, Duration::from_secs(600));
        assert_eq!(p.initial_backoff, default.initial_backoff);
        assert_eq!(p.max_consecutive_failures, default.max_consecutive_failures);
        assert_eq!(
            restart_of("name: a\nrestart: {type: permanent}").restart,
            RestartType::Permanent
        );
    }

    #[test]
    fn a_max_above_the_streak_cap_raises_it_so_every_restart_is_granted() {
        let p = restart_of("name: a\nrestart: {max: 8}");
        assert_eq!(p.max_restarts, 8);
        assert_eq!(p.max_consecutive_failures, 9);
    }
}
