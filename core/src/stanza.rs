//! Stanzas: kinds and types, builders, replies and stanza errors.
//!
//! Builders put stanzas in `jabber:component:accept`; attribute values are set only when
//! given (an empty string counts as absent, as in exampple).
//!
//! ```
//! use exampple_core::stanza::{self, IqType, MessageType, Condition, StanzaError};
//! use exampple_core::xml;
//!
//! let ping = stanza::iq(IqType::Get)
//!     .id("1")
//!     .from("alice@example.com/res")
//!     .to("component.example.com")
//!     .payload(xml::parse("<ping xmlns='urn:xmpp:ping'/>").unwrap())
//!     .build();
//! assert_eq!(
//!     xml::to_string(&ping),
//!     "<iq xmlns='jabber:component:accept' from='alice@example.com/res' id='1' \
//!      to='component.example.com' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
//! );
//!
//! // Replies swap from and to and keep the id.
//! let pong = stanza::iq_result(&ping, []);
//! assert_eq!(pong.attr("to"), Some("alice@example.com/res"));
//! assert_eq!(pong.attr("type"), Some("result"));
//!
//! let error = stanza::iq_error(&ping, StanzaError::new(Condition::ItemNotFound).with_text("en", "no such user"));
//! assert_eq!(error.attr("type"), Some("error"));
//! assert_eq!(
//!     StanzaError::from_element(error.get_child("error", "jabber:component:accept").unwrap()).unwrap().condition,
//!     Condition::ItemNotFound
//! );
//!
//! let chat = stanza::message(MessageType::Chat).to("bob@example.com").body("hello").build();
//! assert_eq!(chat.attr("type"), Some("chat"));
//! ```

use std::fmt;

use minidom::Element;

use crate::ns;
use crate::xml::{self, set_attr};

/// The three kinds of stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StanzaKind {
    /// `<iq/>`
    Iq,
    /// `<message/>`
    Message,
    /// `<presence/>`
    Presence,
}

impl StanzaKind {
    /// The element name.
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaKind::Iq => "iq",
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
        }
    }

    /// The kind of an element name, if it is a stanza.
    pub fn from_name(name: &str) -> Option<StanzaKind> {
        match name {
            "iq" => Some(StanzaKind::Iq),
            "message" => Some(StanzaKind::Message),
            "presence" => Some(StanzaKind::Presence),
            _ => None,
        }
    }

    /// The type a stanza of this kind has when its `type` attribute is absent
    /// (`normal` for messages, `available` for presences, none for iq).
    pub fn default_type(self) -> Option<StanzaType> {
        match self {
            StanzaKind::Iq => None,
            StanzaKind::Message => Some(StanzaType::Message(MessageType::Normal)),
            StanzaKind::Presence => Some(StanzaType::Presence(PresenceType::Available)),
        }
    }
}

impl fmt::Display for StanzaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Parses the wire text.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// The `type` of an iq.
    IqType { /// A request for data.
    Get = "get", /// A request that changes data.
    Set = "set", /// A successful answer.
    Result = "result", /// A failed answer.
    Error = "error" }
}

string_enum! {
    /// The `type` of a message (`normal` when absent).
    MessageType { /// A standalone message (the default).
    Normal = "normal", /// A one-to-one conversation.
    Chat = "chat", /// A multi-user chat message.
    Groupchat = "groupchat", /// An alert or notification.
    Headline = "headline", /// An error about a message sent earlier.
    Error = "error" }
}

string_enum! {
    /// The `type` of a presence (`available` when absent).
    PresenceType { /// Available for communication (the default).
    Available = "available", /// No longer available.
    Unavailable = "unavailable", /// A request to subscribe.
    Subscribe = "subscribe", /// A subscription was approved.
    Subscribed = "subscribed", /// A request to unsubscribe.
    Unsubscribe = "unsubscribe", /// A subscription was cancelled.
    Unsubscribed = "unsubscribed", /// A request for the current presence.
    Probe = "probe", /// An error about a presence sent earlier.
    Error = "error" }
}

