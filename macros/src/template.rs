//! The parser of `xml!` templates: XML with `format!` placeholders, read when the program is
//! compiled. It knows nothing of proc macros, so that it can be tested as plain code.
//!
//! It accepts what `exampple_core::xml::parse` accepts (one element, the five predefined
//! entities and character references, CDATA; no comments, DTD or processing instructions)
//! and decodes it the same way (line ends folded, attribute whitespace normalised), so the
//! element a template builds is the element the runtime parser would give.

use std::collections::HashMap;

/// Where a placeholder takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgRef {
    /// A positional argument (`{}` counted, or `{0}`).
    Index(usize),
    /// A named argument, or a variable captured from the scope (`{name}`).
    Name(String),
}

/// A `{...}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// The value.
    pub arg: ArgRef,
    /// The format spec after `:` (empty for none).
    pub spec: String,
}

/// A piece of an attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Decoded text.
    Lit(String),
    /// A value formatted with `Display` (or the spec).
    Hole(Hole),
}

/// Where a namespace comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ns {
    /// The component namespace (no `xmlns` in force).
    Component,
    /// A namespace written in the template.
    Const(String),
    /// A namespace declared with placeholders, computed at run time: the number of the
    /// declaration (see [`Decl::id`]).
    Dynamic(usize),
}

/// A namespace declaration whose value holds placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decl {
    /// Unique in the template.
    pub id: usize,
    /// The value.
    pub value: Vec<Piece>,
}

/// An attribute (namespace declarations are not attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// The namespace, `None` for an attribute without prefix.
    pub ns: Option<Ns>,
    /// The local name.
    pub name: String,
    /// The value.
    pub value: Vec<Piece>,
}

/// The content of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Decoded text.
    Text(String),
    /// A value: elements or text, chosen by its type.
    Hole(Hole),
    /// A child element.
    Element(Element),
}

/// An element of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The local name.
    pub name: String,
    /// Its namespace.
    pub ns: Ns,
    /// Namespace declarations with placeholders made on this element.
    pub decls: Vec<Decl>,
    /// Attributes, in template order.
    pub attrs: Vec<Attr>,
    /// Content, adjacent text merged.
    pub children: Vec<Content>,
}

/// A malformed template: what is wrong, and where (a byte offset into the template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Byte offset.
    pub offset: usize,
    /// For a newcomer.
    pub message: String,
}

