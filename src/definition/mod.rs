//! Agent definitions (YAML): schema, loading, validation.
