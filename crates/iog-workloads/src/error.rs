//! The error of a bad job spec, and its translation from serde's messages.
//!
//! serde reports problems as free text ("missing field `width`") and
//! serde_path_to_error says where they happened (`render`). Users read job
//! files, not Rust types, so this module rewrites both into one line that
//! names the TOML path and, where it can, the fix.

use std::fmt;

/// What kind of mistake a [`SpecError`] reports. The [`code`](SpecErrorKind::code)
/// is stable and may be sent over the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecErrorKind {
    /// The text is not valid TOML or JSON.
    Syntax,
    /// A required field is absent.
    MissingField,
    /// A field that the table does not have.
    UnknownField,
    /// A value of the wrong type (a string where an integer belongs).
    InvalidType,
    /// A value of the right type that is not allowed (out of range, unknown name).
    InvalidValue,
    /// The section for the chosen workload is absent, or another workload's is present.
    Section,
    /// The render scene file could not be read.
    SceneFile,
}

impl SpecErrorKind {
    /// A stable machine-readable code such as `spec.missing_field`.
    pub fn code(self) -> &'static str {
        match self {
            SpecErrorKind::Syntax => "spec.syntax",
            SpecErrorKind::MissingField => "spec.missing_field",
            SpecErrorKind::UnknownField => "spec.unknown_field",
            SpecErrorKind::InvalidType => "spec.invalid_type",
            SpecErrorKind::InvalidValue => "spec.invalid_value",
            SpecErrorKind::Section => "spec.section",
            SpecErrorKind::SceneFile => "spec.scene_file",
        }
    }
}

/// A job spec that cannot be used. Its `Display` is one line that names the
/// field by its full TOML path and says what would be accepted, for example
/// `render.tile_size must be between 8 and 1024, got 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    kind: SpecErrorKind,
    field: Option<String>,
    message: String,
}

impl SpecError {
    /// The kind of mistake.
    pub fn kind(&self) -> SpecErrorKind {
        self.kind
    }

    /// The full path of the offending field (`render.scene.objects[3].radius`),
    /// where known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The one-line message, the same text as `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An error about `field` that reads "`field` `requirement`", for example
    /// `invalid("render.width", "must be between 1 and 8192, got 0")`.
    pub(crate) fn invalid(field: impl Into<String>, requirement: impl fmt::Display) -> Self {
        let field = field.into();
        SpecError { kind: SpecErrorKind::InvalidValue, message: format!("{field} {requirement}"), field: Some(field) }
    }

    /// An error about a whole section (`render`) with a message written in full.
    pub(crate) fn section(section: &str, message: String) -> Self {
        SpecError { kind: SpecErrorKind::Section, field: Some(section.to_owned()), message }
    }

    /// The render scene file at `path` could not be read.
    pub(crate) fn scene_file(path: &str, reason: &str) -> Self {
        SpecError {
            kind: SpecErrorKind::SceneFile,
            field: Some("render.scene".to_owned()),
            message: format!(
                "render.scene file {path:?} cannot be read: {reason}; \
                 the path is relative to the job file's folder"
            ),
        }
    }

    /// A problem inside the scene file at `path`; the message keeps the
    /// file's own field paths (`objects[3].radius`) so the user can find them.
    pub(crate) fn in_scene_file(path: &str, inner: SpecError) -> Self {
        SpecError {
            kind: inner.kind,
            field: inner.field.map(|field| format!("render.scene.{field}")),
            message: format!("in scene file {path:?}: {}", inner.message),
        }
    }

    /// A syntax error at a known place in the text.
    pub(crate) fn syntax(format: &str, location: Option<(usize, usize)>, detail: &str) -> Self {
        let message = match location {
            Some((line, column)) => {
                format!("invalid {format} at line {line}, column {column}: {detail}")
            }
            None => format!("invalid {format}: {detail}"),
        };
        SpecError { kind: SpecErrorKind::Syntax, field: None, message }
    }

    /// Rewrites one of serde's messages raised at `path` (a dotted path, empty
    /// for the top level).
    pub(crate) fn from_serde(path: &str, serde_message: &str) -> Self {
        translate(path, serde_message)
    }
}

