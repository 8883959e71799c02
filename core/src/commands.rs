//! Ad-hoc commands ([XEP-0050]): a command is a node with a name, who may run it, and
//! stages, each a data form ([`forms`](crate::forms)) the requester fills in; the last one
//! completes the command.
//!
//! ```
//! use std::sync::LazyLock;
//! use exampple_core::commands::{Command, Commands, Finish, Note};
//! use exampple_core::forms::{Field, FormSpec};
//! use exampple_core::Router;
//!
//! static NAME: LazyLock<FormSpec> = LazyLock::new(|| {
//!     FormSpec::new("urn:example:survey").field(Field::text_single("name").required())
//! });
//!
//! let commands = Commands::new().command(
//!     Command::new("greet", "Greet me")
//!         .stage(NAME.clone())
//!         .on_complete(|_conn, forms| {
//!             let name = forms[0].text("name").unwrap_or_default();
//!             Ok(Finish::note(Note::info(format!("Hello {name}"))))
//!         }),
//! );
//! let router = Router::new().include(commands);
//! ```
//!
//! What the requester sees, as the XEP says:
//! - `execute` without a session starts one and shows the first stage's form (a command
//!   without stages completes at once); with a session and a submitted form it does the
//!   stage's default action (`next`, or `complete` at the last stage);
//! - `next` validates the stage's form with the form's own rules and shows the next stage;
//!   `prev` shows the stage before, with what was submitted there filled in; `complete`
//!   validates the last stage and runs the command; `cancel` ends the session;
//! - an invalid submission answers `bad-request` with `<bad-payload/>` and the session stays
//!   usable; an action the stage does not offer, `bad-request` with `<bad-action/>`; an
//!   unknown or expired session, or one of another requester, `bad-request` with
//!   `<bad-sessionid/>`; an unknown node, `item-not-found`; a requester the command does not
//!   allow, `forbidden`; too many sessions open, `resource-constraint`.
//! - disco#items on the node `http://jabber.org/protocol/commands` lists the commands the
//!   requester may run; disco#info on a command's node describes it; the component's
//!   disco#info announces `http://jabber.org/protocol/commands`.
//!
//! Sessions are keyed by session id and requester (full JID), and expire after
//! [`Commands::lifetime`] without activity, measured on the component's clock (the test
//! kit's simulated one in tests).
//!
//! [XEP-0050]: https://xmpp.org/extensions/xep-0050.html

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use minidom::Element;

use crate::conn::Conn;
use crate::controller::Controller;
use crate::disco::NodeDirectory;
use crate::forms::{Form, FormSpec, FormType};
use crate::jid::Jid;
use crate::router::Router;
use crate::stanza::{Condition, StanzaError};
use crate::xml;

/// The namespace of ad-hoc commands.
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";

/// What the last stage's submission leads to: notes for the requester, and an optional
/// result form.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    notes: Vec<Note>,
    form: Option<Form>,
}

impl Finish {
    /// Completes with one note.
    pub fn note(note: Note) -> Self {
        Finish {
            notes: vec![note],
            form: None,
        }
    }

    /// Completes with nothing to say.
    pub fn done() -> Self {
        Finish::default()
    }

    /// Adds a note.
    pub fn and_note(mut self, note: Note) -> Self {
        self.notes.push(note);
        self
    }

    /// Adds a result form (rendered with type `result`).
    pub fn with_form(mut self, mut form: Form) -> Self {
        form.set_form_type(FormType::Result);
        self.form = Some(form);
        self
    }
}

/// A note for the requester: information, a warning or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    kind: &'static str,
    text: String,
}

impl Note {
    /// Information.
    pub fn info(text: impl Into<String>) -> Self {
        Note {
            kind: "info",
            text: text.into(),
        }
    }

    /// A warning.
    pub fn warn(text: impl Into<String>) -> Self {
        Note {
            kind: "warn",
            text: text.into(),
        }
    }

    /// An error.
    pub fn error(text: impl Into<String>) -> Self {
        Note {
            kind: "error",
            text: text.into(),
        }
    }

    fn to_element(&self) -> Element {
        xml!(
            "<note xmlns='{NS_COMMANDS}' type='{}'>{}</note>",
            self.kind,
            &self.text
        )
    }
}

type Complete = dyn Fn(&Conn, &[Form]) -> Result<Finish, StanzaError> + Send + Sync;
type Allow = dyn Fn(&Jid) -> bool + Send + Sync;

/// One command: its node, its name, who may run it, its stages and what completes it.
#[derive(Clone)]
pub struct Command {
    node: String,
    name: String,
    stages: Vec<FormSpec>,
    complete: Arc<Complete>,
    allow: Option<Arc<Allow>>,
}

