//! The showcase's configuration and router (shared with the tests in `tests/showcase.rs`).

use std::sync::LazyLock;
use std::time::Duration;

use exampple::disco::{Discovery, Identity, category};
use exampple::forms::{Field, FormSpec, FormType};
use exampple::rpc::{self, Fault, Rpc, Value};
use exampple::{
    Condition, Config, ConfigError, Conn, Element, MessageType, PresenceType, Router, StanzaError,
    stanza, xml,
};

/// The form of `urn:example:form`.
pub static PERSONAL_DETAILS: LazyLock<FormSpec> = LazyLock::new(|| {
    FormSpec::new("urn:example:form")
        .title("Personal Details")
        .field(Field::text_single("name").required().label("Name"))
        .field(Field::text_single("surname").label("Surname"))
        .field(
            Field::list_single("gender")
                .label("Gender")
                .option("Male", "M")
                .option("Female", "F"),
        )
});

/// The configuration: the environment (`EXAMPPLE_*`), with the showcase's defaults for
/// what it does not set (stanza_timeout 1 s, ping 30 s, trimmed, set_from).
pub fn config_from_env() -> Result<Config, ConfigError> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let mut config = Config::from_env()?;
    if !set("EXAMPPLE_STANZA_TIMEOUT_MS") {
        config.stanza_timeout = Duration::from_secs(1);
    }
    if !set("EXAMPPLE_PING_MS") {
        config.ping = Some(Duration::from_secs(30));
    }
    if !set("EXAMPPLE_TRIMMED") {
        config.trimmed = true;
    }
    if !set("EXAMPPLE_SET_FROM") {
        config.set_from = true;
    }
    Ok(config)
}

/// XEP-0199: an empty result.
pub fn ping(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([]).send()?;
    Ok(())
}

/// XEP-0092: the framework's name and version.
pub fn version(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    let query = xml!(
        "<query xmlns='jabber:iq:version'><name>exampple</name><version>{}</version></query>",
        env!("CARGO_PKG_VERSION")
    );
    conn.iq_resp([query]).send()?;
    Ok(())
}

/// Sends the blank form.
pub fn get_form(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    let query = Element::builder("query", "urn:example:form")
        .append(Element::from(PERSONAL_DETAILS.new_form()))
        .build();
    conn.iq_resp([query]).send()?;
    Ok(())
}

/// Validates a submitted form: an empty result, or bad-request listing the errors.
pub fn submit_form(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let form = payload
        .first()
        .and_then(|query| query.get_child("x", "jabber:x:data"))
        .ok_or_else(|| {
            StanzaError::new(Condition::BadRequest).with_text("en", "no data form in the query")
        })?;
    let mut form = PERSONAL_DETAILS
        .parse(form)
        .map_err(|e| StanzaError::new(Condition::BadRequest).with_text("en", e.to_string()))?;
    if form.validate() {
        conn.iq_resp([]).send()?;
    } else {
        conn.error((Condition::BadRequest, "en", form.error_text()))
            .send()?;
    }
    Ok(())
}

/// Echoes a chat message's body back to its sender (in the same thread, if any).
pub fn chat(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let Some(body) = payload.iter().find(|e| e.name() == "body") else {
        return Ok(());
    };
    let mut reply = stanza::message(MessageType::Chat)
        .to(conn.from().unwrap_or_default())
        .id(conn.id().unwrap_or_default())
        .body(format!("echo: {}", body.text()));
    if let Some(thread) = payload.iter().find(|e| e.name() == "thread") {
        reply = reply.payload(thread.clone());
    }
    conn.send(reply.build())?;
    Ok(())
}

/// Answers a presence probe with an available presence.
pub fn probe(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.send(
        stanza::presence(PresenceType::Available)
            .to(conn.from().unwrap_or_default())
            .build(),
    )?;
    Ok(())
}

/// Returns an error: the sender gets item-not-found.
pub fn raise(_conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    Err(StanzaError::new(Condition::ItemNotFound).with_text("en", "user not found"))
}

/// Panics: the sender gets internal-server-error and the component keeps serving.
pub fn crash(_conn: Conn, _payload: Vec<Element>) {
    panic!("the crash route crashed, as it should");
}

/// Takes 10 s: the sender gets remote-server-timeout after stanza_timeout (1 s).
pub async fn slow(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    async_io::Timer::after(Duration::from_secs(10)).await;
    conn.iq_resp([]).send()?;
    Ok(())
}

/// Answers the namespace the server delegates to the component (XEP-0355).
pub fn delegated(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    conn.iq_resp([xml!(
        "<query xmlns='urn:example:delegated'><answer>42</answer></query>"
    )])
    .send()?;
    Ok(())
}

/// Everything else: iq get/set get feature-not-implemented.
pub fn not_implemented(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    if matches!(
        conn.stanza_type(),
        exampple::StanzaType::Iq(exampple::IqType::Get | exampple::IqType::Set)
    ) {
        conn.error(Condition::FeatureNotImplemented).send()?;
    }
    Ok(())
}

/// The Jabber-RPC methods.
pub fn rpc() -> Rpc {
    Rpc::new()
        .method_with_arity("examples.add", 2, |params| -> Result<i32, Fault> {
            let a: i32 = rpc::param(&params, 0)?;
            let b: i32 = rpc::param(&params, 1)?;
            a.checked_add(b)
                .ok_or_else(|| Fault::new(1, "integer overflow"))
        })
        .method_with_arity("examples.echo", 1, |mut params| -> Result<Value, Fault> {
            params
                .pop()
                .ok_or_else(|| Fault::invalid_params("one parameter expected"))
        })
}

/// The showcase's router.
pub fn router() -> Router {
    let extra = FormSpec::new("urn:example:showcase")
        .field(Field::text_single("max-file-size"))
        .new_with(FormType::Result, [("max-file-size", "1048576")]);
    Router::new()
        .discovery(
            Discovery::new()
                .identity(Identity::new(
                    category::COMPONENT,
                    category::component::GENERIC,
                    "showcase",
                ))
                .extra(extra),
        )
        .feature("urn:xmpp:mix:core:1#create")
        .envelope("urn:xmpp:delegation:1")
        .envelope("urn:xmpp:delegation:2")
        .iq("urn:xmpp", |ns| ns.get("ping", ping))
        .iq("jabber:iq", |ns| ns.get("version", version))
        .iq("urn:example", |ns| {
            ns.get("form", get_form)
                .set("form", submit_form)
                .get("raise", raise)
                .get("crash", crash)
                .get("slow", slow)
                .get("delegated", delegated)
        })
        .message(|m| m.chat(chat))
        .presence(|p| p.probe(probe))
        .include(rpc())
        .fallback(not_implemented)
}

/// The table a listing command prints (as exampple's `mix xmpp.routes` and
/// `mix xmpp.namespaces`): `routes` (in colour with `color`) or `namespaces`; `None` for
/// any other command, which runs the component.
pub fn listing(command: &str, color: bool) -> Option<String> {
    match command {
        "routes" => Some(router().format_routes(color)),
        "namespaces" => Some(router().format_namespaces()),
        _ => None,
    }
}
