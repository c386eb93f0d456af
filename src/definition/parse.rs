//! Parsing one definition file: errors with `file:line:column: field`, warnings for unknown
//! fields.
//!
//! The YAML deserializer is wrapped twice: `serde_ignored` reports every key no schema type
//! consumed (an unknown field, a warning), and `serde_path_to_error` records the field path
//! of a failure (an error). The line and column come from the YAML error's location. After
//! deserializing, the permissions are compiled once, so a bad glob or URL pattern is an error
//! of the file too.

use anyhow::anyhow;

use super::schema::AgentDefinition;

/// A definition that parsed, with the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The definition; its name is valid and its permission patterns compile.
    pub definition: AgentDefinition,
    /// One line per unknown field: `<origin>: unknown field `a.b` (ignored)`.
    pub warnings: Vec<String>,
}

/// Parses the YAML `text` of one definition; `origin` (a path, or `<bundled>/x.yaml`) starts
/// every message.
///
/// Guarantees: an `Err` names the origin, and where the YAML parser knows them the line,
/// column and field path (`agents/a.yaml:7:10: field `budget`: invalid type: ...`). Unknown
/// fields never fail; they are returned as warnings.
pub fn parse_definition(text: &str, origin: &str) -> anyhow::Result<Parsed> {
    if text.trim().is_empty() {
        return Err(anyhow!(
            "{origin}: the file is empty (expected an agent definition with at least `name:`)"
        ));
    }
    let mut unknown = Vec::new();
    let result = {
        let mut note = |path: serde_ignored::Path| unknown.push(field_path(&path));
        let yaml = serde_yaml::Deserializer::from_str(text);
        let ignoring = serde_ignored::Deserializer::new(yaml, &mut note);
        serde_path_to_error::deserialize::<_, AgentDefinition>(ignoring)
    };
    let definition = result.map_err(|e| anyhow!(describe(origin, &e, text)))?;
    definition
        .checked_permissions("")
        .map_err(|e| anyhow!("{origin}: {e:#}"))?;
    let warnings = unknown
        .into_iter()
        .map(|field| match super::suggest::did_you_mean(&field) {
            Some(known) => {
                format!("{origin}: unknown field `{field}` (ignored); did you mean `{known}`?")
            }
            None => format!("{origin}: unknown field `{field}` (ignored)"),
        })
        .collect();
    Ok(Parsed {
        definition,
        warnings,
    })
}

/// `tools.fs.x`, skipping the `?` segments serde_ignored adds for `Option`s and newtypes.
fn field_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        P::Map { parent, key } => match field_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            field_path(parent)
        }
    }
}

/// `origin:line:column: field `path`: message`, without the YAML error's own position and
/// path, which would repeat them.
fn describe(
    origin: &str,
    err: &serde_path_to_error::Error<serde_yaml::Error>,
    text: &str,
) -> String {
    let inner = err.inner();
    let location = inner.location();
    let mut message = inner.to_string();
    if let Some(loc) = &location {
        let position = format!(" at line {} column {}", loc.line(), loc.column());
        message = message.replacen(&position, "", 1);
    }
    let full_path = err.path().to_string();
    let message = strip_yaml_path(&message, &full_path);
    let at = cause(message, text)
        .or(location.map(|l| (l.line(), l.column())))
        .map(|(line, column)| format!(":{line}:{column}"))
        .unwrap_or_default();
    // Syntax errors end the path in `?` (no field known yet): show only the known part.
    let path = full_path.trim_end_matches(['?', '.']);
    if path.is_empty() {
        format!("{origin}{at}: {message}")
    } else {
        format!("{origin}{at}: field `{path}`: {message}")
    }
}

/// Where the cause of an error is, when the parser reports another place: a key given twice
/// is reported at the start of its mapping (the cause is its second occurrence), and a
/// quote or bracket left open at the end of the file (the cause is where it opened, which
/// the message names as "at line N column M").
fn cause(message: &str, text: &str) -> Option<(usize, usize)> {
    if let Some(key) = message
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.split('`').next())
    {
        let mut occurrences = text.lines().enumerate().filter_map(|(i, line)| {
            let trimmed = line.trim_start();
            let rest = trimmed.strip_prefix(key)?;
            rest.trim_start()
                .starts_with(':')
                .then(|| (i + 1, line.len() - trimmed.len() + 1))
        });
        return occurrences.nth(1);
    }
    if message.contains("unexpected end of stream") {
        let (_, mark) = message.rsplit_once(" at line ")?;
        let (line, column) = mark.split_once(" column ")?;
        let column: String = column.chars().take_while(char::is_ascii_digit).collect();
        return Some((line.trim().parse().ok()?, column.parse().ok()?));
    }
    None
}

