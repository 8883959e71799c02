//! The real servers `scripts/test.sh` starts (Prosody and ejabberd on 127.0.0.1), as the
//! real-server tests find them, and users logged in to them.

use std::sync::{Mutex, MutexGuard};
#[cfg(feature = "client")]
use std::time::Duration;

#[cfg(feature = "client")]
use exampple::c2s::blocking::Client;
#[cfg(feature = "client")]
use exampple::client::ClientConfig;

#[cfg(feature = "client")]
const T: Duration = Duration::from_secs(10);

/// A real server that `scripts/test.sh` started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Server {
    Prosody,
    Ejabberd,
}

static PROSODY: Mutex<()> = Mutex::new(());
static EJABBERD: Mutex<()> = Mutex::new(());

impl Server {
    /// The variable `EXAMPPLE_TEST_<SERVER>_<what>`, or `default`.
    pub fn env(self, what: &str, default: &str) -> String {
        let name = match self {
            Server::Prosody => format!("EXAMPPLE_TEST_PROSODY_{what}"),
            Server::Ejabberd => format!("EXAMPPLE_TEST_EJABBERD_{what}"),
        };
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    }

    /// The client-to-server address.
    pub fn c2s(self) -> String {
        self.env(
            "C2S",
            if self == Server::Prosody {
                "127.0.0.1:5222"
            } else {
                "127.0.0.1:5223"
            },
        )
    }

    /// The component listener's port.
    pub fn component_port(self) -> u16 {
        let address = self.env(
            "COMPONENT",
            if self == Server::Prosody {
                "127.0.0.1:5252"
            } else {
                "127.0.0.1:5253"
            },
        );
        address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(5252)
    }

    /// One component per domain: the tests of one server take turns with this.
    pub fn lock(self) -> MutexGuard<'static, ()> {
        let lock = if self == Server::Prosody {
            &PROSODY
        } else {
            &EJABBERD
        };
        lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `prosody` or `ejabberd`.
    pub fn name(self) -> &'static str {
        if self == Server::Prosody {
            "prosody"
        } else {
            "ejabberd"
        }
    }
}

/// `name`@localhost logged in to `server` with the resource `tag`-pid (password
/// `name`-pass).
#[cfg(feature = "client")]
pub fn user(server: Server, name: &str, tag: &str) -> Client {
    let config = ClientConfig::new(
        &format!("{name}@localhost/{tag}-{}", std::process::id()),
        format!("{name}-pass"),
    )
    .unwrap()
    .address(&server.c2s())
    .allow_plain_without_tls(true)
    .login_timeout(T);
    Client::connect(config).unwrap_or_else(|e| panic!("{name} cannot log in to {server:?}: {e}"))
}
