//! Data forms ([XEP-0004]): declare a form once, then render, parse, cast,
//! validate and submit it.
//!
//! A [`FormSpec`] is the declaration: the `FORM_TYPE` value ([XEP-0068]), an
//! optional title and instructions, and the fields in the order they are
//! shown. A spec is an [`Arc`] inside, so cloning it is cheap and it can live
//! in a `static` through [`LazyLock`](std::sync::LazyLock).
//!
//! A [`Form`] is one instance of a spec: a [`FormType`] (`form`, `submit`,
//! `cancel` or `result`), the field values, the validation errors and the
//! fields the spec does not know. It converts into a minidom [`Element`]
//! (`<x xmlns='jabber:x:data'/>`) and prints as XML, so it goes straight into
//! a stanza payload.
//!
//! ```
//! use std::sync::LazyLock;
//! use exampple_core::forms::{Field, FormSpec};
//!
//! static PERSONAL: LazyLock<FormSpec> = LazyLock::new(|| {
//!     FormSpec::new("urn:xmpp:mydata")
//!         .title("Personal Details")
//!         .instructions("Fill the whole form, please.")
//!         .field(Field::text_single("name").required().label("Name"))
//!         .field(Field::text_single("surname").label("Surname"))
//!         .field(
//!             Field::list_single("gender")
//!                 .label("Gender")
//!                 .option("Male", "M")
//!                 .option("Female", "F"),
//!         )
//! });
//!
//! // The service sends the empty form...
//! let empty = PERSONAL.new_form();
//! assert!(empty.to_string().starts_with("<x xmlns='jabber:x:data' type='form'>"));
//!
//! // ...and validates what comes back.
//! let answer = "<x xmlns='jabber:x:data' type='submit'>\
//!     <field var='FORM_TYPE'><value>urn:xmpp:mydata</value></field>\
//!     <field var='gender'><value>X</value></field></x>";
//! let mut form = PERSONAL.parse(&answer.parse().unwrap()).unwrap();
//! assert!(!form.validate());
//! assert_eq!(
//!     form.error_text(),
//!     "name: name is required; gender: gender use invalid option `X`"
//! );
//! ```
//!
//! Differences from exampple's `Xdata`, on purpose:
//! * a form that failed validation keeps its type when rendered (exampple
//!   rendered `type='cancel'`, which XEP-0004 reserves for a submitter that
//!   gives up; the reason for a rejection belongs in the stanza error, built
//!   from [`Form::error_text`]);
//! * `<desc/>` is rendered, fixed fields may have no `var`, `hidden` fields
//!   may carry several values (XEP-0004 §3.2), `text-private` validates like
//!   text;
//! * [`FormSpec::parse`] keeps every received value, so a single-value field
//!   that received two values fails validation with `no-multi` instead of
//!   being silently truncated;
//! * a required field is missing when it has no non-empty value (exampple
//!   accepted an empty list);
//! * [`Form::validate`] recomputes the errors from scratch, so it can be
//!   called more than once.
//!
//! [XEP-0004]: https://xmpp.org/extensions/xep-0004.html
//! [XEP-0068]: https://xmpp.org/extensions/xep-0068.html

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ::jid::Jid;
use minidom::Element;
use rxml::{Namespace, NcName};

use crate::xml;

/// The namespace of data forms: `jabber:x:data`.
pub const NS_DATA_FORMS: &str = "jabber:x:data";

/// The `var` of the hidden field that names the form ([XEP-0068]).
///
/// [XEP-0068]: https://xmpp.org/extensions/xep-0068.html
pub const FORM_TYPE: &str = "FORM_TYPE";

/// The `type` attribute of a `<field/>`: the ten field types of XEP-0004.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `boolean`: a yes/no choice (`0`, `1`, `false` or `true`).
    Boolean,
    /// `fixed`: text for the reader (a section header), not data.
    Fixed,
    /// `hidden`: returned as is by the submitter, not shown.
    Hidden,
    /// `jid-multi`: several JIDs.
    JidMulti,
    /// `jid-single`: one JID.
    JidSingle,
    /// `list-multi`: several values among the options.
    ListMulti,
    /// `list-single`: one value among the options.
    ListSingle,
    /// `text-multi`: several lines of text, one `<value/>` per line.
    TextMulti,
    /// `text-private`: one line of text to obscure (a password).
    TextPrivate,
    /// `text-single`: one line of text; the default type.
    TextSingle,
}

