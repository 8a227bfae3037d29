//! Why one exchange of berth's HTTP client failed: a typed error per step (request, connect,
//! TLS, send, read, timeout), each naming the server and keeping its cause. Pure.

use std::time::Duration;

/// A failed request. Names the server (`host:port`), never the path (it may hold a token).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built (a method, path or header value HTTP does not allow).
    #[error("failed to build the request to {authority}")]
    Request {
        /// `host:port`.
        authority: String,
        /// What was wrong.
        #[source]
        source: hyper::http::Error,
    },
    /// The TCP connection could not be made.
    #[error("failed to connect to {authority}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An `https://` URL, but the client was made without a TLS configuration.
    #[error("failed to reach {authority} over TLS: this client has no TLS set up")]
    NoTls {
        /// `host:port`.
        authority: String,
    },
    /// The host cannot be a TLS server name.
    #[error("failed to use {host} as a TLS server name")]
    ServerName {
        /// The host.
        host: String,
        /// rustls' reason.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// The TLS handshake failed (an untrusted certificate, a plain-HTTP server …).
    #[error("failed the TLS handshake with {authority}")]
    Tls {
        /// `host:port`.
        authority: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Sending the request or reading the answer's head failed (the peer closed, or answered
    /// something that is not HTTP).
    #[error("failed to send the request to {authority}")]
    Send {
        /// `host:port`.
        authority: String,
        /// hyper's reason.
        #[source]
        source: hyper::Error,
    },
    /// Reading the answer's body failed.
    #[error("failed to read the answer of {authority}")]
    Read {
        /// `host:port`.
        authority: String,
        /// hyper's reason.
        #[source]
        source: hyper::Error,
    },
    /// The whole exchange took longer than the client's limit.
    #[error("failed to get an answer from {authority} within {}s", after.as_secs_f32())]
    Timeout {
        /// `host:port`.
        authority: String,
        /// The limit.
        after: Duration,
    },
}
