//! RFC 5322 and MIME parsing into the plain [`Email`] that feature extraction reads.
//!
//! mail-parser does the decoding: nested multiparts, base64 and quoted-printable transfer
//! encodings, RFC 2047 encoded words, legacy charsets through encoding_rs, and HTML rendered to
//! text. This module adds the checks that decide whether bytes are an email at all, and keeps
//! only the parts the model and the fingerprints need.

use std::borrow::Cow;
use std::collections::HashSet;

use mail_parser::decoders::html::html_to_text;
use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::parse_cost;

/// Bounds on what [`Email::parse`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
}

impl Limits {
    /// 10 MiB, a little below the 25 MB limit of common mailbox providers once base64 growth of
    /// attachments is taken out of the picture for text-bearing mail.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Reasons for rejecting bytes as an email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("message is empty")]
    Empty,
    #[error("message is {size} bytes, above the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("not an RFC 5322 message: line {line} of the header block is not `Name: value`")]
    MalformedHeader { line: usize },
    #[error("not an RFC 5322 message: it has no header fields before the first blank line")]
    NoHeaders,
    #[error(
        "not an email: byte {offset} of the header block is a NUL byte, so this is binary data"
    )]
    BinaryHeader { offset: usize },
    #[error(
        "message may have up to {count} MIME parts (Content-Type fields and boundary \
         delimiters), above the limit of {limit}, which bounds the memory its parsed parts take; \
         split a digest or archive this large into its messages"
    )]
    TooManyParts { count: usize, limit: usize },
    #[error(
        "message may hold up to {count} messages inside base64 or quoted-printable encoded \
         message parts, above the limit of {limit}, which bounds their nesting because the \
         parser copies encoded messages recursively; send the attached messages on their own"
    )]
    TooManyEncodedMessages { count: usize, limit: usize },
    #[error(
        "the messages inside base64 or quoted-printable encoded message parts may take up to \
         {bytes} bytes once parsed, above the limit of {limit}, because each copies its whole \
         encoded part; send the attached messages on their own"
    )]
    EncodedMessagesTooLarge { bytes: usize, limit: usize },
    #[error(
        "a header block of this message may run on past the blank line after it, because a \
         `Date` value ends in a time zone after which the parser reads two more bytes (such as \
         `UT` or `-a`), so every later block may start an encoded message part; decoding them \
         may read {bytes} bytes, above the limit of {limit}; end the `Date` value with a \
         numeric zone such as `+0000`"
    )]
    RunOnHeaderDecoding { bytes: usize, limit: usize },
    #[error(
        "the messages inside base64 or quoted-printable encoded message parts may hold up to \
         {blocks} blocks of lines (separated by lines of white space) to check, above the limit \
         of {limit}, because each encoded part is checked to the end of the message; send the \
         attached messages on their own, or remove the runs of blank lines"
    )]
    EncodedMessagesTooDense { blocks: usize, limit: usize },
    #[error(
        "finding the MIME boundaries of this message may read up to {bytes} bytes, above the \
         limit of {limit}, because each multipart without its closing delimiter reads on to the \
         end; close every multipart, or split the message"
    )]
    TooManyBoundaries { bytes: usize, limit: usize },
    #[error(
        "finding the MIME boundaries of this message may compare up to {bytes} bytes with them, \
         above the limit of {limit}, because the bytes after every `--` in a multipart are \
         compared with its boundary; shorten the boundaries or the runs of dashes"
    )]
    BoundaryComparisons { bytes: usize, limit: usize },
    #[error(
        "the RFC 2047 encoded words (`=?`) in the header fields of this message may make the \
         parser read {bytes} bytes, above the limit of {limit}, because each one without its \
         closing `?=` is read to the end of its field; close or remove them"
    )]
    EncodedWordsTooLong { bytes: usize, limit: usize },
    #[error(
        "the Content-Type and Content-Disposition values of this message have so many RFC 2231 \
         parameter continuations (`*`) or extended value quotes (`'`) that parsing them may \
         cost {work} (those marks times the bytes of their values), above the limit of {limit}, \
         because the parser rebuilds the value or copies the parameter name for each one; \
         shorten those fields"
    )]
    TooManyContinuations { work: usize, limit: usize },
    #[error(
        "message may have up to {count} header fields, counting each address, group and \
         parameter of list fields such as To and Content-Type as one, above the limit of \
         {limit}, which bounds the memory its parsed headers take; remove the repeated fields \
         or list items"
    )]
    TooManyHeaderFields { count: usize, limit: usize },
    #[error(
        "a header block of this message has more than {limit} places where its body may \
         start (lines of white space, each of which may end it, times the multipart types it \
         declares); remove the extra lines of white space or Content-Type fields"
    )]
    BlankHeaderLines { limit: usize },
    #[error("mail-parser could not parse the message")]
    Unparseable,
}

/// The maximum number of MIME parts that a message may have, which bounds the memory of its
/// parsed parts: its `Content-Type` fields and the boundary delimiters in it, each of which
/// may start a part. In a debug build, a 9 MB message of 300,000 nested `message/rfc822` parts
/// peaked at 433 MB. In a release build, a digest of 860,000 parts peaked at 1.3 GB. That is
/// about 1.5 KB per part, so 32,768 parts cost some 50 MB. A MIME digest has three
/// per message (its delimiter, the part's type and the message's), so about 10,000 messages
/// fit. The SpamAssassin corpus has at most 22 `Content-Type` fields per message.
const MAX_PARTS: usize = 32_768;

/// The maximum number of messages inside base64 or quoted-printable encoded message parts,
/// which bounds their nesting. mail-parser 0.11 parses plain nesting without recursion, and
/// [`ParsedMessage`] drops it without recursion, but the parser copies the parts of an encoded
/// message recursively (`MessagePart::into_owned`). On a 2 MiB thread stack in a debug build,
/// nesting inside a base64 `message/rfc822` part overflowed at 600 levels but not at 500, and
/// on a release tokio worker at 2,500 but not at 2,000.
const MAX_ENCODED_MESSAGES: usize = 256;

/// The maximum number of bytes that the messages inside encoded message parts may copy. Each
/// of them copies the whole decoded part: 250 levels inside a 9.5 MB message peaked at 1.75 GB,
/// and a forward of 40 attached messages of 100 KB, base64 encoded, at 172 MB.
const MAX_ENCODED_COPY_BYTES: usize = 256 * 1024 * 1024;

