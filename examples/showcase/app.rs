//! The showcase's configuration and router (shared with the tests in `tests/showcase.rs`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use exampple::address::To;
use exampple::commands::{Command, Commands, Finish, Note};
use exampple::extract::State;

use exampple::conn::CallError;
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
/// what it does not set (stanza_timeout 6 s, so that `<roundtrip/>` can wait its 5 s for the
/// user; ping 30 s, trimmed, set_from).
pub fn config_from_env() -> Result<Config, ConfigError> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let mut config = Config::from_env()?;
    if !set("EXAMPPLE_STANZA_TIMEOUT_MS") {
        config.stanza_timeout = ROUNDTRIP_TIMEOUT + Duration::from_secs(1);
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

/// The longest `ms` a slow request may ask for.
pub const MAX_SLOW_MS: u64 = 60_000;

/// Answers after `ms` milliseconds (`<slow xmlns='urn:example:slow' ms='N'/>`, at most
/// [`MAX_SLOW_MS`]; 10 s without `ms`): a request that stays in flight, for timeouts (past
/// stanza_timeout the sender gets remote-server-timeout) and drains (a SIGTERM lets it
/// finish, or answers it service-unavailable at the drain's deadline).
pub async fn slow(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let bad_request = |text: &str| StanzaError::new(Condition::BadRequest).with_text("en", text);
    let ms = match payload.first().and_then(|slow| slow.attr("ms")) {
        None => 10_000,
        Some(ms) => match ms.trim().parse::<u64>() {
            Ok(ms) if ms <= MAX_SLOW_MS => ms,
            _ => return Err(bad_request("ms: milliseconds, at most 60000")),
        },
    };
    async_io::Timer::after(Duration::from_millis(ms)).await;
    conn.iq_resp([]).send()?;
    Ok(())
}

/// Names the instance that answered: its private domain
/// (`EXAMPPLE_INSTANCE_DOMAIN`), or the shared domain when it has none.
pub fn instance(conn: Conn, State(name): State<Arc<InstanceName>>) -> Result<(), StanzaError> {
    let name = name.0.as_deref().unwrap_or(conn.domain());
    conn.iq_resp([xml!(
        "<instance xmlns='urn:example:instance' name='{name}'/>"
    )])
    .send()?;
    Ok(())
}

/// This instance's private domain, if it has one (see [`instance`]).
#[derive(Debug, Default)]
pub struct InstanceName(pub Option<String>);

/// How long a roundtrip waits for the user's answer.
pub const ROUNDTRIP_TIMEOUT: Duration = Duration::from_secs(5);

/// Pings the sender's full JID through the IQ caller (from the instance domain when there
/// is one, so the answer comes back here) and answers once the user has: a request that
/// needs its IQ result to reach this very instance. `remote-server-timeout` when the user
/// does not answer within [`ROUNDTRIP_TIMEOUT`] (or the stanza timeout, if shorter), their
/// error when they answer with one.
pub async fn roundtrip(conn: Conn, _payload: Vec<Element>) -> Result<(), StanzaError> {
    let user = conn
        .from_jid()
        .filter(|jid| jid.resource().is_some())
        .ok_or_else(|| {
            StanzaError::new(Condition::BadRequest).with_text("en", "a full JID is needed")
        })?;
    let ping = stanza::iq(exampple::IqType::Get)
        .to(user.to_string())
        .payload(Element::bare("ping", "urn:xmpp:ping"))
        .build();
    match conn.call(ping, ROUNDTRIP_TIMEOUT)?.await {
        Ok(_) => {
            conn.iq_resp([xml!("<roundtrip xmlns='urn:example:roundtrip'/>")])
                .send()?;
            Ok(())
        }
        Err(CallError::Timeout) => Err(StanzaError::new(Condition::RemoteServerTimeout)
            .with_text("en", "the user did not answer the ping")),
        Err(CallError::Error(error, _)) => Err(*error),
        Err(error) => {
            Err(StanzaError::new(Condition::ServiceUnavailable).with_text("en", error.to_string()))
        }
    }
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

/// The showcase's router, for an instance without a private domain.
pub fn router() -> Router {
    router_for(None)
}

/// The showcase's router, for an instance whose private domain is `instance_domain`.
pub fn router_for(instance_domain: Option<String>) -> Router {
    let extra = FormSpec::new("urn:example:showcase")
        .field(Field::text_single("max-file-size"))
        .new_with(FormType::Result, [("max-file-size", "1048576")]);
    let counters = Arc::new(Counters::default());
    Router::new()
        .state(counters.clone())
        .state(Arc::new(InstanceName(instance_domain)))
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
                .set("counter", increment)
                .get("counter", count)
                .get("privileged", roster)
                .set("privileged", notify)
                .get("instance", instance)
                .get("roundtrip", roundtrip)
        })
        .message(|m| m.chat(chat))
        .at(To::local("shout"), |r| r.message(|m| m.chat(shout)))
        .presence(|p| p.probe(probe))
        .include(rpc())
        .include(commands(counters))
        .fallback(not_implemented)
}

/// The survey's first stage: a name.
pub static SURVEY_NAME: LazyLock<FormSpec> = LazyLock::new(|| {
    FormSpec::new("urn:example:survey:name")
        .title("Survey")
        .field(Field::text_single("name").required().label("Your name"))
});

