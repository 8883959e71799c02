//! Jabber-RPC ([XEP-0009]): XML-RPC carried in `<query xmlns='jabber:iq:rpc'/>`.
//!
//! * [`Value`] is the XML-RPC value model, parsed from and rendered to
//!   `<value/>` elements.
//! * [`Rpc`] is a registry of methods. [`Rpc::handle_query`] answers the
//!   `<query/>` of an iq `set` with the `<query/>` of the iq `result`: the
//!   method's value, or an XML-RPC fault for a method error, an unknown
//!   method or a wrong number of parameters. Only a malformed request is an
//!   `Err`, for the caller to answer with a `bad-request` stanza error.
//! * [`Rpc::call_element`] and [`Rpc::parse_response`] are the client side.
//!
//! ```
//! use exampple_core::rpc::{self, Fault, Rpc, Value};
//!
//! let rpc = Rpc::new().method_with_arity("sum_int", 2, |params| {
//!     let a: i32 = rpc::param(&params, 0)?;
//!     let b: i32 = rpc::param(&params, 1)?;
//!     a.checked_add(b).ok_or_else(|| Fault::new(1, "overflow"))
//! });
//!
//! let request = Rpc::call_element("sum_int", [12, 55]);
//! let response = rpc.handle_query(&request).unwrap();
//! assert_eq!(
//!     String::from(&response),
//!     "<query xmlns='jabber:iq:rpc'><methodResponse><params><param>\
//!      <value><int>67</int></value></param></params></methodResponse></query>"
//! );
//! assert_eq!(Rpc::parse_response(&response), Ok(Ok(Value::Int(67))));
//! ```
//!
//! Differences from exampple, on purpose: methods live in an explicit
//! registry; an unknown method or a wrong arity is an XML-RPC fault in the
//! iq result (XEP-0009: application-level errors travel in the XML-RPC
//! payload), not an `item-not-found` stanza error; a call without
//! `<params/>` is a call without parameters; arrays, structs, empty
//! `<string/>` and the classic `19980717T14:08:55` dates decode; a
//! parameter that is not a proper value is a bad request instead of being
//! skipped.
//!
//! [XEP-0009]: https://xmpp.org/extensions/xep-0009.html

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minidom::Element;

use crate::controller::Controller;
use crate::outcome::BoxError;
use crate::router::Router;
use crate::stanza::{Condition, IqType, StanzaError, StanzaType};
use crate::xml;

/// The namespace of Jabber-RPC: `jabber:iq:rpc`.
pub const NS_RPC: &str = "jabber:iq:rpc";

/// How deep arrays and structs may nest in a received value.
pub const MAX_VALUE_DEPTH: usize = 64;

/// An XML-RPC `dateTime.iso8601`, kept as the string that was given (e.g.
/// `19980717T14:08:55`); no calendar check is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime(String);

impl DateTime {
    /// Wraps an ISO 8601 date and time, as written on the wire.
    pub fn new(iso8601: impl Into<String>) -> Self {
        DateTime(iso8601.into())
    }

    /// The date and time as written on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An XML-RPC `<struct/>`: named members, in order.
///
/// ```
/// use exampple_core::rpc::{Struct, Value};
///
/// let point = Struct::new().with("x", 1).with("y", 2);
/// assert_eq!(point.get("y"), Some(&Value::Int(2)));
/// assert_eq!(point.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct {
    members: Vec<(String, Value)>,
}

impl Struct {
    /// An empty struct.
    pub fn new() -> Self {
        Struct::default()
    }

    /// Adds (or replaces) a member, builder style.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(name, value);
        self
    }

    /// Sets member `name`: replaces its value in place if it exists (and
    /// returns the old one), else appends it.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let name = name.into();
        let value = value.into();
        if let Some((_, slot)) = self
            .members
            .iter_mut()
            .find(|(existing, _)| *existing == name)
        {
            return Some(std::mem::replace(slot, value));
        }
        self.members.push((name, value));
        None
    }

    /// The value of the first member called `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, value)| value)
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.members
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Struct {
    /// Collects members in order; a repeated name replaces the earlier value.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut result = Struct::new();
        for (name, value) in iter {
            result.insert(name, value);
        }
        result
    }
}

impl IntoIterator for Struct {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.into_iter()
    }
}