/// The type of a stanza of any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StanzaType {
    /// An iq type.
    Iq(IqType),
    /// A message type.
    Message(MessageType),
    /// A presence type.
    Presence(PresenceType),
}

impl StanzaType {
    /// The wire text (`normal` and `available` included).
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaType::Iq(t) => t.as_str(),
            StanzaType::Message(t) => t.as_str(),
            StanzaType::Presence(t) => t.as_str(),
        }
    }

    /// The kind this type belongs to.
    pub fn kind(self) -> StanzaKind {
        match self {
            StanzaType::Iq(_) => StanzaKind::Iq,
            StanzaType::Message(_) => StanzaKind::Message,
            StanzaType::Presence(_) => StanzaKind::Presence,
        }
    }

    /// Whether this is an `error` type.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            StanzaType::Iq(IqType::Error)
                | StanzaType::Message(MessageType::Error)
                | StanzaType::Presence(PresenceType::Error)
        )
    }

    /// The type of a stanza of `kind` with the `type` attribute `attr` (absent: the kind's
    /// default). `None` when the text is not a type of that kind.
    pub fn of(kind: StanzaKind, attr: Option<&str>) -> Option<StanzaType> {
        match (kind, attr) {
            (_, None) => kind.default_type(),
            (StanzaKind::Iq, Some(t)) => IqType::parse(t).map(StanzaType::Iq),
            (StanzaKind::Message, Some(t)) => MessageType::parse(t).map(StanzaType::Message),
            (StanzaKind::Presence, Some(t)) => PresenceType::parse(t).map(StanzaType::Presence),
        }
    }
}

impl fmt::Display for StanzaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_enum! {
    /// The error type of a stanza error (RFC 6120 §8.3.2).
    ErrorType { /// Retry after providing credentials.
    Auth = "auth", /// Do not retry (the error cannot be remedied).
    Cancel = "cancel", /// Proceed (the condition was only a warning).
    Continue = "continue", /// Retry after changing the data sent.
    Modify = "modify", /// Retry after waiting (the error is temporary).
    Wait = "wait" }
}

string_enum! {
    /// The defined stanza error conditions of RFC 6120 §8.3.3.
    Condition {
    /// The request was malformed or not understood.
    BadRequest = "bad-request",
    /// A conflicting resource or session exists.
    Conflict = "conflict",
    /// The feature is not implemented by the recipient.
    FeatureNotImplemented = "feature-not-implemented",
    /// The sender is not allowed to do this.
    Forbidden = "forbidden",
    /// The recipient or server can no longer be reached at this address.
    Gone = "gone",
    /// The server could not process the stanza because of a misconfiguration or bug.
    InternalServerError = "internal-server-error",
    /// The addressed JID or item does not exist.
    ItemNotFound = "item-not-found",
    /// The JID does not adhere to the JID syntax.
    JidMalformed = "jid-malformed",
    /// The request does not meet criteria defined by the recipient.
    NotAcceptable = "not-acceptable",
    /// No entity may perform this action.
    NotAllowed = "not-allowed",
    /// The sender must authenticate first.
    NotAuthorized = "not-authorized",
    /// The entity violated a local service policy.
    PolicyViolation = "policy-violation",
    /// The recipient is temporarily unavailable.
    RecipientUnavailable = "recipient-unavailable",
    /// The recipient is at another address.
    Redirect = "redirect",
    /// The requester must register first.
    RegistrationRequired = "registration-required",
    /// A remote server does not exist.
    RemoteServerNotFound = "remote-server-not-found",
    /// A remote server could not be reached in time.
    RemoteServerTimeout = "remote-server-timeout",
    /// The server lacks the resources to service the request.
    ResourceConstraint = "resource-constraint",
    /// The service is not provided.
    ServiceUnavailable = "service-unavailable",
    /// The requester must subscribe first.
    SubscriptionRequired = "subscription-required",
    /// Any other condition (usually with an application-specific one).
    UndefinedCondition = "undefined-condition",
    /// The request was not expected at this point.
    UnexpectedRequest = "unexpected-request",
    }
}