impl Command {
    /// A command at `node`, listed as `name`, with no stages yet; it completes with nothing
    /// to say until [`Command::on_complete`] says otherwise.
    pub fn new(node: impl Into<String>, name: impl Into<String>) -> Self {
        Command {
            node: node.into(),
            name: name.into(),
            stages: Vec::new(),
            complete: Arc::new(|_, _| Ok(Finish::done())),
            allow: None,
        }
    }

    /// Adds a stage: a form the requester fills in, validated by the spec's own rules.
    pub fn stage(mut self, spec: FormSpec) -> Self {
        self.stages.push(spec);
        self
    }

    /// What completing does, given the request's conn and the forms submitted, one per
    /// stage, valid; an error answers the request (the session ends).
    pub fn on_complete(
        mut self,
        complete: impl Fn(&Conn, &[Form]) -> Result<Finish, StanzaError> + Send + Sync + 'static,
    ) -> Self {
        self.complete = Arc::new(complete);
        self
    }

    /// Who may run the command (default: anyone); others get `forbidden` and do not see it
    /// listed.
    pub fn allow(mut self, allow: impl Fn(&Jid) -> bool + Send + Sync + 'static) -> Self {
        self.allow = Some(Arc::new(allow));
        self
    }

    /// The command's node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The command's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn allows(&self, requester: &Jid) -> bool {
        self.allow.as_ref().is_none_or(|allow| allow(requester))
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("node", &self.node)
            .field("name", &self.name)
            .field("stages", &self.stages.len())
            .finish_non_exhaustive()
    }
}

/// An open session: where the requester is, and what it submitted so far.
struct Session {
    node: String,
    requester: String,
    stage: usize,
    /// What was submitted at each stage so far (valid), by stage.
    submitted: Vec<Option<Form>>,
    last_active: Instant,
}

/// The commands of a component, and their open sessions. Include it in the router
/// (`Router::new().include(commands)`).
#[derive(Clone)]
pub struct Commands {
    inner: Arc<Inner>,
}

struct Inner {
    commands: Vec<Command>,
    sessions: Mutex<Sessions>,
    lifetime: Duration,
    max_sessions: usize,
}

#[derive(Default)]
struct Sessions {
    open: HashMap<String, Session>,
    next: u64,
}

/// The action a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Execute,
    Next,
    Prev,
    Complete,
    Cancel,
}

impl Action {
    fn parse(action: Option<&str>) -> Result<Action, StanzaError> {
        Ok(match action {
            None | Some("execute") => Action::Execute,
            Some("next") => Action::Next,
            Some("prev") => Action::Prev,
            Some("complete") => Action::Complete,
            Some("cancel") => Action::Cancel,
            Some(_) => return Err(command_error(Condition::BadRequest, "malformed-action")),
        })
    }
}

fn command_error(condition: Condition, specific: &str) -> StanzaError {
    StanzaError::new(condition).with_application(Element::bare(specific, NS_COMMANDS))
}

impl Default for Commands {
    fn default() -> Self {
        Commands::new()
    }
}

impl Commands {
    /// How long a session lives without activity unless set.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
    /// How many sessions may be open at once unless set.
    pub const DEFAULT_MAX_SESSIONS: usize = 1000;

