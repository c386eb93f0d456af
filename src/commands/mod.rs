//! The commands' behaviour, as functions returning the text to print.

pub mod agents;