/// An XML-RPC value.
///
/// It converts from Rust values (`i32` and smaller integers, `bool`, `&str`,
/// `String`, `f64`, `f32`, `Vec<T>`, [`Struct`], [`DateTime`], and
/// `Option<T>` where `None` is `Nil`) and back with `TryFrom` or the `as_*`
/// accessors. Bytes go in [`Value::Base64`] explicitly (a `Vec<u8>` converts
/// to an array of ints).
///
/// ```
/// use exampple_core::rpc::Value;
///
/// let element: minidom::Element =
///     "<value xmlns='jabber:iq:rpc'><array><data><value><i4>6</i4></value>\
///      <value>Colorado</value></data></array></value>"
///         .parse()
///         .unwrap();
/// let value = Value::from_element(&element).unwrap();
/// assert_eq!(value, Value::from(vec![Value::from(6), Value::from("Colorado")]));
/// assert_eq!(
///     String::from(&value.to_element()),
///     "<value xmlns='jabber:iq:rpc'><array><data><value><int>6</int></value>\
///      <value><string>Colorado</string></value></data></array></value>"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<int/>` or `<i4/>`: a 32-bit signed integer.
    Int(i32),
    /// `<boolean/>`: `0` or `1`.
    Boolean(bool),
    /// `<string/>`, or text directly in `<value/>`.
    String(String),
    /// `<double/>`.
    Double(f64),
    /// `<dateTime.iso8601/>`.
    DateTime(DateTime),
    /// `<base64/>`: bytes.
    Base64(Vec<u8>),
    /// `<struct/>`: named members.
    Struct(Struct),
    /// `<array/>`.
    Array(Vec<Value>),
    /// `<nil/>` (the common XML-RPC extension).
    Nil,
}

impl Value {
    /// The XML-RPC name of the type: `int`, `boolean`, `string`, `double`,
    /// `dateTime.iso8601`, `base64`, `struct`, `array` or `nil`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Boolean(_) => "boolean",
            Value::String(_) => "string",
            Value::Double(_) => "double",
            Value::DateTime(_) => "dateTime.iso8601",
            Value::Base64(_) => "base64",
            Value::Struct(_) => "struct",
            Value::Array(_) => "array",
            Value::Nil => "nil",
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Value::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// The boolean, if this is a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(value) => Some(*value),
            _ => None,
        }
    }

    /// The number, if this is a `Double`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(value) => Some(*value),
            _ => None,
        }
    }

    /// The text, if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(value) => Some(value),
            _ => None,
        }
    }

    /// The date, if this is a `DateTime`.
    pub fn as_datetime(&self) -> Option<&DateTime> {
        match self {
            Value::DateTime(value) => Some(value),
            _ => None,
        }
    }

    /// The bytes, if this is a `Base64`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Base64(value) => Some(value),
            _ => None,
        }
    }

    /// The members, if this is a `Struct`.
    pub fn as_struct(&self) -> Option<&Struct> {
        match self {
            Value::Struct(value) => Some(value),
            _ => None,
        }
    }

    /// The items, if this is an `Array`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(value) => Some(value),
            _ => None,
        }
    }

    /// Whether this is `Nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Reads a `<value xmlns='jabber:iq:rpc'/>` element.
    ///
    /// Text directly in `<value/>` is a string (kept as is, spaces
    /// included); whitespace around a typed element is ignored. Numbers,
    /// booleans and dates may be surrounded by spaces; base64 may contain
    /// whitespace and may omit its padding.
    ///
    /// # Errors
    ///
    /// [`RpcError::InvalidValue`] when the element is not a proper value: an
    /// unknown type, an unparsable scalar, a malformed array or struct, or
    /// nesting deeper than [`MAX_VALUE_DEPTH`].
    pub fn from_element(element: &Element) -> Result<Value, RpcError> {
        if !element.is("value", NS_RPC) {
            return Err(RpcError::InvalidValue(format!(
                "expected <value/>, found <{}/>",
                element.name()
            )));
        }
        parse_value(element, 0).map_err(RpcError::InvalidValue)
    }

    /// Renders the value as `<value xmlns='jabber:iq:rpc'>` with a typed
    /// child (strings always as `<string/>`). Doubles are written in decimal
    /// notation that parses back to the same number (NaN and the infinities,
    /// which XML-RPC cannot express, are written `NaN`, `inf` and `-inf`).
    /// Characters XML cannot carry are replaced with U+FFFD.
    pub fn to_element(&self) -> Element {
        let mut value = Element::bare("value", NS_RPC);
        let typed = match self {
            Value::Int(number) => text_element("int", &number.to_string()),
            Value::Boolean(flag) => text_element("boolean", if *flag { "1" } else { "0" }),
            Value::String(text) => text_element("string", text),
            Value::Double(number) => text_element("double", &format_double(*number)),
            Value::DateTime(date) => text_element("dateTime.iso8601", date.as_str()),
            Value::Base64(bytes) => text_element("base64", &base64_encode(bytes)),
            Value::Struct(members) => {
                let mut element = Element::bare("struct", NS_RPC);
                for (name, member_value) in members.iter() {
                    let mut member = Element::bare("member", NS_RPC);
                    member.append_child(text_element("name", name));
                    member.append_child(member_value.to_element());
                    element.append_child(member);
                }
                element
            }
            Value::Array(items) => {
                let mut data = Element::bare("data", NS_RPC);
                for item in items {
                    data.append_child(item.to_element());
                }
                let mut array = Element::bare("array", NS_RPC);
                array.append_child(data);
                array
            }
            Value::Nil => Element::bare("nil", NS_RPC),
        };
        value.append_child(typed);
        value
    }
}