/// The maximum number of lines that mail-parser may read as header fields, in the blocks that
/// may head the message, a part or an attached message. Each parsed field takes a few hundred
/// bytes: 2 million `Cc:` fields in 10 MB took 684 MB in mail-parser. 100,000 fields take some
/// 35 MB, and a digest of 2,000 messages of 30 fields each fits.
const MAX_HEADER_FIELDS: usize = 100_000;

/// The maximum number of bytes of encoded message parts that the checks decode.
const MAX_DECODED_BYTES: usize = 32 * 1024 * 1024;

/// The maximum number of bytes that the checks decode from the places where a header block
/// that may run on could end, part of [`MAX_DECODED_BYTES`]. Every later block end is such a
/// place, and each decodes to the end of the message. With blocks 4 bytes apart, checking the
/// messages decoded from them costs hundreds of instructions per byte: 32 MiB took 0.85
/// seconds, and this limit keeps it near the cost of one such 2 MiB message.
const MAX_RUN_ON_DECODED_BYTES: usize = 2 * 1024 * 1024;

/// The maximum number of blocks of lines that the checks read in decoded message bodies. A
/// digest of 200 quoted-printable parts over 99 KB of 4-byte blocks made them read 5 million,
/// in 0.5 seconds, since each part is decoded to the end of the message. A decoded body of
/// 7.5 MB reaches this limit only with blocks of 30 bytes or less on average.
const MAX_DECODED_BLOCKS: usize = 1 << 18;

/// The maximum number of bytes that mail-parser may read looking for MIME boundaries. Each
/// multipart reads on to its closing delimiter, and to the end of the message without one.
/// 4,000 nested multiparts without one in 10 MB took 18.5 seconds, about half a second per
/// GiB. With a long boundary, 1 GiB took up to 1.25 seconds.
const MAX_BOUNDARY_SCAN_BYTES: usize = 256 * 1024 * 1024;

/// The maximum number of bytes that mail-parser may compare with MIME boundaries: at every
/// `--` in a multipart, it compares the bytes that follow with the boundary. 48 nested
/// multiparts with boundaries of 1,899 dashes and an `x`, over 10 MB of dashes, took 6.2
/// seconds, about 13 ms per GiB compared.
const MAX_BOUNDARY_COMPARE_BYTES: usize = 2 * 1024 * 1024 * 1024;

/// The maximum number of bytes that mail-parser's RFC 2047 decoders may read in header fields.
/// A `=?` without its `?=` is read to the end of its field, and then read again from the next
/// `=?`: 20,000 of them in a 160 KB `Subject` took 3.5 seconds, about 2 ns per byte.
const MAX_ENCODED_WORD_BYTES: usize = 32 * 1024 * 1024;

/// A MIME part's type, role and size, as features use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSummary {
    /// Lowercased `type/subtype`, for example `text/html`.
    pub content_type: String,
    pub is_attachment: bool,
    /// Decoded size in bytes.
    pub size: usize,
}

/// The parts of an email that spamflow judges by. No raw addresses are kept beyond the parsed
/// headers, so logs built from it can stay free of personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    /// The body as text: text/plain parts, and HTML parts rendered to text.
    pub body_text: String,
    /// Raw HTML of the HTML body parts, for link and markup features.
    pub body_html: String,
    /// Raw HTML of the HTML parts that have a plain-text alternative. Readers see the HTML
    /// part, so spam can put a decoy in the plain-text part ("your mail program does not show
    /// HTML") and its pitch in the HTML. `body_text` has only the plain-text part of these.
    pub html_alternatives: String,
    /// Domain of the first `From` address, lowercased, when present.
    pub from_domain: Option<String>,
    /// Local part (before `@`) of the first `From` address, lowercased, when present.
    pub from_local: Option<String>,
    /// Display name of the first `From` address, when present.
    pub from_name: Option<String>,
    /// Selected header fields as (lowercase name, value), in message order.
    pub headers: Vec<(String, String)>,
    pub parts: Vec<PartSummary>,
    /// Size of the raw message in bytes.
    pub raw_size: usize,
    /// True when built from plain text, which has no headers to judge.
    pub is_plain_text: bool,
}

/// Header fields whose values or mere presence carry signal without being specific to one
/// corpus: fields written by the sender's software or a mailing list manager. Fields added
/// on delivery (`Received`, `Return-Path`, `Delivered-To`, a mailbox's status flags) and the
/// mbox envelope line are left out on purpose: they describe the site that collected the mail
/// more than the message.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-class",
    "mime-version",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "to",
    "cc",
    "reply-to",
    "sender",
    "errors-to",
    "mail-followup-to",
    "organization",
    "comments",
    "disposition-notification-to",
    "return-receipt-to",
    "x-confirm-reading-to",
    "x-mailer",
    "user-agent",
    "x-mimeole",
    "x-msmail-priority",
    "x-priority",
    "importance",
    "x-message-flag",
    "thread-index",
    "x-accept-language",
    "x-operating-system",
    "x-originating-ip",
    "x-sender",
    "x-face",
    "x-url",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "list-subscribe",
    "list-help",
    "list-post",
    "list-archive",
    "mailing-list",
    "x-mailing-list",
    "x-beenthere",
    "x-mailman-version",
    "x-loop",
];

/// The bodies [`collect_bodies`] gathers, in message order.
#[derive(Default)]
struct Bodies {
    /// Text shown to a plain-text reader.
    texts: Vec<String>,
    /// Raw HTML parts.
    html: Vec<String>,
    /// Raw HTML parts with a plain-text alternative.
    alternatives: Vec<String>,
}

/// A parsed message whose drop does not recurse. mail-parser 0.11 keeps an attached message
/// inside its part, so the derived drop recurses once per level of `message/rfc822` nesting:
/// 20,000 levels (600 KB of input) overflowed a 2 MiB thread stack in a debug build. This drop
/// takes the parts out of every attached message first, then drops them one list at a time.
struct ParsedMessage<'x>(mail_parser::Message<'x>);

