//! A small INI parser: `[section]` headers, `key = value` pairs, `#` comments.

use std::collections::HashMap;

/// Parsed INI data: section name -> (key -> value). Keys before any header go in "".
pub type Ini = HashMap<String, HashMap<String, String>>;

/// Parses INI text.
pub fn parse(text: &str) -> Ini {
    let mut ini = Ini::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line[1..line.len() - 1].trim().to_string();
            continue;
        }
        let eq = line.find('=').unwrap();
        let key = line[..eq].trim().to_string();
        let value = line[eq + 1..].trim().to_string();
        ini.entry(section.clone()).or_default().insert(key, value);
    }
    ini
}

/// The value of `key` in `section`, if present.
pub fn get<'a>(ini: &'a Ini, section: &str, key: &str) -> Option<&'a str> {
    ini.get(section)?.get(key).map(String::as_str)
}

/// The port of the `[server]` section.
pub fn port(ini: &Ini) -> u16 {
    get(ini, "server", "port").unwrap().parse().unwrap()
}
