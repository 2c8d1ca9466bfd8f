//! Typed errors of the policy engine.

use std::path::PathBuf;

/// A policy source that could not be loaded. Always names the file and, where the parser
/// knows it, the line and column.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("{location}: {message}")]
    Parse { location: String, message: String },
    #[error("{location}: policy {policy} fails schema validation (enforced by {enforced_by}): {message}")]
    Validation { location: String, policy: String, enforced_by: EnforcedBy, message: String },
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: duplicate policy id {id:?}; rename the Policy object or file")]
    DuplicateId { location: String, id: String },
}

/// What made a schema-validation failure an error rather than a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnforcedBy {
    /// The `Policy` object's `spec.validation.enforced: true`.
    PolicyObject,
    /// The server's or command's validation setting (`--validation enforce`).
    Setting,
}

impl std::fmt::Display for EnforcedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnforcedBy::PolicyObject => "its Policy object's spec.validation.enforced",
            EnforcedBy::Setting => "--validation enforce",
        })
    }
}

/// A request that cannot be turned into Cedar entities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityError {
    #[error("invalid Cedar entity type name {0:?}")]
    TypeName(String),
    #[error("error converting unstructured object to Cedar entity: {0}")]
    Object(String),
    #[error("AdmissionReview request has no object for operation {0}")]
    MissingObject(&'static str),
    #[error("cannot build Cedar request: {0}")]
    Request(String),
}
