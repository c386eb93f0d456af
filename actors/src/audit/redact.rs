//! Secret redaction: what keeps API keys and tokens out of the audit log (and, for agents
//! whose definition asks for it, out of the tool output their model sees).
//!
//! A [`Redactor`] masks two kinds of secrets with [`MASK`]:
//!
//! - **known values**: the values of environment variables whose names mark a credential
//!   ([`is_secret_name`]: `_KEY`, `_TOKEN`, `_SECRET`, `_PASSWORD` and the like, any case,
//!   so `OPENAI_API_KEY`, `github_token`), and
//!   any values given explicitly. A value is masked wherever it appears, also in its
//!   JSON-escaped form (inside a tool call's arguments, which are JSON text). Values shorter
//!   than [`MIN_SECRET_LEN`] characters are ignored: masking `1` or `true` everywhere would
//!   destroy the log and protect nothing.
//! - **patterns** of well-known credential formats, whatever their origin: `sk-…` keys
//!   (OpenAI, Anthropic), `Bearer …` tokens, GitHub (`ghp_…`, `github_pat_…`), Slack
//!   (`xox?-…`), AWS access key ids (`AKIA…`), Google API keys (`AIza…`), and
//!   `api_key=…` / `token: …` / `secret=…` / `password=…` assignments (the value is masked,
//!   the name kept), PEM private-key blocks (whole, also cut short), Stripe keys
//!   (`sk_live_…`, `rk_live_…`, `…_test_…`), AWS secret access keys (40 characters assigned
//!   to an `aws…` name), passwords in URLs (`scheme://user:[REDACTED]@host`), and `.env`
//!   style `NAME=value` assignments whose name [`is_secret_name`] calls secret.
//!
//! Redaction is pure and deterministic, so it is tested without actors. The AuditActor
//! applies it to every string of every record before the record is serialized and hashed
//! (the hash covers the redacted line: the secret never reaches the disk). Trade-off: a
//! secret that is neither in a variable of that name nor in a known format, or is shorter
//! than the minimum, is not recognized.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// Known secret values shorter than this are not masked (see the module docs).
pub const MIN_SECRET_LEN: usize = 8;

/// Name endings that mark a credential (compared ignoring case).
const SECRET_SUFFIXES: &[&str] = &[
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
const SECRET_PARTS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
];

/// Well-known credentials whose names match neither list (provider keys, cloud and registry
/// credentials, connection strings, the SSH agent socket).
const SECRET_NAMES: &[&str] = &[
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

/// Masks secrets in text (see the module docs). Immutable once built; cheap to share in an
/// `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Known values, longest first (so a value containing another is masked whole).
    values: Vec<String>,
}

/// Credential formats, each with the group to mask (0 = the whole match).
fn patterns() -> &'static [(Regex, usize)] {
    static PATTERNS: OnceLock<Vec<(Regex, usize)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            (r"sk-[A-Za-z0-9_\-]{8,}", 0),
            (r"(?i)\bbearer\s+([A-Za-z0-9._~+/=\-]{8,})", 1),
            (r"\bgh[pousr]_[A-Za-z0-9]{20,}", 0),
            (r"\bgithub_pat_[A-Za-z0-9_]{20,}", 0),
            (r"\bxox[abprs]-[A-Za-z0-9\-]{10,}", 0),
            (r"\bAKIA[0-9A-Z]{16}\b", 0),
            (r"\bAIza[0-9A-Za-z_\-]{35}", 0),
            (
                r#"(?i)\b[a-z0-9_]*(?:api[_-]?key|token|secret|password)["']?\s*[:=]\s*["']?([^\s"',;]{8,})"#,
                1,
            ),
            // PEM private-key blocks (also JSON-escaped, and cut short with no END line).
            (
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
                0,
            ),
            // Stripe-style live and test keys: secret and restricted.
            (r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}", 0),
            // AWS secret access keys: 40 characters assigned to an `aws…` name.
            (
                r#"(?i)aws[a-z0-9_]*["']?\s*[:=]\s*\\?["']?([A-Za-z0-9/+]{40,})"#,
                1,
            ),
            // Passwords in URLs: `scheme://user:password@host`.
            (r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@"'<>]*:([^\s@/"'<>]+)@"#, 1),
        ]
        .into_iter()
        .map(|(re, group)| (Regex::new(re).expect("valid secret pattern"), group))
        .collect()
    })
}

