//! The YAML schema of an agent definition, as serde types.
//!
//! Every field but `name` is optional. Unknown fields are not rejected here: the parser
//! ([`super::parse`]) reports them as warnings. Values that can be checked on their own are
//! checked while deserializing (the name's syntax, positive numbers, deadlines), so their
//! errors carry the line and column of the offending value.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use codex_actors::context::Retention;
use codex_actors::restart::RestartType;
use codex_actors::spec::RestartFrom;

use super::convert::{check_path_glob, check_url_pattern};
use super::deadline::{Deadline, Within};

/// One agent definition, as written in a YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDefinition {
    /// The agent's key (`[a-z0-9][a-z0-9_-]*`): budgets, audit events and overrides are keyed
    /// by it, never by the file name. Checked while parsing.
    #[serde(deserialize_with = "de_name")]
    pub name: String,
    /// The goal used when the command line gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// The standing instructions (the system prompt).
    #[serde(default, skip_serializing_if = "is_default")]
    pub instructions: String,
    /// The tools the agent asks for.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tools: ToolsSection,
    /// Context, secrets and permission policies.
    #[serde(default, skip_serializing_if = "is_default")]
    pub policies: PoliciesSection,
    /// What a successful run must achieve, for people and for the prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_criteria: Vec<String>,
    /// Files the agent is expected to produce.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Token budget (input + output over all attempts); positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<NonZeroU64>,
    /// Wall-clock limit: `90s`, `10m`, `1h`; a bare number means minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// The most model turns in one attempt; positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<NonZeroU32>,
    /// The most output tokens asked for in one turn; positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<NonZeroU64>,
    /// The model to use, if not the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The model provider, if not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// How a failed attempt is restarted.
    #[serde(default, skip_serializing_if = "is_default")]
    pub restart: RestartSection,
    /// Where the agent writes: `worktree` (its own git worktree, reviewed and applied
    /// afterwards) or `shared` (the workspace). Default: see `crate::worktree::choose`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<crate::worktree::Isolation>,
}

/// `restart:`: how the supervisor restarts the agent when an attempt fails. Each field
/// left out keeps the engine's default for agents (`RestartPolicy::agent_default`:
/// transient, 3 restarts within 60s); see `convert::restart_policy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartSection {
    /// Where a restarted attempt starts: `checkpoint` (default: the conversation after the
    /// last complete turn) or `goal` (a fresh conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<RestartFrom>,
    /// When to restart at all: `permanent`, `transient` (after a failure; the default) or
    /// `temporary` (never).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RestartType>,
    /// The most restarts within `within`; one more failure ends the agent `failed`.
    #[serde(
        default,
        deserialize_with = "de_restarts",
        skip_serializing_if = "Option::is_none"
    )]
    pub max: Option<u32>,
    /// The sliding window `max` counts restarts in: `60s`, `10m`, `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
}

/// `restart.max`: a whole number of restarts, 0 or more (0: the first failure is final).
fn de_restarts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Restarts;
    impl Visitor<'_> for Restarts {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number of restarts, 0 or more (such as `3`)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
    }
    d.deserialize_any(Restarts).map(Some)
}

/// `tools:`: what the agent may use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolsSection {
    /// MCP tools as `server.tool`, `server.*` or `server`, of the servers configured in
    /// `[mcp_servers]` of codex-actors.toml.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp: Vec<String>,
    /// Agents this agent may delegate to (the `delegate` tool).
    #[serde(default, skip_serializing_if = "is_default")]
    pub delegate: DelegateTools,
    /// Filesystem access.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fs: FsTools,
    /// Network access.
    #[serde(default, skip_serializing_if = "is_default")]
    pub net: NetTools,
    /// Programs the agent may run.
    #[serde(default, skip_serializing_if = "is_default")]
    pub shell: ShellTools,
}

/// `tools.fs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsTools {
    /// Whether the agent may read the workspace (all of it, unless
    /// `policies.permissions.filesystem` narrows it).
    #[serde(default, skip_serializing_if = "is_default")]
    pub read: bool,
    /// Where the agent may write.
    #[serde(default, skip_serializing_if = "is_default")]
    pub write: WriteAccess,
    /// Protected files run later by other tools that this agent may write anyway, by rule
    /// name (`build.rs`, `Makefile`, ...; never `.git` or `.codex`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_protected: Vec<String>,
    /// Secret-looking files this agent may read anyway, by rule name (`.env*`, `*.pem`,
    /// `*.key`, `id_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_secrets: Vec<String>,
}

/// `tools.fs.write`: `true`, `false`, or a list of paths/globs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteAccess {
    /// `false` or absent: no writes.
    #[default]
    None,
    /// `true`: wherever the agent may read.
    AsRead,
    /// These paths or globs.
    Paths(Vec<String>),
}

/// `tools.net`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetTools {
    /// URL patterns the agent may fetch, such as `https://docs.rs/*`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_urls"
    )]
    pub allow: Vec<String>,
}

/// `tools.shell`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShellTools {
    /// Programs the agent may run, by exact name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
}

/// `tools.delegate`: whom the agent may hand goals to, and how the children run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateTools {
    /// Agent names (`*` for any agent of the workspace).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_agent_names"
    )]
    pub agents: Vec<String>,
    /// How children run: `in-process` (default: under the same run supervisor) or `mcp`
    /// (each child in its own `codex mcp-server` process).
    #[serde(default, skip_serializing_if = "is_default")]
    pub via: DelegateVia,
}

