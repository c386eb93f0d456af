//! `inikit`: read small INI configuration files.

pub mod parser;

pub use parser::{get, parse, port, Ini};

/// Server settings read from an INI file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Host name; "localhost" when not set.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Reads the `[server]` section of `text`.
pub fn server_config(text: &str) -> ServerConfig {
    let ini = parse(text);
    ServerConfig {
        host: get(&ini, "server", "host").unwrap_or("localhost").to_string(),
        port: port(&ini),
    }
}