impl From<&Value> for Element {
    fn from(value: &Value) -> Self {
        value.to_element()
    }
}

impl From<Value> for Element {
    fn from(value: Value) -> Self {
        value.to_element()
    }
}

macro_rules! value_from {
    ($($source:ty => |$v:ident| $make:expr),* $(,)?) => {$(
        impl From<$source> for Value {
            fn from($v: $source) -> Self {
                $make
            }
        }
    )*};
}

value_from! {
    i32 => |v| Value::Int(v),
    i16 => |v| Value::Int(v.into()),
    i8 => |v| Value::Int(v.into()),
    u16 => |v| Value::Int(v.into()),
    u8 => |v| Value::Int(v.into()),
    bool => |v| Value::Boolean(v),
    &str => |v| Value::String(v.to_owned()),
    String => |v| Value::String(v),
    &String => |v| Value::String(v.clone()),
    f64 => |v| Value::Double(v),
    f32 => |v| Value::Double(v.into()),
    DateTime => |v| Value::DateTime(v),
    Struct => |v| Value::Struct(v),
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Self {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is `Nil`.
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Nil, Into::into)
    }
}

impl<T: Into<Value>> FromIterator<T> for Value {
    /// Collects an `Array`.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Value::Array(iter.into_iter().map(Into::into).collect())
    }
}

/// A [`Value`] of another type than the one asked for (from `TryFrom`).
/// It converts into an [`invalid params`](Fault::invalid_params) fault, so
/// `?` works inside a method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
#[non_exhaustive]
pub struct TypeMismatch {
    /// The XML-RPC type wanted.
    pub expected: &'static str,
    /// The XML-RPC type found.
    pub found: &'static str,
}

macro_rules! value_try_into {
    ($($target:ty, $expected:literal, $variant:ident, |$v:ident| $make:expr;)*) => {$(
        impl TryFrom<Value> for $target {
            type Error = TypeMismatch;

            fn try_from(value: Value) -> Result<Self, Self::Error> {
                match value {
                    Value::$variant($v) => Ok($make),
                    other => Err(TypeMismatch { expected: $expected, found: other.type_name() }),
                }
            }
        }
    )*};
}

value_try_into! {
    i32, "int", Int, |v| v;
    bool, "boolean", Boolean, |v| v;
    f64, "double", Double, |v| v;
    String, "string", String, |v| v;
    DateTime, "dateTime.iso8601", DateTime, |v| v;
    Vec<u8>, "base64", Base64, |v| v;
    Struct, "struct", Struct, |v| v;
    Vec<Value>, "array", Array, |v| v;
}

macro_rules! value_ref_try_into {
    ($($target:ty, $expected:literal, $variant:ident, |$v:ident| $make:expr;)*) => {$(
        impl<'a> TryFrom<&'a Value> for $target {
            type Error = TypeMismatch;

            fn try_from(value: &'a Value) -> Result<Self, Self::Error> {
                match value {
                    Value::$variant($v) => Ok($make),
                    other => Err(TypeMismatch { expected: $expected, found: other.type_name() }),
                }
            }
        }
    )*};
}