impl FieldType {
    /// The name used in the `type` attribute, e.g. `"jid-multi"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Fixed => "fixed",
            FieldType::Hidden => "hidden",
            FieldType::JidMulti => "jid-multi",
            FieldType::JidSingle => "jid-single",
            FieldType::ListMulti => "list-multi",
            FieldType::ListSingle => "list-single",
            FieldType::TextMulti => "text-multi",
            FieldType::TextPrivate => "text-private",
            FieldType::TextSingle => "text-single",
        }
    }

    /// Whether a field of this type may carry more than one `<value/>`:
    /// the three `-multi` types and `hidden` (XEP-0004 §3.2).
    pub fn takes_multiple_values(self) -> bool {
        matches!(
            self,
            FieldType::JidMulti | FieldType::ListMulti | FieldType::TextMulti | FieldType::Hidden
        )
    }

    /// Whether the field offers `<option/>` elements (`list-single` and `list-multi`).
    pub fn has_options(self) -> bool {
        matches!(self, FieldType::ListMulti | FieldType::ListSingle)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldType {
    type Err = FormError;

    /// Parses a `type` attribute value; an unknown name is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "boolean" => FieldType::Boolean,
            "fixed" => FieldType::Fixed,
            "hidden" => FieldType::Hidden,
            "jid-multi" => FieldType::JidMulti,
            "jid-single" => FieldType::JidSingle,
            "list-multi" => FieldType::ListMulti,
            "list-single" => FieldType::ListSingle,
            "text-multi" => FieldType::TextMulti,
            "text-private" => FieldType::TextPrivate,
            "text-single" => FieldType::TextSingle,
            other => return Err(FormError::InvalidFieldType(other.to_owned())),
        })
    }
}

/// The `type` attribute of the `<x/>` element: where the form is in its
/// life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FormType {
    /// `form`: the form-processing entity asks for the form to be filled.
    #[default]
    Form,
    /// `submit`: the form-submitting entity sends the filled form.
    Submit,
    /// `cancel`: the form-submitting entity gives up.
    Cancel,
    /// `result`: the form-processing entity returns data.
    Result,
}

impl FormType {
    /// The name used in the `type` attribute, e.g. `"submit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FormType::Form => "form",
            FormType::Submit => "submit",
            FormType::Cancel => "cancel",
            FormType::Result => "result",
        }
    }
}

impl fmt::Display for FormType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FormType {
    type Err = FormError;

    /// Parses a `type` attribute value; an unknown name is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "form" => FormType::Form,
            "submit" => FormType::Submit,
            "cancel" => FormType::Cancel,
            "result" => FormType::Result,
            other => return Err(FormError::InvalidFormType(other.to_owned())),
        })
    }
}

/// Why a received element is not a usable data form, or why an operation
/// does not apply to a form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The element is not `<x xmlns='jabber:x:data'/>`.
    #[error(
        "not a data form: expected <x xmlns='jabber:x:data'/>, got <{name} xmlns='{namespace}'/>"
    )]
    NotADataForm {
        /// The local name of the element that was given.
        name: String,
        /// The namespace of the element that was given.
        namespace: String,
    },
    /// The `type` attribute of `<x/>` is not `form`, `submit`, `cancel` or `result`.
    #[error("invalid form type `{0}`")]
    InvalidFormType(String),
    /// A field type name is not one of the ten of XEP-0004 (only returned by
    /// [`FieldType::from_str`]: a received field of unknown type is read as
    /// `text-single`, as XEP-0004 requires).
    #[error("invalid field type `{0}`")]
    InvalidFieldType(String),
    /// A field other than `fixed` has no `var` attribute.
    #[error("a field of type `{0}` has no var attribute")]
    MissingVar(FieldType),
    /// Two fields share the same `var`.
    #[error("field `{0}` appears more than once")]
    DuplicateField(String),
    /// A `<value/>` contains elements instead of text.
    #[error("a value of field `{0}` contains elements instead of text")]
    InvalidValue(String),
    /// [`Form::submit`] was called on a `cancel` or `result` form.
    #[error("cannot submit a form of type `{0}`: only `form` and `submit` forms can be submitted")]
    CannotSubmit(FormType),
}

/// One `<option/>` of a `list-single` or `list-multi` field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldOption {
    /// The human-readable `label` attribute.
    pub label: String,
    /// The value sent back when the option is chosen.
    pub value: String,
}