impl Condition {
    /// The error type RFC 6120 gives this condition in §8.3.3.
    pub fn default_type(self) -> ErrorType {
        use Condition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation | Redirect
            | UndefinedCondition => ErrorType::Modify,
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => {
                ErrorType::Auth
            }
            RecipientUnavailable | RemoteServerTimeout | ResourceConstraint | UnexpectedRequest => {
                ErrorType::Wait
            }
            Conflict
            | FeatureNotImplemented
            | Gone
            | InternalServerError
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable => ErrorType::Cancel,
        }
    }
}

impl std::str::FromStr for Condition {
    type Err = UnknownCondition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Condition::parse(s).ok_or_else(|| UnknownCondition(s.to_string()))
    }
}

/// A condition name that RFC 6120 does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stanza error condition `{0}` (RFC 6120 §8.3.3 defines the valid ones)")]
pub struct UnknownCondition(pub String);

/// A stanza error: condition, type, optional text with its `xml:lang`, and an optional
/// application-specific condition element.
#[derive(Debug, Clone, PartialEq)]
pub struct StanzaError {
    /// The defined condition.
    pub condition: Condition,
    /// The error type (by default the condition's [`Condition::default_type`]).
    pub error_type: ErrorType,
    /// Human-readable text.
    pub text: Option<String>,
    /// The language of `text`, written as `xml:lang`.
    pub lang: Option<String>,
    /// The entity that generated the error (`by`).
    pub by: Option<String>,
    /// An application-specific condition element.
    pub application: Option<Box<Element>>,
}

impl StanzaError {
    /// An error with the condition's default type and no text.
    pub fn new(condition: Condition) -> Self {
        StanzaError {
            condition,
            error_type: condition.default_type(),
            text: None,
            lang: None,
            by: None,
            application: None,
        }
    }

    /// An error from a condition name; unknown names are an error, never a crash.
    pub fn named(condition: &str) -> Result<Self, UnknownCondition> {
        Ok(StanzaError::new(condition.parse()?))
    }

    /// Adds a human-readable text in the language `lang` (e.g. `"en"`).
    pub fn with_text(mut self, lang: impl Into<String>, text: impl Into<String>) -> Self {
        let lang = lang.into();
        self.lang = (!lang.is_empty()).then_some(lang);
        self.text = Some(text.into());
        self
    }

    /// Overrides the error type.
    pub fn with_type(mut self, error_type: ErrorType) -> Self {
        self.error_type = error_type;
        self
    }

    /// Adds an application-specific condition element.
    pub fn with_application(mut self, element: Element) -> Self {
        self.application = Some(Box::new(element));
        self
    }

    /// Sets the `by` attribute.
    pub fn with_by(mut self, by: impl Into<String>) -> Self {
        self.by = Some(by.into());
        self
    }

    /// The `<error/>` element, in the namespace of the stanza it goes into.
    pub fn to_element_in(&self, stanza_ns: &str) -> Element {
        let mut error = Element::bare("error", stanza_ns);
        set_attr(&mut error, "type", self.error_type.as_str());
        if let Some(by) = &self.by {
            set_attr(&mut error, "by", by.as_str());
        }
        error.append_child(Element::bare(self.condition.as_str(), ns::STANZA_ERRORS));
        if let Some(text) = &self.text {
            let mut text_el = Element::builder("text", ns::STANZA_ERRORS)
                .append(text.as_str())
                .build();
            if let Some(lang) = &self.lang {
                xml::set_lang(&mut text_el, lang.clone());
            }
            error.append_child(text_el);
        }
        if let Some(app) = &self.application {
            error.append_child((**app).clone());
        }
        error
    }