value_ref_try_into! {
    i32, "int", Int, |v| *v;
    bool, "boolean", Boolean, |v| *v;
    f64, "double", Double, |v| *v;
    String, "string", String, |v| v.clone();
    &'a str, "string", String, |v| v.as_str();
    &'a DateTime, "dateTime.iso8601", DateTime, |v| v;
    &'a [u8], "base64", Base64, |v| v.as_slice();
    &'a Struct, "struct", Struct, |v| v;
    &'a [Value], "array", Array, |v| v.as_slice();
}

/// Reads parameter `index` of a method call as a `T` (`i32`, `bool`, `f64`,
/// `String`, `&str`, `&DateTime`, `&[u8]`, `&Struct` or `&[Value]`).
///
/// # Errors
///
/// An [`invalid params`](Fault::invalid_params) fault when the parameter is
/// missing or of another type.
///
/// ```
/// use exampple_core::rpc::{self, Value};
///
/// let params = vec![Value::from("Colorado"), Value::from(6)];
/// let state: &str = rpc::param(&params, 0).unwrap();
/// assert_eq!(state, "Colorado");
/// assert!(rpc::param::<bool>(&params, 1).is_err());
/// assert!(rpc::param::<i32>(&params, 2).is_err());
/// ```
pub fn param<'a, T>(params: &'a [Value], index: usize) -> Result<T, Fault>
where
    T: TryFrom<&'a Value, Error = TypeMismatch>,
{
    let value = params
        .get(index)
        .ok_or_else(|| Fault::invalid_params(format!("parameter {index} is missing")))?;
    T::try_from(value)
        .map_err(|mismatch| Fault::invalid_params(format!("parameter {index}: {mismatch}")))
}

/// An XML-RPC fault: the error answer of a method, sent in the iq
/// `result` as `<methodResponse><fault/></methodResponse>`.
///
/// The codes used by this module for protocol problems follow the
/// XML-RPC fault code interoperability convention (`-32601` method not
/// found, `-32602` invalid parameters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault {code}: {message}")]
#[non_exhaustive]
pub struct Fault {
    /// The `faultCode`.
    pub code: i32,
    /// The `faultString`.
    pub message: String,
}

impl Fault {
    /// The code answered for an unknown method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// The code answered for a wrong number or type of parameters.
    pub const INVALID_PARAMS: i32 = -32602;

    /// A fault with any code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Fault {
            code,
            message: message.into(),
        }
    }

    /// The fault for an unknown method: code [`Fault::METHOD_NOT_FOUND`].
    pub fn method_not_found(method_name: &str) -> Self {
        Fault::new(
            Fault::METHOD_NOT_FOUND,
            format!("method not found: {method_name}"),
        )
    }

    /// The fault for bad parameters: code [`Fault::INVALID_PARAMS`].
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Fault::new(Fault::INVALID_PARAMS, message)
    }

    /// The fault as the struct XML-RPC sends: `faultCode` and `faultString`.
    pub fn to_value(&self) -> Value {
        Value::Struct(
            Struct::new()
                .with("faultCode", self.code)
                .with("faultString", self.message.as_str()),
        )
    }

    /// Reads the struct of a `<fault/>`: `faultCode` (int) and
    /// `faultString` (string); `None` if it has another shape.
    pub fn from_value(value: &Value) -> Option<Fault> {
        let members = value.as_struct()?;
        Some(Fault::new(
            members.get("faultCode")?.as_i32()?,
            members.get("faultString")?.as_str()?,
        ))
    }
}

impl From<TypeMismatch> for Fault {
    fn from(mismatch: TypeMismatch) -> Self {
        Fault::invalid_params(mismatch.to_string())
    }
}

/// Why a Jabber-RPC payload could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The request is malformed (answer it with a `bad-request` stanza
    /// error, using the text).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A received response is malformed.
    #[error("malformed response: {0}")]
    MalformedResponse(String),
    /// A `<value/>` element is malformed (from [`Value::from_element`]).
    #[error("invalid value: {0}")]
    InvalidValue(String),
}

/// A parsed `<methodCall/>`: the method name and its parameters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MethodCall {
    /// The `<methodName/>`.
    pub method_name: String,
    /// The parameters, in order.
    pub params: Vec<Value>,
}

impl MethodCall {
    /// A call of `method_name` with `params`.
    pub fn new<I, V>(method_name: impl Into<String>, params: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        MethodCall {
            method_name: method_name.into(),
            params: params.into_iter().map(Into::into).collect(),
        }
    }