impl FieldOption {
    /// An option shown as `label` whose value is `value`.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        FieldOption {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// The declaration of one field of a [`FormSpec`].
///
/// Built with one constructor per type, then the optional parts:
///
/// ```
/// use exampple_core::forms::{Field, FieldType};
///
/// let maxsubs = Field::list_single("maxsubs")
///     .label("Maximum number of subscribers")
///     .option("10", "10")
///     .option("20", "20")
///     .default_value("20");
/// assert_eq!(maxsubs.var.as_deref(), Some("maxsubs"));
/// assert_eq!(maxsubs.field_type, FieldType::ListSingle);
/// assert_eq!(maxsubs.default_values, ["20"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Field {
    /// The `var` attribute; only a `fixed` field may have none.
    pub var: Option<String>,
    /// The `type` attribute.
    pub field_type: FieldType,
    /// The `label` attribute.
    pub label: Option<String>,
    /// The `<desc/>` text (a tool-tip).
    pub desc: Option<String>,
    /// Whether `<required/>` is rendered and checked.
    pub required: bool,
    /// The options of a `list-*` field, in order (ignored for other types).
    pub options: Vec<FieldOption>,
    /// The values rendered when the form has no value for the field.
    pub default_values: Vec<String>,
}

impl Field {
    /// A field of any type.
    pub fn new(var: impl Into<String>, field_type: FieldType) -> Self {
        Field {
            var: Some(var.into()),
            field_type,
            label: None,
            desc: None,
            required: false,
            options: Vec::new(),
            default_values: Vec::new(),
        }
    }

