//! Upper bounds on the work and memory that mail-parser 0.11 spends on a message, computed
//! before it parses the message.
//!
//! mail-parser parses plain MIME nesting without recursion, but three things in it grow faster
//! than the input. A base64 or quoted-printable part of type `message/rfc822` (or a part of a
//! `multipart/digest` without a type) is decoded and parsed as a message of its own, up to 3
//! levels deep. The parts of that message are then copied recursively, one stack frame per
//! message inside it, and each message inside it copies the whole decoded body. Finally, every
//! multipart whose boundary never comes scans the rest of the message for it.
//!
//! The bounds hold whatever mail-parser makes of the bytes, because they only count what its
//! parsers need to see. A `Content-Type` whose type is `message` has those seven letters in a
//! row, since the parser keeps the type as a slice of the input. A part of a digest follows a
//! `--` and needs the word `digest` in the same buffer. A multipart needs the word `boundary`.
//! Header blocks may start after any `--` on a line, where a boundary can end. Encoded bodies
//! are decoded with mail-parser's own base64 decoder, and with a copy of its quoted-printable
//! rules that reads on to the end of the buffer, a superset of any body it decodes.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

/// Levels of encoded messages that mail-parser 0.11 decodes and parses (its
/// `MAX_NESTED_ENCODED`).
const ENCODED_MESSAGE_LEVELS: usize = 3;

/// Upper bounds for one message, summed over the raw bytes and every encoded message body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ParseCost {
    /// `Content-Type` fields and possible boundary delimiters (`--`, where the buffer has a
    /// multipart), an upper bound on the parts that mail-parser creates.
    pub parts: usize,
    /// Messages inside encoded message bodies, each one stack frame of the recursive copy.
    pub encoded_messages: usize,
    /// Bytes that the messages inside encoded bodies copy: each one copies its whole body.
    pub copied_bytes: usize,
    /// Bytes of encoded message bodies decoded to compute these bounds.
    pub decoded_bytes: usize,
    /// Bytes read while looking for boundaries: each multipart may scan its whole buffer.
    pub boundary_scan_bytes: usize,
}

/// Computes the bounds for `raw`. Decoding stops once `max_decoded_bytes` were decoded, and
/// the caller rejects the message then.
pub(crate) fn estimate(raw: &[u8], max_decoded_bytes: usize) -> ParseCost {
    let mut cost = ParseCost::default();
    add_buffer(raw, ENCODED_MESSAGE_LEVELS, max_decoded_bytes, &mut cost);
    cost
}

/// Adds the bounds of one buffer that mail-parser parses as a message, and of the encoded
/// message bodies in it, `levels` deep.
fn add_buffer(buffer: &[u8], levels: usize, max_decoded_bytes: usize, cost: &mut ParseCost) {
    let multiparts = count_ignoring_case(buffer, b"boundary");
    let scan = multiparts.saturating_mul(buffer.len());
    cost.boundary_scan_bytes = cost.boundary_scan_bytes.saturating_add(scan);
    // Every part after the first in a multipart starts after a delimiter, `--` and the boundary.
    if multiparts > 0 {
        cost.parts = cost.parts.saturating_add(count_apart(buffer, b"--"));
    }
    let may_have_digest = count_ignoring_case(buffer, b"digest") > 0;

    let lines = line_ranges(buffer);
    let mut index = 0;
    while index < lines.len() {
        // A block of lines up to a line of white space: header fields, or body text.
        let start = index;
        while index < lines.len() && !is_blank(&buffer[lines[index].clone()]) {
            index += 1;
        }
        let block = Block::read(buffer, &lines[start..index]);
        cost.parts = cost.parts.saturating_add(block.content_types);
        // The body starts after the blank line.
        index += 1;
        let Some(body) = lines.get(index).map(|line| &buffer[line.start..]) else {
            continue;
        };
        if levels == 0 || !block.may_be_message(may_have_digest) {
            continue;
        }
        for encoding in block.encodings() {
            if cost.decoded_bytes > max_decoded_bytes {
                return;
            }
            let Some(decoded) = decode(encoding, body) else {
                continue;
            };
            let messages = 1
                + count_ignoring_case(&decoded, b"message")
                + if count_ignoring_case(&decoded, b"digest") > 0 {
                    count_ignoring_case(&decoded, b"--")
                } else {
                    0
                };
            cost.decoded_bytes = cost.decoded_bytes.saturating_add(decoded.len());
            cost.encoded_messages = cost.encoded_messages.saturating_add(messages);
            cost.copied_bytes = cost
                .copied_bytes
                .saturating_add(messages.saturating_mul(decoded.len()));
            add_buffer(&decoded, levels - 1, max_decoded_bytes, cost);
        }
    }
}

