//! Why a wire value could not be turned into the store's types.

/// Why a wire value could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// `data` of a binary event is not a JSON string.
    #[error("binary data must be a base64 string")]
    BinaryNotString,
    /// `data` of a binary event is a string but not standard base64.
    #[error("data is not valid base64: {0}")]
    Base64(String),
    /// A JSON event's data is not JSON (or not UTF-8).
    #[error("data is not valid JSON: {0}")]
    Json(String),
    /// A metadata value that is not a string.
    #[error("metadata `{key}` must be a string")]
    MetadataNotString {
        /// The metadata key.
        key: String,
    },
    /// The stream name is not valid.
    #[error("{0}")]
    Stream(String),
    /// A stream guard is not `any`, `no_stream`, `exists` or a version.
    #[error(
        "the guard of stream `{stream}` is `{value}`, not any, no_stream, exists or a version"
    )]
    Guard {
        /// The stream it guards.
        stream: String,
        /// What was sent.
        value: String,
    },
    /// `recorded_at` is not RFC 3339.
    #[error("recorded_at `{value}` is not an RFC 3339 time: {reason}")]
    Time {
        /// The value sent.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
}