    /// A `boolean` field.
    pub fn boolean(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::Boolean)
    }

    /// A `fixed` field with a `var`.
    pub fn fixed(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::Fixed)
    }

    /// A `fixed` field without `var` showing `text`, such as a section
    /// header: `<field type='fixed'><value>Section 1: Bot Info</value></field>`.
    /// It is only rendered in forms of type `form`.
    pub fn fixed_text(text: impl Into<String>) -> Self {
        Field {
            var: None,
            default_values: vec![text.into()],
            ..Field::new(String::new(), FieldType::Fixed)
        }
    }

    /// A `hidden` field.
    pub fn hidden(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::Hidden)
    }

    /// A `jid-multi` field.
    pub fn jid_multi(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::JidMulti)
    }

    /// A `jid-single` field.
    pub fn jid_single(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::JidSingle)
    }

    /// A `list-multi` field; add its choices with [`Field::option`].
    pub fn list_multi(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::ListMulti)
    }

    /// A `list-single` field; add its choices with [`Field::option`].
    pub fn list_single(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::ListSingle)
    }

    /// A `text-multi` field.
    pub fn text_multi(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::TextMulti)
    }

    /// A `text-private` field.
    pub fn text_private(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::TextPrivate)
    }

    /// A `text-single` field.
    pub fn text_single(var: impl Into<String>) -> Self {
        Field::new(var, FieldType::TextSingle)
    }

    /// Sets the `label` attribute.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the `<desc/>` text.
    #[must_use]
    pub fn desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = Some(desc.into());
        self
    }

    /// Marks the field as required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Adds an option (for `list-single` and `list-multi` fields; other
    /// types never render or check options).
    #[must_use]
    pub fn option(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push(FieldOption::new(label, value));
        self
    }

    /// Adds a default value, rendered when the form has no value for the
    /// field. Call it several times for a multi-value field.
    #[must_use]
    pub fn default_value(mut self, value: impl Into<String>) -> Self {
        self.default_values.push(value.into());
        self
    }

    fn has_option(&self, value: &str) -> bool {
        self.options.iter().any(|option| option.value == value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SpecInner {
    namespace: String,
    title: Option<String>,
    instructions: Vec<String>,
    /// Definition order, the `FORM_TYPE` hidden field first.
    fields: Vec<Field>,
}

/// The declaration of a form: its `FORM_TYPE`, title, instructions and
/// fields. Cheap to clone (an [`Arc`] inside), `Send` and `Sync`.
///
/// `FormSpec::new` declares the hidden `FORM_TYPE` field first, with the
/// given value; the other fields follow in the order of the
/// [`field`](FormSpec::field) calls.
///
/// ```
/// use exampple_core::forms::{Field, FormSpec, FormType};
///
/// let form = FormSpec::new("urn:example:showcase")
///     .field(Field::text_single("max-file-size"))
///     .new_with(FormType::Result, [("max-file-size", "1048576")]);
/// assert_eq!(
///     form.to_string(),
///     "<x xmlns='jabber:x:data' type='result'>\
///      <field type='hidden' var='FORM_TYPE'><value>urn:example:showcase</value></field>\
///      <field type='text-single' var='max-file-size'><value>1048576</value></field></x>"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormSpec {
    inner: Arc<SpecInner>,
}

impl FormSpec {
    /// A form whose `FORM_TYPE` is `namespace` (usually a namespace URI).
    pub fn new(namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        let form_type_field = Field::hidden(FORM_TYPE).default_value(namespace.clone());
        FormSpec {
            inner: Arc::new(SpecInner {
                namespace,
                title: None,
                instructions: Vec::new(),
                fields: vec![form_type_field],
            }),
        }
    }

    /// Sets the `<title/>`.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).title = Some(title.into());
        self
    }

    /// Adds an `<instructions/>` element (XEP-0004 allows several).
    #[must_use]
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner)
            .instructions
            .push(instructions.into());
        self
    }

    /// Declares a field after the previous ones. Declaring a `var` again
    /// replaces the earlier declaration in place; a `FORM_TYPE` field is
    /// ignored (the spec declares it itself).
    #[must_use]
    pub fn field(mut self, field: Field) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        match field.var.as_deref() {
            Some(FORM_TYPE) => {
                log::warn!("FormSpec::field: FORM_TYPE is declared by FormSpec::new, ignored");
            }
            Some(var) => {
                if let Some(existing) = inner
                    .fields
                    .iter_mut()
                    .find(|existing| existing.var.as_deref() == Some(var))
                {
                    *existing = field;
                } else {
                    inner.fields.push(field);
                }
            }
            None => inner.fields.push(field),
        }
        self
    }

    /// The `FORM_TYPE` value given to [`FormSpec::new`].
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The `<title/>`, if any.
    pub fn get_title(&self) -> Option<&str> {
        self.inner.title.as_deref()
    }

    /// The `<instructions/>`, in order.
    pub fn get_instructions(&self) -> &[String] {
        &self.inner.instructions
    }

    /// Every declared field in definition order, `FORM_TYPE` first.
    pub fn fields(&self) -> &[Field] {
        &self.inner.fields
    }

    /// The declared field whose `var` is `var`.
    pub fn get_field(&self, var: &str) -> Option<&Field> {
        self.inner
            .fields
            .iter()
            .find(|field| field.var.as_deref() == Some(var))
    }

    /// A new form of type `form` with no values but `FORM_TYPE`: what a
    /// service sends to ask for the form to be filled.
    pub fn new_form(&self) -> Form {
        self.new_with(FormType::Form, std::iter::empty::<(&str, &str)>())
    }

    /// A new form of the given type, filled with [`Form::cast`] (no
    /// validation). See [`FieldValue`] for what a value can be.
    pub fn new_with<I, K, V>(&self, form_type: FormType, values: I) -> Form
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<FieldValue>,
    {
        let mut form = Form {
            spec: self.clone(),
            form_type,
            values: BTreeMap::new(),
            unknown_fields: Vec::new(),
            errors: Vec::new(),
        };
        form.cast(values);
        form
    }

    /// Reads a received `<x xmlns='jabber:x:data'/>` against this
    /// declaration.
    ///
    /// * The form type is the `type` attribute (`form` when it is absent).
    /// * Every `<value/>` of a declared field is kept, in order; a field
    ///   without `<value/>` has no values; an absent field is absent.
    /// * Fields the spec does not declare are kept apart, see
    ///   [`Form::unknown_fields`]; fixed fields without `var`, `<title/>`,
    ///   `<instructions/>`, `<reported/>`, `<item/>` and foreign elements
    ///   are ignored, and so is the received field `type` (the declaration
    ///   decides).
    /// * A missing or different `FORM_TYPE` is recorded as a validation
    ///   error (not for `cancel` forms, which carry no fields); run
    ///   [`Form::validate`] for the full check.
    ///
    /// # Errors
    ///
    /// A [`FormError`] when the element is not a data form, its `type` is
    /// unknown, a non-fixed field has no `var`, a `var` appears twice or a
    /// `<value/>` contains elements.
    pub fn parse(&self, element: &Element) -> Result<Form, FormError> {
        if !element.is("x", NS_DATA_FORMS) {
            return Err(FormError::NotADataForm {
                name: element.name().to_owned(),
                namespace: element.ns(),
            });
        }
        let form_type = match element.attr("type") {
            None => FormType::Form,
            Some(value) => value.parse()?,
        };
        let mut values = BTreeMap::new();
        let mut unknown_fields = Vec::new();
        let mut seen = BTreeSet::new();
        for field in element.children().filter(|c| c.is("field", NS_DATA_FORMS)) {
            // XEP-0004: an unknown field type MUST be read as text-single.
            let field_type = field
                .attr("type")
                .and_then(|t| t.parse().ok())
                .unwrap_or(FieldType::TextSingle);
            let Some(var) = field.attr("var") else {
                if field_type == FieldType::Fixed {
                    continue;
                }
                return Err(FormError::MissingVar(field_type));
            };
            if !seen.insert(var) {
                return Err(FormError::DuplicateField(var.to_owned()));
            }
            let mut field_values = Vec::new();
            for value in field.children().filter(|c| c.is("value", NS_DATA_FORMS)) {
                if value.children().next().is_some() {
                    return Err(FormError::InvalidValue(var.to_owned()));
                }
                field_values.push(value.text());
            }
            if self.get_field(var).is_some() {
                values.insert(var.to_owned(), field_values);
            } else {
                unknown_fields.push(UnknownField {
                    var: var.to_owned(),
                    values: field_values,
                });
            }
        }
        let mut form = Form {
            spec: self.clone(),
            form_type,
            values,
            unknown_fields,
            errors: Vec::new(),
        };
        if form_type != FormType::Cancel {
            form.check_form_type();
        }
        Ok(form)
    }
}