    /// Reads the `<query xmlns='jabber:iq:rpc'/>` of a request: exactly one
    /// `<methodCall/>` with one `<methodName/>` and at most one
    /// `<params/>` (none means no parameters), each `<param/>` holding one
    /// `<value/>`.
    ///
    /// # Errors
    ///
    /// [`RpcError::BadRequest`] when the query does not have that shape.
    pub fn parse(query: &Element) -> Result<MethodCall, RpcError> {
        let bad = |text: String| RpcError::BadRequest(text);
        if !query.is("query", NS_RPC) {
            return Err(bad(format!(
                "expected <query xmlns='{NS_RPC}'/>, found <{} xmlns='{}'/>",
                query.name(),
                query.ns()
            )));
        }
        let method_call = single_child(query, "methodCall").map_err(bad)?;
        let mut method_name = None;
        let mut params = None;
        for child in method_call.children() {
            let slot = if child.is("methodName", NS_RPC) {
                &mut method_name
            } else if child.is("params", NS_RPC) {
                &mut params
            } else {
                return Err(bad(format!(
                    "unexpected <{}/> in <methodCall/>",
                    child.name()
                )));
            };
            if slot.replace(child).is_some() {
                return Err(bad(format!(
                    "more than one <{}/> in <methodCall/>",
                    child.name()
                )));
            }
        }
        let method_name = method_name
            .ok_or_else(|| bad("methodName tag not found".to_owned()))
            .and_then(|element| leaf_text(element).map_err(bad))?
            .trim()
            .to_owned();
        if method_name.is_empty() {
            return Err(bad("empty methodName".to_owned()));
        }
        let mut values = Vec::new();
        for (index, param) in params.into_iter().flat_map(Element::children).enumerate() {
            if !param.is("param", NS_RPC) {
                return Err(bad(format!("unexpected <{}/> in <params/>", param.name())));
            }
            let value = single_child(param, "value")
                .and_then(|value| parse_value(value, 0))
                .map_err(|text| bad(format!("param {index}: {text}")))?;
            values.push(value);
        }
        Ok(MethodCall {
            method_name,
            params: values,
        })
    }

    /// Renders `<query xmlns='jabber:iq:rpc'><methodCall/></query>`, the
    /// payload of an iq `set`. `<params/>` is always written, even empty.
    pub fn to_element(&self) -> Element {
        let mut params = Element::bare("params", NS_RPC);
        for value in &self.params {
            params.append_child(param_element(value));
        }
        let mut call = Element::bare("methodCall", NS_RPC);
        call.append_child(text_element("methodName", &self.method_name));
        call.append_child(params);
        let mut query = Element::bare("query", NS_RPC);
        query.append_child(call);
        query
    }
}

type Handler = dyn Fn(Vec<Value>) -> Result<Value, Fault> + Send + Sync;

#[derive(Clone)]
struct Method {
    arity: Option<usize>,
    handler: Arc<Handler>,
}

/// A registry of XML-RPC methods. Cloning is cheap (an [`Arc`] inside);
/// it is `Send` and `Sync`.
///
/// A method is any `Fn(Vec<Value>) -> Result<T, Fault>` closure or function
/// that is `Send + Sync + 'static`, where `T` converts into a [`Value`].
/// Registering a name again replaces the method.
///
/// ```
/// use exampple_core::rpc::{self, Fault, Rpc, Value};
///
/// fn get_state_name(params: Vec<Value>) -> Result<String, Fault> {
///     match rpc::param::<i32>(&params, 0)? {
///         6 => Ok("Colorado".to_owned()),
///         other => Err(Fault::new(4, format!("no state number {other}"))),
///     }
/// }
///
/// let rpc = Rpc::new().method_with_arity("examples.getStateName", 1, get_state_name);
/// assert_eq!(rpc.call("examples.getStateName", vec![Value::from(6)]), Ok(Value::from("Colorado")));
/// assert_eq!(rpc.call("examples.getStateName", vec![]).unwrap_err().code, Fault::INVALID_PARAMS);
/// assert_eq!(rpc.call("nope", vec![]).unwrap_err().code, Fault::METHOD_NOT_FOUND);
/// ```
#[derive(Clone, Default)]
pub struct Rpc {
    methods: Arc<BTreeMap<String, Method>>,
}

