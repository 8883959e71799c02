//! The second stage of parsing: tokens into the stream header and stanzas.

use minidom::tree_builder::TreeBuilder;
use rxml::RawEvent;

use super::{ParseError, StreamHeader, StreamItem, Tokens};

/// The second stage of parsing: a [`StreamLexer`]'s tokens into the stream header and
/// complete top-level elements. It runs on the core's thread.
pub(crate) struct StreamBuilder {
    builder: TreeBuilder,
    header: Option<StreamHeader>,
    header_done: bool,
    failed: bool,
}

impl StreamBuilder {
    pub(crate) fn new() -> Self {
        StreamBuilder {
            builder: TreeBuilder::new(),
            header: None,
            header_done: false,
            failed: false,
        }
    }

    /// Builds what `tokens` hold into `out`, emptying `tokens`: the items in order, then
    /// the error that ends the stream (the builder's own, or the lexer's), if any.
    pub(crate) fn build(
        &mut self,
        tokens: &mut Tokens,
        out: &mut Vec<StreamItem>,
    ) -> Result<(), ParseError> {
        let mut result = Ok(());
        for event in tokens.events.drain(..) {
            if self.failed {
                continue;
            }
            if let Err(e) = self.on_event(event, out) {
                self.failed = true;
                result = Err(e);
            }
        }
        let lexer_error = tokens.error.take();
        result?;
        match lexer_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn on_event(&mut self, event: RawEvent, out: &mut Vec<StreamItem>) -> Result<(), ParseError> {
        if !self.header_done {
            return self.on_header_event(event, out);
        }
        let is_foot = matches!(event, RawEvent::ElementFoot(_));
        self.builder
            .process_event(event)
            .map_err(|e| ParseError::NotWellFormed(e.to_string()))?;
        if is_foot {
            match self.builder.depth() {
                1 => {
                    if let Some(el) = self.builder.unshift_child() {
                        out.push(StreamItem::Element(el));
                    }
                }
                0 => {
                    self.builder.root = None;
                    out.push(StreamItem::Close);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_header_event(
        &mut self,
        event: RawEvent,
        out: &mut Vec<StreamItem>,
    ) -> Result<(), ParseError> {
        match &event {
            RawEvent::XmlDeclaration(..) | RawEvent::Text(..) => return Ok(()),
            RawEvent::ElementHeadOpen(_, (prefix, local)) => {
                self.header = Some(StreamHeader {
                    name: local.to_string(),
                    prefix: prefix.as_ref().map(|p| p.to_string()),
                    ..StreamHeader::default()
                });
            }
            RawEvent::Attribute(_, (prefix, local), value) => {
                if let Some(h) = self.header.as_mut() {
                    let value = Some(value.to_string());
                    match (prefix.as_ref().map(|p| p.as_str()), local.as_str()) {
                        (None, "id") => h.id = value,
                        (None, "from") => h.from = value,
                        (None, "to") => h.to = value,
                        (None, "version") => h.version = value,
                        (None, "xmlns") => h.default_ns = value,
                        (Some("xmlns"), p) if Some(p) == h.prefix.as_deref() => h.stream_ns = value,
                        _ => {}
                    }
                }
            }
            RawEvent::ElementHeadClose(_) => {
                self.header_done = true;
                self.builder
                    .process_event(event)
                    .map_err(|e| ParseError::NotWellFormed(e.to_string()))?;
                out.push(StreamItem::Header(self.header.take().unwrap_or_default()));
                return Ok(());
            }
            RawEvent::ElementFoot(_) => {
                // `<stream:stream/>`: opened and closed at once.
                self.header_done = true;
                out.push(StreamItem::Header(self.header.take().unwrap_or_default()));
                out.push(StreamItem::Close);
                return Ok(());
            }
        }
        self.builder
            .process_event(event)
            .map_err(|e| ParseError::NotWellFormed(e.to_string()))
    }
}