/// A value given to [`Form::cast`], [`Form::submit`] or
/// [`FormSpec::new_with`]: one string or a list of strings.
///
/// It converts from strings, integers, `bool` (`"1"` / `"0"`), [`Jid`], and
/// from `Vec`s and arrays of anything printable (a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// One value.
    One(String),
    /// Several values (possibly none).
    Many(Vec<String>),
}

impl From<&str> for FieldValue {
    fn from(value: &str) -> Self {
        FieldValue::One(value.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(value: String) -> Self {
        FieldValue::One(value)
    }
}

impl From<&String> for FieldValue {
    fn from(value: &String) -> Self {
        FieldValue::One(value.clone())
    }
}

impl From<bool> for FieldValue {
    fn from(value: bool) -> Self {
        FieldValue::One(if value { "1" } else { "0" }.to_owned())
    }
}

impl From<Jid> for FieldValue {
    fn from(value: Jid) -> Self {
        FieldValue::One(value.to_string())
    }
}

impl From<&Jid> for FieldValue {
    fn from(value: &Jid) -> Self {
        FieldValue::One(value.to_string())
    }
}

macro_rules! field_value_from_integer {
    ($($int:ty),*) => {$(
        impl From<$int> for FieldValue {
            fn from(value: $int) -> Self {
                FieldValue::One(value.to_string())
            }
        }
    )*};
}

field_value_from_integer!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

impl<T: ToString> From<Vec<T>> for FieldValue {
    fn from(values: Vec<T>) -> Self {
        FieldValue::Many(values.iter().map(ToString::to_string).collect())
    }
}

impl<T: ToString> From<&[T]> for FieldValue {
    fn from(values: &[T]) -> Self {
        FieldValue::Many(values.iter().map(ToString::to_string).collect())
    }
}

impl<T: ToString, const N: usize> From<[T; N]> for FieldValue {
    fn from(values: [T; N]) -> Self {
        FieldValue::Many(values.iter().map(ToString::to_string).collect())
    }
}

/// A received field that the spec does not declare (XEP-0004: the
/// form-processing entity MUST ignore it; it is kept here for inspection).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownField {
    /// Its `var` attribute.
    pub var: String,
    /// Its values, in order.
    pub values: Vec<String>,
}

/// What a [`ValidationError`] is about. [`as_str`](ValidationCode::as_str)
/// gives exampple's error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValidationCode {
    /// `required`: a required field has no non-empty value.
    Required,
    /// `no-multi`: a single-value field has several values.
    NoMulti,
    /// `invalid-boolean`: not `0`, `1`, `false` or `true`.
    InvalidBoolean,
    /// `invalid-fixed`: a fixed value contains `\r` or `\n`.
    InvalidFixed,
    /// `invalid-jid`: not a valid JID.
    InvalidJid,
    /// `invalid-option`: not the value of one of the options.
    InvalidOption,
    /// `form_type_missing`: no `FORM_TYPE` value.
    FormTypeMissing,
    /// `form_type_not_matching`: a `FORM_TYPE` other than the spec's.
    FormTypeNotMatching,
    /// `custom`: added by the application with [`Form::add_error`].
    Custom,
}

impl ValidationCode {
    /// The error name, as in exampple (e.g. `"invalid-option"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationCode::Required => "required",
            ValidationCode::NoMulti => "no-multi",
            ValidationCode::InvalidBoolean => "invalid-boolean",
            ValidationCode::InvalidFixed => "invalid-fixed",
            ValidationCode::InvalidJid => "invalid-jid",
            ValidationCode::InvalidOption => "invalid-option",
            ValidationCode::FormTypeMissing => "form_type_missing",
            ValidationCode::FormTypeNotMatching => "form_type_not_matching",
            ValidationCode::Custom => "custom",
        }
    }
}

impl fmt::Display for ValidationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation failure: which field, what kind, and a sentence.
/// It displays as `var: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationError {
    /// The field (`FORM_TYPE` for the form type checks).
    pub var: String,
    /// The kind of failure.
    pub code: ValidationCode,
    /// The message, e.g. `name is required`.
    pub text: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.text)
    }
}

