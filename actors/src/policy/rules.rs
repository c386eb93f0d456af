//! Permission matching, as pure code: [`PolicyRules::decide`].
//!
//! Default deny. Filesystem rules are globs over workspace-relative paths, compiled with
//! `literal_separator(true)` so `*` never crosses a `/`; a rule `dir/**` also covers `dir`
//! itself, so an agent allowed into a directory may list it. Writes must also fall inside
//! the agent's scope, compared component by component (`artifactsX` is not inside
//! `artifacts`). Paths reach this module already resolved by the application (no `..`,
//! symlinks followed); anything that resolved outside the workspace arrives as
//! [`Access::Outside`] and is denied.
//!
//! Network rules are URL patterns such as `https://docs.rs/*` or `https://*.github.com/*`,
//! matched against the URL as the `url` crate parses it (the WHATWG parser, which browsers
//! and reqwest agree on): scheme, host and port must be equal (a leading `*.` matches
//! subdomains), and the path (with `?query` when the URL has one; `?` in a pattern is
//! literal) must match the pattern's path glob. A path that hides `/`, `\` or `.` behind
//! percent-encoding (`%2f`, `%5c`, `%2e`) is refused: servers disagree on decoding it. Hosts are compared in
//! their ASCII form on both sides: a pattern written with an internationalised name
//! (`bücher.example`) is converted to punycode, so a look-alike with a Cyrillic `о` is a
//! different host; IP literals compare as addresses (`http://2130706433/` is
//! `127.0.0.1`), never as a name; a trailing dot is a different host. Userinfo in a URL is
//! refused outright.
//!
//! Exec rules are exact program names. MCP rules are `server.tool`, `server.*` or a bare
//! `server` (all its tools), matched against `Access::Mcp("server.tool")`. Delegation
//! rules are agent names, or `*` for any agent, matched against `Access::Delegate`.
//!
//! **Delegated agents.** A child agent may do only what both it and the agent that
//! delegated to it may do: [`PolicyRules::within`] puts the child's own rules inside its
//! parent's (which may themselves sit inside their parent's), and an access is allowed
//! only when every layer allows it. Intersecting glob sets symbolically is hard to get
//! right; asking each layer is easy to check, and property-tested below.

use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use super::protected;
use crate::spec::{Permissions, PolicyLayer};
use crate::tool::Access;

/// A policy decision with the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the access may go ahead.
    pub allowed: bool,
    /// The rule that decided, for people: `read: src/**`, `default deny`, ...
    pub rule: String,
}

impl Decision {
    fn allow(rule: impl Into<String>) -> Self {
        Self {
            allowed: true,
            rule: rule.into(),
        }
    }
    fn deny(rule: impl Into<String>) -> Self {
        Self {
            allowed: false,
            rule: rule.into(),
        }
    }
}