impl Error {
    /// The message with the line and column of the offset in `template`.
    pub fn describe(&self, template: &str) -> String {
        let before = &template[..self.offset.min(template.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(
            "xml!: {} (line {line}, column {column} of the template)",
            self.message
        )
    }
}

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Parses a template.
pub fn parse(template: &str) -> Result<Element, Error> {
    let mut p = Parser {
        s: template,
        pos: 0,
        next_positional: 0,
        scopes: Vec::new(),
        next_decl: 0,
    };
    p.skip_space();
    if p.pos == p.s.len() {
        return Err(p.error_at(0, "the template is empty; it must hold one element".into()));
    }
    p.before_root()?;
    let root = p.element()?;
    p.skip_space();
    if p.pos < p.s.len() {
        let start = p.pos;
        if p.rest().starts_with('<') && p.peek_at(1).is_some_and(is_name_start) {
            p.pos += 1;
            let second = p.name("element")?;
            return Err(p.error_at(
                start,
                format!(
                    "the template has two top-level elements (<{}> and <{second}>); wrap them in one element",
                    root_qname(template)
                ),
            ));
        }
        return Err(p.error_at(
            start,
            "text after the root element; everything must be inside one element".into(),
        ));
    }
    Ok(root)
}

fn root_qname(template: &str) -> String {
    let t = template.trim_start_matches(is_space);
    t[1..]
        .chars()
        .take_while(|&c| is_name_char(c) || c == ':')
        .collect()
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    next_positional: usize,
    /// Namespace scopes: prefix (`None` for the default namespace) to namespace.
    scopes: Vec<HashMap<Option<String>, Ns>>,
    next_decl: usize,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Characters XML 1.0 can carry.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error_at(&self, offset: usize, message: String) -> Error {
        Error { offset, message }
    }

    fn error(&self, message: String) -> Error {
        self.error_at(self.pos, message)
    }

    fn skip_space(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Checks what comes before the root element.
    fn before_root(&mut self) -> Result<(), Error> {
        let rest = self.rest();
        if rest.starts_with("<?") {
            return Err(self.error(
                "XML declarations and processing instructions are not allowed; start with the element".into(),
            ));
        }
        if rest.starts_with("<!") {
            return Err(self.markup_decl_error());
        }
        if rest.starts_with('<') {
            return Ok(());
        }
        if rest.starts_with('{') && !rest.starts_with("{{") {
            return Err(self.error(
                "a placeholder outside the root element; the template must be one element, with placeholders inside it".into(),
            ));
        }
        Err(self.error("text before the root element; the template must start with `<`".into()))
    }

    fn markup_decl_error(&self) -> Error {
        let rest = self.rest();
        if rest.starts_with("<!--") {
            self.error("comments are not allowed (xml::parse rejects them too); use a Rust comment beside the macro".into())
        } else if rest.starts_with("<![CDATA[") {
            self.error("CDATA outside the root element".into())
        } else {
            self.error("a DOCTYPE or other `<!` declaration is not allowed".into())
        }
    }

    /// A name (QName syntax checked by the caller through [`Self::qname`]).
    fn name(&mut self, what: &str) -> Result<String, Error> {
        let start = self.pos;
        while self.peek().is_some_and(|c| is_name_char(c) || c == ':') {
            self.bump();
        }
        let name = &self.s[start..self.pos];
        if name.is_empty() {
            return Err(match self.peek() {
                Some('{') => self.error(format!(
                    "a placeholder cannot stand in an {what} name; names are fixed in the template"
                )),
                Some(c) => self.error(format!("expected an {what} name, found `{c}`")),
                None => self.error(format!(
                    "the template ends where an {what} name is expected"
                )),
            });
        }
        if self.peek() == Some('{') {
            return Err(self.error(format!(
                "a placeholder cannot stand in an {what} name; names are fixed in the template"
            )));
        }
        let valid = name.chars().next().is_some_and(is_name_start) && {
            let mut parts = name.split(':');
            let count = name.split(':').count();
            count <= 2 && parts.all(|p| p.chars().next().is_some_and(is_name_start))
        };
        if !valid {
            return Err(self.error_at(start, format!("`{name}` is not a valid XML {what} name")));
        }
        Ok(name.to_string())
    }

    fn lookup(&self, prefix: Option<&str>) -> Option<Ns> {
        let key = prefix.map(str::to_string);
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.get(&key).cloned())
    }

    fn element(&mut self) -> Result<Element, Error> {
        let open = self.pos;
        self.bump(); // '<'
        let qname = self.name("element")?;
        struct RawAttr {
            qname: String,
            offset: usize,
            value: Vec<Piece>,
        }
        let mut raw: Vec<RawAttr> = Vec::new();
        let self_closing;
        loop {
            let spaced = self.skip_space();
            match self.peek() {
                Some('/') => {
                    self.bump();
                    if self.peek() != Some('>') {
                        return Err(self.error(format!("expected `>` after `/` in <{qname}>")));
                    }
                    self.bump();
                    self_closing = true;
                    break;
                }
                Some('>') => {
                    self.bump();
                    self_closing = false;
                    break;
                }
                None => {
                    return Err(
                        self.error_at(open, format!("the tag <{qname} is never finished with `>`"))
                    );
                }
                Some(_) => {
                    if !spaced {
                        return Err(
                            self.error(format!("expected a space, `>` or `/>` in <{qname}>"))
                        );
                    }
                    let offset = self.pos;
                    let name = self.name("attribute")?;
                    self.skip_space();
                    if self.peek() != Some('=') {
                        return Err(self.error(format!(
                            "the attribute `{name}` of <{qname}> needs a value: {name}='...'"
                        )));
                    }
                    self.bump();
                    self.skip_space();
                    let quote = match self.peek() {
                        Some(q @ ('\'' | '"')) => q,
                        _ => {
                            return Err(self.error(format!(
                                "the value of `{name}` in <{qname}> must be in quotes ('...' or \"...\")"
                            )));
                        }
                    };
                    self.bump();
                    let value = self.attr_value(quote, &name, &qname)?;
                    if raw.iter().any(|a| a.qname == name) {
                        return Err(self.error_at(
                            offset,
                            format!("<{qname}> has the attribute `{name}` twice"),
                        ));
                    }
                    raw.push(RawAttr {
                        qname: name,
                        offset,
                        value,
                    });
                }
            }
        }
        // Namespace declarations first: they apply to the element's own name and attributes.
        let mut scope = HashMap::new();
        let mut decls = Vec::new();
        let mut attrs_raw = Vec::new();
        for a in raw {
            let prefix = if a.qname == "xmlns" {
                None
            } else if let Some(p) = a.qname.strip_prefix("xmlns:") {
                Some(p.to_string())
            } else {
                attrs_raw.push(a);
                continue;
            };
            if prefix
                .as_deref()
                .is_some_and(|p| p == "xml" || p == "xmlns")
            {
                return Err(self.error_at(
                    a.offset,
                    format!(
                        "the prefix `{}` is reserved and cannot be declared",
                        prefix.unwrap_or_default()
                    ),
                ));
            }
            let ns = match constant(&a.value) {
                Some(v) => Ns::Const(v),
                None => {
                    let id = self.next_decl;
                    self.next_decl += 1;
                    decls.push(Decl { id, value: a.value });
                    Ns::Dynamic(id)
                }
            };
            scope.insert(prefix, ns);
        }
        self.scopes.push(scope);
        let (prefix, local) = split(&qname);
        let ns = match prefix {
            Some("xml" | "xmlns") => {
                return Err(self.error_at(
                    open,
                    format!(
                        "<{qname}>: elements cannot be in the reserved `{}` namespace",
                        prefix.unwrap_or_default()
                    ),
                ));
            }
            Some(p) => self.lookup(Some(p)).ok_or_else(|| {
                self.error_at(
                    open,
                    format!("the prefix `{p}` in <{qname}> is not declared; add xmlns:{p}='...'"),
                )
            })?,
            None => self.lookup(None).unwrap_or(Ns::Component),
        };
        let mut attrs = Vec::new();
        for a in attrs_raw {
            let (prefix, name) = split(&a.qname);
            let ns = match prefix {
                None => None,
                Some("xml") => Some(Ns::Const(XML_NS.to_string())),
                Some(p) => Some(self.lookup(Some(p)).ok_or_else(|| {
                    self.error_at(
                        a.offset,
                        format!("the prefix `{p}` of the attribute `{}` is not declared; add xmlns:{p}='...'", a.qname),
                    )
                })?),
            };
            if ns.is_some() && attrs.iter().any(|b: &Attr| b.ns == ns && b.name == name) {
                return Err(self.error_at(
                    a.offset,
                    format!(
                        "<{qname}> has the attribute `{}` twice (through two prefixes)",
                        a.qname
                    ),
                ));
            }
            attrs.push(Attr {
                ns,
                name: name.to_string(),
                value: a.value,
            });
        }
        let mut children = Vec::new();
        if !self_closing {
            self.content(&qname, open, &mut children)?;
        }
        self.scopes.pop();
        Ok(Element {
            name: local.to_string(),
            ns,
            decls,
            attrs,
            children,
        })
    }

    /// Reads content up to and including the end tag of `qname`.
    fn content(
        &mut self,
        qname: &str,
        open: usize,
        children: &mut Vec<Content>,
    ) -> Result<(), Error> {
        let mut text = String::new();
        let flush = |text: &mut String, children: &mut Vec<Content>| {
            if !text.is_empty() {
                children.push(Content::Text(std::mem::take(text)));
            }
        };
        loop {
            let rest = self.rest();
            let Some(c) = self.peek() else {
                return Err(self.error_at(open, format!("<{qname}> is never closed")));
            };
            match c {
                '<' if rest.starts_with("</") => {
                    let at = self.pos;
                    self.pos += 2;
                    let close = self.name("element")?;
                    self.skip_space();
                    if self.peek() != Some('>') {
                        return Err(self.error(format!("expected `>` to end </{close}")));
                    }
                    self.bump();
                    if close != qname {
                        return Err(self.error_at(
                            at,
                            format!("</{close}> closes <{qname}>; the names must match"),
                        ));
                    }
                    flush(&mut text, children);
                    return Ok(());
                }
                '<' if rest.starts_with("<![CDATA[") => {
                    self.pos += "<![CDATA[".len();
                    let Some(end) = self.rest().find("]]>") else {
                        return Err(self.error("a CDATA section is never closed with `]]>`".into()));
                    };
                    let body = &self.s[self.pos..self.pos + end];
                    let body_start = self.pos;
                    self.decode_plain(body, body_start, &mut text, "CDATA section")?;
                    self.pos += end + 3;
                }
                '<' if rest.starts_with("<!") => return Err(self.markup_decl_error()),
                '<' if rest.starts_with("<?") => {
                    return Err(self.error("processing instructions are not allowed".into()));
                }
                '<' => {
                    flush(&mut text, children);
                    let child = self.element()?;
                    children.push(Content::Element(child));
                }
                '&' => {
                    let c = self.entity()?;
                    text.push(c);
                }
                '{' if rest.starts_with("{{") => {
                    self.pos += 2;
                    text.push('{');
                }
                '{' => {
                    flush(&mut text, children);
                    let hole = self.hole()?;
                    children.push(Content::Hole(hole));
                }
                '}' if rest.starts_with("}}") => {
                    self.pos += 2;
                    text.push('}');
                }
                '}' => return Err(self.lone_brace()),
                ']' if rest.starts_with("]]>") => {
                    return Err(self.error("`]]>` is not allowed in text; write `]]&gt;`".into()));
                }
                '\r' => {
                    self.bump();
                    if self.peek() == Some('\n') {
                        self.bump();
                    }
                    text.push('\n');
                }
                c => {
                    self.check_char(c)?;
                    self.bump();
                    text.push(c);
                }
            }
        }
    }

    /// Text of a CDATA section: only braces are special (the template is a format string).
    fn decode_plain(
        &self,
        body: &str,
        start: usize,
        text: &mut String,
        what: &str,
    ) -> Result<(), Error> {
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' | '}' => {
                    if chars.peek().map(|&(_, n)| n) == Some(c) {
                        chars.next();
                        text.push(c);
                    } else {
                        return Err(self.error_at(
                            start + i,
                            format!("a placeholder or a lone `{c}` in a {what}; write `{c}{c}` for a literal brace, and put values outside the {what}"),
                        ));
                    }
                }
                '\r' => {
                    if chars.peek().map(|&(_, n)| n) == Some('\n') {
                        chars.next();
                    }
                    text.push('\n');
                }
                c if !is_xml_char(c) => {
                    return Err(self.error_at(
                        start + i,
                        format!("the character U+{:04X} is not allowed in XML", c as u32),
                    ));
                }
                c => text.push(c),
            }
        }
        Ok(())
    }

    fn check_char(&self, c: char) -> Result<(), Error> {
        if is_xml_char(c) {
            Ok(())
        } else {
            Err(self.error(format!(
                "the character U+{:04X} is not allowed in XML",
                c as u32
            )))
        }
    }

    fn lone_brace(&self) -> Error {
        self.error("a lone `}`; write `}}` for a literal brace".into())
    }

    fn attr_value(&mut self, quote: char, name: &str, qname: &str) -> Result<Vec<Piece>, Error> {
        let start = self.pos;
        let mut pieces = Vec::new();
        let mut text = String::new();
        loop {
            let rest = self.rest();
            let Some(c) = self.peek() else {
                return Err(self.error_at(
                    start,
                    format!("the value of `{name}` in <{qname}> is never closed with {quote}"),
                ));
            };
            match c {
                c if c == quote => {
                    self.bump();
                    break;
                }
                '<' => {
                    return Err(self.error(format!(
                        "`<` in the value of `{name}` in <{qname}>; write `&lt;` (or is a quote missing?)"
                    )));
                }
                '&' => {
                    let c = self.entity()?;
                    text.push(c);
                }
                '{' if rest.starts_with("{{") => {
                    self.pos += 2;
                    text.push('{');
                }
                '{' => {
                    if !text.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut text)));
                    }
                    let hole = self.hole()?;
                    pieces.push(Piece::Hole(hole));
                }
                '}' if rest.starts_with("}}") => {
                    self.pos += 2;
                    text.push('}');
                }
                '}' => return Err(self.lone_brace()),
                // Attribute-value normalisation: each white space is a space, CRLF one space.
                '\r' => {
                    self.bump();
                    if self.peek() == Some('\n') {
                        self.bump();
                    }
                    text.push(' ');
                }
                '\t' | '\n' => {
                    self.bump();
                    text.push(' ');
                }
                c => {
                    self.check_char(c)?;
                    self.bump();
                    text.push(c);
                }
            }
        }
        if !text.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Lit(text));
        }
        Ok(pieces)
    }

    /// `&...;` at the position: the character it stands for.
    fn entity(&mut self) -> Result<char, Error> {
        let start = self.pos;
        let rest = self.rest();
        let Some(end) = rest[1..].find(';').map(|e| e + 1).filter(|&e| {
            rest[1..e]
                .chars()
                .all(|c| c == '#' || c.is_ascii_alphanumeric())
        }) else {
            return Err(self.error("a lone `&`; write `&amp;` for a literal ampersand".into()));
        };
        let body = &rest[1..end];
        let c = match body {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            _ => {
                if let Some(hex) = body.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                } else if let Some(dec) = body.strip_prefix('#') {
                    dec.parse::<u32>().ok().and_then(char::from_u32)
                } else {
                    return Err(self.error_at(
                        start,
                        format!("unknown entity `&{body};`: XML knows only &amp; &lt; &gt; &apos; &quot; and character references like &#233;"),
                    ));
                }
                .filter(|&c| is_xml_char(c))
            }
        };
        let Some(c) = c else {
            return Err(self.error_at(
                start,
                format!("`&{body};` is not a character XML can carry"),
            ));
        };
        self.pos += end + 1;
        Ok(c)
    }

    /// A placeholder, at its `{`.
    fn hole(&mut self) -> Result<Hole, Error> {
        let start = self.pos;
        self.bump();
        let Some(len) = self.rest().find(['}', '{', '<', '\'', '"']) else {
            return Err(self.error_at(start, "a placeholder `{` is never closed with `}`".into()));
        };
        if !self.rest()[len..].starts_with('}') {
            return Err(self.error_at(
                start,
                "a placeholder `{` is never closed with `}`; write `{{` for a literal brace".into(),
            ));
        }
        let inner = &self.rest()[..len];
        self.pos += len + 1;
        let (arg, spec) = inner.split_once(':').unwrap_or((inner, ""));
        let arg = arg.trim();
        let arg = if arg.is_empty() {
            let i = self.next_positional;
            self.next_positional += 1;
            ArgRef::Index(i)
        } else if arg.chars().all(|c| c.is_ascii_digit()) {
            match arg.parse() {
                Ok(i) => ArgRef::Index(i),
                Err(_) => {
                    return Err(
                        self.error_at(start, format!("`{{{inner}}}`: the index is too large"))
                    );
                }
            }
        } else if is_ident(arg) {
            ArgRef::Name(arg.to_string())
        } else {
            return Err(self.error_at(
                start,
                format!("`{{{inner}}}` is not a placeholder: write `{{}}`, `{{0}}`, `{{name}}` or `{{name:spec}}`, and `{{{{` for a literal brace"),
            ));
        };
        if spec.contains(['$', '*']) {
            return Err(self.error_at(
                start,
                format!("`{{{inner}}}`: width and precision taken from arguments (`$`, `*`) are not supported; format the value first"),
            ));
        }
        Ok(Hole {
            arg,
            spec: spec.to_string(),
        })
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && s != "_"
}

fn split(qname: &str) -> (Option<&str>, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    }
}

fn constant(value: &[Piece]) -> Option<String> {
    let mut out = String::new();
    for piece in value {
        match piece {
            Piece::Lit(s) => out.push_str(s),
            Piece::Hole(_) => return None,
        }
    }
    Some(out)
}