    /// The `<error/>` element for a component stream.
    pub fn to_element(&self) -> Element {
        self.to_element_in(ns::COMPONENT)
    }

    /// Reads an `<error/>` element. Unknown or missing conditions give
    /// `undefined-condition`; a missing or unknown type gives the condition's default.
    pub fn from_element(error: &Element) -> Option<StanzaError> {
        if error.name() != "error" {
            return None;
        }
        let mut condition = Condition::UndefinedCondition;
        let mut text = None;
        let mut lang = None;
        let mut application = None;
        for child in error.children() {
            if child.ns() == ns::STANZA_ERRORS {
                if child.name() == "text" {
                    text = Some(child.text());
                    lang = child.attr_ns(ns::XML, "lang").map(str::to_string);
                } else if let Some(c) = Condition::parse(child.name()) {
                    condition = c;
                }
            } else if application.is_none() {
                application = Some(Box::new(child.clone()));
            }
        }
        let error_type = error
            .attr("type")
            .and_then(ErrorType::parse)
            .unwrap_or(condition.default_type());
        Some(StanzaError {
            condition,
            error_type,
            text,
            lang,
            by: error.attr("by").map(str::to_string),
            application,
        })
    }
}

impl From<Condition> for StanzaError {
    fn from(condition: Condition) -> Self {
        StanzaError::new(condition)
    }
}

impl<L: Into<String>, T: Into<String>> From<(Condition, L, T)> for StanzaError {
    /// `(condition, lang, text)`, as exampple's `{condition, lang, text}` tuples.
    fn from((condition, lang, text): (Condition, L, T)) -> Self {
        StanzaError::new(condition).with_text(lang, text)
    }
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.condition, self.error_type)?;
        if let Some(text) = &self.text {
            write!(f, ": {text}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StanzaError {}

/// Builds a stanza; see [`iq`], [`message`] and [`presence`].
#[derive(Debug, Clone)]
#[must_use]
pub struct StanzaBuilder {
    element: Element,
}

/// Starts an iq of the given type.
pub fn iq(iq_type: IqType) -> StanzaBuilder {
    StanzaBuilder::new(StanzaKind::Iq, Some(iq_type.as_str()))
}

/// Starts a message of the given type (`normal` writes no `type` attribute).
pub fn message(message_type: MessageType) -> StanzaBuilder {
    let t = (message_type != MessageType::Normal).then_some(message_type.as_str());
    StanzaBuilder::new(StanzaKind::Message, t)
}

/// Starts a presence of the given type (`available` writes no `type` attribute).
pub fn presence(presence_type: PresenceType) -> StanzaBuilder {
    let t = (presence_type != PresenceType::Available).then_some(presence_type.as_str());
    StanzaBuilder::new(StanzaKind::Presence, t)
}

impl StanzaBuilder {
    /// A stanza of `kind` with the raw `type` attribute `stanza_type`.
    pub fn new(kind: StanzaKind, stanza_type: Option<&str>) -> Self {
        let mut element = Element::bare(kind.as_str(), ns::COMPONENT);
        if let Some(t) = stanza_type {
            set_attr(&mut element, "type", t);
        }
        StanzaBuilder { element }
    }

    fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            set_attr(&mut self.element, name, value);
        }
        self
    }

    /// Sets the `id` (an empty string leaves it absent).
    pub fn id(self, id: impl Into<String>) -> Self {
        self.attr("id", id)
    }

    /// Sets the `from` (an empty string leaves it absent).
    pub fn from(self, from: impl Into<String>) -> Self {
        self.attr("from", from)
    }

    /// Sets the `to` (an empty string leaves it absent).
    pub fn to(self, to: impl Into<String>) -> Self {
        self.attr("to", to)
    }

    /// Sets `xml:lang`.
    pub fn lang(mut self, lang: impl Into<String>) -> Self {
        xml::set_lang(&mut self.element, lang);
        self
    }

    /// Appends a payload element.
    pub fn payload(mut self, payload: Element) -> Self {
        self.element.append_child(payload);
        self
    }

    /// Appends payload elements.
    pub fn payloads(mut self, payloads: impl IntoIterator<Item = Element>) -> Self {
        for p in payloads {
            self.element.append_child(p);
        }
        self
    }

    /// Appends a `<body>` with the text (for messages).
    pub fn body(mut self, text: impl Into<String>) -> Self {
        let body = Element::builder("body", ns::COMPONENT)
            .append(text.into())
            .build();
        self.element.append_child(body);
        self
    }

    /// The stanza.
    pub fn build(self) -> Element {
        self.element
    }
}