/// What a block of lines says about the part it would head.
#[derive(Debug, Default)]
struct Block {
    content_types: usize,
    /// Whether some `Content-Type` parses to `message/rfc822` or `message/global`.
    message_type: bool,
    /// Whether every `Content-Type` starts its line and parses to a type, so that mail-parser
    /// surely reads one of them as the part's type.
    surely_typed: bool,
    base64: bool,
    quoted_printable: bool,
}

impl Block {
    fn read(buffer: &[u8], lines: &[std::ops::Range<usize>]) -> Self {
        let mut block = Block {
            surely_typed: true,
            ..Block::default()
        };
        for (index, line) in lines.iter().enumerate() {
            let text = &buffer[line.clone()];
            for (value_start, at_line_start) in field_values(text) {
                // The value, with the folded lines that continue it.
                let continued = lines[index + 1..]
                    .iter()
                    .take_while(|next| matches!(buffer.get(next.start), Some(b' ' | b'\t')))
                    .last()
                    .map_or(line.end, |last| last.end);
                let mut value = buffer[line.start + value_start.offset..continued].to_vec();
                value.push(b'\n');
                match value_start.name {
                    Field::ContentType => {
                        block.content_types += 1;
                        match MessageStream::new(&value).parse_content_type() {
                            HeaderValue::ContentType(content_type) => {
                                let subtype = content_type.subtype().unwrap_or_default();
                                if content_type.ctype().eq_ignore_ascii_case("message")
                                    && (subtype.eq_ignore_ascii_case("rfc822")
                                        || subtype.eq_ignore_ascii_case("global"))
                                {
                                    block.message_type = true;
                                }
                                block.surely_typed &= at_line_start;
                            }
                            _ => block.surely_typed = false,
                        }
                    }
                    Field::ContentTransferEncoding => {
                        let lowercase = value.to_ascii_lowercase();
                        let mut base64 = contains(&lowercase, b"base64");
                        let mut quoted_printable = contains(&lowercase, b"quoted-printable");
                        if let HeaderValue::Text(text) =
                            MessageStream::new(&value).parse_unstructured()
                        {
                            let text = text.trim();
                            base64 |= text.eq_ignore_ascii_case("base64");
                            quoted_printable |= text.eq_ignore_ascii_case("quoted-printable");
                        }
                        block.base64 |= base64;
                        block.quoted_printable |= quoted_printable;
                    }
                }
            }
        }
        if block.content_types == 0 {
            block.surely_typed = false;
        }
        block
    }

    /// Whether mail-parser may read the part as a message: its type says so, or it may have no
    /// type that mail-parser reads while a digest may hold it.
    fn may_be_message(&self, may_have_digest: bool) -> bool {
        self.message_type || (may_have_digest && !self.surely_typed)
    }

    fn encodings(&self) -> impl Iterator<Item = TransferEncoding> {
        [
            self.base64.then_some(TransferEncoding::Base64),
            self.quoted_printable
                .then_some(TransferEncoding::QuotedPrintable),
        ]
        .into_iter()
        .flatten()
    }
}

/// A transfer encoding that mail-parser decodes before it parses a message inside a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferEncoding {
    Base64,
    QuotedPrintable,
}

