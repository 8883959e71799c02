//! XEP-0030 Service Discovery (disco#info) with XEP-0128 extended information.
//!
//! With `Router::discovery(...)`, an iq get of disco#info addressed to the component's bare
//! domain is answered with the identities, the namespaces of every route, the extra
//! features, disco#info itself and the extra forms.
//!
//! ```
//! use exampple_core::disco::{Discovery, Identity, category};
//!
//! let discovery = Discovery::new()
//!     .identity(Identity::new(category::COMPONENT, category::component::GENERIC, "myapp"))
//!     .feature("urn:xmpp:mix:core:1#create");
//! ```

use minidom::Element;

use crate::jid::Jid;
use crate::ns;

/// The XEP-0030 registry of identity categories and their types (as the seed lists them).
///
/// Custom values are plain strings: `Identity::new("x-mine", "thing", "name")`.
pub mod category {
    macro_rules! registry {
        ($( $(#[$cdoc:meta])* $cconst:ident = $cat:literal, $module:ident { $( $(#[$tdoc:meta])* $tconst:ident = $ty:literal ),* $(,)? } )*) => {
            $(
                $(#[$cdoc])*
                pub const $cconst: &str = $cat;
                #[doc = concat!("Types of the `", $cat, "` category.")]
                pub mod $module {
                    $( $(#[$tdoc])* pub const $tconst: &str = $ty; )*
                }
            )*
        };
    }

    registry! {
        /// User accounts.
        ACCOUNT = "account", account {
            /// An administrative account.
            ADMIN = "admin",
            /// A guest account.
            ANONYMOUS = "anonymous",
            /// A registered or provisioned account.
            REGISTERED = "registered",
        }
        /// Authentication services.
        AUTH = "auth", auth {
            /// Authenticates with external certificates.
            CERT = "cert",
            /// Other than the other types.
            GENERIC = "generic",
            /// Authenticates against LDAP.
            LDAP = "ldap",
            /// Authenticates against an NT domain.
            NTLM = "ntlm",
            /// Authenticates against PAM.
            PAM = "pam",
            /// Authenticates against Radius.
            RADIUS = "radius",
        }
        /// Automation (ad-hoc commands, RPC).
        AUTOMATION = "automation", automation {
            /// A list of commands.
            COMMAND_LIST = "command-list",
            /// A command node.
            COMMAND_NODE = "command-node",
            /// Jabber-RPC.
            RPC = "rpc",
            /// SOAP.
            SOAP = "soap",
            /// Translation services.
            TRANSLATION = "translation",
        }
        /// Clients.
        CLIENT = "client", client {
            /// An automated client.
            BOT = "bot",
            /// A minimal text client.
            CONSOLE = "console",
            /// A client on a game console.
            GAME = "game",
            /// A client on a handheld device.
            HANDHELD = "handheld",
            /// A desktop client.
            PC = "pc",
            /// A client on a mobile phone.
            PHONE = "phone",
            /// A client using SMS.
            SMS = "sms",
            /// A client in a web browser.
            WEB = "web",
        }
        /// Collaboration services.
        COLLABORATION = "collaboration", collaboration {
            /// Multi-user whiteboarding.
            WHITEBOARD = "whiteboard",
        }
        /// Server components.
        COMPONENT = "component", component {
            /// Archives traffic.
            ARCHIVE = "archive",
            /// Handles client connections.
            C2S = "c2s",
            /// Other than the registered types.
            GENERIC = "generic",
            /// Handles load balancing.
            LOAD = "load",
            /// Logs server information.
            LOG = "log",
            /// Provides presence information.
            PRESENCE = "presence",
            /// Handles routing.
            ROUTER = "router",
            /// Handles server connections.
            S2S = "s2s",
            /// Manages user sessions.
            SM = "sm",
            /// Provides statistics.
            STATS = "stats",
        }
        /// Conference services.
        CONFERENCE = "conference", conference {
            /// IRC.
            IRC = "irc",
            /// Text conferencing.
            TEXT = "text",
        }
        /// Directories.
        DIRECTORY = "directory", directory {
            /// Chat rooms.
            CHATROOM = "chatroom",
            /// Shared roster groups.
            GROUP = "group",
            /// End users.
            USER = "user",
            /// Waiting list entries.
            WAITINGLIST = "waitinglist",
        }
        /// Gateways to other networks.
        GATEWAY = "gateway", gateway {
            /// AOL Instant Messenger.
            AIM = "aim",
            /// Gadu-Gadu.
            GADU_GADU = "gadu-gadu",
            /// HTTP web services.
            HTTP_WS = "http-ws",
            /// ICQ.
            ICQ = "icq",
            /// IRC.
            IRC = "irc",
            /// Microsoft Live Communications Server.
            LCS = "lcs",
            /// mail.ru IM.
            MRIM = "mrim",
            /// MSN Messenger.
            MSN = "msn",
            /// MySpace IM.
            MYSPACEIM = "myspaceim",
            /// Microsoft Office Communications Server.
            OCS = "ocs",
            /// IBM Lotus Sametime.
            SAMETIME = "sametime",
            /// SIP/SIMPLE.
            SIMPLE = "simple",
            /// Skype.
            SKYPE = "skype",
            /// SMS.
            SMS = "sms",
            /// E-mail.
            SMTP = "smtp",
            /// Tlen.
            TLEN = "tlen",
            /// Xfire.
            XFIRE = "xfire",
            /// Another XMPP service (not s2s).
            XMPP = "xmpp",
            /// Yahoo! Messenger.
            YAHOO = "yahoo",
        }
        /// Headline services.
        HEADLINE = "headline", headline {
            /// New e-mail notifications.
            NEWMAIL = "newmail",
            /// RSS.
            RSS = "rss",
            /// Weather alerts.
            WEATHER = "weather",
        }
        /// Node hierarchies.
        HIERARCHY = "hierarchy", hierarchy {
            /// Contains more nodes.
            BRANCH = "branch",
            /// Contains no further nodes.
            LEAF = "leaf",
        }
        /// Proxies.
        PROXY = "proxy", proxy {
            /// SOCKS5 bytestreams.
            BYTESTREAMS = "bytestreams",
        }
        /// Publish-subscribe.
        PUBSUB = "pubsub", pubsub {
            /// A collection node.
            COLLECTION = "collection",
            /// A leaf node.
            LEAF = "leaf",
            /// Personal eventing.
            PEP = "pep",
            /// A XEP-0060 service.
            SERVICE = "service",
        }
        /// Servers.
        SERVER = "server", server {
            /// IM and presence.
            IM = "im",
        }
        /// Storage.
        STORE = "store", store {
            /// Berkeley DB.
            BERKELEY = "berkeley",
            /// The file system.
            FILE = "file",
            /// Other than the registered types.
            GENERIC = "generic",
            /// LDAP.
            LDAP = "ldap",
            /// MySQL.
            MYSQL = "mysql",
            /// Oracle.
            ORACLE = "oracle",
            /// PostgreSQL.
            POSTGRES = "postgres",
        }
    }
}

/// A disco identity: category, type and a human-readable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The category (see [`category`]).
    pub category: String,
    /// The type within the category.
    pub identity_type: String,
    /// The name shown to people.
    pub name: String,
    /// The language of the name, if given.
    pub lang: Option<String>,
}

impl Identity {
    /// An identity.
    pub fn new(
        category: impl Into<String>,
        identity_type: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Identity {
            category: category.into(),
            identity_type: identity_type.into(),
            name: name.into(),
            lang: None,
        }
    }

    /// Sets the language of the name.
    pub fn lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    fn to_element(&self) -> Element {
        let mut el = Element::bare("identity", ns::DISCO_INFO);
        crate::xml::set_attr(&mut el, "category", self.category.as_str());
        crate::xml::set_attr(&mut el, "type", self.identity_type.as_str());
        if !self.name.is_empty() {
            crate::xml::set_attr(&mut el, "name", self.name.as_str());
        }
        if let Some(lang) = &self.lang {
            crate::xml::set_lang(&mut el, lang.clone());
        }
        el
    }
}

/// What a component tells about itself in disco#info.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovery {
    identities: Vec<Identity>,
    features: Vec<String>,
    extra: Vec<Element>,
}

impl Discovery {
    /// An empty description (features come from the routes).
    pub fn new() -> Self {
        Discovery::default()
    }

    /// Adds an identity.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identities.push(identity);
        self
    }

    /// Adds a feature that no route shows (e.g. `urn:xmpp:mix:core:1#create`).
    pub fn feature(mut self, feature: impl Into<String>) -> Self {
        self.features.push(feature.into());
        self
    }

    /// Adds an extra element to the answer: usually an XEP-0128 data form of type `result`.
    pub fn extra(mut self, element: impl Into<Element>) -> Self {
        self.extra.push(element.into());
        self
    }

    /// The identities.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The extra features.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// The extra elements.
    pub fn extras(&self) -> &[Element] {
        &self.extra
    }

    /// The `<query xmlns='disco#info'>` answer, with these features (sorted, unique,
    /// disco#info itself included).
    pub fn info_query(&self, node: Option<&str>, features: &[String]) -> Element {
        let mut query = Element::bare("query", ns::DISCO_INFO);
        if let Some(node) = node {
            crate::xml::set_attr(&mut query, "node", node);
        }
        for identity in &self.identities {
            query.append_child(identity.to_element());
        }
        for feature in features {
            let mut el = Element::bare("feature", ns::DISCO_INFO);
            crate::xml::set_attr(&mut el, "var", feature.as_str());
            query.append_child(el);
        }
        for extra in &self.extra {
            query.append_child(extra.clone());
        }
        query
    }
}

/// XEP-0030 nodes that a part of the router describes itself (the ad-hoc commands: see
/// [`commands`](crate::commands)): the core answers disco#items on [`NodeDirectory::items_node`]
/// and disco#info on each node it knows, addressed to the component's domain.
pub trait NodeDirectory: Send + Sync + std::fmt::Debug {
    /// The node whose disco#items it lists.
    fn items_node(&self) -> &str;

    /// The `<query/>` of disco#items on [`NodeDirectory::items_node`], for `requester`.
    fn items(&self, domain: &str, requester: Option<&Jid>) -> Element;

    /// The `<query/>` of disco#info on `node`, if it is one of its nodes.
    fn info(&self, node: &str) -> Option<Element>;
}
