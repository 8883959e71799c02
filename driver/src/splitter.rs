//! Finds where the top-level elements of a stream end, without parsing them, so that two
//! lexers can tokenise different stanzas at once ([`SharedLexer`](crate::shared_lexer::SharedLexer)).
//!
//! It is a scanner, not a parser: it follows tags, attribute quotes, comments, CDATA
//! sections and processing instructions only far enough to keep count of the open
//! elements, and reports the places where the count comes back to zero. Nothing depends on
//! it for correctness: every byte is still tokenised by rxml with the stream's rules, and a
//! piece that ends inside a stanza is continued by the lexer that began it. What the
//! splitter must never do is report a place inside an element of well-formed XML (a
//! property test checks it against rxml). Anything it does not expect (text or markup
//! between stanzas, the stream's end tag, a malformed tag) makes it *opaque*: it reports
//! nothing more, and one lexer tokenises the rest of the stream, as if it were not there.

/// Where the scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the stream header: whitespace and `<?...?>` may come first.
    Prolog,
    /// Just after a `<` in the prolog.
    PrologOpen,
    /// In the stream header's tag (`<stream:stream ...`).
    Header,
    /// In a quoted value in the header's tag.
    HeaderQuote(u8),
    /// Between stanzas.
    Stream,
    /// In text inside a stanza.
    Text,
    /// Just after a `<` (inside a stanza, or starting one).
    Open,
    /// In a start tag.
    StartTag,
    /// In a quoted attribute value.
    Quote(u8),
    /// After a `/` in a start tag (`/>` ends an empty element).
    Slash,
    /// In an end tag.
    EndTag,
    /// After `<!`: `--` starts a comment, `[CDATA[` a CDATA section (`matched` bytes of it).
    Bang { matched: usize },
    /// In a comment, with how many `-` were just seen.
    Comment { dashes: usize },
    /// In a CDATA section, with how many `]` were just seen.
    Cdata { brackets: usize },
    /// In a processing instruction, after a `?` or not.
    Pi { question: bool },
    /// In the prolog, in a processing instruction (the XML declaration).
    PrologPi { question: bool },
    /// Reports nothing more.
    Opaque,
}

/// The scanner. Feed it the stream's bytes in order; it reports the offsets (counted from
/// the first byte it was given) where the header ends and where stanzas end.
#[derive(Debug)]
pub(crate) struct Splitter {
    at: At,
    /// Open elements inside the stanza being scanned.
    depth: usize,
    /// Bytes scanned so far.
    position: u64,
}

/// What a scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    /// Where the stream header ends (the offset after its `>`), if it ended in these bytes.
    pub(crate) header_end: Option<u64>,
    /// Where stanzas end (the offset after their last byte), in order.
    pub(crate) ends: Vec<u64>,
}

impl Splitter {
    pub(crate) fn new() -> Self {
        Splitter {
            at: At::Prolog,
            depth: 0,
            position: 0,
        }
    }

    /// Whether it gave up: it will report nothing more.
    pub(crate) fn is_opaque(&self) -> bool {
        self.at == At::Opaque
    }

    /// Scans the next bytes, adding what it finds to `marks`.
    pub(crate) fn scan(&mut self, bytes: &[u8], marks: &mut Marks) {
        let start = self.position;
        let mut i = 0;
        while i < bytes.len() {
            if self.at == At::Opaque {
                break;
            }
            // Text, values, comments, CDATA and instructions are skipped to the next byte
            // that can change the state (a skipped stretch resets the dash and bracket
            // counts, as stepping through it would).
            let rest = &bytes[i..];
            let skip = match self.at {
                At::Text => memchr::memchr(b'<', rest),
                At::Quote(quote) | At::HeaderQuote(quote) => memchr::memchr2(quote, b'<', rest),
                At::Comment { dashes } if dashes < 3 => memchr::memchr2(b'-', b'>', rest),
                At::Cdata { .. } => memchr::memchr2(b']', b'>', rest),
                At::Pi { .. } | At::PrologPi { .. } => memchr::memchr2(b'?', b'>', rest),
                _ => Some(0),
            };
            let Some(skip) = skip else {
                self.skipped();
                break;
            };
            if skip > 0 {
                self.skipped();
                i += skip;
            }
            self.position = start + i as u64 + 1;
            self.at = self.step(bytes[i], marks);
            i += 1;
        }
        self.position = start + bytes.len() as u64;
    }