impl<'x> std::ops::Deref for ParsedMessage<'x> {
    type Target = mail_parser::Message<'x>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for ParsedMessage<'_> {
    fn drop(&mut self) {
        let mut pending = vec![std::mem::take(&mut self.0.parts)];
        while let Some(mut parts) = pending.pop() {
            for part in &mut parts {
                if let PartType::Message(attached) = &mut part.body {
                    pending.push(std::mem::take(&mut attached.parts));
                }
            }
        }
    }
}

/// The depth to which [`collect_bodies`] follows messages attached inside messages.
const MAX_EMBEDDED_DEPTH: usize = 3;

/// Appends the body text and HTML of `message`, then those of every message attached to it as
/// `message/rfc822` with its subject first. A bounce or a forward carries the mail it reports
/// in such a part: the words of a bounced spam are evidence too.
fn collect_bodies(message: &mail_parser::Message<'_>, depth: usize, bodies: &mut Bodies) {
    for index in 0..message.text_body_count().max(message.html_body_count()) {
        if let Some(text) = message.body_text(index) {
            bodies.texts.push(text.into_owned());
        }
    }
    // A set, because a hostile message can have tens of thousands of parts.
    let text_parts: HashSet<u32> = message.text_body.iter().copied().collect();
    for (index, &part_id) in message.html_body.iter().enumerate() {
        if let Some(part) = message.html_part(index as u32)
            && let PartType::Html(content) = &part.body
        {
            bodies.html.push(content.to_string());
            // This HTML part has a plain-text alternative, which is in `texts`.
            if !text_parts.contains(&part_id) {
                bodies.alternatives.push(content.to_string());
            }
        }
    }
    if depth >= MAX_EMBEDDED_DEPTH {
        return;
    }
    for part in &message.parts {
        if let PartType::Message(embedded) = &part.body {
            if let Some(subject) = embedded.subject() {
                bodies.texts.push(subject.to_owned());
            }
            collect_bodies(embedded, depth + 1, bodies);
        }
    }
}

impl Email {
    /// Parses raw RFC 5322 bytes.
    ///
    /// # Errors
    ///
    /// Returns [`EmailError`] when the input is empty, larger than `limits`, or is not an email:
    /// no `Name: value` header block, or binary data in it.
    pub fn parse(raw: &[u8], limits: Limits) -> Result<Self, EmailError> {
        check_envelope(raw, limits)?;
        let message = MessageParser::default()
            .parse(raw)
            .map(ParsedMessage)
            .ok_or(EmailError::Unparseable)?;

        let mut email = Email {
            raw_size: raw.len(),
            subject: message.subject().unwrap_or_default().to_owned(),
            ..Email::default()
        };

        if let Some(from) = message.from().and_then(|address| address.first()) {
            email.from_name = from.name().map(str::to_owned);
            if let Some((local, domain)) = from.address().and_then(|a| a.rsplit_once('@')) {
                email.from_local = Some(local.trim().to_ascii_lowercase());
                email.from_domain = Some(domain.trim().to_ascii_lowercase());
            }
        }

        for (name, value) in message.headers_raw() {
            let name = name.to_ascii_lowercase();
            if KEPT_HEADERS.contains(&name.as_str()) {
                email.headers.push((name, value.trim().to_owned()));
            }
        }

        let mut bodies = Bodies::default();
        collect_bodies(&message, 0, &mut bodies);
        email.body_text = bodies.texts.join("\n");
        email.body_html = bodies.html.join("\n");
        email.html_alternatives = bodies.alternatives.join("\n");

        // A set, because a digest can have hundreds of thousands of attached messages.
        let attachments: HashSet<u32> = message.attachments.iter().copied().collect();
        for (index, part) in message.parts.iter().enumerate() {
            if matches!(part.body, PartType::Multipart(_)) {
                continue;
            }
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "text/plain".to_owned())
                .to_ascii_lowercase();
            email.parts.push(PartSummary {
                content_type,
                is_attachment: attachments.contains(&(index as u32)),
                size: part.len(),
            });
        }
        Ok(email)
    }

    /// Builds an email from plain text with no headers, for ad-hoc classification.
    ///
    /// # Errors
    ///
    /// Returns [`EmailError::Empty`] for blank text and [`EmailError::TooLarge`] above `limits`.
    pub fn from_plain_text(text: &str, limits: Limits) -> Result<Self, EmailError> {
        if text.trim().is_empty() {
            return Err(EmailError::Empty);
        }
        if text.len() > limits.max_message_bytes {
            return Err(EmailError::TooLarge {
                size: text.len(),
                limit: limits.max_message_bytes,
            });
        }
        Ok(Email {
            body_text: text.to_owned(),
            parts: vec![PartSummary {
                content_type: "text/plain".to_owned(),
                is_attachment: false,
                size: text.len(),
            }],
            raw_size: text.len(),
            is_plain_text: true,
            ..Email::default()
        })
    }

    /// Returns the text that Bloom filter fingerprints digest: the body and its HTML
    /// alternatives. The plain-text part alone would give every message behind the same decoy
    /// ("view this message in a browser") the same digest, so one confirmed spam would match
    /// them all.
    pub fn fingerprint_text(&self) -> Cow<'_, str> {
        if self.html_alternatives.is_empty() {
            Cow::Borrowed(&self.body_text)
        } else {
            Cow::Owned(format!(
                "{}\n{}",
                self.body_text,
                html_to_text(&self.html_alternatives)
            ))
        }
    }

    /// Returns the value of the first kept header with this lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Checks size and the header block before handing bytes to the lenient MIME parser, which
/// accepts nearly anything and would otherwise treat random bytes as a body.
fn check_envelope(raw: &[u8], limits: Limits) -> Result<(), EmailError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(EmailError::Empty);
    }
    if raw.len() > limits.max_message_bytes {
        return Err(EmailError::TooLarge {
            size: raw.len(),
            limit: limits.max_message_bytes,
        });
    }

    check_parse_cost(raw)?;

    let header_end = find_header_end(raw);
    if let Some(offset) = raw[..header_end].iter().position(|&byte| byte == 0) {
        return Err(EmailError::BinaryHeader { offset });
    }

    let mut fields = 0;
    for (index, line) in raw[..header_end].split(|&byte| byte == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        // An mbox `From ` envelope line may precede the header fields.
        if index == 0 && line.starts_with(b"From ") {
            continue;
        }
        // Folded continuation of the previous field (RFC 5322 section 2.2.3).
        if line[0] == b' ' || line[0] == b'\t' {
            if fields == 0 {
                return Err(EmailError::MalformedHeader { line: index + 1 });
            }
            continue;
        }
        if !is_header_field(line) {
            return Err(EmailError::MalformedHeader { line: index + 1 });
        }
        fields += 1;
    }
    if fields == 0 {
        return Err(EmailError::NoHeaders);
    }
    Ok(())
}

/// A cost of a message, its limit, and the error for a cost over the limit.
type CostCheck = (usize, usize, fn(usize, usize) -> EmailError);