/// Joins a table path and a field name into a field path.
pub(crate) fn join(table: &str, field: &str) -> String {
    if table.is_empty() { field.to_owned() } else { format!("{table}.{field}") }
}

/// Converts a serde_path_to_error path into our dotted form; the root is "".
pub(crate) fn path_string(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." { String::new() } else { text }
}

/// Where a field lives: "in [render]", or "at the top level".
fn table_label(table: &str) -> String {
    if table.is_empty() { "at the top level".to_owned() } else { format!("in [{table}]") }
}

fn field_label(path: &str) -> &str {
    if path.is_empty() { "the top level" } else { path }
}

fn translate(path: &str, message: &str) -> SpecError {
    let field_error = |kind, message| SpecError { kind, field: (!path.is_empty()).then(|| path.to_owned()), message };
    if let Some((name, _)) = message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
        return SpecError {
            kind: SpecErrorKind::MissingField,
            field: Some(join(path, name)),
            message: format!("missing field `{name}` {}", table_label(path)),
        };
    }
    if let Some((name, rest)) = message.strip_prefix("unknown field `").and_then(|rest| rest.split_once('`')) {
        // serde_path_to_error may or may not have pushed the unknown key
        // onto the path already, depending on the format.
        let table = match path.strip_suffix(name) {
            Some(parent) if parent.is_empty() || parent.ends_with('.') => parent.trim_end_matches('.'),
            _ => path,
        };
        let expected = match rest.strip_prefix(", expected ") {
            Some(expected) => format!(", expected {expected}"),
            None => ", this table takes no fields".to_owned(),
        };
        return SpecError {
            kind: SpecErrorKind::UnknownField,
            field: Some(join(table, name)),
            message: format!("unknown field `{name}` {}{expected}", table_label(table)),
        };
    }
    if let Some((found, expected)) =
        message.strip_prefix("invalid type: ").and_then(|rest| rest.rsplit_once(", expected "))
    {
        return field_error(
            SpecErrorKind::InvalidType,
            format!(
                "invalid type for {}: expected {}, found {}",
                field_label(path),
                describe_expected(expected),
                describe_found(found)
            ),
        );
    }
    if let Some((found, expected)) =
        message.strip_prefix("invalid value: ").and_then(|rest| rest.rsplit_once(", expected "))
    {
        return field_error(
            SpecErrorKind::InvalidValue,
            format!(
                "invalid value for {}: expected {}, found {}",
                field_label(path),
                describe_range(expected),
                found.replace('`', "")
            ),
        );
    }
    if let Some((found, expected)) =
        message.strip_prefix("invalid length ").and_then(|rest| rest.split_once(", expected "))
    {
        return field_error(
            SpecErrorKind::InvalidType,
            format!("invalid length for {}: expected {expected}, found {found} elements", field_label(path)),
        );
    }
    if let Some((name, rest)) = message.strip_prefix("unknown variant `").and_then(|rest| rest.split_once('`')) {
        let allowed = rest.strip_prefix(", expected ").unwrap_or("nothing").replace('`', "");
        return field_error(
            SpecErrorKind::InvalidValue,
            format!("{} must be {allowed}; got {name:?}", field_label(path)),
        );
    }
    field_error(SpecErrorKind::InvalidValue, format!("{}: {message}", field_label(path)))
}

/// Turns serde's "expected" text, written for Rust types, into TOML words.
fn describe_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "a table".to_owned(),
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}

/// Like [`describe_expected`], but spells out integer ranges: an invalid value
/// is usually a number that does not fit.
fn describe_range(expected: &str) -> String {
    match expected {
        "u32" => format!("an integer between 0 and {}", u32::MAX),
        "u64" => format!("an integer between 0 and {}", u64::MAX),
        other => describe_expected(other),
    }
}

/// Turns serde's "unexpected" text (`string "abc"`) into TOML words.
fn describe_found(found: &str) -> String {
    let prefixes = [
        ("string", "a string"),
        ("integer", "an integer"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("map", "a table"),
        ("sequence", "an array"),
        ("unit value", "null"),
        ("character", "a string"),
    ];
    for (prefix, word) in prefixes {
        if found.starts_with(prefix) {
            return word.to_owned();
        }
    }
    found.to_owned()
}
