//! Kubernetes webhook wire formats and their decoding.

pub mod admission;
pub mod limits;
pub mod sar;

/// A request body that could not be decoded, with the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {message} (at `{path}`)")]
pub struct DecodeError {
    /// What was being decoded, e.g. `SubjectAccessReview`.
    pub kind: &'static str,
    /// JSON path of the field that failed, `.` for the document itself.
    pub path: String,
    /// The decoder's explanation.
    pub message: String,
}

/// Decode `bytes` as `T`, reporting the path of the first bad field.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends " at line L column C"; keep it, it helps with hand-written files.
        DecodeError { kind, path, message: inner.to_string() }
    })
}