/// Rejects a message on which mail-parser would spend far more memory, stack or time than on
/// its size ([`parse_cost`]). Counted over the whole message, part headers and encoded message
/// parts included, before mail-parser reads it.
fn check_parse_cost(raw: &[u8]) -> Result<(), EmailError> {
    let cost = parse_cost::estimate(
        raw,
        &parse_cost::Budget {
            max_parts: MAX_PARTS,
            max_header_fields: MAX_HEADER_FIELDS,
            max_encoded_messages: MAX_ENCODED_MESSAGES,
            max_copied_bytes: MAX_ENCODED_COPY_BYTES,
            max_decoded_bytes: MAX_DECODED_BYTES,
            max_run_on_decoded_bytes: MAX_RUN_ON_DECODED_BYTES,
            max_decoded_blocks: MAX_DECODED_BLOCKS,
            max_boundary_scan_bytes: MAX_BOUNDARY_SCAN_BYTES,
            max_boundary_compare_bytes: MAX_BOUNDARY_COMPARE_BYTES,
            max_encoded_word_bytes: MAX_ENCODED_WORD_BYTES,
        },
    );
    if cost.too_many_body_starts {
        return Err(EmailError::BlankHeaderLines {
            limit: parse_cost::MAX_BODY_STARTS,
        });
    }
    // Each count with its limit and its error, in the order in which they are reported. The
    // estimate stops decoding past its budget, so a message over it is rejected too.
    let checks: [CostCheck; 11] = [
        (
            cost.continuation_work,
            parse_cost::MAX_CONTINUATION_WORK,
            |work, limit| EmailError::TooManyContinuations { work, limit },
        ),
        (cost.header_fields, MAX_HEADER_FIELDS, |count, limit| {
            EmailError::TooManyHeaderFields { count, limit }
        }),
        (
            cost.encoded_messages,
            MAX_ENCODED_MESSAGES,
            |count, limit| EmailError::TooManyEncodedMessages { count, limit },
        ),
        (cost.decoded_bytes, MAX_DECODED_BYTES, |bytes, limit| {
            EmailError::EncodedMessagesTooLarge { bytes, limit }
        }),
        (
            cost.run_on_decoded_bytes,
            MAX_RUN_ON_DECODED_BYTES,
            |bytes, limit| EmailError::RunOnHeaderDecoding { bytes, limit },
        ),
        (cost.decoded_blocks, MAX_DECODED_BLOCKS, |blocks, limit| {
            EmailError::EncodedMessagesTooDense { blocks, limit }
        }),
        (cost.copied_bytes, MAX_ENCODED_COPY_BYTES, |bytes, limit| {
            EmailError::EncodedMessagesTooLarge { bytes, limit }
        }),
        (cost.parts, MAX_PARTS, |count, limit| {
            EmailError::TooManyParts { count, limit }
        }),
        (
            cost.boundary_scan_bytes,
            MAX_BOUNDARY_SCAN_BYTES,
            |bytes, limit| EmailError::TooManyBoundaries { bytes, limit },
        ),
        (
            cost.boundary_compare_bytes,
            MAX_BOUNDARY_COMPARE_BYTES,
            |bytes, limit| EmailError::BoundaryComparisons { bytes, limit },
        ),
        (
            cost.encoded_word_bytes,
            MAX_ENCODED_WORD_BYTES,
            |bytes, limit| EmailError::EncodedWordsTooLong { bytes, limit },
        ),
    ];
    match checks.into_iter().find(|&(value, limit, _)| value > limit) {
        Some((value, limit, error)) => Err(error(value, limit)),
        None => Ok(()),
    }
}

/// Returns the offset of the blank line that ends the header block, or the input length.
fn find_header_end(raw: &[u8]) -> usize {
    let mut start = 0;
    for line in raw.split_inclusive(|&byte| byte == b'\n') {
        let trimmed = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if trimmed.is_empty() && start > 0 {
            return start;
        }
        start += line.len();
    }
    raw.len()
}