impl fmt::Debug for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rpc")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Rpc {
    /// A registry without methods.
    pub fn new() -> Self {
        Rpc::default()
    }

    /// Registers a method taking any number of parameters (the method
    /// checks them itself).
    #[must_use]
    pub fn method<F, T>(self, name: impl Into<String>, method: F) -> Self
    where
        F: Fn(Vec<Value>) -> Result<T, Fault> + Send + Sync + 'static,
        T: Into<Value>,
    {
        self.register(name.into(), None, method)
    }

    /// Registers a method taking exactly `arity` parameters: other calls
    /// are answered with an [`invalid params`](Fault::invalid_params) fault
    /// without running it.
    #[must_use]
    pub fn method_with_arity<F, T>(self, name: impl Into<String>, arity: usize, method: F) -> Self
    where
        F: Fn(Vec<Value>) -> Result<T, Fault> + Send + Sync + 'static,
        T: Into<Value>,
    {
        self.register(name.into(), Some(arity), method)
    }

    fn register<F, T>(mut self, name: String, arity: Option<usize>, method: F) -> Self
    where
        F: Fn(Vec<Value>) -> Result<T, Fault> + Send + Sync + 'static,
        T: Into<Value>,
    {
        let handler: Arc<Handler> = Arc::new(move |params| method(params).map(Into::into));
        Arc::make_mut(&mut self.methods).insert(name, Method { arity, handler });
        self
    }

    /// Whether a method is registered under `name`.
    pub fn has_method(&self, name: &str) -> bool {
        self.methods.contains_key(name)
    }

    /// The registered method names, sorted.
    pub fn method_names(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }

    /// Runs method `name` with `params`.
    ///
    /// # Errors
    ///
    /// The method's own fault, [`Fault::method_not_found`] for an unknown
    /// name, or [`Fault::invalid_params`] for a wrong number of parameters.
    pub fn call(&self, name: &str, params: Vec<Value>) -> Result<Value, Fault> {
        let method = self
            .methods
            .get(name)
            .ok_or_else(|| Fault::method_not_found(name))?;
        if let Some(arity) = method.arity
            && arity != params.len()
        {
            return Err(Fault::invalid_params(format!(
                "wrong number of parameters: {name} takes {arity}, got {}",
                params.len()
            )));
        }
        (method.handler)(params)
    }

    /// Answers the `<query xmlns='jabber:iq:rpc'/>` of an iq `set` with the
    /// `<query/>` to put in the iq `result`: the method's value in
    /// `<methodResponse><params/></methodResponse>`, or a
    /// `<methodResponse><fault/></methodResponse>` for a fault, an unknown
    /// method or a wrong number of parameters.
    ///
    /// # Errors
    ///
    /// [`RpcError::BadRequest`] when the query is malformed (see
    /// [`MethodCall::parse`]); answer it with a `bad-request` stanza error.
    pub fn handle_query(&self, query: &Element) -> Result<Element, RpcError> {
        let call = MethodCall::parse(query)?;
        let result = self.call(&call.method_name, call.params);
        if let Err(fault) = &result {
            log::debug!("jabber:iq:rpc {} answered {fault}", call.method_name);
        }
        Ok(Rpc::response_element(&result))
    }

    /// Builds the `<query xmlns='jabber:iq:rpc'><methodCall/></query>` that
    /// calls `method_name` with `params` (the payload of an iq `set`).
    pub fn call_element<I, V>(method_name: impl Into<String>, params: I) -> Element
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        MethodCall::new(method_name, params).to_element()
    }

    /// Builds the `<query xmlns='jabber:iq:rpc'><methodResponse/></query>`
    /// for a value or a fault (the payload of an iq `result`).
    pub fn response_element(result: &Result<Value, Fault>) -> Element {
        let mut response = Element::bare("methodResponse", NS_RPC);
        match result {
            Ok(value) => {
                let mut params = Element::bare("params", NS_RPC);
                params.append_child(param_element(value));
                response.append_child(params);
            }
            Err(fault) => {
                let mut element = Element::bare("fault", NS_RPC);
                element.append_child(fault.to_value().to_element());
                response.append_child(element);
            }
        }
        let mut query = Element::bare("query", NS_RPC);
        query.append_child(response);
        query
    }

    /// Reads the `<query xmlns='jabber:iq:rpc'/>` of an iq `result`: the
    /// returned value, or the fault.
    ///
    /// # Errors
    ///
    /// [`RpcError::MalformedResponse`] when it is not one
    /// `<methodResponse/>` holding either `<params/>` with one `<param/>` or
    /// a `<fault/>` whose value is a struct of `faultCode` (int) and
    /// `faultString` (string).
    pub fn parse_response(query: &Element) -> Result<Result<Value, Fault>, RpcError> {
        let malformed = |text: String| RpcError::MalformedResponse(text);
        if !query.is("query", NS_RPC) {
            return Err(malformed(format!(
                "expected <query xmlns='{NS_RPC}'/>, found <{} xmlns='{}'/>",
                query.name(),
                query.ns()
            )));
        }
        let response = single_child(query, "methodResponse").map_err(malformed)?;
        let mut children = response.children();
        let (Some(child), None) = (children.next(), children.next()) else {
            return Err(malformed(
                "<methodResponse/> must hold exactly one <params/> or <fault/>".to_owned(),
            ));
        };
        if child.is("params", NS_RPC) {
            let value = single_child(child, "param")
                .and_then(|param| single_child(param, "value"))
                .and_then(|value| parse_value(value, 0))
                .map_err(malformed)?;
            Ok(Ok(value))
        } else if child.is("fault", NS_RPC) {
            let value = single_child(child, "value")
                .and_then(|value| parse_value(value, 0))
                .map_err(malformed)?;
            Fault::from_value(&value).map(Err).ok_or_else(|| {
                malformed("a fault must be a struct of faultCode and faultString".to_owned())
            })
        } else {
            Err(malformed(format!(
                "unexpected <{}/> in <methodResponse/>",
                child.name()
            )))
        }
    }
}