/// The YAML library prefixes messages with its own field path (`budget: invalid type ...`),
/// spelled as `path` is; it is shown separately, so it is dropped here.
fn strip_yaml_path<'a>(message: &'a str, path: &str) -> &'a str {
    message
        .strip_prefix(path)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!(
            "{:#}",
            parse_definition(text, "agents/foo.yaml").unwrap_err()
        )
    }

    #[test]
    fn a_minimal_definition_parses_without_warnings() {
        let p = parse_definition("name: foo\n", "x.yaml").unwrap();
        assert_eq!(p.definition.name, "foo");
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn a_wrong_type_names_file_line_column_and_field() {
        let text = "name: foo\ninstructions: hi\nbudget: lots\n";
        assert_eq!(
            error(text),
            "agents/foo.yaml:3:9: field `budget`: invalid type: string \"lots\", expected a nonzero u64"
        );
    }

    #[test]
    fn a_nested_wrong_type_names_the_nested_field() {
        let text = "name: foo\ntools:\n  fs:\n    read: maybe\n";
        let e = error(text);
        assert!(
            e.starts_with("agents/foo.yaml:4:11: field `tools.fs.read`: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_deadline_shows_the_accepted_forms() {
        let e = error("name: foo\ndeadline: soon\n");
        assert!(
            e.starts_with("agents/foo.yaml:2:11: field `deadline`: "),
            "{e}"
        );
        assert!(e.contains("`90s`, `10m`, `1h`"), "{e}");
    }

    #[test]
    fn zero_budget_is_an_error() {
        let e = error("name: foo\nbudget: 0\n");
        assert!(e.starts_with("agents/foo.yaml:2:9: field `budget`:"), "{e}");
    }

    #[test]
    fn a_yaml_syntax_error_names_the_line() {
        let e = error("name: foo\nbudget: 5\n- x\n");
        assert_eq!(
            e,
            "agents/foo.yaml:3:1: did not find expected key, while parsing a block mapping"
        );
    }

    #[test]
    fn a_numeric_name_is_read_as_text() {
        let p = parse_definition("name: 007\n", "x.yaml").unwrap();
        assert_eq!(p.definition.name, "007");
    }

    #[test]
    fn a_missing_name_is_an_error_naming_the_file() {
        let e = error("goal: x\n");
        assert!(e.starts_with("agents/foo.yaml"), "{e}");
        assert!(e.contains("missing field `name`"), "{e}");
    }

    #[test]
    fn an_invalid_name_is_an_error_with_its_line() {
        let e = error("goal: x\nname: Code Reviewer\n");
        assert!(
            e.starts_with("agents/foo.yaml:2:7: field `name`: invalid agent name `Code Reviewer`"),
            "{e}"
        );
    }

    #[test]
    fn a_key_given_twice_is_reported_where_it_is_repeated() {
        let e = error("name: foo\ngoal: g\nbudget: 5\nbudget: 6\n");
        assert!(
            e.starts_with("agents/foo.yaml:4:1: duplicate field `budget`"),
            "{e}"
        );
    }

    #[test]
    fn an_unclosed_quote_is_reported_where_it_opens() {
        let e = error("name: foo\ngoal: \"unclosed\nbudget: 5\nmax_turns: 3\n");
        assert!(e.starts_with("agents/foo.yaml:2:7:"), "{e}");
    }

    #[test]
    fn an_empty_file_is_an_error() {
        assert!(error("  \n").contains("empty"));
    }

    #[test]
    fn an_unknown_field_is_a_warning_with_its_path_and_the_field_it_resembles() {
        let text = "name: foo\nbudgett: 5\ntools:\n  fs:\n    raed: true\ncolour: blue\n";
        let p = parse_definition(text, "agents/foo.yaml").unwrap();
        assert_eq!(
            p.warnings,
            vec![
                "agents/foo.yaml: unknown field `budgett` (ignored); did you mean `budget`?",
                "agents/foo.yaml: unknown field `tools.fs.raed` (ignored); did you mean `read`?",
                "agents/foo.yaml: unknown field `colour` (ignored)",
            ]
        );
    }

    #[test]
    fn a_bad_url_pattern_is_an_error_with_its_line_and_field() {
        let e = error("name: foo\ntools:\n  net:\n    allow: [docs.rs]\n");
        assert_eq!(
            e,
            "agents/foo.yaml:4:13: field `tools.net.allow[0]`: invalid URL pattern `docs.rs`: \
             no scheme (expected e.g. `https://docs.rs/*`)"
        );
    }

    #[test]
    fn a_parent_dir_write_glob_is_an_error_with_its_line_and_field() {
        let e = error("name: foo\ntools:\n  fs:\n    write:\n      - out/\n      - ../x\n");
        assert_eq!(
            e,
            "agents/foo.yaml:6:9: field `tools.fs.write[1]`: \
             `../x` contains `..`; use a path inside the workspace"
        );
    }

    #[test]
    fn bad_restart_settings_name_the_field_and_the_accepted_values() {
        let cases = [
            "restart: { type: sometimes }",
            "restart: { max: -1 }",
            "restart: { max: many }",
            "restart: { within: soon }",
            "restart: { within: 0s }",
        ];
        let errors: Vec<String> = cases
            .iter()
            .map(|c| format!("{c}\n  -> {}", error(&format!("name: foo\n{c}\n"))))
            .collect();
        insta::assert_snapshot!(errors.join("\n"));
    }

    #[test]
    fn restart_settings_parse_and_are_written_back_as_given() {
        let text =
            "name: foo\nrestart:\n  from: goal\n  type: temporary\n  max: 1\n  within: 10m\n";
        let p = parse_definition(text, "agents/foo.yaml").unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let yaml = serde_yaml::to_string(&p.definition).unwrap();
        assert!(
            yaml.contains("restart:\n  from: goal\n  type: temporary\n  max: 1\n  within: 10m\n"),
            "{yaml}"
        );
    }
}