/// Checks that a line starts a header field. A field name is printable US-ASCII without colon
/// or space, followed by a colon (RFC 5322 section 2.2). Obsolete syntax allows spaces before
/// the colon, which some senders still use.
fn is_header_field(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&byte| byte == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    !name.is_empty()
        && name
            .iter()
            .all(|&byte| (33..=126).contains(&byte) && byte != b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Email, EmailError> {
        Email::parse(raw.as_bytes(), Limits::default())
    }

    #[test]
    fn parses_simple_message() {
        let email =
            parse("From: Alice <alice@Example.COM>\r\nSubject: Hello\r\n\r\nSee you at noon.\r\n")
                .unwrap();
        assert_eq!(email.subject, "Hello");
        assert_eq!(email.from_domain.as_deref(), Some("example.com"));
        assert_eq!(email.from_name.as_deref(), Some("Alice"));
        assert_eq!(email.from_local.as_deref(), Some("alice"));
        assert!(email.body_text.contains("See you at noon."));
    }

    #[test]
    fn decodes_encoded_word_subject() {
        let email =
            parse("From: a@b.c\nSubject: =?UTF-8?B?w4l0w6kgZ3JhdHVpdA==?=\n\nbody\n").unwrap();
        assert_eq!(email.subject, "Été gratuit");
    }

    /// `levels` nested `message/rfc822` parts without transfer encoding.
    fn nested_messages(levels: usize) -> String {
        let mut raw = String::from("From: a@example.org\nSubject: deep\n");
        for _ in 0..levels {
            raw.push_str("Content-Type: message/rfc822\n\n");
        }
        raw.push_str("From: b@example.org\nSubject: inner\n\nhello\n");
        raw
    }

    #[test]
    fn too_many_parts_are_rejected_before_parsing() {
        let result = Email::parse(nested_messages(40_000).as_bytes(), Limits::default());
        // Counting stops once the limit is passed.
        assert!(
            matches!(result, Err(EmailError::TooManyParts { count, limit }) if count > limit && limit == MAX_PARTS),
            "{result:?}"
        );
    }

    #[test]
    fn deep_nesting_parses_on_small_stack() {
        // Without ParsedMessage, dropping this tree overflows a 256 KiB stack.
        let raw = nested_messages(MAX_PARTS);
        let parsed = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                Email::parse(raw.as_bytes(), Limits::default()).map(|email| email.subject)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(parsed, Ok("deep".to_owned()));
    }

    #[test]
    fn digest_of_many_messages_parses() {
        let count = 5_000;
        let mut raw = String::from(
            "From: list@example.org\nSubject: digest\n\
             Content-Type: multipart/digest; boundary=\"next\"\n\n",
        );
        for index in 0..count {
            raw.push_str(&format!(
                "--next\nContent-Type: message/rfc822\n\nFrom: m{index}@example.org\n\
                 Subject: topic{index}\nContent-Type: text/plain\n\nbody{index}\n"
            ));
        }
        raw.push_str("--next--\n");
        let email = Email::parse(raw.as_bytes(), Limits::default()).unwrap();
        for index in [0, count / 2, count - 1] {
            assert!(
                email.body_text.contains(&format!("topic{index}")),
                "{index}"
            );
            assert!(email.body_text.contains(&format!("body{index}")), "{index}");
        }
    }

    /// `levels` nested `message/rfc822` parts, as the body of an encoded part.
    fn nested_body(levels: usize) -> String {
        let mut inner = String::new();
        for _ in 0..levels {
            inner.push_str("Content-Type: message/rfc822\n\n");
        }
        inner.push_str("From: b@example.org\nSubject: inner\n\nhello\n");
        inner
    }

    /// Wraps base64 text in lines of 76 characters.
    fn wrapped(encoded: &str) -> String {
        let mut lines = String::new();
        for chunk in encoded.as_bytes().chunks(76) {
            lines.push_str(std::str::from_utf8(chunk).unwrap());
            lines.push('\n');
        }
        lines
    }

    #[test]
    fn encoded_nesting_counts_toward_the_limit() {
        let inner = nested_body(2_000);
        let base64 = wrapped(&base64_for_test(inner.as_bytes()));
        let quoted = inner.replace("Content", "=43ontent");
        for (encoding, body) in [("base64", base64), ("quoted-printable", quoted)] {
            let raw = format!(
                "From: a@example.org\nSubject: deep\nContent-Type: message/rfc822\n\
                 Content-Transfer-Encoding: {encoding}\n\n{body}"
            );
            let result = Email::parse(raw.as_bytes(), Limits::default());
            // The encoded part itself and the 2,000 messages inside it.
            assert!(
                matches!(
                    result,
                    Err(EmailError::TooManyEncodedMessages { count, limit })
                        if count == 2_001 && limit == MAX_ENCODED_MESSAGES
                ),
                "{encoding}: {result:?}"
            );
        }
    }

    #[test]
    fn disguised_encoded_nesting_is_found() {
        let inner = nested_body(300);
        let base64 = wrapped(&base64_for_test(inner.as_bytes()));
        // A padded group first: mail-parser starts a new group of four after `=`.
        let padded = format!("WA==\n{base64}");
        let cases = [
            (
                "transfer encoding as an RFC 2047 word",
                "Content-Type: message/rfc822\n\
                 Content-Transfer-Encoding: =?us-ascii?B?YmFzZTY0?="
                    .to_owned(),
                base64.clone(),
            ),
            (
                "space inside the type",
                "Content-Type: message/ rfc822\nContent-Transfer-Encoding: base64".to_owned(),
                base64.clone(),
            ),
            (
                "quoted type",
                "Content-Type: \"message\"/rfc822\nContent-Transfer-Encoding: base64".to_owned(),
                base64.clone(),
            ),
            (
                "quoted-printable body that starts with a dash line",
                "Content-Type: message/rfc822\nContent-Transfer-Encoding: quoted-printable"
                    .to_owned(),
                format!("--x\n{}", inner.replace("Content", "=43ontent")),
            ),
            (
                "padding inside the base64 body",
                "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64".to_owned(),
                padded,
            ),
            (
                "part header after a boundary in the middle of a line",
                "Content-Type: multipart/mixed; boundary=P".to_owned(),
                format!(
                    "x--PContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n\
                     {base64}--P--\n"
                ),
            ),
        ];
        for (case, fields, body) in cases {
            let raw = format!("From: a@example.org\nSubject: deep\n{fields}\n\n{body}");
            let result = Email::parse(raw.as_bytes(), Limits::default());
            assert!(
                matches!(result, Err(EmailError::TooManyEncodedMessages { .. })),
                "{case}: {result:?}"
            );
        }
    }

    #[test]
    fn folded_blank_line_does_not_hide_encoded_body() {
        // A line of white space that starts with a space continues the field before it, so
        // mail-parser reads the base64 body after the empty line, not after this one.
        let body = wrapped(&base64_for_test(nested_body(300).as_bytes()));
        let raw = format!(
            "From: a@example.org\nSubject: deep\nContent-Type: message/rfc822\n\
             Content-Transfer-Encoding: base64\nX-Note: a\n \n x: y\n\n{body}"
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::TooManyEncodedMessages { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn ordinary_mail_passes_the_cost_checks() {
        // A MIME digest of 400 posts, each with a plain and an HTML alternative.
        let mut digest = String::from(
            "From: list@example.org\nSubject: digest\n\
             Content-Type: multipart/digest; boundary=\"DIG\"\n\n",
        );
        for index in 0..400 {
            digest.push_str(&format!(
                "--DIG\n\nFrom: user{index}@example.org\nSubject: post {index}\n\
                 Content-Type: multipart/alternative; boundary=\"alt{index}\"\n\n\
                 --alt{index}\nContent-Type: text/plain\n\n{}--alt{index}\n\
                 Content-Type: text/html\n\n<p>reply</p>\n--alt{index}--\n",
                "Some reply text.\n".repeat(400)
            ));
        }
        digest.push_str("--DIG--\n");
        // A forward as base64 message/rfc822 whose text uses the word "message" often, and a newsletter
        // called a digest with many HTML comments, forwarded the same way.
        let forwarded = "From: alice@example.org\nSubject: report\nMessage-ID: <r@example.org>\n\n\
                         This message is confidential.\n-----Original Message-----\n\
                         Thanks for your message.\n"
            .repeat(20);
        let newsletter = format!(
            "From: news@example.org\nSubject: Weekly Digest\nContent-Type: text/html\n\n{}",
            "<!--[if mso]><table><![endif]--><p>Story</p><!--[if mso]></table><![endif]-->\n"
                .repeat(300)
        );
        let forward = |inner: &str| {
            format!(
                "From: bob@example.org\nSubject: Fwd\nContent-Type: multipart/mixed; \
                 boundary=\"OUT\"\n\n--OUT\nContent-Type: text/plain\n\nFYI\n\n--OUT\n\
                 Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{}--OUT--\n",
                wrapped(&base64_for_test(inner.as_bytes()))
            )
        };
        let text = format!(
            "From: a@example.org\nSubject: survey\n\n{}",
            "Where is the boundary between work and home?\n".repeat(2_000)
        );
        for (case, raw) in [
            ("digest", digest),
            ("forward", forward(&forwarded)),
            ("newsletter", forward(&newsletter)),
            ("text", text),
        ] {
            let result = Email::parse(raw.as_bytes(), Limits::default());
            assert!(result.is_ok(), "{case}: {result:?}");
        }
    }

    #[test]
    fn long_field_values_stay_bounded() {
        // White space before the type: mail-parser skips it, so the check must not miss it.
        let body = wrapped(&base64_for_test(nested_body(300).as_bytes()));
        for spaces in [2_000, 10_000] {
            let raw = format!(
                "From: a@example.org\nSubject: deep\nContent-Type:{}message/rfc822\n\
                 Content-Transfer-Encoding: base64\n\n{body}",
                " ".repeat(spaces)
            );
            let result = Email::parse(raw.as_bytes(), Limits::default());
            assert!(
                matches!(result, Err(EmailError::TooManyEncodedMessages { .. })),
                "{spaces}: {result:?}"
            );
        }
        // A long value without continuations, as a spam in the corpus has, still parses.
        let padded = format!(
            "From: a@example.org\nContent-Type: text/html {}\n\n<p>offer</p>\n",
            "; ".repeat(7_000)
        );
        let result = Email::parse(padded.as_bytes(), Limits::default());
        assert!(result.is_ok(), "{result:?}");

        // RFC 2231 continuations, which mail-parser merges in quadratic time.
        let mut continued = String::from("From: a@example.org\nContent-Type: text/plain");
        for index in 0..20_000 {
            continued.push_str(&format!(";\n a*{index}=xxxx"));
        }
        continued.push_str("\n\nbody\n");
        let result = Email::parse(continued.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::TooManyContinuations { .. })),
            "{result:?}"
        );

        // Quotes after a long extended parameter name, each of which copies the name.
        let quoted = format!(
            "From: a@example.org\nContent-Type: text/plain; {}*=x'{}\n\nbody\n",
            "n".repeat(6_000),
            "a'".repeat(6_000)
        );
        let result = Email::parse(quoted.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::TooManyContinuations { .. })),
            "{result:?}"
        );
        // An RFC 2231 file name has two.
        let named = "From: a@example.org\nContent-Type: application/pdf; \
                     name*=utf-8''caf%C3%A9.pdf\n\nbody\n";
        let result = Email::parse(named.as_bytes(), Limits::default());
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn many_blank_header_lines_are_rejected() {
        let raw = format!(
            "From: a@example.org\nContent-Type: text/plain\nX-Note: a\n{}\nbody\n",
            " \n x: y\n".repeat(100)
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::BlankHeaderLines { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn multiparts_times_body_starts_are_bounded() {
        // Each multipart type reads from each line of white space where the body may start.
        let block = |count: usize| {
            format!(
                "From: a@example.org\n{}\nbody\n",
                "Content-Type: multipart/mixed; boundary=b\n \n".repeat(count)
            )
        };
        // 8 types and 9 places: after each line of one space, and after the empty line.
        let result = Email::parse(block(8).as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::BlankHeaderLines { .. })),
            "{result:?}"
        );
        let result = Email::parse(block(7).as_bytes(), Limits::default());
        assert!(
            !matches!(result, Err(EmailError::BlankHeaderLines { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn repeated_header_fields_are_bounded() {
        let raw = format!(
            "From: a@example.org\nSubject: hi\n{}\nbody\n",
            "Cc: a\n".repeat(MAX_HEADER_FIELDS)
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::TooManyHeaderFields { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn long_parameter_and_address_lists_are_bounded() {
        // mail-parser keeps each parameter, address and group of these fields as its own item.
        for field in [
            format!(
                "Content-Type: text/plain{}",
                "; a=b".repeat(MAX_HEADER_FIELDS)
            ),
            format!(
                "Content-Disposition: inline;\n {}",
                "a=b;".repeat(MAX_HEADER_FIELDS)
            ),
            format!("Bcc: {}", "g:;".repeat(MAX_HEADER_FIELDS)),
            format!("To: x@example.org,\n\t{}", ",".repeat(MAX_HEADER_FIELDS)),
            format!("Keywords: {}", "a,".repeat(MAX_HEADER_FIELDS)),
            format!("To: {}", "a(a)".repeat(MAX_HEADER_FIELDS)),
            format!("References: {}", "<a>".repeat(MAX_HEADER_FIELDS)),
            format!("Comments: {}", "x=?ab?q??=".repeat(MAX_HEADER_FIELDS)),
        ] {
            let raw = format!("From: a@example.org\nSubject: hi\n{field}\n\nbody\n");
            let result = Email::parse(raw.as_bytes(), Limits::default());
            assert!(
                matches!(result, Err(EmailError::TooManyHeaderFields { .. })),
                "{}: {result:?}",
                &field[..20]
            );
        }
        // Ordinary lists stay well below the bound.
        let raw = format!(
            "From: a@example.org\nTo: {}\nSubject: hi\n\nbody\n",
            "x@example.org, ".repeat(1_000)
        );
        assert!(Email::parse(raw.as_bytes(), Limits::default()).is_ok());
    }

    #[test]
    fn unclosed_encoded_words_are_bounded() {
        // Each `=?` without its `?=` is read to the end of the field, once per `=?`.
        let raw = format!(
            "From: a@example.org\nSubject: {}\n\nbody\n",
            "=?ab?q?X".repeat(5_000)
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::EncodedWordsTooLong { .. })),
            "{result:?}"
        );

        // Also where a part's header starts inside a paragraph, or after a header end that the
        // date parser swallows.
        let words = "=?ab?q?X".repeat(5_000);
        for raw in [
            format!(
                "From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n\
                 --b\nContent-Type: text/plain\n\nhello\n--b\nSubject: {words}\n\nx\n--b--\n"
            ),
            format!("From: a@example.org\nDate: -a\n\nX: 1\nSubject: {words}\n\nbody\n"),
        ] {
            let result = Email::parse(raw.as_bytes(), Limits::default());
            assert!(
                matches!(result, Err(EmailError::EncodedWordsTooLong { .. })),
                "{result:?}"
            );
        }
        // Closed encoded words cost what they hold.
        let raw = format!(
            "From: a@example.org\nSubject: {}\n\nbody\n",
            "=?utf-8?q?caf=C3=A9?= ".repeat(5_000)
        );
        let email = Email::parse(raw.as_bytes(), Limits::default()).unwrap();
        assert!(
            email.subject.starts_with("café"),
            "{}",
            &email.subject[..20]
        );
    }

    #[test]
    fn encoded_message_after_a_run_on_header_counts() {
        // `-a` makes the date parser swallow the blank line, so the header goes on with
        // `X: y`, and mail-parser decodes the message from after the second blank line.
        let inner = format!(
            "Subject: inner\n{}\nbody\n",
            "Cc: a\n".repeat(MAX_HEADER_FIELDS)
        );
        let raw = format!(
            "From: a@example.org\nContent-Type: message/rfc822\n\
             Content-Transfer-Encoding: base64\nDate: -a\n\nX: y\n\n{}\n",
            base64_for_test(inner.as_bytes())
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::TooManyHeaderFields { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn decoding_after_a_run_on_header_is_bounded() {
        // Every block end after the `Date` may start the quoted-printable message, and each
        // decodes to the end: 100,000 blocks of 4 bytes took 0.85 seconds to reject. Blocks
        // of 50 bytes reach this limit before the one on blocks read.
        let raw = |blocks: usize| {
            format!(
                "From: a@example.org\nContent-Type: message/rfc822\n\
                 Content-Transfer-Encoding: quoted-printable\nDate: -a\n\n{}",
                format!("\n{}--\n", "x".repeat(46)).repeat(blocks)
            )
        };
        let result = Email::parse(raw(20_000).as_bytes(), Limits::default());
        assert!(
            matches!(
                result,
                Err(EmailError::RunOnHeaderDecoding { limit, .. })
                    if limit == MAX_RUN_ON_DECODED_BYTES
            ),
            "{result:?}"
        );
        // A few such blocks decode far less than the limit.
        assert!(Email::parse(raw(100).as_bytes(), Limits::default()).is_ok());
    }

    #[test]
    fn decoded_blocks_are_bounded() {
        // Each quoted-printable part of the digest decodes to the end of the message, and every
        // decoded copy is read block by block.
        let raw = |parts: usize| {
            format!(
                "From: a@example.org\nContent-Type: multipart/digest; boundary=B\n\n{}{}",
                "--B\nContent-Transfer-Encoding: quoted-printable\n\n".repeat(parts),
                "a:\n\n".repeat(24_000)
            )
        };
        let result = Email::parse(raw(200).as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::EncodedMessagesTooDense { limit, .. })
                if limit == MAX_DECODED_BLOCKS),
            "{result:?}"
        );
        assert!(Email::parse(raw(2).as_bytes(), Limits::default()).is_ok());
    }

    #[test]
    fn messages_chained_in_one_block_are_bounded() {
        // Each field heads a message inside the one before, since mail-parser ends a header
        // block at a line of one space after a line without a colon. Copying 2,560 such
        // messages recursed deep enough to overflow a 2 MiB thread stack.
        let block = format!(
            "{}Content-Type: message/rfc822\n\n",
            "Content-Type: message/rfc822\nxyz\n \n".repeat(63)
        );
        let inner = format!("Subject: inner\n{}body\n", block.repeat(5));
        let raw = format!(
            "From: a@example.org\nContent-Type: message/rfc822\n\
             Content-Transfer-Encoding: base64\n\n{}\n",
            base64_for_test(inner.as_bytes())
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::TooManyEncodedMessages { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn boundary_comparisons_are_bounded() {
        // At every `--`, the boundary is compared with what follows: here it matches up to its
        // last byte at each of a million and a half dashes.
        let boundary = format!("{}x", "-".repeat(1_899));
        let raw = format!(
            "From: a@example.org\nSubject: hi\n\
             Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n{}\n",
            "-".repeat(1_500_000)
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::BoundaryComparisons { .. })),
            "{result:?}"
        );
        // Dash lines in an ordinary multipart cost little.
        let raw = format!(
            "From: a@example.org\nSubject: hi\n\
             Content-Type: multipart/mixed; boundary=\"=_part_0123456789abcdef\"\n\n\
             --=_part_0123456789abcdef\nContent-Type: text/plain\n\n{}\
             --=_part_0123456789abcdef--\n",
            format!("{}\n", "-".repeat(70)).repeat(10_000)
        );
        assert!(Email::parse(raw.as_bytes(), Limits::default()).is_ok());
    }

    #[test]
    fn soft_breaks_count_as_decoding_work() {
        // Quoted-printable soft breaks decode to nothing, but reading them is the work, and
        // each line of white space after a field is one more place where the body may start.
        let raw = format!(
            "From: a@example.org\nContent-Type: message/rfc822\n\
             Content-Transfer-Encoding: quoted-printable\n{}\n{}",
            "X-Note: a\n \n".repeat(8),
            "=\n".repeat(2_500_000)
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::EncodedMessagesTooLarge { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn digest_in_encoded_part_is_bounded() {
        // Each part of a digest is a message, and copies the whole decoded body.
        let mut digest = String::from("Content-Type: multipart/digest; boundary=d\n\n");
        for index in 0..200 {
            digest.push_str(&format!("--d\n\nFrom: m{index}@example.org\n\nbody\n"));
        }
        digest.push_str("--d--\n");
        digest.push_str(&"x".repeat(2 * 1024 * 1024));
        let raw = format!(
            "From: a@example.org\nSubject: digest\nContent-Type: message/rfc822\n\
             Content-Transfer-Encoding: base64\n\n{}",
            wrapped(&base64_for_test(digest.as_bytes()))
        );
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::EncodedMessagesTooLarge { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn unmatched_boundaries_are_bounded() {
        let mut raw = String::from("From: a@example.org\nSubject: scan\n");
        for index in 0..200 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=missing{index}\n\n"
            ));
        }
        raw.push_str(&"text without boundaries\n".repeat(300_000));
        let result = Email::parse(raw.as_bytes(), Limits::default());
        assert!(
            matches!(result, Err(EmailError::TooManyBoundaries { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn message_inside_message_in_multipart_parses() {
        // mail-parser's debug assertions failed on this shape before they were turned off in
        // the dev profile.
        let raw = "From: a@b.c\nContent-Type: multipart/mixed; boundary=d\n\n--d\n\
                   Content-Type: message/rfc822\n\nX: 1\nContent-Type: message/rfc822\n\n\
                   Y: 2\n\nbody\n--d--\n";
        assert!(Email::parse(raw.as_bytes(), Limits::default()).is_ok());
    }

    /// Encodes bytes as base64, for building test messages.
    fn base64_for_test(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn spaced_content_types_count() {
        let mut raw = String::from("From: a@example.org\nSubject: deep\n");
        for _ in 0..=MAX_PARTS {
            raw.push_str("Content-Type :message/rfc822\n\n");
        }
        raw.push_str("From: b@example.org\nSubject: inner\n\nhello\n");
        assert!(matches!(
            Email::parse(raw.as_bytes(), Limits::default()),
            Err(EmailError::TooManyParts { .. })
        ));
    }

    #[test]
    fn reads_the_message_inside_a_bounce() {
        let email = parse(
            "From: postmaster@example.net\nSubject: Undeliverable: offer\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\n\n\
             --b1\nContent-Type: text/plain\n\nYour message did not reach its recipient.\n\
             --b1\nContent-Type: message/rfc822\n\n\
             From: seller@example.com\nSubject: Work from home\n\
             Content-Type: text/html\n\n<p>Earn <b>50k</b> a month</p>\n\
             --b1--\n",
        )
        .unwrap();
        for expected in ["did not reach", "Work from home", "Earn 50k a month"] {
            assert!(
                email.body_text.contains(expected),
                "missing {expected}: {}",
                email.body_text
            );
        }
        assert!(
            email.body_html.contains("<b>50k</b>"),
            "{}",
            email.body_html
        );
    }

    #[test]
    fn decodes_legacy_charset_quoted_printable() {
        let email = parse(
            "From: a@b.c\nSubject: x\nContent-Type: text/plain; charset=iso-8859-1\n\
             Content-Transfer-Encoding: quoted-printable\n\ncaf=E9 cr=E8me\n",
        )
        .unwrap();
        assert!(
            email.body_text.contains("café crème"),
            "{}",
            email.body_text
        );
    }

    #[test]
    fn renders_html_only_body_as_text() {
        let email = parse(
            "From: a@b.c\nSubject: x\nContent-Type: text/html\n\n\
             <html><body><p>Cheap <b>pills</b></p><a href=\"http://x.example/\">here</a></body></html>\n",
        )
        .unwrap();
        assert!(
            email.body_text.contains("Cheap pills"),
            "{}",
            email.body_text
        );
        assert!(email.body_html.contains("<b>pills</b>"));
        assert_eq!(email.parts[0].content_type, "text/html");
        // The HTML is the body itself here, not an alternative to a plain-text part.
        assert_eq!(email.html_alternatives, "");
    }

    #[test]
    fn decoy_messages_get_their_own_fingerprints() {
        let with_html = |html: &str| {
            parse(&format!(
                "From: a@b.c\nSubject: x\nMIME-Version: 1.0\n\
                 Content-Type: multipart/alternative; boundary=\"b\"\n\n\
                 --b\nContent-Type: text/plain\n\n\
                 Your mail program cannot show this message. Please view it in a browser.\n\
                 --b\nContent-Type: text/html\n\n<p>{html}</p>\n--b--\n"
            ))
            .unwrap()
        };
        let spam = with_html("Refinance your mortgage today at the lowest rates in years");
        let newsletter = with_html("The quarterly report of the garden club and its meetings");
        assert_eq!(spam.body_text, newsletter.body_text);
        assert!(spam.fingerprint_text().contains("mortgage"));
        let digest =
            |email: &Email| crate::fingerprint::fingerprints(&email.fingerprint_text())[0].clone();
        assert_ne!(digest(&spam), digest(&newsletter));
    }

    #[test]
    fn walks_nested_multipart_with_base64() {
        let raw = "From: a@b.c\nSubject: x\nMIME-Version: 1.0\n\
            Content-Type: multipart/mixed; boundary=\"outer\"\n\n\
            --outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n\
            --inner\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n\
            V2luIGEgcHJpemUgbm93\n\
            --inner\nContent-Type: text/html\n\n<p>Win a prize now</p>\n--inner--\n\
            --outer\nContent-Type: application/pdf; name=\"a.pdf\"\n\
            Content-Disposition: attachment; filename=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n\
            JVBERi0xLjQK\n--outer--\n";
        let email = parse(raw).unwrap();
        assert!(
            email.body_text.contains("Win a prize now"),
            "{}",
            email.body_text
        );
        assert!(
            email.html_alternatives.contains("<p>Win a prize now</p>"),
            "{}",
            email.html_alternatives
        );
        let types: Vec<&str> = email
            .parts
            .iter()
            .map(|p| p.content_type.as_str())
            .collect();
        assert!(types.contains(&"application/pdf"), "{types:?}");
        assert!(email.parts.iter().any(|p| p.is_attachment));
    }

    #[test]
    fn accepts_mbox_envelope_line() {
        let email = parse("From someone@example.com Mon Jan 1 00:00:00 2002\nSubject: s\n\nbody\n");
        assert!(email.is_ok(), "{email:?}");
    }

    #[test]
    fn rejects_empty_input() {
        assert_eq!(parse(""), Err(EmailError::Empty));
        assert_eq!(parse(" \r\n\t"), Err(EmailError::Empty));
    }

    #[test]
    fn rejects_oversized_input() {
        let limits = Limits {
            max_message_bytes: 10,
        };
        assert_eq!(
            Email::parse(b"Subject: too long\n\nbody", limits),
            Err(EmailError::TooLarge {
                size: 23,
                limit: 10
            })
        );
    }

    #[test]
    fn rejects_text_without_headers() {
        assert_eq!(
            parse("hello there, this is not an email\n"),
            Err(EmailError::MalformedHeader { line: 1 })
        );
    }

    #[test]
    fn rejects_binary_header_block() {
        assert_eq!(
            Email::parse(b"Subject: a\0b\n\nbody", Limits::default()),
            Err(EmailError::BinaryHeader { offset: 10 })
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A deterministic sweep of byte patterns, including truncated encodings and stray
        // boundaries, replaces a fuzzer here.
        let seeds: [&[u8]; 6] = [
            b"Subject: =?utf-8?B?",
            b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x--",
            b"From: <@>\n\n=\n=ZZ",
            b"A: b\n\n\xff\xfe\x00",
            b"Content-Transfer-Encoding: base64\n\n!!!!",
            b":\n\n",
        ];
        let mut state: u32 = 7;
        for seed in seeds {
            for cut in 0..=seed.len() {
                let _ = Email::parse(&seed[..cut], Limits::default());
            }
            for _ in 0..200 {
                let mut bytes = seed.to_vec();
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let position = (state as usize) % bytes.len();
                bytes[position] = (state >> 16) as u8;
                let _ = Email::parse(&bytes, Limits::default());
            }
        }
    }

    #[test]
    fn plain_text_becomes_body() {
        let email = Email::from_plain_text("Buy now", Limits::default()).unwrap();
        assert_eq!(email.body_text, "Buy now");
        assert_eq!(
            Email::from_plain_text("  ", Limits::default()),
            Err(EmailError::Empty)
        );
    }
}