/// `tools.delegate.via`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DelegateVia {
    /// Children run under the same run supervisor.
    #[default]
    InProcess,
    /// Each child runs in a child `codex mcp-server` process.
    Mcp,
}

fn de_agent_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    for name in &names {
        if name != "*" && !is_valid_name(name) {
            return Err(de::Error::custom(format!(
                "`{name}` is not an agent name (lowercase letters, digits, `-`, `_`) or `*`"
            )));
        }
    }
    Ok(names)
}

/// `policies:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoliciesSection {
    /// How much context the agent keeps: a cap on every request, and what survives when
    /// the conversation is compacted to stay under it.
    #[serde(default, skip_serializing_if = "is_default")]
    pub context: ContextPolicy,
    /// Secret handling: `redact: true` masks secrets in tool output before the model sees
    /// it (the audit log is always redacted).
    #[serde(default, skip_serializing_if = "is_default")]
    pub secrets: SecretsPolicy,
    /// Explicit permission lists.
    #[serde(default, skip_serializing_if = "is_default")]
    pub permissions: PermissionsPolicy,
}

/// `policies.context`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextPolicy {
    /// The most tokens one request may take (prompt and output together): at least 1,024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<NonZeroU64>,
    /// What survives a compaction: `job` (default: a handoff note the model writes),
    /// `turn` (the recent turns only) or `none` (the latest turn only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

/// `policies.secrets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretsPolicy {
    /// Whether secrets (values of `*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD` variables, and
    /// known credential formats) are masked in tool output before the model sees it.
    #[serde(default, skip_serializing_if = "is_default")]
    pub redact: bool,
}

/// `policies.permissions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PermissionsPolicy {
    /// Globs the agent may read; when present, they replace `tools.fs.read`'s "everything".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_globs"
    )]
    pub filesystem: Option<Vec<String>>,
    /// URL patterns the agent may fetch, added to `tools.net.allow`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_urls"
    )]
    pub network: Vec<String>,
}

/// Whether `name` is a valid agent name: `[a-z0-9][a-z0-9_-]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether a value equals its default, so `show` omits sections that were not written.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Reads a name, checking it inside the visitor so the error carries the value's position.
fn de_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer.deserialize_str(NameVisitor)
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an agent name such as `code-reviewer`")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        if is_valid_name(name) {
            return Ok(name.to_owned());
        }
        Err(E::custom(format!(
            "invalid agent name `{name}`: use lowercase letters, digits, `-` and `_`, \
             starting with a letter or digit"
        )))
    }
}

/// A path glob, checked when read so that its error carries its line and column.
struct PathGlob(String);

/// A URL pattern, checked when read so that its error carries its line and column.
struct UrlPattern(String);

/// Accepts a string when `check` passes, else fails with `check`'s message.
struct CheckedStr(fn(&str) -> anyhow::Result<()>);

impl Visitor<'_> for CheckedStr {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        (self.0)(v).map_err(|e| E::custom(format!("{e:#}")))?;
        Ok(v.to_owned())
    }
}

impl<'de> Deserialize<'de> for PathGlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_str(CheckedStr(check_path_glob))
            .map(PathGlob)
    }
}

impl<'de> Deserialize<'de> for UrlPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_str(CheckedStr(check_url_pattern))
            .map(UrlPattern)
    }
}

fn de_urls<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let patterns = Vec::<UrlPattern>::deserialize(deserializer)?;
    Ok(patterns.into_iter().map(|p| p.0).collect())
}

fn de_opt_globs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let globs = Option::<Vec<PathGlob>>::deserialize(deserializer)?;
    Ok(globs.map(|g| g.into_iter().map(|p| p.0).collect()))
}

impl Serialize for WriteAccess {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WriteAccess::None => serializer.serialize_bool(false),
            WriteAccess::AsRead => serializer.serialize_bool(true),
            WriteAccess::Paths(paths) => paths.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for WriteAccess {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WriteAccessVisitor)
    }
}

struct WriteAccessVisitor;

impl<'de> Visitor<'de> for WriteAccessVisitor {
    type Value = WriteAccess;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`true`, `false` or a list of paths/globs")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<WriteAccess, E> {
        Ok(if v {
            WriteAccess::AsRead
        } else {
            WriteAccess::None
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<WriteAccess, E> {
        Ok(WriteAccess::None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WriteAccess, A::Error> {
        let mut paths = Vec::new();
        while let Some(p) = seq.next_element::<PathGlob>()? {
            paths.push(p.0);
        }
        Ok(WriteAccess::Paths(paths))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_lowercase_words() {
        for ok in ["a", "code-reviewer", "test_gen", "0x", "a1-b2_c3"] {
            assert!(is_valid_name(ok), "{ok}");
        }
    }

    #[test]
    fn invalid_names_are_rejected() {
        for bad in ["", "-a", "_a", "Code", "a b", "a.b", "a/b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn write_access_reads_bool_and_list() {
        let t: FsTools = serde_yaml::from_str("write: true").unwrap();
        assert_eq!(t.write, WriteAccess::AsRead);
        let t: FsTools = serde_yaml::from_str("write: false").unwrap();
        assert_eq!(t.write, WriteAccess::None);
        let t: FsTools = serde_yaml::from_str("write: [a/, b]").unwrap();
        assert_eq!(t.write, WriteAccess::Paths(vec!["a/".into(), "b".into()]));
    }

    #[test]
    fn write_access_rejects_other_types() {
        let e = serde_yaml::from_str::<FsTools>("write: 3").unwrap_err();
        assert!(e.to_string().contains("`true`, `false` or a list"), "{e}");
    }
}