/// The two fields that decide whether a part is an encoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ContentType,
    ContentTransferEncoding,
}

/// Where a field's value starts in a line.
#[derive(Debug, Clone, Copy)]
struct ValueStart {
    name: Field,
    /// Offset in the line just after the colon that ends the name.
    offset: usize,
}

/// Finds the fields that mail-parser may read in `line`: one at its start, and one after any
/// `--`, where a boundary may end and the header block of a part begin. Returns where each
/// value starts and whether the field starts the line.
fn field_values(line: &[u8]) -> Vec<(ValueStart, bool)> {
    let mut found = Vec::new();
    if let Some(value) = field_at(line, 0) {
        found.push((value, true));
    }
    let Some(dashes) = find(line, b"--") else {
        return found;
    };
    for start in dashes + 2..line.len() {
        if matches!(line[start], b'c' | b'C')
            && let Some(value) = field_at(line, start)
        {
            found.push((value, false));
        }
    }
    found
}

/// Reads a field name at `start` as mail-parser does: white space anywhere and colons before
/// the name are skipped, and the name ends at the next colon.
fn field_at(line: &[u8], start: usize) -> Option<ValueStart> {
    const NAMES: [(&[u8], Field); 2] = [
        (b"content-type", Field::ContentType),
        (b"content-transfer-encoding", Field::ContentTransferEncoding),
    ];
    let mut name = Vec::with_capacity(32);
    for (offset, &byte) in line.iter().enumerate().skip(start) {
        if byte == b':' {
            if name.is_empty() {
                continue;
            }
            return NAMES
                .iter()
                .find(|(known, _)| *known == name.as_slice())
                .map(|&(_, field)| ValueStart {
                    name: field,
                    offset: offset + 1,
                });
        }
        if !byte.is_ascii_whitespace() {
            name.push(byte.to_ascii_lowercase());
            if name.len() > NAMES[1].0.len() {
                return None;
            }
        }
    }
    None
}

/// Decodes an encoded message body that starts at the start of `body`, or returns `None` when
/// mail-parser could not decode it either.
fn decode(encoding: TransferEncoding, body: &[u8]) -> Option<Vec<u8>> {
    match encoding {
        // mail-parser's base64 decoder fails at a `--` that is not the boundary and stops at
        // the boundary, so a body it decodes ends at the first `--`.
        TransferEncoding::Base64 => {
            let end = find(body, b"--").unwrap_or(body.len());
            let (offset, decoded) = MessageStream::new(&body[..end]).decode_base64_mime(b"");
            (offset != usize::MAX).then(|| decoded.into_owned())
        }
        TransferEncoding::QuotedPrintable => Some(decode_quoted_printable(body)),
    }
}

/// Decodes quoted-printable by mail-parser 0.11's rules (`decode_quoted_printable_mime`), on to
/// the end of `body` instead of a boundary, and stops where those rules fail. The result
/// therefore starts with whatever mail-parser decodes from the same start.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Text,
        Equals,
        FirstHex(u8),
    }
    let mut decoded = Vec::with_capacity(body.len());
    let mut state = State::Text;
    let mut trailing_spaces = 0;
    let mut previous = 0;
    for &byte in body {
        match byte {
            b'=' if state != State::Text => return decoded,
            b'=' => state = State::Equals,
            b'\n' => {
                if state == State::Equals {
                    state = State::Text;
                } else {
                    decoded.truncate(decoded.len() - trailing_spaces);
                    decoded.push(b'\n');
                }
                trailing_spaces = 0;
            }
            b'\r' => {}
            _ => match state {
                State::Text => {
                    if byte.is_ascii_whitespace() {
                        trailing_spaces += 1;
                    } else {
                        trailing_spaces = 0;
                    }
                    decoded.push(byte);
                }
                State::Equals => {
                    if let Some(high) = hex_value(byte) {
                        state = State::FirstHex(high);
                    } else if !byte.is_ascii_whitespace() {
                        state = State::Text;
                        decoded.extend_from_slice(&[b'=', byte]);
                        trailing_spaces = 0;
                    }
                }
                State::FirstHex(high) => {
                    state = State::Text;
                    match hex_value(byte) {
                        Some(low) => decoded.push(high << 4 | low),
                        // The previous byte is the first hex digit, unless a line break
                        // came between.
                        None => decoded.extend_from_slice(&[b'=', previous, byte]),
                    }
                    trailing_spaces = 0;
                }
            },
        }
        previous = byte;
    }
    decoded
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