/// The survey's second stage: a colour.
pub static SURVEY_COLOR: LazyLock<FormSpec> = LazyLock::new(|| {
    FormSpec::new("urn:example:survey:color")
        .title("Survey")
        .field(
            Field::list_single("color")
                .required()
                .label("Your favourite colour")
                .option("Red", "red")
                .option("Green", "green")
                .option("Blue", "blue"),
        )
});

/// Per-user counters, one per bare JID (every resource of a user shares it).
#[derive(Default)]
pub struct Counters(Mutex<HashMap<String, u64>>);

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one to `user`'s counter and returns it (atomically: under the lock).
    pub fn increment(&self, user: &str) -> u64 {
        let mut counters = self.lock();
        let count = counters.entry(user.to_string()).or_default();
        *count += 1;
        *count
    }

    /// `user`'s counter.
    pub fn get(&self, user: &str) -> u64 {
        self.lock().get(user).copied().unwrap_or(0)
    }

    /// Sets `user`'s counter to 0.
    pub fn reset(&self, user: &str) {
        self.lock().insert(user.to_string(), 0);
    }
}

/// The sender's bare JID, the key of its counter.
fn user_of(conn: &Conn) -> Result<String, StanzaError> {
    conn.from_jid()
        .map(|jid| jid.to_bare().to_string())
        .ok_or_else(|| StanzaError::new(Condition::BadRequest).with_text("en", "no sender"))
}

/// `<inc xmlns='urn:example:counter'/>`: adds one to the sender's counter, answers it.
pub fn increment(
    conn: Conn,
    State(counters): State<Arc<Counters>>,
    _inc: Element,
) -> Result<(), StanzaError> {
    let count = counters.increment(&user_of(&conn)?);
    conn.iq_resp([xml!("<count xmlns='urn:example:counter'>{count}</count>")])
        .send()?;
    Ok(())
}

/// `<count xmlns='urn:example:counter'/>`: the sender's counter.
pub fn count(
    conn: Conn,
    State(counters): State<Arc<Counters>>,
    _count: Element,
) -> Result<(), StanzaError> {
    let count = counters.get(&user_of(&conn)?);
    conn.iq_resp([xml!("<count xmlns='urn:example:counter'>{count}</count>")])
        .send()?;
    Ok(())
}

/// The ad-hoc commands: `survey` (two stages) and `counter-reset` (none).
pub fn commands(counters: Arc<Counters>) -> Commands {
    Commands::new()
        .command(
            Command::new("survey", "Survey")
                .stage(SURVEY_NAME.clone())
                .stage(SURVEY_COLOR.clone())
                .on_complete(|_conn, forms| {
                    let name = forms[0].text("name").unwrap_or_default();
                    let color = forms[1].value("color").unwrap_or_default();
                    Ok(Finish::note(Note::info(format!(
                        "Thanks {name}, you like {color}"
                    ))))
                }),
        )
        .command(
            Command::new("counter-reset", "Reset counter").on_complete(move |conn, _forms| {
                counters.reset(&user_of(conn)?);
                Ok(Finish::note(Note::info("Counter reset")))
            }),
        )
}

/// `<roster xmlns='urn:example:privileged'/>`: the sender's roster, read through the
/// server's XEP-0356 roster permission, one `<item jid='..'/>` per contact; `forbidden`
/// (auth) when the server granted none.
pub async fn roster(conn: Conn) -> Result<(), StanzaError> {
    let user = user_of(&conn)?;
    let roster = conn.privileged().roster(&user).await?;
    let mut answer = xml!("<roster xmlns='urn:example:privileged'/>");
    for item in &roster.items {
        answer.append_child(xml!(
            "<item xmlns='urn:example:privileged' jid='{}'/>",
            item.jid.as_str()
        ));
    }
    conn.iq_resp([answer]).send()?;
    Ok(())
}

/// `<notify xmlns='urn:example:privileged' to='JID'>TEXT</notify>`: a chat message with
/// body TEXT to JID, sent on the sender's behalf through the server's XEP-0356 message
/// permission (it comes from the sender's bare JID); `forbidden` (auth) when the server
/// granted none.
pub fn notify(conn: Conn, notify: Element) -> Result<(), StanzaError> {
    let user = user_of(&conn)?;
    let to = notify
        .attr("to")
        .filter(|to| exampple::jid::is_valid(to))
        .ok_or_else(|| {
            StanzaError::new(Condition::BadRequest).with_text("en", "`to` must be a JID")
        })?;
    let message = stanza::message(MessageType::Chat)
        .from(user)
        .to(to)
        .body(notify.text())
        .build();
    conn.privileged().send_message(message)?;
    conn.iq_resp([]).send()?;
    Ok(())
}

/// A chat message to `shout@DOMAIN`: the body in upper case, from `shout@DOMAIN`.
pub fn shout(conn: Conn, payload: Vec<Element>) -> Result<(), StanzaError> {
    let body = payload
        .iter()
        .find(|e| e.name() == "body")
        .map(Element::text)
        .unwrap_or_default();
    conn.send(
        stanza::message(MessageType::Chat)
            .to(conn.from().unwrap_or_default())
            .from(conn.to().unwrap_or_default())
            .body(body.to_uppercase())
            .build(),
    )?;
    Ok(())
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
