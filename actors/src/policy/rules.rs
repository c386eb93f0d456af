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
//! matched against the parsed URL: scheme, host and port must be equal (a leading `*.`
//! matches subdomains), and the path must match the pattern's path glob. Userinfo in a URL
//! is refused outright. Exec rules are exact program names.

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::spec::Permissions;
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
    matcher: GlobMatcher,
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
            .compile_matcher();
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
    path: GlobMatcher,
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
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| err("bad port"))?)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(err("no host"));
        }
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(base) => HostRule::Subdomains(base.to_owned()),
            None if host.contains('*') => return Err(err("`*` in a host must be a leading `*.`")),
            None => HostRule::Exact(host),
        };
        let path = Glob::new(path)
            .map_err(|e| err(&e.kind().to_string()))?
            .compile_matcher();
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
            && self.path.is_match(url.path())
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
    scope: String,
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
            scope: scope.trim_matches('/').to_owned(),
        })
    }

    /// Allows or denies one access, naming the rule that decided.
    pub fn decide(&self, access: &Access) -> Decision {
        match access {
            Access::Outside(p) => Decision::deny(format!("outside the workspace: {p}")),
            Access::Read(p) => decide_path("read", &self.read, p),
            Access::Write(p) => {
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
        };
        PolicyRules::compile(&perms, scope).unwrap()
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
    }
}