/// One data form: a [`FormSpec`], a [`FormType`], values, validation errors
/// and unknown received fields.
///
/// Values are lists of strings per `var` (a single-value field has one).
/// A field may be absent (no entry), present with no value, or present with
/// values; rendering uses the field's default values only when it is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    spec: FormSpec,
    form_type: FormType,
    values: BTreeMap<String, Vec<String>>,
    unknown_fields: Vec<UnknownField>,
    errors: Vec<ValidationError>,
}

impl Form {
    /// The declaration this form follows.
    pub fn spec(&self) -> &FormSpec {
        &self.spec
    }

    /// The `type` of the form.
    pub fn form_type(&self) -> FormType {
        self.form_type
    }

    /// Changes the `type` of the form (e.g. to answer a `cancel`).
    pub fn set_form_type(&mut self, form_type: FormType) {
        self.form_type = form_type;
    }

    /// Fills values without validating them, with exampple's rules:
    /// `FORM_TYPE` is set to the spec's value; for each *declared* field
    /// found in `values` (other keys are ignored, the last duplicate wins),
    /// a list given to a single-value field keeps its first element (no
    /// value if the list is empty) and a single value given to a
    /// multi-value field becomes a one-element list.
    ///
    /// ```
    /// use exampple_core::forms::{Field, FieldValue, FormSpec};
    ///
    /// let spec = FormSpec::new("urn:example:cast")
    ///     .field(Field::text_single("name"))
    ///     .field(Field::jid_multi("friends"));
    /// let mut form = spec.new_form();
    /// form.cast([
    ///     ("name", FieldValue::from(vec!["Manuel", "Rubio"])),
    ///     ("friends", FieldValue::from("juliet@capulet.com")),
    ///     ("age", FieldValue::from(41)),
    /// ]);
    /// assert_eq!(form.values("name"), ["Manuel"]);
    /// assert_eq!(form.values("friends"), ["juliet@capulet.com"]);
    /// assert_eq!(form.value("age"), None);
    /// ```
    pub fn cast<I, K, V>(&mut self, values: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<FieldValue>,
    {
        let mut given: BTreeMap<String, FieldValue> = BTreeMap::new();
        for (var, value) in values {
            given.insert(var.as_ref().to_owned(), value.into());
        }
        given.insert(
            FORM_TYPE.to_owned(),
            FieldValue::One(self.spec.namespace().to_owned()),
        );
        for field in &self.spec.inner.fields {
            let Some(var) = field.var.as_deref() else {
                continue;
            };
            let Some(value) = given.remove(var) else {
                continue;
            };
            let value = match value {
                FieldValue::One(value) => vec![value],
                FieldValue::Many(values) if field.field_type.takes_multiple_values() => values,
                FieldValue::Many(values) => values.into_iter().take(1).collect(),
            };
            self.values.insert(var.to_owned(), value);
        }
    }

    /// Sets the values of `var` as they are: no casting, no check, even for
    /// a field the spec does not declare (which is then never rendered).
    pub fn set_values<I, S>(&mut self, var: impl Into<String>, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.values
            .insert(var.into(), values.into_iter().map(Into::into).collect());
    }

    /// Checks the values against the declaration, replaces
    /// [`errors`](Form::errors) with what it finds, and returns whether the
    /// form is valid.
    ///
    /// The `FORM_TYPE` errors come first, then the fields in definition
    /// order. Per field: a required field without a non-empty value is
    /// `required`; a single-value field with several values is `no-multi`;
    /// then each value is checked by type: `boolean` must be `0`, `1`,
    /// `false` or `true` (case and surrounding spaces ignored), `fixed` must
    /// not contain `\r` or `\n`, `jid-*` must be valid JIDs (or empty),
    /// `list-*` must be option values; `hidden` and `text-*` are free.
    pub fn validate(&mut self) -> bool {
        self.errors.clear();
        self.check_form_type();
        let mut errors = Vec::new();
        for field in &self.spec.inner.fields {
            let Some(var) = field.var.as_deref() else {
                continue;
            };
            if var == FORM_TYPE {
                continue;
            }
            let values = self.values.get(var);
            let filled = values.is_some_and(|values| values.iter().any(|v| !v.is_empty()));
            if field.required && !filled {
                errors.push(error(
                    var,
                    ValidationCode::Required,
                    format!("{var} is required"),
                ));
                continue;
            }
            let Some(values) = values else {
                continue;
            };
            if values.len() > 1 && !field.field_type.takes_multiple_values() {
                errors.push(error(
                    var,
                    ValidationCode::NoMulti,
                    format!("{var} doesn't support multi values"),
                ));
                continue;
            }
            for value in values {
                if let Some(error) = check_value(field, var, value) {
                    errors.push(error);
                }
            }
        }
        self.errors.extend(errors);
        self.is_valid()
    }

    /// Moves a `form` to `submit`, or a `submit` to `result`, then
    /// [`cast`](Form::cast)s `values` and [`validate`](Form::validate)s.
    /// Returns whether the form is valid.
    ///
    /// ```
    /// use exampple_core::forms::{Field, FormSpec, FormType};
    ///
    /// let spec = FormSpec::new("urn:xmpp:mydata").field(Field::text_single("name").required());
    /// let mut form = spec.new_form();
    /// assert_eq!(form.submit([("name", "Manuel")]), Ok(true));
    /// assert_eq!(form.form_type(), FormType::Submit);
    /// assert_eq!(
    ///     form.to_string(),
    ///     "<x xmlns='jabber:x:data' type='submit'>\
    ///      <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:mydata</value></field>\
    ///      <field type='text-single' var='name'><value>Manuel</value></field></x>"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`FormError::CannotSubmit`] for a `cancel` or `result` form, which is
    /// left unchanged.
    pub fn submit<I, K, V>(&mut self, values: I) -> Result<bool, FormError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<FieldValue>,
    {
        self.form_type = match self.form_type {
            FormType::Form => FormType::Submit,
            FormType::Submit => FormType::Result,
            other => return Err(FormError::CannotSubmit(other)),
        };
        self.cast(values);
        Ok(self.validate())
    }

    /// Whether no validation error is recorded. A parsed form only has the
    /// `FORM_TYPE` checks until [`validate`](Form::validate) runs.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The recorded validation errors, `FORM_TYPE` first, then in
    /// definition order.
    pub fn errors(&self) -> &[ValidationError] {
        &self.errors
    }

    /// Records an application error (code [`ValidationCode::Custom`]); the
    /// form becomes invalid. [`validate`](Form::validate) clears it, so add
    /// it afterwards.
    pub fn add_error(&mut self, var: impl Into<String>, text: impl Into<String>) {
        self.errors.push(ValidationError {
            var: var.into(),
            code: ValidationCode::Custom,
            text: text.into(),
        });
    }

    /// The errors as one line, `VAR: TEXT` joined with `; ` (what a
    /// controller puts in the text of a `bad-request` error), e.g.
    /// ``name: name is required; gender: gender use invalid option `X` ``.
    pub fn error_text(&self) -> String {
        self.errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The received fields the spec does not declare, in document order.
    pub fn unknown_fields(&self) -> &[UnknownField] {
        &self.unknown_fields
    }

    /// The values of `var` (empty if the field has none or is absent).
    /// Default values are not included: see [`Field::default_values`].
    pub fn values(&self, var: &str) -> &[String] {
        self.values.get(var).map(Vec::as_slice).unwrap_or_default()
    }

    /// The first value of `var`.
    pub fn value(&self, var: &str) -> Option<&str> {
        self.values(var).first().map(String::as_str)
    }

    /// The values of `var` joined with `\n`, as XEP-0004 suggests for
    /// presenting a `text-multi` field; `None` if the field is absent.
    pub fn text(&self, var: &str) -> Option<String> {
        self.values.get(var).map(|values| values.join("\n"))
    }

    /// The first value of `var` read as a boolean (`1`/`true` or
    /// `0`/`false`, case and surrounding spaces ignored); `None` if absent
    /// or not a boolean.
    pub fn bool(&self, var: &str) -> Option<bool> {
        self.value(var).and_then(parse_bool)
    }

    /// The first value of `var` read as a JID; `None` if absent or invalid.
    pub fn jid(&self, var: &str) -> Option<Jid> {
        self.value(var).and_then(|value| Jid::new(value).ok())
    }

    /// Every value of `var` read as a JID (empty values skipped); `None` if
    /// one of them is not a valid JID.
    pub fn jids(&self, var: &str) -> Option<Vec<Jid>> {
        self.values(var)
            .iter()
            .filter(|value| !value.is_empty())
            .map(|value| Jid::new(value).ok())
            .collect()
    }

    /// Renders the form as `<x xmlns='jabber:x:data' type='…'/>`.
    ///
    /// * `form`: title, instructions, then every field in definition order
    ///   (`FORM_TYPE` first) with `label`, `<desc/>`, `<required/>`, the
    ///   values (or the defaults), then the options of `list-*` fields;
    /// * `submit`: every field that has a `var`, with only its type and
    ///   values (XEP-0004 Example 3);
    /// * `result`: like `submit`, but fields without any value are left out
    ///   (XEP-0004 Example 4, XEP-0128 extensions);
    /// * `cancel`: the bare `<x/>` (XEP-0004: no fields).
    ///
    /// Fields the spec does not declare are never rendered. Characters that
    /// XML cannot carry are replaced with U+FFFD.
    pub fn to_element(&self) -> Element {
        let mut x = Element::bare("x", NS_DATA_FORMS);
        set_attr(&mut x, "type", self.form_type.as_str());
        let full = match self.form_type {
            FormType::Cancel => return x,
            FormType::Form => true,
            FormType::Submit | FormType::Result => false,
        };
        let spec = &self.spec.inner;
        if full {
            if let Some(title) = &spec.title {
                x.append_child(text_element("title", title));
            }
            for instructions in &spec.instructions {
                x.append_child(text_element("instructions", instructions));
            }
        }
        for field in &spec.fields {
            let values = match field.var.as_deref().and_then(|var| self.values.get(var)) {
                Some(values) => values,
                None => &field.default_values,
            };
            if !full
                && (field.var.is_none()
                    || (self.form_type == FormType::Result && values.is_empty()))
            {
                continue;
            }
            let mut element = Element::bare("field", NS_DATA_FORMS);
            set_attr(&mut element, "type", field.field_type.as_str());
            if let Some(var) = &field.var {
                set_attr(&mut element, "var", var);
            }
            if full {
                if let Some(label) = &field.label {
                    set_attr(&mut element, "label", label);
                }
                if let Some(desc) = &field.desc {
                    element.append_child(text_element("desc", desc));
                }
                if field.required {
                    element.append_child(Element::bare("required", NS_DATA_FORMS));
                }
            }
            for value in values {
                element.append_child(text_element("value", value));
            }
            if full && field.field_type.has_options() {
                for option in &field.options {
                    let mut option_element = Element::bare("option", NS_DATA_FORMS);
                    set_attr(&mut option_element, "label", &option.label);
                    option_element.append_child(text_element("value", &option.value));
                    element.append_child(option_element);
                }
            }
            x.append_child(element);
        }
        x
    }

    fn check_form_type(&mut self) {
        let expected = self.spec.namespace();
        match self.value(FORM_TYPE) {
            None | Some("") => self.errors.push(error(
                FORM_TYPE,
                ValidationCode::FormTypeMissing,
                "FORM_TYPE is missing and is required".to_owned(),
            )),
            Some(got) if got != expected => {
                let text = format!("FORM_TYPE {got} != {expected} invalid");
                self.errors
                    .push(error(FORM_TYPE, ValidationCode::FormTypeNotMatching, text));
            }
            Some(_) => {}
        }
    }
}

impl From<&Form> for Element {
    fn from(form: &Form) -> Self {
        form.to_element()
    }
}

impl From<Form> for Element {
    fn from(form: Form) -> Self {
        form.to_element()
    }
}

impl fmt::Display for Form {
    /// The XML of [`Form::to_element`], as minidom writes it (attributes
    /// sorted, single quotes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buffer = Vec::new();
        self.to_element()
            .write_to(&mut buffer)
            .map_err(|_| fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&buffer))
    }
}

