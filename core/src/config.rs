//! Component configuration: every option, its default, a builder and `from_env()`.
//!
//! ```
//! use std::time::Duration;
//! use exampple_core::config::{AutoConnect, Config};
//!
//! let config = Config::new("mycomponent.example.com", "guest")
//!     .host("localhost")
//!     .port(5252)
//!     .ping(Some(Duration::from_secs(30)))
//!     .set_from(true)
//!     .trimmed(true)
//!     .auto_connect(AutoConnect::Immediately);
//! assert_eq!(config.stanza_timeout, Duration::from_secs(5));
//! // The secret never shows up in logs.
//! assert!(!format!("{config:?}").contains("guest"));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Default largest stanza accepted: 256 KiB.
pub const DEFAULT_MAX_STANZA_SIZE: usize = 256 * 1024;
/// Default deepest nesting accepted inside a stanza.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default bound of the queue of stanzas sent while disconnected.
pub const DEFAULT_MAX_QUEUE: usize = 10_000;
/// Default bound of requests handled at the same time.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// How long a drain lets the requests in flight run, unless set ([`Config::drain_timeout`]).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// When the component connects after it is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoConnect {
    /// Only when asked to (`connect()`): the default, as in exampple.
    #[default]
    Never,
    /// Right away.
    Immediately,
    /// After this delay.
    After(Duration),
}

/// Direct TLS on the component link: the connection is TLS from its first byte, then the usual
/// XEP-0114 stream and handshake inside it (XEP-0114 has no STARTTLS, so the server's listener
/// must be a TLS one, e.g. ejabberd's `ejabberd_service` with `tls: true`).
///
/// The runtimes need the `tls` feature (of `exampple`, or `exampple-driver`) to connect with
/// it; without it, building the component fails with a [`ConfigError`] naming that feature.
///
/// ```
/// use exampple_core::config::{Config, DirectTls};
///
/// // Trust a private CA; verify the certificate against the component's domain.
/// let config = Config::new("component.localhost", "secret")
///     .port(5258)
///     .tls(DirectTls::ca_file("/tmp/xmpp/tls/ca.pem"));
/// // Trust the system's roots; the server's certificate names the host, not the domain.
/// let config = Config::new("component.example.com", "secret")
///     .host("xmpp.example.com")
///     .tls(DirectTls::system_roots().server_name("xmpp.example.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectTls {
    /// The name the server's certificate must be valid for (a DNS name or an IP address).
    /// `None` (the default): the component's domain, which is what the server presents
    /// itself as on a component listener; set it when the certificate names only the host.
    pub server_name: Option<String>,
    /// Which certificate authorities are trusted.
    pub trust: Trust,
}

impl DirectTls {
    /// Verifies the server against the operating system's trusted roots.
    pub fn system_roots() -> Self {
        DirectTls {
            server_name: None,
            trust: Trust::System,
        }
    }

    /// Verifies the server against the CA certificates of a PEM file (and nothing else): for
    /// a private CA. The file is read when the component is built.
    pub fn ca_file(path: impl Into<PathBuf>) -> Self {
        DirectTls {
            server_name: None,
            trust: Trust::CaFile(path.into()),
        }
    }

    /// Verifies the server against the CA certificates of this PEM text (and nothing else).
    pub fn ca_pem(pem: impl Into<String>) -> Self {
        DirectTls {
            server_name: None,
            trust: Trust::CaPem(pem.into()),
        }
    }

    /// Sets the name the server's certificate must be valid for (default: the domain).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The name verified for a component of `domain`.
    pub fn name_to_verify<'a>(&'a self, domain: &'a str) -> &'a str {
        self.server_name.as_deref().unwrap_or(domain)
    }
}

/// The certificate authorities a [`DirectTls`] link trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// The operating system's trusted roots (on Linux, the distribution's CA bundle).
    System,
    /// The CA certificates in this PEM file, only.
    CaFile(PathBuf),
    /// The CA certificates in this PEM text, only.
    CaPem(String),
}