impl From<Rpc> for Router {
    /// A router with one route, iq set `jabber:iq:rpc`, that answers XEP-0009 calls with the
    /// registry's methods: a result carrying the method response or an XML-RPC fault, or
    /// `bad-request` for a malformed call.
    ///
    /// The conversion lives here, with the payload it serves, so that the router does not
    /// depend on this module; [`Router::include`] takes the registry as it takes any router.
    fn from(rpc: Rpc) -> Router {
        let controller = Controller::from_sync(
            "exampple_core::rpc::Rpc::handle_query",
            move |conn, payload| {
                let query = payload.first().ok_or_else(|| {
                    StanzaError::new(Condition::BadRequest).with_text("en", "no query element")
                })?;
                match rpc.handle_query(query) {
                    Ok(response) => conn
                        .iq_resp([response])
                        .send()
                        .map_err(|e| Box::new(e) as BoxError),
                    Err(e) => Err(Box::new(
                        StanzaError::new(Condition::BadRequest).with_text("en", e.to_string()),
                    ) as BoxError),
                }
            },
        );
        Router::new().route(StanzaType::Iq(IqType::Set), NS_RPC, controller)
    }
}

fn param_element(value: &Value) -> Element {
    let mut param = Element::bare("param", NS_RPC);
    param.append_child(value.to_element());
    param
}

/// The only child element of `parent`, which must be `<name/>` in the RPC
/// namespace (whitespace text around it is ignored).
fn single_child<'a>(parent: &'a Element, name: &str) -> Result<&'a Element, String> {
    let mut children = parent.children();
    match (children.next(), children.next()) {
        (Some(child), None) if child.is(name, NS_RPC) => Ok(child),
        (Some(child), None) => Err(format!(
            "expected <{name}/> in <{}/>, found <{}/>",
            parent.name(),
            child.name()
        )),
        (None, _) => Err(format!("{name} tag not found")),
        (Some(_), Some(_)) => Err(format!(
            "<{}/> must hold exactly one <{name}/>",
            parent.name()
        )),
    }
}

/// The text of an element that must not contain elements.
fn leaf_text(element: &Element) -> Result<String, String> {
    if element.children().next().is_some() {
        return Err(format!("<{}/> must contain only text", element.name()));
    }
    Ok(element.text())
}

