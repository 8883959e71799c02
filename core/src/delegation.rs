//! XEP-0355 Namespace Delegation envelopes: unwrap delegated stanzas, wrap the answers back.
//!
//! The server forwards a stanza it delegated to the component inside an envelope:
//!
//! ```text
//! <iq type='set' from='localhost' to='component.localhost' id='OUTER'>
//!   <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>
//!     <iq xmlns='jabber:client' type='get' from='alice@localhost/d' to='localhost' id='INNER'>...</iq>
//!   </forwarded></delegation></iq>
//! ```
//!
//! The component routes the inner stanza; its answer goes back to the server as the result
//! of the outer iq, carrying the same envelope around the inner answer.
//!
//! ```
//! use exampple_core::{delegation::Envelope, stanza, xml};
//!
//! let outer = xml::parse(
//!     "<iq type='set' from='localhost' to='component.localhost' id='OUTER'>\
//!      <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>\
//!      <iq xmlns='jabber:client' type='get' from='alice@localhost/d' to='localhost' id='INNER'>\
//!      <query xmlns='urn:example:delegated'/></iq></forwarded></delegation></iq>",
//! ).unwrap();
//! let (envelope, inner) = Envelope::unwrap(&outer, &["urn:xmpp:delegation:2"]).unwrap();
//! assert_eq!(inner.attr("id"), Some("INNER"));
//! let answer = envelope.wrap(stanza::iq_result(&inner, []));
//! assert_eq!(answer.attr("id"), Some("OUTER"));
//! assert_eq!(answer.attr("to"), Some("localhost"));
//! assert_eq!(answer.attr("type"), Some("result"));
//! ```

use minidom::Element;

use crate::ns;
use crate::stanza;

/// The envelope a delegated stanza came in; it wraps answers back.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The outer iq, without its children.
    outer: Element,
    /// The delegation namespace (`urn:xmpp:delegation:1` or `:2`).
    namespace: String,
}

impl Envelope {
    /// The delegation namespace of this envelope.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The outer iq (without its children).
    pub fn outer(&self) -> &Element {
        &self.outer
    }

    /// If `stanza` is an iq set carrying `<delegation xmlns=NS><forwarded>STANZA</forwarded>`
    /// with NS one of `namespaces`, the envelope and the inner stanza.
    ///
    /// A `<forwarded xmlns='urn:xmpp:forward:0'>` directly under the iq is accepted too when
    /// `urn:xmpp:forward:0` is one of `namespaces`.
    pub fn unwrap<S: AsRef<str>>(
        stanza: &Element,
        namespaces: &[S],
    ) -> Option<(Envelope, Element)> {
        if stanza.name() != "iq" || stanza.attr("type") != Some("set") {
            return None;
        }
        let wrapper = stanza.children().next()?;
        let wrapper_ns = wrapper.ns();
        if !namespaces.iter().any(|n| n.as_ref() == wrapper_ns) {
            return None;
        }
        let forwarded = if wrapper.name() == "forwarded" && wrapper_ns == ns::FORWARD {
            wrapper
        } else {
            wrapper.get_child("forwarded", ns::FORWARD)?
        };
        let inner = forwarded
            .children()
            .find(|c| stanza::StanzaKind::from_name(c.name()).is_some())?
            .clone();
        let mut outer = Element::bare("iq", stanza.ns());
        for (name, value) in [
            ("id", stanza.attr("id")),
            ("from", stanza.attr("from")),
            ("to", stanza.attr("to")),
        ] {
            if let Some(v) = value {
                crate::xml::set_attr(&mut outer, name, v);
            }
        }
        crate::xml::set_attr(&mut outer, "type", "set");
        Some((
            Envelope {
                outer,
                namespace: wrapper_ns,
            },
            inner,
        ))
    }

    /// The result of the outer iq, carrying `inner_reply` in the envelope.
    pub fn wrap(&self, inner_reply: Element) -> Element {
        let forwarded = Element::builder("forwarded", ns::FORWARD)
            .append(inner_reply)
            .build();
        let payload = if self.namespace == ns::FORWARD {
            forwarded
        } else {
            Element::builder("delegation", self.namespace.as_str())
                .append(forwarded)
                .build()
        };
        stanza::iq_result(&self.outer, [payload])
    }
}

/// The namespaces a server advertises as delegated to the component, from its
/// `<message><delegation xmlns='urn:xmpp:delegation:N'><delegated namespace='NS'/>...`.
pub fn advertised_namespaces(stanza: &Element) -> Option<Vec<String>> {
    if stanza.name() != "message" {
        return None;
    }
    let delegation = stanza.children().find(|c| {
        c.name() == "delegation" && (c.ns() == ns::DELEGATION_1 || c.ns() == ns::DELEGATION_2)
    })?;
    Some(
        delegation
            .children()
            .filter(|c| c.name() == "delegated")
            .filter_map(|c| c.attr("namespace").map(str::to_string))
            .collect(),
    )
}

/// If `node` is a delegation disco node (`urn:xmpp:delegation:N::NS` or
/// `urn:xmpp:delegation:N:bare:NS`), the delegated namespace NS.
pub fn delegated_namespace_of_node(node: &str) -> Option<&str> {
    let rest = node.strip_prefix("urn:xmpp:delegation:")?;
    let (_version, rest) = rest.split_once(':')?;
    rest.strip_prefix(':')
        .or_else(|| rest.strip_prefix("bare:"))
        .filter(|ns| !ns.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes() {
        assert_eq!(
            delegated_namespace_of_node("urn:xmpp:delegation:2::urn:example:delegated"),
            Some("urn:example:delegated")
        );
        assert_eq!(
            delegated_namespace_of_node("urn:xmpp:delegation:1:bare:jabber:iq:version"),
            Some("jabber:iq:version")
        );
        assert_eq!(delegated_namespace_of_node("urn:xmpp:delegation:2"), None);
        assert_eq!(delegated_namespace_of_node("other"), None);
    }
}
