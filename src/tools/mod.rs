//! Tools agents can call.
