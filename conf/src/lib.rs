//! The configuration of `ripvsd`: TOML schema, validation, and error
//! reporting.
//!
//! # Design
//!
//! Loading is a pure function from text to either a complete, validated
//! [`Config`] or exactly one [`ConfigError`]. It happens in two stages:
//!
//! 1. **Parse.** serde deserializes the text into private "raw" structs
//!    (`raw.rs`) that mirror the file: every table denies unknown keys, and
//!    every value is kept as [`toml::Spanned`] so its byte position
//!    survives. Integers are read as `i64` so that range checks, not serde,
//!    report them. toml's own errors (syntax, unknown key, missing key,
//!    wrong type) come with a byte span; the key path for them is recovered
//!    by matching that span against a span-only tree of the document.
//! 2. **Validate, then build.** `validate.rs` walks the raw structs in
//!    document order, checks every value and every cross-reference (ports
//!    named by routes, next hops inside connected networks, duplicates...)
//!    and builds the clean public types, which carry no positions. The
//!    first failure stops the walk.
//!
//! Keeping the spans until validation is what lets *every* error, semantic
//! ones included, name file, line, column and key on one line:
//!
//! ```text
//! ripvs.toml:12:15: key `ports[0].addresses[1]`: invalid IPv4 prefix "10.0.0.300/24" (expected ADDRESS/LEN)
//! ```
//!
//! Validating completely before anything is returned means a caller (the
//! daemon at start-up or on reload) never sees a half-applied
//! configuration: it gets all of it or an error to show the operator.
//!
//! Lines and columns are 1-based and point at the offending value; at the
//! key itself for unknown keys; at the table (its `[header]` or `{`) for a
//! missing required key. Columns count characters.

#![forbid(unsafe_code)]

mod error;
mod health;
mod model;
mod net;
mod raw;
mod validate;
mod vrrp;

use std::path::Path;

pub use error::ConfigError;
pub use health::CHECKERS;
pub use model::*;
pub use validate::SCHEDULERS;

/// The configuration `ripvsd` uses when given none: one virtual (tap) port,
/// no hugepages, no PCI, so it runs on any machine.
pub const DEFAULT_CONFIG: &str = include_str!("../ripvs.toml");

/// Reads and validates the configuration file at `path`. A read failure is
/// reported as a [`ConfigError`] at line 1, column 1, with an empty key and
/// a message starting with `cannot read: `; bytes that are not UTF-8 at
/// the line and column of the first such byte.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 1,
        column: 1,
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    let text =
        String::from_utf8(bytes).map_err(|e| not_utf8(&file, e.as_bytes(), &e.utf8_error()))?;
    parse(&text, &file)
}

/// TOML is UTF-8: an error at the first byte that is not, with the key
/// being written there, since that is where an editor has to go.
fn not_utf8(file: &str, bytes: &[u8], e: &std::str::Utf8Error) -> ConfigError {
    let at = e.valid_up_to();
    let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
    let src = error::Source { text: valid, file };
    let bad = bytes.get(at).copied().unwrap_or_default();
    src.error(
        at,
        error::guess_key(valid, at),
        format!("invalid UTF-8 (byte 0x{bad:02x}): a config file must be UTF-8"),
    )
}

/// Validates configuration `text`; `file_name` is only used in errors.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigError> {
    let src = error::Source {
        text,
        file: file_name,
    };
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    validate::build(&src, &raw)
}