/// An invalid rule in a [`Permissions`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    /// A filesystem glob that does not parse.
    #[error("invalid path glob `{pattern}`: {reason}")]
    Glob {
        /// The glob as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An MCP tool pattern that does not parse.
    #[error("invalid MCP pattern `{pattern}` (expected `server.tool`, `server.*` or `server`)")]
    Mcp {
        /// The pattern as written.
        pattern: String,
    },
    /// A URL pattern that does not parse.
    #[error("invalid URL pattern `{pattern}`: {reason} (expected e.g. `https://docs.rs/*`)")]
    Url {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct PathRule {
    pattern: String,
    /// Shared by the clones of the rules (the same agent's copies, and agents whose
    /// permissions compiled to the same rules): a compiled regex is kilobytes.
    matcher: Arc<GlobMatcher>,
    /// For `dir/**`: `dir` itself is covered too.
    dir: Option<String>,
}

impl PathRule {
    fn new(pattern: &str) -> Result<Self, RuleError> {
        let pattern = normalize_glob(pattern);
        let matcher = GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| RuleError::Glob {
                pattern: pattern.clone(),
                reason: e.kind().to_string(),
            })?
            .compile_matcher()
            .into();
        let dir = if pattern == "**" {
            Some(String::new())
        } else {
            pattern.strip_suffix("/**").map(str::to_owned)
        };
        Ok(Self {
            pattern,
            matcher,
            dir,
        })
    }

    fn matches(&self, path: &str) -> bool {
        self.dir.as_deref() == Some(path) || (!path.is_empty() && self.matcher.is_match(path))
    }

    /// Whether this rule allows `dir` and everything below it: only a literal `d/**` (or
    /// `**`) with `d` at or above `dir` does.
    fn covers_tree(&self, dir: &str) -> bool {
        match self.dir.as_deref() {
            Some("") => true,
            Some(d) if !d.contains(['*', '?', '[', ']', '{', '}', '\\']) => {
                dir == d
                    || dir
                        .strip_prefix(d)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            _ => false,
        }
    }
}

/// `./src/**` → `src/**`; `src/` → `src/**`; `.` → `**`.
fn normalize_glob(pattern: &str) -> String {
    let mut p = pattern.trim();
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    if p.is_empty() || p == "." {
        return "**".into();
    }
    match p.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => p.to_owned(),
    }
}

#[derive(Debug, Clone)]
struct UrlRule {
    pattern: String,
    scheme: String,
    host: HostRule,
    port: Option<u16>,
    path: Arc<GlobMatcher>,
}

#[derive(Debug, Clone)]
enum HostRule {
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com`, not `example.com` itself.
    Subdomains(String),
}

impl UrlRule {
    fn new(pattern: &str) -> Result<Self, RuleError> {
        let err = |reason: &str| RuleError::Url {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = pattern.split_once("://").ok_or_else(|| err("no scheme"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/*"),
        };
        if authority.contains('@') {
            return Err(err("userinfo is not allowed in a pattern"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| err("bad port"))?;
        if host.is_empty() {
            return Err(err("no host"));
        }
        let host = match host.strip_prefix("*.") {
            Some(base) => HostRule::Subdomains(ascii_host(base).ok_or_else(|| err("bad host"))?),
            None if host.contains('*') => return Err(err("`*` in a host must be a leading `*.`")),
            None => HostRule::Exact(ascii_host(host).ok_or_else(|| err("bad host"))?),
        };
        // `?` in a URL pattern is the query's separator, never a wildcard.
        let path = Glob::new(&path.replace('?', "[?]"))
            .map_err(|e| err(&e.kind().to_string()))?
            .compile_matcher()
            .into();
        Ok(Self {
            pattern: pattern.to_owned(),
            scheme: scheme.to_ascii_lowercase(),
            host,
            port,
            path,
        })
    }

    fn matches(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_ok = match &self.host {
            HostRule::Exact(h) => host == h,
            HostRule::Subdomains(base) => host
                .strip_suffix(base.as_str())
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
        };
        url.scheme() == self.scheme
            && host_ok
            && url.port_or_known_default() == self.port.or_else(|| default_port(&self.scheme))
            && self.path.is_match(path_and_query(url))
    }
}

/// What a URL pattern's path part is matched against: the path, and `?query` when the URL
/// has one (so `https://x/api` does not allow `https://x/api?delete=1`; `https://x/api*`
/// does).
fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Whether a URL's path hides a `/`, `\\` or `.` behind percent-encoding (`..%2f`,
/// `%2e%2e`): servers disagree on decoding them, so the path the policy matched may not be
/// the one served.
fn hides_separators(url: &url::Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    ["%2f", "%5c", "%2e"].iter().any(|e| path.contains(e))
}

/// `host:port` → (`host`, port); `[::1]:8080` keeps its brackets. `None` for a bad port.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let colon = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None => authority.rfind(':'),
    };
    match colon {
        Some(i) => Some((&authority[..i], Some(authority[i + 1..].parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// A pattern's host as a URL's host would read: punycode for international names,
/// lowercase, IP addresses in canonical form. `None` if it is no valid host.
fn ascii_host(host: &str) -> Option<String> {
    match url::Host::parse(host).ok()? {
        url::Host::Domain(d) => Some(d),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(format!("[{ip}]")),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// An agent's permissions, compiled for matching.
#[derive(Debug, Clone)]
pub struct PolicyRules {
    read: Vec<PathRule>,
    write: Vec<PathRule>,
    network: Vec<UrlRule>,
    exec: Vec<String>,
    mcp: Vec<McpRule>,
    delegate: Vec<String>,
    /// Extra never-writable paths ([`Permissions::protected`]), each with all below it.
    protected: Vec<String>,
    write_protected: Vec<String>,
    read_secrets: Vec<String>,
    scope: String,
    /// What these rules were compiled from, to hand them on ([`PolicyRules::layers`]).
    source: PolicyLayer,
    /// The rules of the agent that delegated to this one, which must allow too.
    parent: Option<Box<PolicyRules>>,
}

/// `server.tool`, or every tool of a server (`server.*` or `server`).
#[derive(Debug, Clone)]
struct McpRule {
    pattern: String,
    server: String,
    /// `None`: any tool of the server.
    tool: Option<String>,
}

impl McpRule {
    fn new(pattern: &str) -> Result<Self, RuleError> {
        let err = || RuleError::Mcp {
            pattern: pattern.to_owned(),
        };
        let (server, tool) = match pattern.trim().split_once('.') {
            Some((s, "*")) => (s, None),
            Some((s, t)) => (s, Some(t)),
            None => (pattern.trim(), None),
        };
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        };
        if !name_ok(server) || !tool.is_none_or(name_ok) {
            return Err(err());
        }
        Ok(Self {
            pattern: pattern.trim().to_owned(),
            server: server.to_owned(),
            tool: tool.map(str::to_owned),
        })
    }

    fn matches(&self, name: &str) -> bool {
        match name.split_once('.') {
            Some((server, tool)) => {
                server == self.server && self.tool.as_deref().is_none_or(|t| t == tool)
            }
            None => false,
        }
    }
}

impl PolicyRules {
    /// Compiles `permissions`, with writes further limited to `scope` (workspace-relative;
    /// `""` for none).
    pub fn compile(permissions: &Permissions, scope: &str) -> Result<Self, RuleError> {
        let paths = |globs: &[String]| -> Result<Vec<PathRule>, RuleError> {
            globs.iter().map(|g| PathRule::new(g)).collect()
        };
        Ok(Self {
            read: paths(&permissions.read)?,
            write: paths(&permissions.write)?,
            network: permissions
                .network
                .iter()
                .map(|p| UrlRule::new(p))
                .collect::<Result<_, _>>()?,
            exec: permissions.exec.clone(),
            mcp: permissions
                .mcp
                .iter()
                .map(|p| McpRule::new(p))
                .collect::<Result<_, _>>()?,
            delegate: permissions.delegate.clone(),
            protected: permissions
                .protected
                .iter()
                .map(|p| p.trim_matches('/').to_owned())
                .collect(),
            write_protected: permissions.write_protected.clone(),
            read_secrets: permissions.read_secrets.clone(),
            scope: scope.trim_matches('/').to_owned(),
            source: PolicyLayer {
                permissions: permissions.clone(),
                scope: scope.to_owned(),
            },
            parent: None,
        })
    }

    /// `permissions` within every layer of `ancestors` (nearest first): what an agent
    /// delegated through those ancestors may do.
    pub fn compile_within(
        permissions: &Permissions,
        scope: &str,
        ancestors: &[PolicyLayer],
    ) -> Result<Self, RuleError> {
        let mut rules = Self::compile(permissions, scope)?;
        for layer in ancestors {
            rules = rules.within(Self::compile(&layer.permissions, &layer.scope)?);
        }
        Ok(rules)
    }

    /// Every layer of these rules, own first, then each delegating agent's, nearest first:
    /// what a child in another process needs to enforce the same intersection
    /// ([`PolicyRules::compile_within`] of them gives back the same decisions).
    pub fn layers(&self) -> Vec<PolicyLayer> {
        let mut layers = vec![self.source.clone()];
        let mut up = self.parent.as_deref();
        while let Some(p) = up {
            layers.push(p.source.clone());
            up = p.parent.as_deref();
        }
        layers
    }

    /// These rules, narrowed to what `parent` (the rules of the agent that delegated)
    /// allows: the intersection of both.
    pub fn within(mut self, parent: PolicyRules) -> Self {
        let mut innermost = &mut self;
        while let Some(ref mut p) = innermost.parent {
            innermost = p;
        }
        innermost.parent = Some(Box::new(parent));
        self
    }

    /// Allows or denies one access, naming the rule that decided. With parent rules, the
    /// access must be allowed by every layer; a denial names the layer that denied.
    pub fn decide(&self, access: &Access) -> Decision {
        let own = self.decide_own(access);
        match &self.parent {
            Some(parent) if own.allowed => {
                let up = parent.decide(access);
                if up.allowed {
                    own
                } else {
                    Decision::deny(format!("delegating agent's policy: {}", up.rule))
                }
            }
            _ => own,
        }
    }

    fn decide_own(&self, access: &Access) -> Decision {
        match access {
            Access::Outside(p) => Decision::deny(format!("outside the workspace: {p}")),
            Access::Read(p) => match protected::secret_read(p, &self.read_secrets) {
                Some(rule) => Decision::deny(format!(
                    "protected: `{rule}` files are not readable unless the definition opts in (tools.fs.read_secrets: [\"{rule}\"])"
                )),
                None => decide_path("read", &self.read, p),
            },
            // A search named at a secret file itself (`grep` of `.env`) reads it; searches
            // below a directory skip secret files (the application's walk).
            Access::ReadTree(p) => match protected::secret_read(p, &self.read_secrets) {
                Some(rule) => Decision::deny(format!(
                    "protected: `{rule}` files are not searchable unless the definition opts in (tools.fs.read_secrets: [\"{rule}\"])"
                )),
                None => decide_tree(&self.read, p),
            },
            Access::Write(p) => {
                if let Some(rule) = protected::never_writable(p) {
                    return Decision::deny(rule);
                }
                if let Some(dir) = self.protected.iter().find(|d| within(p, d)) {
                    return Decision::deny(format!(
                        "protected: `{dir}` ($CODEX_HOME: configuration, keys' settings, audit anchors) is never writable"
                    ));
                }
                if let Some(rule) = protected::executed_later(p, &self.write_protected) {
                    return Decision::deny(format!(
                        "protected: `{rule}` is run later by other tools; writable only when the definition opts in (tools.fs.write_protected: [\"{rule}\"])"
                    ));
                }
                if !within(p, &self.scope) {
                    return Decision::deny(format!("write: outside scope `{}`", self.scope));
                }
                decide_path("write", &self.write, p)
            }
            Access::Network(u) => self.decide_url(u),
            Access::Exec(program) => match self.exec.iter().find(|e| *e == program) {
                Some(e) => Decision::allow(format!("exec: {e}")),
                None => Decision::deny("exec: default deny (program not in shell.exec)"),
            },
            Access::Mcp(name) => match self.mcp.iter().find(|r| r.matches(name)) {
                Some(r) => Decision::allow(format!("mcp: {}", r.pattern)),
                None => Decision::deny("mcp: default deny (no tools.mcp pattern matches)"),
            },
            Access::Delegate(agent) => {
                match self.delegate.iter().find(|d| *d == agent || *d == "*") {
                    Some(d) => Decision::allow(format!("delegate: {d}")),
                    None => {
                        Decision::deny("delegate: default deny (agent not in delegation.agents)")
                    }
                }
            }
        }
    }

    fn decide_url(&self, raw: &str) -> Decision {
        let url = match url::Url::parse(raw) {
            Ok(u) => u,
            Err(e) => return Decision::deny(format!("network: unparseable URL ({e})")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Decision::deny("network: URLs with userinfo are refused");
        }
        if hides_separators(&url) {
            return Decision::deny(
                "network: percent-encoded `/`, `\\` or `.` in a URL path is refused (servers decode it differently)",
            );
        }
        match self.network.iter().find(|r| r.matches(&url)) {
            Some(r) => Decision::allow(format!("network: {}", r.pattern)),
            None => Decision::deny("network: default deny (no allow pattern matches)"),
        }
    }
}

fn decide_path(kind: &str, rules: &[PathRule], path: &str) -> Decision {
    if path.split('/').any(|c| c == "..") {
        return Decision::deny(format!("{kind}: unresolved `..` in path"));
    }
    match rules.iter().find(|r| r.matches(path)) {
        Some(r) => Decision::allow(format!("{kind}: {}", r.pattern)),
        None => Decision::deny(format!("{kind}: default deny (no {kind} glob matches)")),
    }
}

fn decide_tree(rules: &[PathRule], dir: &str) -> Decision {
    if dir.split('/').any(|c| c == "..") {
        return Decision::deny("read tree: unresolved `..` in path");
    }
    match rules.iter().find(|r| r.covers_tree(dir)) {
        Some(r) => Decision::allow(format!("read tree: {}", r.pattern)),
        None => {
            let wanted = if dir.is_empty() {
                "**".to_owned()
            } else {
                format!("{dir}/**")
            };
            Decision::deny(format!(
                "read tree: default deny (searching `{dir}` needs a read glob covering all of it, such as `{wanted}`)"
            ))
        }
    }
}

/// Whether `path` is `scope` or below it, by whole components.
fn within(path: &str, scope: &str) -> bool {
    scope.is_empty()
        || path == scope
        || path
            .strip_prefix(scope)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(read: &[&str], write: &[&str], scope: &str) -> PolicyRules {
        let perms = Permissions {
            read: read.iter().map(|s| s.to_string()).collect(),
            write: write.iter().map(|s| s.to_string()).collect(),
            network: vec!["https://docs.rs/*".into(), "https://*.github.com/*".into()],
            exec: vec!["cargo".into()],
            mcp: vec!["github.search_issues".into(), "fs.*".into(), "notes".into()],
            delegate: vec!["test-gen".into()],
            ..Permissions::default()
        };
        PolicyRules::compile(&perms, scope).unwrap()
    }

    #[test]
    fn copies_of_the_rules_share_their_compiled_globs() {
        let original = rules(&["src/**"], &["src/*.rs"], "");
        let copy = original.clone();
        let same = |a: &[PathRule], b: &[PathRule]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| Arc::ptr_eq(&x.matcher, &y.matcher))
        };
        assert!(same(&original.read, &copy.read) && same(&original.write, &copy.write));
        assert!(Arc::ptr_eq(
            &original.network[0].path,
            &copy.network[0].path
        ));
    }

    fn allowed(r: &PolicyRules, a: Access) -> bool {
        r.decide(&a).allowed
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let r = PolicyRules::compile(&Permissions::default(), "").unwrap();
        assert!(!allowed(&r, Access::Read("a.txt".into())));
        assert!(!allowed(&r, Access::Write("a.txt".into())));
        assert!(!allowed(&r, Access::Exec("ls".into())));
    }

    #[test]
    fn star_does_not_cross_directories() {
        let r = rules(&["src/*"], &[], "");
        assert!(allowed(&r, Access::Read("src/main.rs".into())));
        assert!(!allowed(&r, Access::Read("src/a/b.rs".into())));
    }

    #[test]
    fn double_star_dir_covers_the_dir_itself() {
        let r = rules(&["src/**"], &[], "");
        assert!(allowed(&r, Access::Read("src".into())));
        assert!(allowed(&r, Access::Read("src/a/b.rs".into())));
        assert!(!allowed(&r, Access::Read("srcx/a.rs".into())));
    }

    #[test]
    fn a_tree_read_needs_a_rule_covering_the_whole_subtree() {
        let r = rules(&["src/**", "docs/*", "lib/**/*.rs"], &[], "");
        assert!(allowed(&r, Access::ReadTree("src".into())));
        assert!(allowed(&r, Access::ReadTree("src/api".into())));
        assert!(!allowed(&r, Access::ReadTree("".into())));
        assert!(!allowed(&r, Access::ReadTree("docs/guide".into())));
        assert!(!allowed(&r, Access::ReadTree("lib".into())));
        assert!(!allowed(&r, Access::ReadTree("srcx".into())));
        let d = r.decide(&Access::ReadTree("docs/guide".into()));
        assert!(d.rule.contains("docs/guide/**"), "{}", d.rule);
        let all = rules(&["**"], &[], "");
        assert!(allowed(&all, Access::ReadTree("".into())));
    }

    #[test]
    fn write_prefix_lookalike_is_denied() {
        let r = rules(&["**"], &["./artifacts/**"], "");
        assert!(allowed(&r, Access::Write("artifacts/report.md".into())));
        let d = r.decide(&Access::Write("artifactsX/report.md".into()));
        assert!(!d.allowed, "{d:?}");
    }

    #[test]
    fn scope_narrows_writes_by_component() {
        let r = rules(&["**"], &["**"], "src/api");
        assert!(allowed(&r, Access::Write("src/api/x.rs".into())));
        assert!(!allowed(&r, Access::Write("src/apiX/x.rs".into())));
        let d = r.decide(&Access::Write("tests/x.rs".into()));
        assert_eq!(d.rule, "write: outside scope `src/api`");
        assert!(allowed(&r, Access::Read("tests/x.rs".into())));
    }

    #[test]
    fn outside_and_dotdot_are_denied() {
        let r = rules(&["**"], &["**"], "");
        assert!(!allowed(&r, Access::Outside("/etc/passwd".into())));
        assert!(!allowed(&r, Access::Read("../secret".into())));
    }

    #[test]
    fn url_userinfo_port_and_lookalikes_are_denied() {
        let r = rules(&[], &[], "");
        assert!(allowed(
            &r,
            Access::Network("https://docs.rs/ractor".into())
        ));
        assert!(allowed(
            &r,
            Access::Network("https://api.github.com/x".into())
        ));
        for bad in [
            "https://docs.rs@evil.example/",
            "https://docs.rs:8443/x",
            "http://docs.rs/x",
            "https://docs.rs.evil.example/x",
            "https://evildocs.rs/x",
            "https://github.com/x",
            "https://127.0.0.1/x",
            "not a url",
        ] {
            assert!(!allowed(&r, Access::Network(bad.into())), "{bad}");
        }
    }

    fn net(patterns: &[&str]) -> PolicyRules {
        let perms = Permissions {
            network: patterns.iter().map(|s| s.to_string()).collect(),
            ..Permissions::default()
        };
        PolicyRules::compile(&perms, "").unwrap()
    }

    #[test]
    fn url_tricks_in_host_and_authority_are_denied() {
        let r = rules(&[], &[], "");
        for bad in [
            "https://evil.example#@docs.rs/",
            "https://evil.example?@docs.rs/",
            "https://evil.example\\@docs.rs/",
            "https://docs.rs%2eevil.example/",
            "https://docs.rs./x",
            "https://DOCS.rs.evil.example/x",
            "https://user:pw@docs.rs/x",
            "ws://docs.rs/x",
            "file:///docs.rs/x",
            "https://github.com.evil.example/x",
            "https://.github.com/x",
        ] {
            let d = r.decide(&Access::Network(bad.into()));
            assert!(!d.allowed, "{bad}: {d:?}");
        }
        assert!(allowed(&r, Access::Network("https://DOCS.RS:443/x".into())));
        // An empty userinfo is dropped by the parser: this really is docs.rs.
        assert!(allowed(&r, Access::Network("https://:@docs.rs/x".into())));
    }

    #[test]
    fn idn_hosts_compare_in_punycode() {
        let r = net(&["https://bücher.example/*"]);
        assert!(allowed(
            &r,
            Access::Network("https://xn--bcher-kva.example/a".into())
        ));
        assert!(allowed(
            &r,
            Access::Network("https://BÜCHER.example/a".into())
        ));
        assert!(!allowed(
            &r,
            Access::Network("https://bucher.example/a".into())
        ));
        // A Cyrillic `о` in place of the Latin `o` is another host.
        let docs = rules(&[], &[], "");
        let homograph = "https://d\u{043e}cs.rs/x";
        assert!(!allowed(&docs, Access::Network(homograph.into())));
        assert!(!allowed(
            &docs,
            Access::Network("https://xn--dcs-5cd.rs/x".into())
        ));
    }

    #[test]
    fn ip_literals_compare_as_addresses() {
        let r = net(&["http://127.0.0.1:8080/*", "http://[::1]:9090/*"]);
        assert!(allowed(
            &r,
            Access::Network("http://127.0.0.1:8080/x".into())
        ));
        // Other spellings of the same address are the same host.
        assert!(allowed(
            &r,
            Access::Network("http://2130706433:8080/x".into())
        ));
        assert!(allowed(
            &r,
            Access::Network("http://[0:0::1]:9090/x".into())
        ));
        for bad in [
            "http://127.0.0.2:8080/x",
            "http://localhost:8080/x",
            "http://127.0.0.1:8081/x",
            "http://[::1]:8080/x",
            "http://[::ffff:127.0.0.1]:8080/x",
        ] {
            assert!(!allowed(&r, Access::Network(bad.into())), "{bad}");
        }
        let docs = rules(&[], &[], "");
        for ip in [
            "https://151.101.2.137/x",
            "https://[2606:4700::1]/x",
            "https://0x7f000001/x",
        ] {
            assert!(!allowed(&docs, Access::Network(ip.into())), "{ip}");
        }
    }

    #[test]
    fn bad_url_pattern_hosts_are_reported() {
        for bad in [
            "https://exa mple.com/*",
            "https://[::1/*",
            "https://h:99999/*",
            "https://a*b/*",
        ] {
            let perms = Permissions {
                network: vec![bad.into()],
                ..Permissions::default()
            };
            assert!(PolicyRules::compile(&perms, "").is_err(), "{bad}");
        }
    }

    #[test]
    fn mcp_tools_match_server_and_tool() {
        let r = rules(&[], &[], "");
        for ok in ["github.search_issues", "fs.read", "fs.write", "notes.add"] {
            let d = r.decide(&Access::Mcp(ok.into()));
            assert!(d.allowed, "{ok}: {d:?}");
        }
        for bad in [
            "github.create_issue",
            "github",
            "fsx.read",
            "evil.fs.read",
            "notes",
            "",
        ] {
            assert!(!allowed(&r, Access::Mcp(bad.into())), "{bad}");
        }
        assert_eq!(r.decide(&Access::Mcp("fs.read".into())).rule, "mcp: fs.*");
        let perms = Permissions {
            mcp: vec!["bad name.x".into()],
            ..Permissions::default()
        };
        assert!(PolicyRules::compile(&perms, "").is_err());
    }

    #[test]
    fn delegation_needs_the_agent_name_or_a_star() {
        let r = rules(&[], &[], "");
        assert!(allowed(&r, Access::Delegate("test-gen".into())));
        assert!(!allowed(&r, Access::Delegate("test-gen2".into())));
        let any = PolicyRules::compile(
            &Permissions {
                delegate: vec!["*".into()],
                ..Permissions::default()
            },
            "",
        )
        .unwrap();
        assert!(allowed(&any, Access::Delegate("whoever".into())));
    }

    #[test]
    fn a_child_may_not_do_what_its_parent_may_not() {
        let parent = rules(&["src/**"], &["src/**"], "src");
        let child = rules(&["**"], &["**"], "").within(parent);
        assert!(allowed(&child, Access::Read("src/lib.rs".into())));
        assert!(allowed(&child, Access::Write("src/new.rs".into())));
        let d = child.decide(&Access::Read("secrets/notes.md".into()));
        assert!(!d.allowed);
        assert!(
            d.rule.starts_with("delegating agent's policy: read"),
            "{}",
            d.rule
        );
        assert!(!allowed(&child, Access::Write("tests/x.rs".into())));
    }

    #[test]
    fn a_child_may_not_do_what_it_may_not_itself() {
        let parent = rules(&["**"], &["**"], "");
        let child = rules(&["docs/**"], &[], "").within(parent);
        assert!(allowed(&child, Access::Read("docs/a.md".into())));
        assert!(!allowed(&child, Access::Read("src/lib.rs".into())));
        assert!(!allowed(&child, Access::Write("docs/a.md".into())));
    }

    #[test]
    fn exec_needs_an_exact_name() {
        let r = rules(&[], &[], "");
        assert!(allowed(&r, Access::Exec("cargo".into())));
        assert!(!allowed(&r, Access::Exec("cargo2".into())));
        assert!(!allowed(&r, Access::Exec("/usr/bin/cargo".into())));
    }

    #[test]
    fn invalid_patterns_are_reported() {
        let perms = Permissions {
            network: vec!["docs.rs".into()],
            ..Permissions::default()
        };
        let e = PolicyRules::compile(&perms, "").unwrap_err();
        assert!(e.to_string().contains("docs.rs"), "{e}");
    }

    proptest! {
        /// A tree read is allowed only if every file below the tree may be read.
        #[test]
        fn an_allowed_tree_read_implies_every_file_below_is_readable(
            glob in prop_oneof![
                Just("**"), Just("src/**"), Just("src/*"), Just("src/**/*.rs"),
                Just("src/a/**"), Just("*"), Just("src/{a,b}/**"), Just("s?c/**"),
            ],
            dir in "(src|src/a|src/b|lib|)",
            below in "[a-z]{1,3}(/[a-z]{1,3}){0,2}(\\.rs)?",
        ) {
            let r = rules(&[glob], &[], "");
            if allowed(&r, Access::ReadTree(dir.clone())) {
                let file = if dir.is_empty() { below.clone() } else { format!("{dir}/{below}") };
                prop_assert!(allowed(&r, Access::Read(file.clone())), "{glob}: tree {dir:?} but not {file}");
            }
        }
    }

    proptest! {
        /// No path outside every allowed glob's literal directory is ever allowed, for
        /// globs of several shapes.
        #[test]
        fn allowed_paths_are_under_a_glob_directory(
            globs in proptest::collection::vec(("[a-c]{1,2}(/[a-c]{1,2})?", 0..4usize), 1..4),
            path in "[a-c./*]{0,14}",
        ) {
            let tails = ["**", "*", "*.rs", "a*"];
            let globs: Vec<String> =
                globs.iter().map(|(d, t)| format!("{d}/{}", tails[*t])).collect();
            let refs: Vec<&str> = globs.iter().map(String::as_str).collect();
            let r = rules(&refs, &refs, "");
            let under = |(d, _): &(String, usize)| path == *d || path.starts_with(&format!("{d}/"));
            let dirs: Vec<(String, usize)> = globs
                .iter()
                .map(|g| (g.rsplit_once('/').unwrap().0.to_owned(), 0))
                .collect();
            if !dirs.iter().any(under) {
                prop_assert!(!allowed(&r, Access::Read(path.clone())), "{path} {globs:?}");
                prop_assert!(!allowed(&r, Access::Write(path.clone())), "{path} {globs:?}");
            }
        }

        /// A write outside the scope is never allowed, whatever the write globs.
        #[test]
        fn writes_outside_the_scope_are_denied(
            scope in "[a-c]{1,2}(/[a-c]{1,2})?",
            path in "[a-c/]{0,10}",
        ) {
            let r = rules(&["**"], &["**"], &scope);
            let inside = path == scope || path.starts_with(&format!("{scope}/"));
            if !inside {
                prop_assert!(!allowed(&r, Access::Write(path.clone())), "{path} in {scope}");
            }
        }

        /// No URL whose parsed host differs from every allowed host is allowed, however the
        /// authority is spelt (userinfo, ports, percent-escapes, unicode, dots, IPs).
        #[test]
        fn tricky_authorities_never_reach_other_hosts(
            authority in "[a-z0-9.@:%\\[\\]#?/\\\\\u{430}-\u{44f}-]{1,24}",
            scheme in prop_oneof!["https", "http", "HTTPS", "ftp"],
        ) {
            let r = rules(&[], &[], "");
            let url = format!("{scheme}://{authority}/x");
            let d = r.decide(&Access::Network(url.clone()));
            if d.allowed {
                let parsed = url::Url::parse(&url).unwrap();
                let h = parsed.host_str().unwrap().to_owned();
                prop_assert!(parsed.username().is_empty() && parsed.password().is_none(), "{url}");
                prop_assert!(h == "docs.rs" || (h.ends_with(".github.com") && h.len() > 11), "{url}");
                prop_assert_eq!(parsed.scheme(), "https");
                prop_assert_eq!(parsed.port_or_known_default(), Some(443));
            }
        }

        /// No path outside every allowed glob's directory is ever allowed.
        #[test]
        fn paths_outside_allowed_dirs_are_denied(
            dir in "[a-z]{1,6}",
            path in "[a-zA-Z./]{1,24}",
        ) {
            let r = rules(&[&format!("{dir}/**")], &[], "");
            let inside = path == dir || path.starts_with(&format!("{dir}/"));
            if !inside {
                prop_assert!(!allowed(&r, Access::Read(path.clone())), "{path}");
            }
        }

        /// No URL whose host differs from every allowed host is ever allowed.
        #[test]
        fn urls_on_other_hosts_are_denied(host in "[a-z0-9.-]{1,20}", path in "[a-z/]{0,10}") {
            let r = rules(&[], &[], "");
            let url = format!("https://{host}/{path}");
            if let Ok(parsed) = url::Url::parse(&url) {
                let h = parsed.host_str().unwrap_or_default().to_owned();
                let ok = h == "docs.rs" || (h.ends_with(".github.com") && h.len() > 11);
                if !ok {
                    prop_assert!(!allowed(&r, Access::Network(url.clone())), "{url}");
                }
            } else {
                prop_assert!(!allowed(&r, Access::Network(url.clone())));
            }
        }

        /// A delegated agent's rules allow exactly what both its own and its parent's allow,
        /// at any depth.
        #[test]
        fn delegated_rules_are_the_intersection_of_every_layer(
            layers in proptest::collection::vec(
                (
                    proptest::collection::vec("[ab]{1,2}(/[ab*]{1,2})?(/\\*\\*)?", 0..3),
                    proptest::collection::vec("[ab]{1,2}(/\\*\\*)?", 0..3),
                    "(|a|b)",
                    proptest::collection::vec("(x|y|\\*)", 0..2),
                ),
                2..4,
            ),
            accesses in proptest::collection::vec(
                prop_oneof![
                    "[ab]{1,2}(/[ab]{1,2}){0,2}".prop_map(Access::Read),
                    "[ab]{0,2}(/[ab]{1,2})?".prop_map(Access::ReadTree),
                    "[ab]{1,2}(/[ab]{1,2}){0,2}".prop_map(Access::Write),
                    "(x|y|z)".prop_map(Access::Delegate),
                ],
                1..12,
            ),
        ) {
            let compiled: Vec<PolicyRules> = layers
                .iter()
                .map(|(read, write, scope, delegate)| {
                    let perms = Permissions {
                        read: read.clone(),
                        write: write.clone(),
                        delegate: delegate.clone(),
                        ..Permissions::default()
                    };
                    PolicyRules::compile(&perms, scope).unwrap()
                })
                .collect();
            // The first layer is the top-level agent; each next one was delegated to by it.
            let mut nested = compiled[0].clone();
            for child in &compiled[1..] {
                nested = child.clone().within(nested);
            }
            // Handed to another process as layers, the rules decide the same.
            let layers = nested.layers();
            let handed = PolicyRules::compile_within(&layers[0].permissions, &layers[0].scope, &layers[1..]).unwrap();
            for access in &accesses {
                let each = compiled.iter().all(|r| r.decide(access).allowed);
                prop_assert_eq!(nested.decide(access).allowed, each, "{:?}", access);
                prop_assert_eq!(handed.decide(access).allowed, each, "{:?}", access);
            }
        }

        /// Whatever an agent's write rules and opt-ins say, `.git`, `.codex`, `HEAD` and the
        /// extra protected paths are never writable, and the denial names a protection.
        #[test]
        fn protected_paths_are_never_writable_whatever_the_definition_says(
            before in proptest::collection::vec("[a-z]{1,4}", 0..3),
            target in prop::sample::select(vec![
                ".git/config", ".GIT/hooks/pre-commit", ".codex/agents/a.yaml",
                ".codex/runs/r/audit.jsonl", "HEAD", "home/config.toml", "home",
            ]),
            write in prop::sample::select(vec!["**", ".git/**", ".codex/", "**/HEAD", "home/**"]),
        ) {
            let perms = Permissions {
                read: vec!["**".into()],
                write: vec![write.into(), "**".into()],
                protected: vec![before.iter().cloned().chain(["home".to_owned()]).collect::<Vec<_>>().join("/")],
                write_protected: protected::EXECUTED_LATER.iter().map(|r| r.name.to_owned()).collect(),
                ..Permissions::default()
            };
            let r = PolicyRules::compile(&perms, "").unwrap();
            let path = before.iter().map(String::as_str).chain([target]).collect::<Vec<_>>().join("/");
            let d = r.decide(&Access::Write(path.clone()));
            prop_assert!(!d.allowed, "{} allowed by {}", path, d.rule);
            prop_assert!(d.rule.starts_with("protected:"), "{}", d.rule);
        }
    }

    #[test]
    fn percent_encoded_separators_in_a_url_path_are_refused() {
        let r = net(&["https://docs.rs/crate/*"]);
        assert!(allowed(
            &r,
            Access::Network("https://docs.rs/crate/x".into())
        ));
        for bad in [
            "https://docs.rs/crate/..%2f..%2fadmin",
            "https://docs.rs/crate/%2E%2E/admin",
            "https://docs.rs/crate/x%5c..%5cadmin",
            "https://docs.rs/crate/%2e%2e%2fadmin",
        ] {
            let d = r.decide(&Access::Network(bad.into()));
            assert!(!d.allowed, "{bad}: {}", d.rule);
        }
    }

    #[test]
    fn the_query_string_is_part_of_the_match() {
        let r = net(&[
            "https://api.example.com/status",
            "https://api.example.com/search?q=*",
        ]);
        assert!(allowed(
            &r,
            Access::Network("https://api.example.com/status".into())
        ));
        assert!(!allowed(
            &r,
            Access::Network("https://api.example.com/status?delete=1".into())
        ));
        assert!(allowed(
            &r,
            Access::Network("https://api.example.com/search?q=rust".into())
        ));
        assert!(!allowed(
            &r,
            Access::Network("https://api.example.com/searchXq=rust".into())
        ));
    }

    #[test]
    fn executed_later_files_need_an_explicit_opt_in() {
        let r = rules(&["**"], &["**"], "");
        let d = r.decide(&Access::Write("build.rs".into()));
        assert!(!d.allowed);
        assert!(
            d.rule.contains("write_protected: [\"build.rs\"]"),
            "{}",
            d.rule
        );
        let perms = Permissions {
            read: vec!["**".into()],
            write: vec!["**".into()],
            write_protected: vec!["build.rs".into()],
            ..Permissions::default()
        };
        let opted = PolicyRules::compile(&perms, "").unwrap();
        assert!(allowed(&opted, Access::Write("build.rs".into())));
        assert!(!allowed(&opted, Access::Write("Makefile".into())));
    }

    #[test]
    fn secret_files_are_unreadable_without_an_opt_in() {
        let r = rules(&["**"], &[], "");
        let d = r.decide(&Access::Read(".env".into()));
        assert!(!d.allowed);
        assert!(d.rule.starts_with("protected:"), "{}", d.rule);
        let d = r.decide(&Access::ReadTree("app/.env".into()));
        assert!(
            !d.allowed,
            "a search named at the file reads it: {}",
            d.rule
        );
        assert!(allowed(&r, Access::Read("src/env.rs".into())));
        let perms = Permissions {
            read: vec!["**".into()],
            read_secrets: vec![".env*".into()],
            ..Permissions::default()
        };
        let opted = PolicyRules::compile(&perms, "").unwrap();
        assert!(allowed(&opted, Access::Read(".env".into())));
        assert!(!allowed(&opted, Access::Read("k.pem".into())));
    }
}