/// The byte range of each line of `buffer`, without its `\n`.
fn line_ranges(buffer: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (index, &byte) in buffer.iter().enumerate() {
        if byte == b'\n' {
            lines.push(start..index);
            start = index + 1;
        }
    }
    lines.push(start..buffer.len());
    lines
}

/// Whether mail-parser ends a header block at this line: it skips white space, then stops at
/// the line break.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// Counts the matches of `needle` in `haystack` that do not overlap.
fn count_apart(haystack: &[u8], needle: &[u8]) -> usize {
    let mut count = 0;
    let mut index = 0;
    while index + needle.len() <= haystack.len() {
        if &haystack[index..index + needle.len()] == needle {
            count += 1;
            index += needle.len();
        } else {
            index += 1;
        }
    }
    count
}

/// Counts the positions where `needle` (lowercase ASCII) starts in `haystack`, ignoring ASCII
/// case. Overlapping matches count too.
fn count_ignoring_case(haystack: &[u8], needle: &[u8]) -> usize {
    let Some(&first) = needle.first() else {
        return 0;
    };
    haystack
        .windows(needle.len())
        .filter(|window| {
            window[0].to_ascii_lowercase() == first && window.eq_ignore_ascii_case(needle)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_match_as_mail_parser_reads_them() {
        for spelling in [
            "Content-Type:",
            "content-type :",
            "CONTENT-TYPE\t:",
            " Content - Type:",
            ":Content-Type:",
        ] {
            let value = field_at(spelling.as_bytes(), 0);
            assert!(
                value.is_some_and(|value| value.name == Field::ContentType),
                "{spelling:?}"
            );
        }
        for other in [
            "Content-Types:",
            "Content-Typ:",
            "X-Content-Type:",
            "Content-Type",
        ] {
            assert!(field_at(other.as_bytes(), 0).is_none(), "{other:?}");
        }
    }

    #[test]
    fn fields_after_dashes_count() {
        let found = field_values(b"junk--boundaryContent-Type: message/rfc822");
        let names: Vec<(Field, bool)> = found
            .iter()
            .map(|(value, start)| (value.name, *start))
            .collect();
        assert_eq!(names, [(Field::ContentType, false)]);
    }

    #[test]
    fn quoted_printable_follows_mail_parser() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"a=3Db", b"a=b"),
            (b"soft=\nbreak", b"softbreak"),
            (b"trailing   \nnext", b"trailing\nnext"),
            // A hex digit, a line break, then the second digit: mail-parser joins them.
            (b"=6\nDessage", b"\nmessage"),
            // Two equals signs: mail-parser's decoding fails there.
            (b"ok==rest", b"ok"),
        ];
        for (encoded, expected) in cases {
            assert_eq!(
                decode_quoted_printable(encoded),
                expected,
                "{:?}",
                String::from_utf8_lossy(encoded)
            );
        }
    }

    #[test]
    fn plain_mail_costs_little() {
        let raw = b"From: a@example.org\nSubject: hi\nContent-Type: text/plain\n\
                    Content-Transfer-Encoding: base64\n\naGVsbG8=\n";
        let cost = estimate(raw, usize::MAX);
        assert_eq!(cost.parts, 1);
        assert_eq!(cost.encoded_messages, 0);
        assert_eq!(cost.boundary_scan_bytes, 0);
    }
}