impl Redactor {
    /// A redactor for the built-in patterns and these known values (short ones ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut all: Vec<String> = Vec::new();
        for value in values {
            if value.chars().count() < MIN_SECRET_LEN {
                continue;
            }
            // The form the value takes inside a JSON string (tool call arguments).
            let escaped = serde_json::to_string(&value).expect("a string serializes");
            let escaped = escaped[1..escaped.len() - 1].to_owned();
            if escaped != value {
                all.push(escaped);
            }
            all.push(value);
        }
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Self { values: all }
    }

    /// A redactor for the built-in patterns and the values of the variables among `vars`
    /// whose names [`is_secret_name`] calls secret.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self::new(
            vars.into_iter()
                .filter(|(name, _)| is_secret_name(name))
                .map(|(_, value)| value),
        )
    }

    /// [`Redactor::from_vars`] over this process's environment (variables that are not
    /// valid Unicode are skipped).
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// `text` with every known value and every pattern match replaced by [`MASK`].
    /// Borrowed when nothing was masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), MASK));
            }
        }
        for (re, group) in patterns() {
            if !re.is_match(&out) {
                continue;
            }
            let replaced = re
                .replace_all(&out, |caps: &regex::Captures<'_>| {
                    let whole = caps.get(0).expect("match").as_str();
                    match caps.get(*group).filter(|_| *group > 0) {
                        Some(secret) => {
                            let start = secret.start() - caps.get(0).expect("match").start();
                            format!(
                                "{}{MASK}{}",
                                &whole[..start],
                                &whole[start + secret.len()..]
                            )
                        }
                        None => MASK.to_owned(),
                    }
                })
                .into_owned();
            out = Cow::Owned(replaced);
        }
        mask_secret_assignments(out)
    }

    /// Redacts every string inside `value` (object keys are kept).
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.redact(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

/// `NAME=value` assignments (a `.env` file, a shell line, also JSON-escaped) whose name
/// [`is_secret_name`] calls secret: the value is masked, the name kept. Values of fewer
/// than 4 characters, or only digits (`MAX_TOKENS=200`), are left alone.
fn mask_secret_assignments(text: Cow<'_, str>) -> Cow<'_, str> {
    static ASSIGNMENT: OnceLock<Regex> = OnceLock::new();
    let re = ASSIGNMENT.get_or_init(|| {
        Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(?:\\?["'])?([^\s"'\\,;]+)"#)
            .expect("valid assignment pattern")
    });
    let secret = |caps: &regex::Captures<'_>| {
        let value = &caps[2];
        is_secret_name(&caps[1])
            && value.chars().count() >= 4
            && !value.chars().all(|c| c.is_ascii_digit())
            && value != MASK
    };
    if !re.captures_iter(&text).any(|c| secret(&c)) {
        return text;
    }
    let replaced = re.replace_all(&text, |caps: &regex::Captures<'_>| {
        let whole = caps.get(0).expect("match");
        if !secret(caps) {
            return whole.as_str().to_owned();
        }
        let value = caps.get(2).expect("group 2");
        format!(
            "{}{MASK}{}",
            &text[whole.start()..value.start()],
            &text[value.end()..whole.end()]
        )
    });
    Cow::Owned(replaced.into_owned())
}

/// Whether an environment variable of this name holds a credential, decided by name only
/// (ignoring case): names ending in `_KEY`, `_TOKEN`, `_SECRET`, `_PASSWORD` and the like,
/// names containing `SECRET`, `PASSWORD`, `TOKEN`, `API_KEY`, `PRIVATE_KEY` or
/// `CREDENTIAL`, and well-known ones (`DATABASE_URL`, `SSH_AUTH_SOCK`, ...). When in doubt
/// a name is secret. The one rule for the whole project: the audit log masks these
/// variables' values, and the `shell` tool removes them from a child's environment.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAMES.contains(&upper.as_str())
        || SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
        || SECRET_PARTS.iter().any(|p| upper.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_of_key_token_and_secret_variables_are_masked() {
        let r = Redactor::from_vars(vars(&[
            ("MY_SERVICE_KEY", "alpha-value-1"),
            ("github_token", "beta-value-22"),
            ("DB_SECRET", "gamma-value-333"),
            ("HOME", "/home/someone"),
        ]));
        let text = "a alpha-value-1 b beta-value-22 c gamma-value-333 d /home/someone";
        assert_eq!(
            r.redact(text),
            "a [REDACTED] b [REDACTED] c [REDACTED] d /home/someone"
        );
    }

    #[test]
    fn short_values_are_not_masked() {
        let r = Redactor::from_vars(vars(&[("FEATURE_TOKEN", "true")]));
        assert_eq!(r.redact("it is true"), "it is true");
    }

    #[test]
    fn a_value_is_masked_in_its_json_escaped_form_too() {
        let r = Redactor::new(["pa\"ss\\word-123".to_owned()]);
        let args = json!({"content": "pa\"ss\\word-123"}).to_string();
        assert!(!r.redact(&args).contains("word-123"), "{}", r.redact(&args));
    }

    #[test]
    fn a_longer_value_containing_a_shorter_one_is_masked_whole() {
        let r = Redactor::new(["abcdefgh".to_owned(), "abcdefgh-ijkl".to_owned()]);
        assert_eq!(r.redact("x abcdefgh-ijkl y"), "x [REDACTED] y");
    }

    #[test]
    fn api_keys_in_known_formats_are_masked_without_being_known() {
        let r = Redactor::default();
        for secret in [
            "sk-proj-abcdefghijklmnop1234",
            "sk-ant-api03-abcdefghijkl",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
            "github_pat_11ABCDEFG0123456789_abcdefghij",
            "xoxb-123456789012-abcdefghij",
            "AKIAIOSFODNN7EXAMPLE",
            "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
        ] {
            let text = format!("key: {secret} end");
            let masked = r.redact(&text);
            assert!(!masked.contains(secret), "{secret} leaked: {masked}");
            assert!(masked.contains(MASK), "{masked}");
        }
    }

    #[test]
    fn bearer_tokens_are_masked_and_the_scheme_kept() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("Authorization: Bearer eyJhbGciOi.payload.sig"),
            "Authorization: Bearer [REDACTED]"
        );
    }

    #[test]
    fn assignments_to_secret_names_mask_the_value() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("export API_KEY=supersecretvalue; password: 'hunter2hunter2'"),
            "export API_KEY=[REDACTED]; password: '[REDACTED]'"
        );
    }

    #[test]
    fn ordinary_text_is_left_alone_and_borrowed() {
        let r = Redactor::from_vars(vars(&[("OPENAI_API_KEY", "sk-live-0123456789")]));
        let text = "Review src/parser.rs: the tokenizer skips a byte.";
        assert!(matches!(r.redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn every_string_of_a_json_value_is_redacted() {
        let r = Redactor::new(["topsecret-1".to_owned()]);
        let mut v = json!({"a": "x topsecret-1", "b": ["topsecret-1"], "c": {"d": 3}});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            json!({"a": "x [REDACTED]", "b": ["[REDACTED]"], "c": {"d": 3}})
        );
    }

    #[test]
    fn credentials_are_secret_names_ignoring_case() {
        for name in [
            "OPENAI_API_KEY",
            "gh_token",
            "Aws_Secret",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "my_service_key",
            "DB_PASSWORD",
            "DATABASE_URL",
            "SSH_AUTH_SOCK",
            "CLIENT_SECRET_VALUE",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn ordinary_variables_are_not_secret_names() {
        for name in [
            "PATH",
            "HOME",
            "LANG",
            "CARGO_HOME",
            "TERM",
            "USER",
            "KEYBOARD",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn workspace_secrets_are_masked() {
        let r = Redactor::default();
        for (text, secret) in [
            (PEM.to_owned(), "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo"),
            (
                "stripe: sk_live_4eC39HqLyjWDarjtT1zdp7dc".into(),
                "4eC39HqLyjWDarjtT1zdp7dc",
            ),
            ("rk_live_51Habcdefghijklmnop".into(), "51Habcdefghijklmnop"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            (
                "postgres://app:s3cr3t-pw@db.internal/app".into(),
                "s3cr3t-pw",
            ),
            ("STRIPE_SECRET=abc123xyz\nDEBUG=true".into(), "abc123xyz"),
            ("export DB_PASSWORD=\"hunter2\"".into(), "hunter2"),
        ] {
            let masked = r.redact(&text);
            assert!(!masked.contains(secret), "{secret} leaked: {masked}");
            assert!(masked.contains(MASK), "{masked}");
        }
        assert_eq!(
            r.redact("postgres://app:s3cr3t-pw@db/app"),
            "postgres://app:[REDACTED]@db/app"
        );
        assert_eq!(
            r.redact("MAX_TOKENS=200 DEBUG=true"),
            "MAX_TOKENS=200 DEBUG=true"
        );
    }

    #[test]
    fn a_pem_block_cut_short_is_masked_to_the_end() {
        let r = Redactor::default();
        let cut = &PEM[..70];
        assert_eq!(r.redact(&format!("x {cut}")), format!("x {MASK}"));
    }

    #[test]
    fn a_json_escaped_pem_block_is_masked() {
        let r = Redactor::default();
        let args = json!({"path": "k.pem", "content": PEM}).to_string();
        let masked = r.redact(&args);
        assert!(!masked.contains("MIIEowIBAAKCAQEA"), "{masked}");
    }

    fn secret_text() -> impl proptest::strategy::Strategy<Value = (String, String)> {
        use proptest::prelude::*;
        let body = "[A-Za-z0-9]{24,40}";
        prop_oneof![
            body.prop_map(|b| (
                format!("-----BEGIN PRIVATE KEY-----\n{b}\n-----END PRIVATE KEY-----"),
                b
            )),
            body.prop_map(|b| (format!("sk_live_{b}"), b)),
            body.prop_map(|b| (format!("rk_live_{b}"), b)),
            "[A-Za-z0-9/+]{40}".prop_map(|b| (format!("AWS_SECRET_ACCESS_KEY={b}"), b)),
            body.prop_map(|b| (format!("https://deploy:{b}@example.com/x"), b)),
            body.prop_map(|b| (format!("\nSESSION_TOKEN={b}\n"), b)),
            body.prop_map(|b| (format!("sk-{b}"), b)),
        ]
    }

    proptest::proptest! {
        /// Whatever text surrounds a secret (prose, punctuation, newlines, JSON quoting),
        /// none of it reaches the output.
        #[test]
        fn a_secret_is_masked_whatever_surrounds_it(
            before in "[ -~\n\t]{0,30}",
            after in "[ -~\n\t]{0,30}",
            (secret, body) in secret_text(),
            as_json in proptest::bool::ANY,
        ) {
            let r = Redactor::default();
            let text = format!("{before}{secret}{after}");
            let text = if as_json { json!({"content": text}).to_string() } else { text };
            let masked = r.redact(&text);
            proptest::prop_assert!(!masked.contains(&body), "{} leaked: {}", body, masked);
        }
    }
}
