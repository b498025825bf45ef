//! The one error type of the crate.
//!
//! Every message is one line that names what is wrong (a spec field by its
//! path, a CSV line by its number, the weight count the spec needs) and,
//! where there is one, the fix.

use std::fmt;

/// What kind of mistake an [`MlError`] reports. The [`code`](MlErrorKind::code)
/// is stable and may be sent over the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlErrorKind {
    /// A [`ModelSpec`](crate::ModelSpec) field out of range or inconsistent.
    Spec,
    /// A flat weight vector of the wrong length, or with a value that is not finite.
    Weights,
    /// Data that cannot be used: a bad CSV or `.npy` file, a non-finite value,
    /// a token outside the vocabulary.
    Data,
    /// Data that is fine by itself but does not fit the model (wrong number of
    /// inputs, a class the model has no output for), or a range outside it.
    Mismatch,
    /// An [`InnerConfig`](crate::InnerConfig) field out of range.
    Train,
    /// The loss stopped being a finite number during training.
    Diverged,
    /// This build has no ML runtime (the crate was built without its `burn`
    /// feature), so it cannot train, evaluate or run a model. Reported only
    /// once the arguments have passed every check that needs no runtime.
    NoRuntime,
}

impl MlErrorKind {
    /// A stable machine-readable code such as `ml.spec`.
    pub fn code(self) -> &'static str {
        match self {
            MlErrorKind::Spec => "ml.spec",
            MlErrorKind::Weights => "ml.weights",
            MlErrorKind::Data => "ml.data",
            MlErrorKind::Mismatch => "ml.mismatch",
            MlErrorKind::Train => "ml.train",
            MlErrorKind::Diverged => "ml.diverged",
            MlErrorKind::NoRuntime => "ml.no_runtime",
        }
    }
}

/// Something this crate was asked to do that cannot be done. Its `Display`
/// is one line, for example `mlp.hidden[1] must be between 1 and 65536, got 0`
/// or `line 7, column 3: "abc" is not a number`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MlError {
    kind: MlErrorKind,
    field: Option<String>,
    message: String,
}

impl MlError {
    /// The kind of mistake.
    pub fn kind(&self) -> MlErrorKind {
        self.kind
    }

    /// The offending field (`char_lm.heads`, `batch_size`), where there is one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The one-line message, the same text as `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An error about `field` that reads "`field` `requirement`".
    pub(crate) fn at_field(kind: MlErrorKind, field: impl Into<String>, requirement: impl fmt::Display) -> Self {
        let field = field.into();
        MlError { kind, message: format!("{field} {requirement}"), field: Some(field) }
    }

    /// An error with a message written in full.
    pub(crate) fn new(kind: MlErrorKind, message: impl Into<String>) -> Self {
        MlError { kind, field: None, message: message.into() }
    }
}
