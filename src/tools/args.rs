//! Checking tool arguments against what the schema promised, with errors a model can fix.
//!
//! Models send JSON that is almost right: a missing field, a number as a string, an extra
//! key. Each error names the tool and the argument and says what was expected. `null` for an
//! optional argument counts as absent, because many models send it that way.

use codex_actors::tool::ToolError;
use serde_json::{Map, Value};

/// The arguments of one call, checked to be an object with only known keys.
#[derive(Debug)]
pub struct Args<'a> {
    tool: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Checks that `value` is an object whose keys are all in `known`.
    pub fn parse(tool: &'static str, value: &'a Value, known: &[&str]) -> Result<Self, ToolError> {
        let Some(map) = value.as_object() else {
            return Err(ToolError::new(format!(
                "{tool}: arguments must be a JSON object, got {}",
                kind(value)
            )));
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ToolError::new(format!(
                "{tool}: unknown argument `{unknown}`; accepted: {}",
                known.join(", ")
            )));
        }
        Ok(Self { tool, map })
    }

    /// A required string argument.
    pub fn string(&self, name: &str) -> Result<&'a str, ToolError> {
        self.opt_string(name)?.ok_or_else(|| {
            ToolError::new(format!(
                "{}: missing required argument `{name}` (a string)",
                self.tool
            ))
        })
    }

    /// An optional string argument.
    pub fn opt_string(&self, name: &str) -> Result<Option<&'a str>, ToolError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    /// An optional integer argument that must be at least 1.
    pub fn opt_positive(&self, name: &str) -> Result<Option<usize>, ToolError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64().filter(|n| *n >= 1) {
                Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
                None => Err(self.wrong_type(name, "an integer ≥ 1", v)),
            },
        }
    }

    /// A required, non-empty array of strings.
    pub fn string_array(&self, name: &str) -> Result<Vec<&'a str>, ToolError> {
        let expected = "a non-empty array of strings";
        let Some(value) = self.map.get(name).filter(|v| !v.is_null()) else {
            return Err(ToolError::new(format!(
                "{}: missing required argument `{name}` ({expected})",
                self.tool
            )));
        };
        let items = value.as_array().filter(|a| !a.is_empty());
        let strings: Option<Vec<&str>> = items.and_then(|a| a.iter().map(Value::as_str).collect());
        strings.ok_or_else(|| self.wrong_type(name, expected, value))
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> ToolError {
        ToolError::new(format!(
            "{}: argument `{name}` must be {expected}, got {got}",
            self.tool
        ))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_argument_is_named() {
        let v = json!({"path": "a", "colour": 1});
        let err = Args::parse("t", &v, &["path"]).unwrap_err();
        assert!(err.0.contains("unknown argument `colour`"), "{err}");
    }

    #[test]
    fn missing_required_argument_is_named() {
        let v = json!({});
        let err = Args::parse("t", &v, &["path"])
            .unwrap()
            .string("path")
            .unwrap_err();
        assert!(err.0.contains("missing required argument `path`"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let v = json!({"path": 3, "offset": "2"});
        let args = Args::parse("t", &v, &["path", "offset"]).unwrap();
        assert!(args
            .string("path")
            .unwrap_err()
            .0
            .contains("`path` must be a string"));
        assert!(args
            .opt_positive("offset")
            .unwrap_err()
            .0
            .contains("`offset`"));
    }

    #[test]
    fn non_object_arguments_are_refused() {
        assert!(Args::parse("t", &json!([1]), &[])
            .unwrap_err()
            .0
            .contains("an array"));
    }

    #[test]
    fn null_optional_counts_as_absent() {
        let v = json!({"offset": null});
        let args = Args::parse("t", &v, &["offset"]).unwrap();
        assert_eq!(args.opt_positive("offset").unwrap(), None);
    }

    #[test]
    fn string_arrays_are_checked() {
        let v = json!({"ok": ["a", "b"], "mixed": ["a", 1], "empty": []});
        let args = Args::parse("t", &v, &["ok", "mixed", "empty", "none"]).unwrap();
        assert_eq!(args.string_array("ok").unwrap(), ["a", "b"]);
        assert!(args.string_array("mixed").is_err());
        assert!(args.string_array("empty").is_err());
        assert!(args.string_array("none").unwrap_err().0.contains("missing"));
    }

    #[test]
    fn zero_is_not_positive() {
        let v = json!({"limit": 0});
        let args = Args::parse("t", &v, &["limit"]).unwrap();
        assert!(args.opt_positive("limit").is_err());
    }
}
