//! A `text/event-stream` parser, after the WHATWG HTML standard's
//! "event stream interpretation", fed with chunks as they arrive.
//!
//! Lines end with CRLF, LF or CR, also when a CRLF is split across two
//! chunks. `data` lines are joined with `\n`; `id` sets the last event id
//! (ignored if it contains NUL) and survives events without data; `event`
//! names the type (default `message`); `retry` and unknown fields are
//! ignored; a line starting with `:` is a comment (sessiond's keep-alive).
//! An event is dispatched at a blank line, and only if it has data.
//!
//! Bounded: a line or an event's data longer than [`MAX_EVENT_LEN`] is an
//! error (the stream is then dropped and reconnected), so a broken server
//! cannot make the parser buffer without end. Bytes that are not UTF-8 are
//! replaced, as the standard says.

/// The longest line, and the most data one event may carry.
pub(crate) const MAX_EVENT_LEN: usize = 1 << 20;

const BOM: &[u8] = "\u{feff}".as_bytes();

/// What the parser found in a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A complete event.
    Event(Event),
    /// A comment line: proof the stream is alive.
    Comment,
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The event type (`message` when the stream named none).
    pub event: String,
    /// The data, lines joined with `\n`.
    pub data: String,
    /// The last event id as of this event (the stream's, not only this
    /// event's: ids carry over).
    pub id: Option<String>,
}

/// The stream overstepped [`MAX_EVENT_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

/// Parser state across chunks.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF is that line's end.
    after_cr: bool,
    /// A first line has ended (only it may start with a BOM).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
}

impl Parser {
    /// Feeds a chunk; complete items are appended to `out`.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<Item>) -> Result<(), TooLong> {
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' => self.end_line(out)?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out)?;
                }
                _ => {
                    if self.line.len() >= MAX_EVENT_LEN {
                        return Err(TooLong);
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Item>) -> Result<(), TooLong> {
        let mut line = std::mem::take(&mut self.line);
        if !std::mem::replace(&mut self.started, true) && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            out.push(Item::Comment);
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT_LEN {
                    return Err(TooLong);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Item>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::replace(&mut self.has_data, false) {
            return;
        }
        out.push(Item::Event(Event {
            event: if event.is_empty() { "message".to_owned() } else { event },
            data,
            id: self.last_id.clone(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<Item> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            assert_eq!(parser.feed(chunk, &mut out), Ok(()));
        }
        out
    }

    fn event(event: &str, data: &str, id: Option<&str>) -> Item {
        Item::Event(Event {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        })
    }

    #[test]
    fn sessiond_events_and_keep_alives() {
        let stream = b"id: c1\nevent: revoked\ndata: {\"a\":1}\n\n: keep-alive\n\nid: c2\nevent: revoked\ndata: {}\n\n";
        assert_eq!(
            parse_chunks(&[stream]),
            [
                event("revoked", "{\"a\":1}", Some("c1")),
                Item::Comment,
                event("revoked", "{}", Some("c2")),
            ]
        );
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_events() {
        let stream: &[u8] = b"\xEF\xBB\xBFid: 7\r\nevent: revoked\r\ndata: a\r\ndata:b\r\n\r\ndata: c\r\r";
        let whole = parse_chunks(&[stream]);
        assert_eq!(
            whole,
            [event("revoked", "a\nb", Some("7")), event("message", "c", Some("7"))]
        );
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(parse_chunks(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes), whole);
    }

    #[test]
    fn ids_carry_over_and_events_without_data_are_not_dispatched() {
        let out = parse_chunks(&[b"id: 1\nevent: revoked\n\ndata\nid\n\ndata: x\nid: a\0b\n\n"]);
        // "data" alone is an empty data line; a bare "id" resets the id; a NUL id is ignored.
        assert_eq!(out, [event("message", "", Some("")), event("message", "x", Some(""))]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        let chunk = vec![b'a'; 64 * 1024];
        let mut result = Ok(());
        for _ in 0..(MAX_EVENT_LEN / chunk.len() + 1) {
            result = parser.feed(&chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TooLong));
    }
}
