//! "Did you mean …?" for unknown fields of a definition.
//!
//! The known names at each level come from the schema types themselves: serde hands every
//! struct's field list to `deserialize_struct`, and [`fields_of`] asks a type for it with a
//! deserializer that only listens. So the suggestions never drift from the schema.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::schema::{
    AgentDefinition, ContextPolicy, DelegateTools, FsTools, NetTools, PermissionsPolicy,
    PoliciesSection, SecretsPolicy, ShellTools, ToolsSection,
};

/// The field names of the struct `T`, as its `Deserialize` impl declares them.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Listener(&mut fields));
    fields
}

/// The known fields of the mapping at `parent` (`""`, `tools`, `tools.fs`, ...), or `None`
/// for a level that is not a struct of the schema.
pub fn known_fields(parent: &str) -> Option<&'static [&'static str]> {
    Some(match parent {
        "" => fields_of::<AgentDefinition>(),
        "tools" => fields_of::<ToolsSection>(),
        "tools.fs" => fields_of::<FsTools>(),
        "tools.net" => fields_of::<NetTools>(),
        "tools.shell" => fields_of::<ShellTools>(),
        "tools.delegate" => fields_of::<DelegateTools>(),
        "policies" => fields_of::<PoliciesSection>(),
        "policies.context" => fields_of::<ContextPolicy>(),
        "policies.secrets" => fields_of::<SecretsPolicy>(),
        "policies.permissions" => fields_of::<PermissionsPolicy>(),
        _ => return None,
    })
}

/// The known field closest to the unknown field at `path` (`budgett`, `tools.fs.raed`), if
/// one is close enough to be a likely typo.
pub fn did_you_mean(path: &str) -> Option<&'static str> {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let known = known_fields(parent)?;
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// A deserializer that records the field list of the struct it is asked for, and fails.
struct Listener<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Listener<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs are introspected"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_lists_its_own_fields() {
        assert!(fields_of::<AgentDefinition>().contains(&"budget"));
        assert!(fields_of::<FsTools>().contains(&"write"));
    }

    #[test]
    fn typos_get_the_field_they_meant() {
        assert_eq!(did_you_mean("budgett"), Some("budget"));
        assert_eq!(did_you_mean("instuctions"), Some("instructions"));
        assert_eq!(did_you_mean("tools.fs.raed"), Some("read"));
        assert_eq!(did_you_mean("policies.secrets.redcat"), Some("redact"));
    }

    #[test]
    fn unrelated_names_get_no_suggestion() {
        assert_eq!(did_you_mean("colour"), None);
        assert_eq!(did_you_mean("x.y.z"), None);
    }
}