fn parse_value(value: &Element, depth: usize) -> Result<Value, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("values nested deeper than {MAX_VALUE_DEPTH}"));
    }
    let mut children = value.children();
    let typed = match (children.next(), children.next()) {
        (None, _) => return Ok(Value::String(value.text())),
        (Some(typed), None) => typed,
        (Some(_), Some(_)) => return Err("<value/> holds more than one element".to_owned()),
    };
    if value.texts().any(|text| !text.trim().is_empty()) {
        return Err("<value/> mixes text and an element".to_owned());
    }
    if !typed.has_ns(NS_RPC) {
        return Err(format!("unknown value type <{}/>", typed.name()));
    }
    let scalar = |typed: &Element| leaf_text(typed).map(|text| text.trim().to_owned());
    match typed.name() {
        "int" | "i4" => {
            let text = scalar(typed)?;
            text.parse()
                .map(Value::Int)
                .map_err(|_| format!("invalid int `{text}`"))
        }
        "boolean" => match scalar(typed)?.as_str() {
            "1" => Ok(Value::Boolean(true)),
            "0" => Ok(Value::Boolean(false)),
            other => Err(format!("invalid boolean `{other}`")),
        },
        "string" => leaf_text(typed).map(Value::String),
        "double" => {
            let text = scalar(typed)?;
            text.parse()
                .map(Value::Double)
                .map_err(|_| format!("invalid double `{text}`"))
        }
        "dateTime.iso8601" => {
            let text = scalar(typed)?;
            if text.is_empty() || !text.chars().all(|c| c.is_ascii_graphic()) {
                return Err(format!("invalid dateTime.iso8601 `{text}`"));
            }
            Ok(Value::DateTime(DateTime(text)))
        }
        "base64" => base64_decode(&leaf_text(typed)?).map(Value::Base64),
        "nil" => scalar(typed)?
            .is_empty()
            .then_some(Value::Nil)
            .ok_or_else(|| "<nil/> must be empty".to_owned()),
        "array" => {
            let data = single_child(typed, "data")?;
            data.children()
                .map(|item| {
                    if item.is("value", NS_RPC) {
                        parse_value(item, depth + 1)
                    } else {
                        Err(format!("unexpected <{}/> in <data/>", item.name()))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "struct" => {
            let mut members = Struct::new();
            for member in typed.children() {
                if !member.is("member", NS_RPC) {
                    return Err(format!("unexpected <{}/> in <struct/>", member.name()));
                }
                let mut name = None;
                let mut member_value = None;
                for part in member.children() {
                    let slot = if part.is("name", NS_RPC) {
                        &mut name
                    } else if part.is("value", NS_RPC) {
                        &mut member_value
                    } else {
                        return Err(format!("unexpected <{}/> in <member/>", part.name()));
                    };
                    if slot.replace(part).is_some() {
                        return Err(format!("more than one <{}/> in <member/>", part.name()));
                    }
                }
                let (Some(name), Some(member_value)) = (name, member_value) else {
                    return Err("a <member/> needs a <name/> and a <value/>".to_owned());
                };
                // Members keep their order; a repeated name keeps both.
                members
                    .members
                    .push((leaf_text(name)?, parse_value(member_value, depth + 1)?));
            }
            Ok(Value::Struct(members))
        }
        other => Err(format!("unknown value type <{other}/>")),
    }
}

fn format_double(number: f64) -> String {
    let mut text = number.to_string();
    if number.is_finite() && !text.contains('.') {
        text.push_str(".0");
    }
    text
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4) with padding, no line breaks.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (i, byte)| {
            group | u32::from(*byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                // Masked to 6 bits: always within the 64-entry alphabet.
                let index = ((group >> (18 - 6 * i)) & 0x3f) as usize;
                if let Some(&symbol) = BASE64_ALPHABET.get(index) {
                    out.push(char::from(symbol));
                }
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64; whitespace is skipped, padding is optional but must be
/// complete when present.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group = 0u32;
    let mut bits = 0u32;
    let mut symbols = 0usize;
    let mut padding = 0usize;
    for byte in text.bytes().filter(|byte| !byte.is_ascii_whitespace()) {
        if byte == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err("invalid base64: data after padding".to_owned());
        }
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => {
                return Err(format!(
                    "invalid base64 character `{}`",
                    char::from(byte).escape_default()
                ));
            }
        };
        symbols += 1;
        group = (group << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((group >> bits) & 0xff) as u8);
            group &= (1 << bits) - 1;
        }
    }
    let complete = padding == 0 || (padding <= 2 && (symbols + padding).is_multiple_of(4));
    if !complete || symbols % 4 == 1 {
        return Err("invalid base64 length".to_owned());
    }
    Ok(out)
}

fn text_element(name: &str, text: &str) -> Element {
    xml::text_element(name, NS_RPC, text)
}