/// The configuration of a component connection.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The component's domain (its JID and the stream's `to`).
    pub domain: String,
    /// The XMPP server's host name or address.
    pub host: String,
    /// The server's component port (XEP-0114).
    pub port: u16,
    /// The shared secret. Never logged: `Debug` shows it redacted.
    pub password: String,
    /// Keepalive interval: after this much idle output a whitespace keepalive is sent, and
    /// after this much silence from the server an XEP-0199 ping; no answer within
    /// `ping_timeout` ends the connection. `None` (the default) turns keepalives off.
    pub ping: Option<Duration>,
    /// How long to wait for any data after an XEP-0199 ping to the server.
    pub ping_timeout: Duration,
    /// Put the component domain in the `from` of every stanza sent (default false), unless
    /// it is already an address under the domain (`shout@domain`, `room@domain/nick`: see
    /// routing by address, `Router::at`), which stays.
    pub set_from: bool,
    /// Drop whitespace-only text between elements of received stanzas (default false).
    pub trimmed: bool,
    /// When to connect (default never: wait for `connect()`).
    pub auto_connect: AutoConnect,
    /// How long a controller may take before the sender gets `remote-server-timeout`
    /// (default 5 s).
    pub stanza_timeout: Duration,
    /// Give stanzas sent without an `id` a UUID v4 (default false).
    pub auto_generate_id: bool,
    /// The largest stanza accepted from the server, in bytes (default 256 KiB); a larger one
    /// closes the stream with `<policy-violation/>`.
    pub max_stanza_size: usize,
    /// The deepest element nesting accepted in a stanza (default 64).
    pub max_depth: usize,
    /// How many stanzas are kept while disconnected (default 10 000); past that `send`
    /// fails instead of dropping silently.
    pub max_queue: usize,
    /// How many requests may be handled at once (default 10 000); past that new requests are
    /// answered `resource-constraint` (iq get/set) or dropped.
    pub max_in_flight: usize,
    /// The first reconnect delay (doubled after each failed attempt, with jitter).
    pub reconnect_min: Duration,
    /// The longest reconnect delay.
    pub reconnect_max: Duration,
    /// How long the opening (stream header and handshake) may take.
    pub handshake_timeout: Duration,
    /// The seed of the component's random choices (reconnect jitter, generated ids): the
    /// same seed and the same inputs give the same output, byte for byte. `None` (the
    /// default) lets the runtimes seed from the OS; the core itself then derives a seed from
    /// the domain and the start instant (see [`Component::new`](crate::Component::new)).
    pub seed: Option<u64>,
    /// Direct TLS on the link to the server (default `None`: plain TCP, as most servers'
    /// component ports are). See [`DirectTls`].
    pub tls: Option<DirectTls>,
    /// How long a drain ([`Component::drain`](crate::Component::drain), the runtimes'
    /// `Handle::drain`) lets the requests in flight run (default 10 s): the component keeps
    /// serving meanwhile, and at the deadline every request still running is answered
    /// `service-unavailable` before the stream closes.
    pub drain_timeout: Duration,
    /// A private domain of this instance, for a component run as several instances on one
    /// shared `domain` (default none). The runtimes then open a second connection
    /// authenticated for it (same host, port and secret), and IQ calls (`Conn::call`,
    /// `Sender::call`) are sent from it: their results come back to the instance that asked,
    /// where on the shared domain the server may hand them to any instance. On ejabberd, list
    /// it on the component listener with `global_routes: false`.
    pub instance_domain: Option<String>,
}