    /// No commands yet.
    pub fn new() -> Self {
        Commands {
            inner: Arc::new(Inner {
                commands: Vec::new(),
                sessions: Mutex::new(Sessions::default()),
                lifetime: Self::DEFAULT_LIFETIME,
                max_sessions: Self::DEFAULT_MAX_SESSIONS,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                // Configured after a clone: configure a copy (its sessions are new).
                let mut inner = Inner {
                    commands: self.inner.commands.clone(),
                    sessions: Mutex::new(Sessions::default()),
                    lifetime: self.inner.lifetime,
                    max_sessions: self.inner.max_sessions,
                };
                f(&mut inner);
                self.inner = Arc::new(inner);
            }
        }
        self
    }

    /// Adds a command.
    pub fn command(self, command: Command) -> Self {
        self.edit(|inner| inner.commands.push(command))
    }

    /// How long a session lives without activity (default [`Commands::DEFAULT_LIFETIME`]).
    pub fn lifetime(self, lifetime: Duration) -> Self {
        self.edit(|inner| inner.lifetime = lifetime)
    }

    /// How many sessions may be open at once (default [`Commands::DEFAULT_MAX_SESSIONS`]);
    /// past it, a new one is refused with `resource-constraint`.
    pub fn max_sessions(self, max: usize) -> Self {
        self.edit(|inner| inner.max_sessions = max.max(1))
    }

    /// The commands.
    pub fn commands(&self) -> &[Command] {
        &self.inner.commands
    }

    /// How many sessions are open (expired ones are dropped when the next request comes).
    pub fn open_sessions(&self) -> usize {
        self.sessions().open.len()
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn find(&self, node: &str) -> Option<&Command> {
        self.inner.commands.iter().find(|c| c.node == node)
    }

    /// The `<query/>` of disco#items on the commands node: the commands `requester` may run.
    pub fn items(&self, domain: &str, requester: Option<&Jid>) -> Element {
        let mut query =
            xml!("<query xmlns='http://jabber.org/protocol/disco#items' node='{NS_COMMANDS}'/>");
        for command in &self.inner.commands {
            if requester.is_some_and(|r| command.allows(r)) {
                query.append_child(xml!(
                    "<item xmlns='http://jabber.org/protocol/disco#items' jid='{domain}' node='{}' name='{}'/>",
                    command.node,
                    command.name
                ));
            }
        }
        query
    }

    /// The `<query/>` of disco#info on a command's node, if there is such a command.
    pub fn info(&self, node: &str) -> Option<Element> {
        let command = self.find(node)?;
        Some(xml!(
            "<query xmlns='http://jabber.org/protocol/disco#info' node='{node}'>\
               <identity category='automation' type='command-node' name='{}'/>\
               <feature var='{NS_COMMANDS}'/>\
               <feature var='jabber:x:data'/>\
             </query>",
            command.name
        ))
    }

    /// Answers one `<command/>` request of `conn` at `now`: the `<command/>` to answer with,
    /// or the stanza error.
    pub fn handle(
        &self,
        conn: &Conn,
        request: &Element,
        now: Instant,
    ) -> Result<Element, StanzaError> {
        let requester = conn
            .from_jid()
            .ok_or_else(|| StanzaError::new(Condition::BadRequest).with_text("en", "no sender"))?;
        let node = request
            .attr("node")
            .ok_or_else(|| StanzaError::new(Condition::BadRequest).with_text("en", "no node"))?;
        let command = self
            .find(node)
            .ok_or_else(|| StanzaError::new(Condition::ItemNotFound))?;
        if !command.allows(&requester) {
            return Err(StanzaError::new(Condition::Forbidden));
        }
        let action = Action::parse(request.attr("action"))?;
        let submitted = request.get_child("x", crate::forms::NS_DATA_FORMS);
        let mut sessions = self.sessions();
        let lifetime = self.inner.lifetime;
        sessions
            .open
            .retain(|_, s| now.saturating_duration_since(s.last_active) < lifetime);
        let requester_key = requester.to_string();
        let Some(id) = request.attr("sessionid") else {
            if action != Action::Execute {
                return Err(command_error(Condition::BadRequest, "bad-sessionid"));
            }
            if command.stages.is_empty() {
                drop(sessions);
                return self.complete(conn, command, &[], None);
            }
            if sessions.open.len() >= self.inner.max_sessions {
                return Err(StanzaError::new(Condition::ResourceConstraint)
                    .with_text("en", "too many command sessions open"));
            }
            sessions.next += 1;
            let id = format!("{}-{}", sessions.next, conn.request_id().0);
            sessions.open.insert(
                id.clone(),
                Session {
                    node: node.to_string(),
                    requester: requester_key,
                    stage: 0,
                    submitted: vec![None; command.stages.len()],
                    last_active: now,
                },
            );
            return Ok(stage_answer(command, &id, 0, None));
        };
        let id = id.to_string();
        let session = match sessions.open.get_mut(&id) {
            Some(s) if s.requester == requester_key && s.node == node => s,
            _ => return Err(command_error(Condition::BadRequest, "bad-sessionid")),
        };
        session.last_active = now;
        let at_last = session.stage + 1 >= command.stages.len();
        match action {
            Action::Cancel => {
                sessions.open.remove(&id);
                Ok(xml!(
                    "<command xmlns='{NS_COMMANDS}' node='{node}' sessionid='{id}' status='canceled'/>"
                ))
            }
            Action::Prev => {
                if session.stage == 0 {
                    return Err(command_error(Condition::BadRequest, "bad-action"));
                }
                session.stage -= 1;
                let stage = session.stage;
                let prefill = session.submitted[stage].clone();
                Ok(stage_answer(command, &id, stage, prefill))
            }
            Action::Execute | Action::Next | Action::Complete => {
                // `execute` is the stage's default: `complete` at the last stage, else `next`.
                let completing = match action {
                    Action::Next => false,
                    Action::Complete => true,
                    _ => at_last,
                };
                if completing != at_last {
                    return Err(command_error(Condition::BadRequest, "bad-action"));
                }
                let stage = session.stage;
                let form = validated(&command.stages[stage], submitted)?;
                session.submitted[stage] = Some(form);
                if !completing {
                    session.stage += 1;
                    let stage = session.stage;
                    let prefill = session.submitted[stage].clone();
                    return Ok(stage_answer(command, &id, stage, prefill));
                }
                let Some(session) = sessions.open.remove(&id) else {
                    return Err(command_error(Condition::BadRequest, "bad-sessionid"));
                };
                drop(sessions);
                let forms: Vec<Form> = session.submitted.into_iter().flatten().collect();
                self.complete(conn, command, &forms, Some(&id))
            }
        }
    }

    fn complete(
        &self,
        conn: &Conn,
        command: &Command,
        forms: &[Form],
        id: Option<&str>,
    ) -> Result<Element, StanzaError> {
        let finish = (command.complete)(conn, forms)?;
        let mut answer = xml!(
            "<command xmlns='{NS_COMMANDS}' node='{}' status='completed'/>",
            command.node
        );
        if let Some(id) = id {
            xml::set_attr(&mut answer, "sessionid", id);
        }
        for note in &finish.notes {
            answer.append_child(note.to_element());
        }
        if let Some(form) = &finish.form {
            answer.append_child(form.to_element());
        }
        Ok(answer)
    }
}

/// The submission of a stage, parsed and validated with the stage's spec.
fn validated(spec: &FormSpec, submitted: Option<&Element>) -> Result<Form, StanzaError> {
    let bad_payload =
        |text: String| command_error(Condition::BadRequest, "bad-payload").with_text("en", text);
    let Some(element) = submitted else {
        return Err(bad_payload("the stage's form was not submitted".into()));
    };
    let mut form = spec
        .parse(element)
        .map_err(|e| bad_payload(e.to_string()))?;
    if form.form_type() != FormType::Submit || !form.validate() {
        let text = if form.form_type() != FormType::Submit {
            "the form was not submitted (type submit)".to_string()
        } else {
            form.error_text()
        };
        return Err(bad_payload(text));
    }
    Ok(form)
}

/// The answer that shows stage `stage` of `command` in session `id`: its form (with the
/// values submitted there before, if any) and the actions it offers.
fn stage_answer(command: &Command, id: &str, stage: usize, prefill: Option<Form>) -> Element {
    let last = command.stages.len() - 1;
    let mut actions = Element::bare("actions", NS_COMMANDS);
    let default = if stage == last { "complete" } else { "next" };
    xml::set_attr(&mut actions, "execute", default);
    if stage > 0 {
        actions.append_child(Element::bare("prev", NS_COMMANDS));
    }
    actions.append_child(Element::bare(default, NS_COMMANDS));
    let form = match prefill {
        Some(mut form) => {
            form.set_form_type(FormType::Form);
            form
        }
        None => command.stages[stage].new_form(),
    };
    let mut answer = xml!(
        "<command xmlns='{NS_COMMANDS}' node='{}' sessionid='{id}' status='executing'/>",
        command.node
    );
    answer.append_child(actions);
    answer.append_child(form.to_element());
    answer
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands")
            .field("commands", &self.inner.commands)
            .field("lifetime", &self.inner.lifetime)
            .field("max_sessions", &self.inner.max_sessions)
            .finish_non_exhaustive()
    }
}

/// Routes `<command/>` requests (iq set of `http://jabber.org/protocol/commands`) to the
/// commands, and has the core answer disco#items on the commands node and disco#info on
/// each command's node.
impl From<Commands> for Router {
    fn from(commands: Commands) -> Router {
        let run = commands.clone();
        let execute = Controller::from_sync(
            "exampple_core::commands::execute",
            move |conn: Conn, payload: Vec<Element>| {
                let request = payload.first().ok_or_else(|| {
                    StanzaError::new(Condition::BadRequest).with_text("en", "no <command/>")
                })?;
                let answer = run.handle(&conn, request, conn.received_at())?;
                conn.iq_resp([answer]).send()?;
                Ok(())
            },
        );
        Router::new()
            .iq(NS_COMMANDS, |ns| ns.set("", execute))
            .with_nodes(Arc::new(commands))
    }
}

impl NodeDirectory for Commands {
    fn items_node(&self) -> &str {
        NS_COMMANDS
    }

    fn items(&self, domain: &str, requester: Option<&Jid>) -> Element {
        Commands::items(self, domain, requester)
    }

    fn info(&self, node: &str) -> Option<Element> {
        Commands::info(self, node)
    }
}