    /// Bytes that change nothing were skipped: counts of `-`, `]` and `?` start again.
    fn skipped(&mut self) {
        self.at = match self.at {
            At::Comment { dashes } if dashes < 3 => At::Comment { dashes: 0 },
            At::Cdata { .. } => At::Cdata { brackets: 0 },
            At::Pi { .. } => At::Pi { question: false },
            At::PrologPi { .. } => At::PrologPi { question: false },
            other => other,
        };
    }

    fn step(&mut self, byte: u8, marks: &mut Marks) -> At {
        let whitespace = matches!(byte, b' ' | b'\t' | b'\r' | b'\n');
        match self.at {
            At::Prolog => match byte {
                b'<' => At::PrologOpen,
                _ if whitespace => At::Prolog,
                _ => At::Opaque,
            },
            At::PrologOpen => match byte {
                b'?' => At::PrologPi { question: false },
                b'!' | b'/' => At::Opaque,
                _ if whitespace => At::Opaque,
                _ => At::Header,
            },
            At::PrologPi { question } => match byte {
                b'>' if question => At::Prolog,
                b'?' => At::PrologPi { question: true },
                _ => At::PrologPi { question: false },
            },
            At::Header => match byte {
                b'\'' | b'"' => At::HeaderQuote(byte),
                // `<stream:stream/>` closes the stream at once: nothing to split.
                b'/' | b'<' => At::Opaque,
                b'>' => {
                    marks.header_end = Some(self.position);
                    At::Stream
                }
                _ => At::Header,
            },
            At::HeaderQuote(quote) => match byte {
                b'<' => At::Opaque,
                _ if byte == quote => At::Header,
                _ => At::HeaderQuote(quote),
            },
            At::Stream => match byte {
                b'<' => {
                    self.depth = 0;
                    At::Open
                }
                _ if whitespace => At::Stream,
                // Text between stanzas, which the lexer refuses.
                _ => At::Opaque,
            },
            At::Text => match byte {
                b'<' => At::Open,
                _ => At::Text,
            },
            At::Open => match byte {
                // The stream's end tag, markup between stanzas: for one lexer.
                b'/' | b'!' | b'?' if self.depth == 0 => At::Opaque,
                b'/' => At::EndTag,
                b'!' => At::Bang { matched: 0 },
                b'?' => At::Pi { question: false },
                b'<' | b'>' => At::Opaque,
                _ if whitespace => At::Opaque,
                _ => At::StartTag,
            },
            At::StartTag => match byte {
                b'\'' | b'"' => At::Quote(byte),
                b'/' => At::Slash,
                b'>' => {
                    self.depth += 1;
                    At::Text
                }
                b'<' => At::Opaque,
                _ => At::StartTag,
            },
            At::Quote(quote) => match byte {
                b'<' => At::Opaque,
                _ if byte == quote => At::StartTag,
                _ => At::Quote(quote),
            },
            At::Slash => match byte {
                b'>' => self.element_ended(marks),
                _ => At::Opaque,
            },
            At::EndTag => match byte {
                b'>' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        // (An end tag at depth 0 never gets here: see `Open`.)
                        marks.ends.push(self.position);
                        At::Stream
                    } else {
                        At::Text
                    }
                }
                b'<' => At::Opaque,
                _ => At::EndTag,
            },
            At::Bang { matched } => {
                const CDATA: &[u8] = b"[CDATA[";
                if matched == 0 && byte == b'-' {
                    return At::Comment { dashes: 3 };
                }
                if matched < CDATA.len() && byte == CDATA[matched] {
                    return if matched + 1 == CDATA.len() {
                        At::Cdata { brackets: 0 }
                    } else {
                        At::Bang {
                            matched: matched + 1,
                        }
                    };
                }
                At::Opaque
            }
            // `dashes == 3`: the first `-` of `<!--` seen, the second is due.
            At::Comment { dashes: 3 } => match byte {
                b'-' => At::Comment { dashes: 0 },
                _ => At::Opaque,
            },
            At::Comment { dashes } => match byte {
                b'-' => At::Comment {
                    dashes: (dashes + 1).min(2),
                },
                b'>' if dashes == 2 => At::Text,
                _ => At::Comment { dashes: 0 },
            },
            At::Cdata { brackets } => match byte {
                b']' => At::Cdata {
                    brackets: (brackets + 1).min(2),
                },
                b'>' if brackets == 2 => At::Text,
                _ => At::Cdata { brackets: 0 },
            },
            At::Pi { question } => match byte {
                b'>' if question => At::Text,
                b'?' => At::Pi { question: true },
                _ => At::Pi { question: false },
            },
            At::Opaque => At::Opaque,
        }
    }

    /// An empty element (`<a/>`) ended.
    fn element_ended(&mut self, marks: &mut Marks) -> At {
        if self.depth == 0 {
            marks.ends.push(self.position);
            At::Stream
        } else {
            At::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(input: &str) -> (Marks, bool) {
        let mut splitter = Splitter::new();
        let mut marks = Marks::default();
        splitter.scan(input.as_bytes(), &mut marks);
        (marks, splitter.is_opaque())
    }

    /// The stanzas of `input` as the splitter cuts it, after the header.
    fn pieces(input: &str) -> Vec<&str> {
        let (marks, _) = marks(input);
        let mut start = marks.header_end.unwrap_or(0) as usize;
        marks
            .ends
            .iter()
            .map(|&end| {
                let piece = input[start..end as usize].trim_start();
                start = end as usize;
                piece
            })
            .collect()
    }

    const HEADER: &str = "<?xml version='1.0'?>\n<stream:stream xmlns='jabber:component:accept' a=\"x>y\" xmlns:stream='http://etherx.jabber.org/streams'>";

    #[test]
    fn cuts_after_each_stanza_and_nowhere_else() {
        let stanzas = [
            "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<handshake/>",
            "<message a='>' b=\"/>'\"><body>1 &lt; 2 &amp;&gt; <![CDATA[</body> ]] ]]]> <x/></body></message>",
            "<presence\n/>",
            "<a><b><c/></b><d></d >x</a>",
            "<x:y xmlns:x='u'><x:z/></x:y>",
        ];
        let input = format!("{HEADER}{}", stanzas.join("\n  "));
        assert_eq!(pieces(&input), stanzas);
        let (m, opaque) = marks(&input);
        assert_eq!(m.header_end, Some(HEADER.len() as u64));
        assert!(!opaque);
    }

    #[test]
    fn comments_and_instructions_inside_stanzas_are_skipped() {
        // rxml refuses both; the cut must still be right so that the lexer says so.
        let stanzas = ["<m><!-- </m> - -- --></m>", "<m><?pi </m> ? ?></m>"];
        let input = format!("{HEADER}{}", stanzas.concat());
        assert_eq!(pieces(&input), stanzas);
    }

    #[test]
    fn what_it_does_not_expect_makes_it_opaque() {
        for rest in [
            "hello<iq/>",
            "</stream:stream><iq/>",
            "<!DOCTYPE x><iq/>",
            "<?pi?><iq/>",
            "<iq a='<'/><iq/>",
            "<iq/ ><iq/>",
            "< iq/><iq/>",
            "<iq><!x></iq><iq/>",
        ] {
            let (m, opaque) = marks(&format!("{HEADER}{rest}"));
            assert!(opaque, "{rest}");
            assert!(m.ends.len() <= 1, "{rest}: {m:?}");
        }
        for start in ["junk", "<!DOCTYPE x>", "</x>", "<stream:stream/>"] {
            let (m, opaque) = marks(&format!("{start}<iq/>"));
            assert!(
                opaque && m.header_end.is_none() && m.ends.is_empty(),
                "{start}"
            );
        }
    }

    /// Where rxml finds the top-level elements of `input` (after its header) ending.
    fn rxml_ends(input: &str) -> Vec<u64> {
        use rxml::{Parse, RawEvent, RawParser, error::EndOrError};
        let mut parser = RawParser::new();
        let mut data = input.as_bytes();
        let mut depth = 0usize;
        let mut ends = Vec::new();
        loop {
            match parser.parse(&mut data, false) {
                Ok(Some(RawEvent::ElementHeadClose(_))) => depth += 1,
                Ok(Some(RawEvent::ElementFoot(_))) => {
                    depth -= 1;
                    if depth == 1 {
                        ends.push((input.len() - data.len()) as u64);
                    }
                }
                Ok(Some(_)) => {}
                Err(EndOrError::NeedMoreData) | Ok(None) => return ends,
                Err(EndOrError::Error(e)) => panic!("the test made bad XML: {e}: {input}"),
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> + Clone {
            proptest::collection::vec(
                prop_oneof![
                    Just("x"),
                    Just(" "),
                    Just("&gt;"),
                    Just("a>b"),
                    Just("&lt;"),
                    Just("/"),
                    Just("'"),
                    Just("\""),
                    Just("]]"),
                    Just("é"),
                    Just("\n"),
                    Just("<![CDATA[ <a> </b> ] ]] ]]]>"),
                ],
                0..5,
            )
            .prop_map(|p| p.concat())
        }

        fn value() -> impl Strategy<Value = String> + Clone {
            proptest::collection::vec(
                prop_oneof![
                    Just("v"),
                    Just(">"),
                    Just("/"),
                    Just("/>"),
                    Just("&amp;"),
                    Just("é"),
                    Just(" ")
                ],
                0..4,
            )
            .prop_map(|p| p.concat())
        }

        /// Attributes `k0`, `k1`, ... with the values, each in single or double quotes.
        fn attributes(gap: &str, attrs: &[(String, bool)]) -> String {
            let mut s = String::new();
            for (i, (v, double)) in attrs.iter().enumerate() {
                let q = if *double { '"' } else { '\'' };
                let v = v.replace(q, "");
                s.push_str(&format!("{gap}k{i}={q}{v}{q}"));
            }
            s
        }

        /// A well-formed element, with the odd but legal spellings the splitter must follow.
        fn element() -> impl Strategy<Value = String> {
            let name = prop_oneof![Just("a"), Just("x:y"), Just("b-c.d_e"), Just("été")];
            let gap = prop_oneof![Just(" "), Just("\n\t"), Just("  ")];
            let attrs = proptest::collection::vec((value(), any::<bool>()), 0..3);
            let leaf = (name.clone(), gap.clone(), attrs.clone(), any::<bool>()).prop_map(
                |(name, gap, attrs, spaced)| {
                    let mut s = format!("<{name}{}", attributes(gap, &attrs));
                    s.push_str(if spaced { " />" } else { "/>" });
                    s
                },
            );
            leaf.prop_recursive(4, 32, 4, move |inner| {
                (
                    name.clone(),
                    gap.clone(),
                    attrs.clone(),
                    proptest::collection::vec(prop_oneof![inner, text()], 0..4),
                )
                    .prop_map(|(name, gap, attrs, children)| {
                        let mut s = format!("<{name}{}>", attributes(gap, &attrs));
                        for child in children {
                            s.push_str(&child);
                        }
                        s.push_str(&format!("</{name}{gap}>"));
                        s
                    })
            })
        }

        proptest! {
            #[test]
            fn cuts_exactly_where_rxml_ends_the_stanzas(
                stanzas in proptest::collection::vec(element(), 1..6),
                gaps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("\n  ")], 1..6),
                chunk in 1usize..64,
            ) {
                let mut input = String::from(HEADER);
                for (i, stanza) in stanzas.iter().enumerate() {
                    input.push_str(gaps[i % gaps.len()]);
                    input.push_str(stanza);
                }
                let mut splitter = Splitter::new();
                let mut m = Marks::default();
                for piece in input.as_bytes().chunks(chunk) {
                    splitter.scan(piece, &mut m);
                }
                prop_assert!(!splitter.is_opaque(), "{}", input);
                prop_assert_eq!(m.header_end, Some(HEADER.len() as u64));
                prop_assert_eq!(m.ends, rxml_ends(&input), "{}", input);
            }
        }
    }

    #[test]
    fn any_chunking_finds_the_same_places() {
        let input =
            format!("{HEADER}<iq a='1' b=\"2\"><q><![CDATA[x]]></q></iq><m><!-- c --></m><p/>");
        let (whole, _) = marks(&input);
        for size in 1..input.len() {
            let mut splitter = Splitter::new();
            let mut m = Marks::default();
            for chunk in input.as_bytes().chunks(size) {
                splitter.scan(chunk, &mut m);
            }
            assert_eq!(m, whole, "chunks of {size}");
        }
    }
}