impl Config {
    /// A configuration for `domain` with the shared secret `password`, every other option at
    /// its default (host `127.0.0.1`, port 5252).
    pub fn new(domain: impl Into<String>, password: impl Into<String>) -> Self {
        Config {
            domain: domain.into(),
            host: "127.0.0.1".to_string(),
            port: 5252,
            password: password.into(),
            ping: None,
            ping_timeout: Duration::from_secs(10),
            set_from: false,
            trimmed: false,
            auto_connect: AutoConnect::Never,
            stanza_timeout: Duration::from_secs(5),
            auto_generate_id: false,
            max_stanza_size: DEFAULT_MAX_STANZA_SIZE,
            max_depth: DEFAULT_MAX_DEPTH,
            max_queue: DEFAULT_MAX_QUEUE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            seed: None,
            tls: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            instance_domain: None,
        }
    }

    /// Sets the server host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the server's component port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the keepalive interval (`None`: off).
    pub fn ping(mut self, ping: Option<Duration>) -> Self {
        self.ping = ping;
        self
    }

    /// Sets how long to wait for an answer to a keepalive ping.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// Sets `set_from`.
    pub fn set_from(mut self, set_from: bool) -> Self {
        self.set_from = set_from;
        self
    }

    /// Sets `trimmed`.
    pub fn trimmed(mut self, trimmed: bool) -> Self {
        self.trimmed = trimmed;
        self
    }

    /// Sets when to connect.
    pub fn auto_connect(mut self, auto_connect: AutoConnect) -> Self {
        self.auto_connect = auto_connect;
        self
    }

    /// Sets the controllers' deadline.
    pub fn stanza_timeout(mut self, timeout: Duration) -> Self {
        self.stanza_timeout = timeout;
        self
    }

    /// Sets `auto_generate_id`.
    pub fn auto_generate_id(mut self, on: bool) -> Self {
        self.auto_generate_id = on;
        self
    }

    /// Sets the largest stanza accepted.
    pub fn max_stanza_size(mut self, bytes: usize) -> Self {
        self.max_stanza_size = bytes;
        self
    }

    /// Sets the deepest nesting accepted.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Sets the bound of the queue kept while disconnected.
    pub fn max_queue(mut self, stanzas: usize) -> Self {
        self.max_queue = stanzas;
        self
    }

