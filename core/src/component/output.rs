//! The bytes for the server, and where each piece of them starts: a failed write's
//! unwritten stanzas can then be read back, to go out on the next connection.

use minidom::Element;

use crate::ns;
use crate::xml::{self, WriteError};

/// Where a piece of the output starts, and whether it is a stanza (re-sent on the next
/// connection if a failed write leaves it unwritten) or not (the stream's own writes, a
/// keepalive: never re-sent). A piece ends where the next one starts.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: usize,
    stanza: bool,
}

/// The output of the component, as the runtime takes it.
pub(super) struct Output {
    /// The bytes not handed out yet.
    transmit: Vec<u8>,
    /// The pieces of `transmit`, in order.
    marks: Vec<Mark>,
    /// The pieces of the bytes last handed out (the runtime's buffer), for
    /// [`Output::unsent_stanzas`].
    handed: Vec<Mark>,
    /// How many bytes `handed` covers.
    handed_len: usize,
    /// Stanzas written, in all (for the observer's traffic reports).
    stanzas: u64,
}

impl Output {
    pub(super) fn new() -> Self {
        Output {
            transmit: Vec::with_capacity(8192),
            marks: Vec::with_capacity(256),
            handed: Vec::with_capacity(256),
            handed_len: 0,
            stanzas: 0,
        }
    }

    /// A new connection: what was not handed out for the last one is dropped.
    pub(super) fn reset(&mut self) {
        self.transmit.clear();
        self.marks.clear();
    }

    /// The stream's own bytes, or a keepalive, in `parts`: never re-sent.
    pub(super) fn own(&mut self, parts: &[&[u8]]) {
        self.mark(false);
        for part in parts {
            self.transmit.extend_from_slice(part);
        }
    }

    /// Writes `element`, marked as a stanza to re-send if a failed write leaves it unwritten
    /// (`stanza`) or as one never re-sent. Nothing is written when XML cannot carry it (and
    /// that is logged).
    pub(super) fn element(&mut self, element: &Element, stanza: bool) -> Result<(), WriteError> {
        if log::log_enabled!(target: "exampple::wire", log::Level::Trace) {
            log::trace!(target: "exampple::wire", "send packet: {}", xml::to_string(element));
        }
        self.mark(stanza);
        let written = xml::write_in(element, ns::COMPONENT, &mut self.transmit);
        if let Err(error) = &written {
            // Nothing was written.
            self.marks.pop();
            log::error!(target: "exampple", "dropped a <{}/> that cannot be written as XML: {error}", element.name());
        } else {
            self.stanzas += 1;
        }
        written
    }

    /// Writes a stanza from its parts (an answer written straight from its request), marked
    /// to be re-sent. Nothing is written when XML cannot carry it.
    pub(super) fn stanza_of(
        &mut self,
        name: &str,
        attributes: &[(&str, Option<&str>)],
        children: &[Element],
    ) -> Result<(), WriteError> {
        let start = self.transmit.len();
        self.mark(true);
        let written = xml::write_parts(
            name,
            attributes,
            children,
            ns::COMPONENT,
            &mut self.transmit,
        );
        match &written {
            Ok(()) => {
                self.stanzas += 1;
                if log::log_enabled!(target: "exampple::wire", log::Level::Trace) {
                    let sent = String::from_utf8_lossy(&self.transmit[start..]);
                    log::trace!(target: "exampple::wire", "send packet: {sent}");
                }
            }
            // Nothing was written.
            Err(_) => {
                self.marks.pop();
            }
        }
        written
    }

    /// Stanzas written since the component started.
    pub(super) fn stanzas_written(&self) -> u64 {
        self.stanzas
    }

    fn mark(&mut self, stanza: bool) {
        self.marks.push(Mark {
            at: self.transmit.len(),
            stanza,
        });
    }

    /// Whether output waits to be handed out.
    pub(super) fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// All the output in one buffer (for `Component::poll_transmit`).
    pub(super) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            return None;
        }
        self.hand_out(0);
        let capacity = self.transmit.capacity().clamp(4096, 1 << 20);
        Some(std::mem::replace(
            &mut self.transmit,
            Vec::with_capacity(capacity),
        ))
    }

    /// All the output, appended to `buffer` (for `Component::poll_transmit_into`).
    pub(super) fn poll_transmit_into(&mut self, buffer: &mut Vec<u8>) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        if buffer.is_empty() {
            self.hand_out(0);
            std::mem::swap(buffer, &mut self.transmit);
        } else {
            self.hand_out(buffer.len());
            buffer.append(&mut self.transmit);
        }
        true
    }

    /// The pieces of `transmit` are handed out after `before` bytes handed out earlier (the
    /// runtime's buffer is that long), or alone (`before` is 0).
    #[inline]
    fn hand_out(&mut self, before: usize) {
        if before == 0 {
            self.handed.clear();
            std::mem::swap(&mut self.handed, &mut self.marks);
        } else {
            if before != self.handed_len {
                // Not the bytes handed out: what they hold is unknown, so none of it is
                // re-sent.
                self.handed.clear();
                self.handed.push(Mark {
                    at: 0,
                    stanza: false,
                });
            }
            self.handed.extend(self.marks.drain(..).map(|mark| Mark {
                at: mark.at + before,
                stanza: mark.stanza,
            }));
        }
        self.handed_len = before + self.transmit.len();
    }

    /// The stanzas of `buffer` (the bytes last handed out) that start at or after byte
    /// `written`, as elements; the one cut at `written` is logged as lost.
    pub(super) fn unsent_stanzas(&mut self, buffer: &[u8], written: usize) -> Vec<Element> {
        let marks = std::mem::take(&mut self.handed);
        let handed_len = std::mem::take(&mut self.handed_len);
        let mut unsent = Vec::new();
        if buffer.len() != handed_len {
            log::error!(target: "exampple", "a failed write of {} bytes, not the {handed_len} handed out: the stanzas in it are lost", buffer.len());
            return unsent;
        }
        for (i, mark) in marks.iter().enumerate() {
            let end = marks.get(i + 1).map_or(buffer.len(), |next| next.at);
            if !mark.stanza || end <= written {
                continue;
            }
            let Some(text) = buffer
                .get(mark.at..end)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
            else {
                log::error!(target: "exampple", "lost a stanza a failed write left unwritten: its bytes are not where they were written");
                continue;
            };
            match xml::parse_in(text, ns::COMPONENT) {
                Ok(stanza) if mark.at < written => {
                    log::warn!(target: "exampple", "lost a <{}/> (id {:?}) cut short by the failed write: the server may have part of it", stanza.name(), stanza.attr("id").unwrap_or(""));
                }
                Ok(stanza) => unsent.push(stanza),
                Err(error) => {
                    log::error!(target: "exampple", "lost a stanza a failed write left unwritten: it does not read back ({error})");
                }
            }
        }
        unsent
    }
}
