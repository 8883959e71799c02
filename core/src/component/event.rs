//! What the component tells its runtime, and why a connection ends or the component stops.

use std::time::Instant;

use super::dispatch::Dispatch;
use super::stream::StreamError;
use crate::config::ConfigError;
use crate::conn::RequestId;
use crate::privilege::Permissions;
use crate::router::RouterError;

/// Why a connection ended (a reconnect follows).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnect {
    /// The TCP connection could not be opened.
    #[error("cannot connect: {0}")]
    ConnectFailed(String),
    /// The connection broke or the peer closed the socket.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The server sent a stream error.
    #[error("stream error from the server: {0}")]
    StreamError(StreamError),
    /// The server closed its stream.
    #[error("the server closed the stream")]
    ServerClosed,
    /// The server sent something we could not accept; we answered with this stream error.
    #[error("bad input from the server ({condition}): {reason}")]
    BadInput {
        /// The stream error condition we sent.
        condition: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The stream header or handshake answer did not come in time.
    #[error("the server did not complete the opening in time")]
    HandshakeTimeout,
    /// The server did not answer a keepalive ping in time.
    #[error("the server did not answer the keepalive ping in time")]
    KeepaliveTimeout,
}

/// Why the component stopped for good.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// The server rejected the component (wrong secret, unknown domain, ...): reconnecting
    /// would not help.
    #[error("the server rejected the component: {0}")]
    Rejected(StreamError),
    /// The router is invalid.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What the component tells its runtime.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Open a TCP connection to `address` now.
    Connect {
        /// `host:port`.
        address: String,
    },
    /// The handshake succeeded: the component is online.
    Online {
        /// The server's stream id.
        stream_id: String,
    },
    /// Run a controller.
    Dispatch(Dispatch),
    /// A request timed out: abandon its controller if possible.
    Cancel(RequestId),
    /// The connection ended; close the socket. A [`Event::Connect`] follows at `reconnect_at`.
    Disconnected {
        /// Why.
        reason: Disconnect,
        /// When the next attempt starts.
        reconnect_at: Instant,
    },
    /// The component stopped for good; close the socket and stop.
    Failed(ComponentError),
    /// `close()` completed; close the socket and stop.
    Closed,
    /// The server announced namespaces delegated to the component (XEP-0355).
    Delegated {
        /// The namespaces.
        namespaces: Vec<String>,
    },
    /// A server said what it grants the component (XEP-0356); it holds until the connection
    /// ends (see [`privilege`](crate::privilege)).
    Privileged {
        /// What it granted.
        permissions: Permissions,
    },
}