    /// Sets the bound of requests handled at once.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// Sets the reconnect backoff range.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// Sets how long the opening may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Seeds the component's random choices, for a repeatable run (a simulation, a replay
    /// of a logged seed). Components that share a server should not share a seed: their
    /// generated ids would collide.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Connects with direct TLS (see [`DirectTls`]).
    pub fn tls(mut self, tls: DirectTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets how long a drain lets the requests in flight run.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Sets this instance's private domain, for its IQ calls (see
    /// [`Config::instance_domain`]).
    pub fn instance_domain(mut self, domain: impl Into<String>) -> Self {
        self.instance_domain = Some(domain.into());
        self
    }

    /// The configuration of the connection for [`Config::instance_domain`], if set: this one
    /// with the instance domain as its domain (same server, secret and limits).
    pub fn instance_config(&self) -> Option<Config> {
        let domain = self.instance_domain.clone()?;
        Some(Config {
            domain,
            instance_domain: None,
            // Another generator than the shared connection's: their call ids must differ.
            seed: self
                .seed
                .map(|seed| seed.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15),
            ..self.clone()
        })
    }

    /// `host:port`, for connecting.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Reads the configuration from the environment, with defaults for a local test server
    /// (`component.localhost`, secret `secret`, `127.0.0.1:5252`).
    ///
    /// | variable | option | format |
    /// |---|---|---|
    /// | `EXAMPPLE_DOMAIN` | domain | text |
    /// | `EXAMPPLE_HOST` | host | text |
    /// | `EXAMPPLE_PORT` | port | 1-65535 |
    /// | `EXAMPPLE_PASSWORD` | password | text |
    /// | `EXAMPPLE_PING_MS` | ping | milliseconds, `0` or `off` for none |
    /// | `EXAMPPLE_SET_FROM` | set_from | `true`/`false`/`1`/`0` |
    /// | `EXAMPPLE_TRIMMED` | trimmed | boolean |
    /// | `EXAMPPLE_AUTO_CONNECT` | auto_connect | `true`, `false` or a delay in ms |
    /// | `EXAMPPLE_STANZA_TIMEOUT_MS` | stanza_timeout | milliseconds |
    /// | `EXAMPPLE_AUTO_GENERATE_ID` | auto_generate_id | boolean |
    /// | `EXAMPPLE_MAX_STANZA_SIZE` | max_stanza_size | bytes |
    /// | `EXAMPPLE_SEED` | seed | an unsigned 64-bit integer |
    /// | `EXAMPPLE_TLS` | tls | boolean: direct TLS, trusting the system's roots |
    /// | `EXAMPPLE_CA_FILE` | tls's trust | a PEM file of the CA(s) to trust instead (needs `EXAMPPLE_TLS`) |
    /// | `EXAMPPLE_TLS_SERVER_NAME` | tls's server_name | the name to verify (needs `EXAMPPLE_TLS`; default the domain) |
    /// | `EXAMPPLE_DRAIN_SECS` | drain_timeout | seconds |
    /// | `EXAMPPLE_INSTANCE_DOMAIN` | instance_domain | a domain, empty for none |
    ///
    /// `auto_connect` defaults to `true` here: a program configured from its environment
    /// usually means to connect.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Config::new(
            get("EXAMPPLE_DOMAIN").unwrap_or_else(|| "component.localhost".into()),
            lookup("EXAMPPLE_PASSWORD").unwrap_or_else(|| "secret".into()),
        )
        .auto_connect(AutoConnect::Immediately);
        if let Some(host) = get("EXAMPPLE_HOST") {
            config.host = host;
        }
        if let Some(port) = get("EXAMPPLE_PORT") {
            config.port = match port.trim().parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(ConfigError::invalid(
                        "EXAMPPLE_PORT",
                        &port,
                        "a port number from 1 to 65535",
                    ));
                }
            };
        }
        if let Some(ping) = get("EXAMPPLE_PING_MS") {
            config.ping = match ping.trim() {
                "0" | "off" | "false" => None,
                ms => Some(Duration::from_millis(ms.parse().map_err(|_| {
                    ConfigError::invalid("EXAMPPLE_PING_MS", &ping, "milliseconds, or 0/off")
                })?)),
            };
        }
        if let Some(v) = get("EXAMPPLE_SET_FROM") {
            config.set_from = parse_bool("EXAMPPLE_SET_FROM", &v)?;
        }
        if let Some(v) = get("EXAMPPLE_TRIMMED") {
            config.trimmed = parse_bool("EXAMPPLE_TRIMMED", &v)?;
        }
        if let Some(v) = get("EXAMPPLE_AUTO_GENERATE_ID") {
            config.auto_generate_id = parse_bool("EXAMPPLE_AUTO_GENERATE_ID", &v)?;
        }
        if let Some(v) = get("EXAMPPLE_AUTO_CONNECT") {
            config.auto_connect = match v.trim() {
                "true" | "1" | "yes" => AutoConnect::Immediately,
                "false" | "no" => AutoConnect::Never,
                ms => AutoConnect::After(Duration::from_millis(ms.parse().map_err(|_| {
                    ConfigError::invalid(
                        "EXAMPPLE_AUTO_CONNECT",
                        &v,
                        "true, false or a delay in milliseconds",
                    )
                })?)),
            };
        }
        if let Some(v) = get("EXAMPPLE_STANZA_TIMEOUT_MS") {
            let ms: u64 = v.trim().parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                ConfigError::invalid("EXAMPPLE_STANZA_TIMEOUT_MS", &v, "milliseconds above 0")
            })?;
            config.stanza_timeout = Duration::from_millis(ms);
        }
        if let Some(v) = get("EXAMPPLE_MAX_STANZA_SIZE") {
            config.max_stanza_size =
                v.trim()
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1024)
                    .ok_or_else(|| {
                        ConfigError::invalid("EXAMPPLE_MAX_STANZA_SIZE", &v, "bytes, at least 1024")
                    })?;
        }
        // To replay a run whose seed the component logged (at debug level).
        if let Some(v) = get("EXAMPPLE_SEED") {
            config.seed = Some(v.trim().parse().map_err(|_| {
                ConfigError::invalid("EXAMPPLE_SEED", &v, "an unsigned 64-bit integer")
            })?);
        }
        let tls = match get("EXAMPPLE_TLS") {
            Some(v) => parse_bool("EXAMPPLE_TLS", &v)?,
            None => false,
        };
        let ca_file = get("EXAMPPLE_CA_FILE");
        let server_name = get("EXAMPPLE_TLS_SERVER_NAME");
        if tls {
            let mut direct = match ca_file {
                Some(path) => DirectTls::ca_file(path.trim()),
                None => DirectTls::system_roots(),
            };
            direct.server_name = server_name.map(|name| name.trim().to_string());
            config.tls = Some(direct);
        } else if let Some((name, value)) = ca_file
            .map(|v| ("EXAMPPLE_CA_FILE", v))
            .or(server_name.map(|v| ("EXAMPPLE_TLS_SERVER_NAME", v)))
        {
            // A CA file without TLS would be ignored while the secret goes out in the clear.
            return Err(ConfigError::invalid(name, &value, "EXAMPPLE_TLS=1 as well"));
        }
        if let Some(v) = get("EXAMPPLE_DRAIN_SECS") {
            let secs: u64 = v
                .trim()
                .parse()
                .map_err(|_| ConfigError::invalid("EXAMPPLE_DRAIN_SECS", &v, "seconds"))?;
            config.drain_timeout = Duration::from_secs(secs);
        }
        if let Some(v) = get("EXAMPPLE_INSTANCE_DOMAIN") {
            config.instance_domain = Some(v.trim().to_string());
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the options that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.domain.is_empty()
            || !crate::jid::is_valid(&self.domain)
            || self.domain.contains(['@', '/'])
        {
            return Err(ConfigError::invalid(
                "domain",
                &self.domain,
                "a valid domain JID",
            ));
        }
        if self.host.is_empty() {
            return Err(ConfigError::invalid(
                "host",
                &self.host,
                "a host name or address",
            ));
        }
        if let Some(tls) = &self.tls
            && tls.name_to_verify(&self.domain).is_empty()
        {
            return Err(ConfigError::invalid(
                "tls.server_name",
                "",
                "a DNS name or an IP address",
            ));
        }
        if let Some(instance) = &self.instance_domain
            && (!crate::jid::is_valid(instance)
                || instance.contains(['@', '/'])
                || instance.eq_ignore_ascii_case(&self.domain))
        {
            return Err(ConfigError::invalid(
                "instance_domain",
                instance,
                "a valid domain JID other than the component's domain",
            ));
        }
        if self.stanza_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "stanza_timeout",
                "0",
                "a duration above 0",
            ));
        }
        Ok(())
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(name, value, "true or false")),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("domain", &self.domain)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &"<redacted>")
            .field("ping", &self.ping)
            .field("ping_timeout", &self.ping_timeout)
            .field("set_from", &self.set_from)
            .field("trimmed", &self.trimmed)
            .field("auto_connect", &self.auto_connect)
            .field("stanza_timeout", &self.stanza_timeout)
            .field("auto_generate_id", &self.auto_generate_id)
            .field("max_stanza_size", &self.max_stanza_size)
            .field("max_depth", &self.max_depth)
            .field("max_queue", &self.max_queue)
            .field("max_in_flight", &self.max_in_flight)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("seed", &self.seed)
            .field("tls", &self.tls)
            .field("drain_timeout", &self.drain_timeout)
            .field("instance_domain", &self.instance_domain)
            .finish()
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name} `{value}`: expected {expected}")]
pub struct ConfigError {
    /// The option or environment variable.
    pub name: &'static str,
    /// The value found.
    pub value: String,
    /// What would have been valid.
    pub expected: &'static str,
}