impl From<StanzaBuilder> for Element {
    fn from(builder: StanzaBuilder) -> Element {
        builder.build()
    }
}

/// The addressing attributes of a stanza (`type`, `id`, `from`, `to`, none of them in a
/// namespace), read in one pass over its attributes.
///
/// [`Element::attr`] searches minidom's attribute map on every call; reading the four at
/// once costs about as much as one such search.
///
/// ```
/// use exampple_core::{stanza::Head, xml};
/// let iq = xml::parse("<iq type='get' id='1' from='a@b/c' to='d'/>").unwrap();
/// let head = Head::of(&iq);
/// assert_eq!((head.kind, head.id, head.from, head.to), (Some("get"), Some("1"), Some("a@b/c"), Some("d")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head<'a> {
    /// The `type` attribute.
    pub kind: Option<&'a str>,
    /// The `id` attribute.
    pub id: Option<&'a str>,
    /// The `from` attribute.
    pub from: Option<&'a str>,
    /// The `to` attribute.
    pub to: Option<&'a str>,
}

impl<'a> Head<'a> {
    /// Reads the head of `stanza`.
    pub fn of(stanza: &'a Element) -> Head<'a> {
        let mut head = Head::default();
        for ((namespace, name), value) in stanza.attrs().iter() {
            if !namespace.is_none() {
                continue;
            }
            let slot = match name.as_str() {
                "type" => &mut head.kind,
                "id" => &mut head.id,
                "from" => &mut head.from,
                "to" => &mut head.to,
                _ => continue,
            };
            *slot = Some(value.as_str());
        }
        head
    }

    /// The attributes of a reply: `from` and `to` swapped, the same `id` (an empty value
    /// counts as absent, as in exampple), and `reply_type`; in the order minidom writes
    /// them.
    pub fn reply(&self, reply_type: Option<&'a str>) -> [(&'static str, Option<&'a str>); 4] {
        let present = |v: Option<&'a str>| v.filter(|v| !v.is_empty());
        [
            ("from", present(self.to)),
            ("id", present(self.id)),
            ("to", present(self.from)),
            ("type", reply_type),
        ]
    }
}

/// A reply skeleton to `request`: same name and namespace, `from`/`to` swapped, same id.
pub fn reply_to(request: &Element, reply_type: Option<&str>) -> Element {
    let mut reply = Element::bare(request.name(), request.ns());
    for (name, value) in Head::of(request).reply(reply_type) {
        if let Some(value) = value {
            set_attr(&mut reply, name, value);
        }
    }
    reply
}

/// The `result` to an iq `request`, carrying `payload`.
pub fn iq_result(request: &Element, payload: impl IntoIterator<Item = Element>) -> Element {
    let mut reply = reply_to(request, Some("result"));
    for p in payload {
        reply.append_child(p);
    }
    reply
}

/// An error reply to any stanza: swapped addresses, the original children, then the error.
///
/// For an iq, only the first child (the request payload) is echoed, as RFC 6120 allows.
pub fn error_reply(request: &Element, error: &StanzaError) -> Element {
    let mut reply = reply_to(request, Some("error"));
    if request.name() == "iq" {
        if let Some(first) = request.children().next() {
            reply.append_child(first.clone());
        }
    } else {
        for child in request.children() {
            reply.append_child(child.clone());
        }
    }
    reply.append_child(error.to_element_in(&request.ns()));
    reply
}

/// The error reply to an iq `request`.
pub fn iq_error(request: &Element, error: impl Into<StanzaError>) -> Element {
    error_reply(request, &error.into())
}

/// A reply to a message: same type (`normal` stays absent), swapped addresses, same id.
pub fn message_reply(request: &Element, payload: impl IntoIterator<Item = Element>) -> Element {
    let mut reply = reply_to(request, Head::of(request).kind);
    for p in payload {
        reply.append_child(p);
    }
    reply
}

/// The error reply to a message.
pub fn message_error(request: &Element, error: impl Into<StanzaError>) -> Element {
    error_reply(request, &error.into())
}

/// The error reply to a presence (addresses swapped: exampple did not swap, which sends the
/// error back to the wrong side).
pub fn presence_error(request: &Element, error: impl Into<StanzaError>) -> Element {
    error_reply(request, &error.into())
}

/// Whether a stanza may be answered with an error: never an error or an iq result (RFC
/// 6120 §8.3.1 forbids answering errors, and results are answers already).
pub fn may_answer_with_error(stanza: &Element) -> bool {
    !matches!(
        (stanza.name(), Head::of(stanza).kind),
        (_, Some("error")) | ("iq", Some("result"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_round_trips() {
        assert_eq!(Condition::ALL.len(), 22);
        for &c in Condition::ALL {
            let err = StanzaError::new(c).with_text("en", "why");
            let el = err.to_element();
            let back = StanzaError::from_element(&el).unwrap();
            assert_eq!(back, err);
            assert_eq!(c.as_str().parse::<Condition>().unwrap(), c);
        }
        assert!(StanzaError::named("no-such-thing").is_err());
    }

    #[test]
    fn error_has_xml_lang() {
        let err = StanzaError::new(Condition::ItemNotFound).with_text("es", "¡fuego!");
        assert_eq!(
            xml::to_string(&err.to_element()),
            "<error xmlns='jabber:component:accept' type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='es'>¡fuego!</text></error>"
        );
    }

    #[test]
    fn replies() {
        let msg = xml::parse("<message from='alice@example.com' to='bob@example.com' id='1'><body>hello world!</body></message>").unwrap();
        let err = message_error(&msg, Condition::ItemNotFound);
        assert_eq!(
            xml::to_string(&err),
            "<message xmlns='jabber:component:accept' from='bob@example.com' id='1' to='alice@example.com' type='error'>\
             <body>hello world!</body><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        );
        let reply = message_reply(&msg, []);
        assert_eq!(reply.attr("type"), None);
        let presence = xml::parse("<presence from='alice@example.com' to='bob@example.com'><status>away</status></presence>").unwrap();
        let perr = presence_error(&presence, Condition::ItemNotFound);
        assert_eq!(perr.attr("to"), Some("alice@example.com"));
        assert!(!may_answer_with_error(&perr));
        let iq = xml::parse("<iq type='result' id='1'/>").unwrap();
        assert!(!may_answer_with_error(&iq));
    }

    #[test]
    fn builders_skip_empty() {
        let p = presence(PresenceType::Available).from("").build();
        assert_eq!(
            xml::to_string(&p),
            "<presence xmlns='jabber:component:accept'/>"
        );
        let m = message(MessageType::Normal).id("1").build();
        assert_eq!(m.attr("type"), None);
        assert_eq!(
            StanzaType::of(StanzaKind::Message, None),
            Some(StanzaType::Message(MessageType::Normal))
        );
        assert_eq!(StanzaType::of(StanzaKind::Iq, Some("bogus")), None);
    }
}