fn error(var: &str, code: ValidationCode, text: String) -> ValidationError {
    ValidationError {
        var: var.to_owned(),
        code,
        text,
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn check_value(field: &Field, var: &str, value: &str) -> Option<ValidationError> {
    match field.field_type {
        FieldType::Boolean if parse_bool(value).is_none() => Some(error(
            var,
            ValidationCode::InvalidBoolean,
            format!("{var} boolean is invalid: {value}"),
        )),
        FieldType::Fixed if value.contains(['\r', '\n']) => Some(error(
            var,
            ValidationCode::InvalidFixed,
            format!("{var} fixed cannot contains \\r\\n"),
        )),
        FieldType::JidSingle | FieldType::JidMulti
            if !value.is_empty() && Jid::new(value).is_err() =>
        {
            Some(error(
                var,
                ValidationCode::InvalidJid,
                format!("{var} has invalid JID `{value}`"),
            ))
        }
        FieldType::ListSingle | FieldType::ListMulti if !field.has_option(value) => {
            let text = if value.is_empty() {
                format!("{var} use invalid empty option")
            } else {
                format!("{var} use invalid option `{value}`")
            };
            Some(error(var, ValidationCode::InvalidOption, text))
        }
        _ => None,
    }
}

fn text_element(name: &str, text: &str) -> Element {
    xml::text_element(name, NS_DATA_FORMS, text)
}

fn set_attr(element: &mut Element, name: &str, value: &str) {
    // Only called with constant, valid attribute names.
    if let Ok(name) = NcName::try_from(name) {
        element.set_attr(Namespace::NONE, name, xml::xml_safe(value).into_owned());
    }
}