impl ConfigError {
    fn invalid(name: &'static str, value: &str, expected: &'static str) -> Self {
        ConfigError {
            name,
            value: value.to_string(),
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_as_the_seed_documents() {
        let c = Config::new("c.example.com", "s");
        assert_eq!(c.ping, None);
        assert!(!c.set_from && !c.trimmed && !c.auto_generate_id);
        assert_eq!(c.auto_connect, AutoConnect::Never);
        assert_eq!(c.stanza_timeout, Duration::from_secs(5));
        assert_eq!(c.seed, None);
    }

    #[test]
    fn from_env_reads_and_validates() {
        let c = env(&[]).unwrap();
        assert_eq!(
            (
                c.domain.as_str(),
                c.host.as_str(),
                c.port,
                c.password.as_str()
            ),
            ("component.localhost", "127.0.0.1", 5252, "secret")
        );
        let c = env(&[
            ("EXAMPPLE_PORT", "5347"),
            ("EXAMPPLE_PING_MS", "30000"),
            ("EXAMPPLE_AUTO_CONNECT", "250"),
            ("EXAMPPLE_SET_FROM", "true"),
        ])
        .unwrap();
        assert_eq!(c.port, 5347);
        assert_eq!(c.ping, Some(Duration::from_secs(30)));
        assert_eq!(
            c.auto_connect,
            AutoConnect::After(Duration::from_millis(250))
        );
        assert!(c.set_from);
        let e = env(&[("EXAMPPLE_PORT", "99999")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid EXAMPPLE_PORT `99999`: expected a port number from 1 to 65535"
        );
        assert!(env(&[("EXAMPPLE_PING_MS", "soon")]).is_err());
        assert!(env(&[("EXAMPPLE_TRIMMED", "maybe")]).is_err());
        assert!(env(&[("EXAMPPLE_DOMAIN", "a@b")]).is_err());
        assert!(env(&[("EXAMPPLE_STANZA_TIMEOUT_MS", "0")]).is_err());
        assert_eq!(env(&[]).unwrap().seed, None);
        let max = u64::MAX.to_string();
        assert_eq!(
            env(&[("EXAMPPLE_SEED", &max)]).unwrap().seed,
            Some(u64::MAX)
        );
        assert!(env(&[("EXAMPPLE_SEED", "-1")]).is_err());
    }

    #[test]
    fn from_env_reads_tls() {
        assert_eq!(env(&[]).unwrap().tls, None);
        assert_eq!(env(&[("EXAMPPLE_TLS", "0")]).unwrap().tls, None);
        assert_eq!(
            env(&[("EXAMPPLE_TLS", "1")]).unwrap().tls,
            Some(DirectTls::system_roots())
        );
        let c = env(&[
            ("EXAMPPLE_TLS", "true"),
            ("EXAMPPLE_CA_FILE", "/etc/ca.pem"),
            ("EXAMPPLE_TLS_SERVER_NAME", "xmpp.example.com"),
        ])
        .unwrap();
        assert_eq!(
            c.tls,
            Some(DirectTls::ca_file("/etc/ca.pem").server_name("xmpp.example.com"))
        );
        let tls = c.tls.unwrap();
        assert_eq!(
            tls.name_to_verify("component.localhost"),
            "xmpp.example.com"
        );
        assert_eq!(
            DirectTls::system_roots().name_to_verify("component.localhost"),
            "component.localhost"
        );
        let e = env(&[("EXAMPPLE_CA_FILE", "/etc/ca.pem")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid EXAMPPLE_CA_FILE `/etc/ca.pem`: expected EXAMPPLE_TLS=1 as well"
        );
        assert!(env(&[("EXAMPPLE_TLS", "0"), ("EXAMPPLE_TLS_SERVER_NAME", "x")]).is_err());
        assert!(env(&[("EXAMPPLE_TLS", "sometimes")]).is_err());
    }

    #[test]
    fn address_brackets_ipv6() {
        assert_eq!(Config::new("c.x", "s").host("::1").address(), "[::1]:5252");
    }
}
