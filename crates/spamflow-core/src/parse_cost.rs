//! Upper bounds on the work and memory that mail-parser 0.11 spends on a message, computed
//! before it parses the message.
//!
//! mail-parser parses plain MIME nesting without recursion, but some of its work grows faster
//! than the input. A base64 or quoted-printable part of type `message/rfc822` (or a part of a
//! `multipart/digest` without a type) is decoded and parsed as a message of its own, up to 3
//! levels deep. The parts of that message are then copied recursively, one stack frame per
//! message inside it, and each message inside it copies the whole decoded body. And every
//! multipart reads on until its closing delimiter, to the end of its buffer when that is
//! missing, so nested multiparts without one read the rest of the message once each. Header
//! fields cost a few hundred bytes each once parsed. RFC 2231 parameter continuations are
//! merged, and the quotes of an extended parameter value read, in time that grows with their
//! number times the value's length. Each RFC 2047 encoded word (`=?`) in a field is read
//! up to its `?=`, to the end of the field when that is missing, and read again from the next
//! `=?` when it fails. And at every `--` in a multipart, mail-parser compares the bytes that
//! follow with the boundary.
//!
//! The bounds count what mail-parser's parsers need to see, found where they could find it.
//! Header fields are read at the start of every line and after every `--` in a line, where a
//! boundary may end and a part's header block begin, and their values are parsed by
//! mail-parser's own field parsers. A header block may end at any line of white space, since a
//! line that starts with a space or tab continues a field only after a field. It may also go
//! on past one. mail-parser reads an obsolete time zone as the two bytes after its first
//! letter, whatever they are. So a `Date` value that ends in `-a` swallows its line break and
//! the blank line after it. Encoded bodies are decoded with mail-parser's own base64 decoder,
//! and with a copy of its quoted-printable rules that reads on to the end of the buffer, a
//! superset of any body it decodes.

use std::ops::Range;
use std::sync::LazyLock;

use foldhash::HashMap;
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use memchr::memmem;

/// Searchers for a line break before a line that starts with a line break, `\r` or a form
/// feed, built once.
static LINE_ENDS: LazyLock<[memmem::Finder<'static>; 3]> =
    LazyLock::new(|| [b"\n\n".as_slice(), b"\n\r", b"\n\x0c"].map(memmem::Finder::new));

/// Levels of encoded messages that mail-parser 0.11 decodes and parses (its
/// `MAX_NESTED_ENCODED`).
const ENCODED_MESSAGE_LEVELS: usize = 3;

/// The bytes of a field value, folded lines included, that are parsed. A longer value is read
/// as one that may name any type and encoding, which costs more bounds but keeps them sound.
const MAX_VALUE_BYTES: usize = 2 * 1024;

/// The field values in one line that are parsed: one at its start and a few after `--`. A
/// value that starts later is read as one that may name any type and encoding. Lines of 52
/// values each, all parsed to the end of the line, took 14.5 seconds for 10 MB.
const MAX_VALUES_PARSED_PER_LINE: usize = 4;

/// The maximum cost of the RFC 2231 parameter continuations (`name*0=`, `name*1=`) and
/// extended values (`name*=charset'language'text`) in one value, counted as their marks (`*`
/// and `'`) times value bytes. mail-parser merges continuations by rebuilding the value
/// once per continuation, so its time grows with that product: 5,000 of them in a 549 KB value
/// took 0.18 seconds, and 90,000 in 10 MB took 110 seconds. In a 1 MB value that is half
/// parameter name, the `'` after it took 4 seconds.
pub(crate) const MAX_CONTINUATION_WORK: usize = 64 * 1024 * 1024;

/// Upper bounds for one message, summed over the raw bytes and every encoded message body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ParseCost {
    /// `Content-Type` and `Content-Transfer-Encoding` fields and boundary delimiters, an upper
    /// bound on the parts that mail-parser creates.
    pub parts: usize,
    /// Messages inside encoded message bodies, each one stack frame of the recursive copy.
    pub encoded_messages: usize,
    /// Bytes that the messages inside encoded bodies copy: each one copies its whole body.
    pub copied_bytes: usize,
    /// Bytes of encoded message bodies decoded to compute these bounds.
    pub decoded_bytes: usize,
    /// The part of `decoded_bytes` decoded from the block ends after a header block that may
    /// run on: each of these ends may start a message body, and each decodes to the end of
    /// its buffer.
    pub run_on_decoded_bytes: usize,
    /// Blocks of lines read in decoded message bodies. Each body start of an encoded part is
    /// decoded to the end of its buffer, so with blocks a few bytes apart this count, not the
    /// bytes, is what the checks spend their time on.
    pub decoded_blocks: usize,
    /// Bytes read looking for boundaries: each multipart to its closing delimiter.
    pub boundary_scan_bytes: usize,
    /// Bytes compared with boundaries: the boundary's length at every `--` that a multipart
    /// reads, since each may start its delimiter.
    pub boundary_compare_bytes: usize,
    /// Bytes that the decoders of RFC 2047 encoded words read, in header fields of blocks that
    /// may head a message or part: from each `=?` to the next `?=` or the end of its field.
    pub encoded_word_bytes: usize,
    /// The parameter work of `Content-Type` and `Content-Disposition` values: their `*` and
    /// `'` marks times their bytes ([`MAX_CONTINUATION_WORK`]).
    pub continuation_work: usize,
    /// Whether a header block has more than [`MAX_BODY_STARTS`] lines of white space, which
    /// makes the message rejected.
    pub too_many_body_starts: bool,
    /// Lines that mail-parser may read as header fields, in blocks that may head a message or
    /// a part: each costs a few hundred bytes once parsed.
    pub header_fields: usize,
}

/// Limits past which the estimate stops, because the message is rejected anyway.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub max_parts: usize,
    pub max_header_fields: usize,
    pub max_encoded_messages: usize,
    pub max_copied_bytes: usize,
    pub max_decoded_bytes: usize,
    pub max_run_on_decoded_bytes: usize,
    pub max_decoded_blocks: usize,
    pub max_boundary_scan_bytes: usize,
    pub max_boundary_compare_bytes: usize,
    pub max_encoded_word_bytes: usize,
}

impl ParseCost {
    fn exceeds(&self, budget: &Budget) -> bool {
        self.parts > budget.max_parts
            || self.header_fields > budget.max_header_fields
            || self.encoded_messages > budget.max_encoded_messages
            || self.copied_bytes > budget.max_copied_bytes
            || self.continuation_work > MAX_CONTINUATION_WORK
            || self.too_many_body_starts
            || self.decoded_bytes > budget.max_decoded_bytes
            || self.run_on_decoded_bytes > budget.max_run_on_decoded_bytes
            || self.decoded_blocks > budget.max_decoded_blocks
            || self.boundary_scan_bytes > budget.max_boundary_scan_bytes
            || self.boundary_compare_bytes > budget.max_boundary_compare_bytes
            || self.encoded_word_bytes > budget.max_encoded_word_bytes
    }
}

/// Computes the bounds for `raw`. It stops early once a bound exceeds `budget`.
pub(crate) fn estimate(raw: &[u8], budget: &Budget) -> ParseCost {
    let mut cost = ParseCost::default();
    add_buffer(raw, ENCODED_MESSAGE_LEVELS, budget, &mut cost);
    cost
}

/// Adds the bounds of one buffer that mail-parser parses as a message, and of the encoded
/// message bodies in it, `levels` deep. Returns how many messages mail-parser may find in the
/// buffer besides the buffer itself.
fn add_buffer(buffer: &[u8], levels: usize, budget: &Budget, cost: &mut ParseCost) -> usize {
    // A part without a type is a message only inside a digest, whose type names it.
    let has_digest = find_ignoring_case(buffer, b"digest").next().is_some();
    let mut messages = 0;
    let mut position = 0;
    // The multipart extents, computed when the first multipart is met, since they take a pass
    // of their own.
    let mut extents = None;
    // The first block heads the buffer's message, the lines after a `--` may head a part, and
    // a block after a part that may be a message may head that message.
    let mut next_may_head = true;
    // Once a header block may run on past its end (a chain of such `Date` values can take
    // several blocks), or a boundary contains a line break, any block may be header fields.
    let mut headers_anywhere = false;
    // The types and encodings seen since a header block that may run on (see below).
    let mut run_on: Option<Block> = None;

    while let Some(block) = next_block(buffer, &mut position, budget.max_parts) {
        if levels < ENCODED_MESSAGE_LEVELS {
            cost.decoded_blocks += 1;
        }
        let may_be_message = block.may_be_message(has_digest);
        let may_head = next_may_head || headers_anywhere;
        let header = if may_head {
            block.header
        } else {
            block.header_from_dashes
        };
        cost.header_fields = cost.header_fields.saturating_add(header.fields);
        cost.encoded_word_bytes = cost
            .encoded_word_bytes
            .saturating_add(header.encoded_word_bytes);
        next_may_head = may_be_message;
        headers_anywhere |= block.may_hide_headers();
        cost.parts = cost.parts.saturating_add(block.fields);
        cost.continuation_work = cost
            .continuation_work
            .saturating_add(block.continuation_work);
        messages += block.message_fields;
        cost.too_many_body_starts |= block.too_many_body_starts;
        if cost.exceeds(budget) {
            return messages;
        }

        if block.unknown_type {
            // A multipart with a boundary that was not read: it may read to the end, and every
            // `--` may start a part, a message in a digest.
            for &start in &block.body_starts {
                cost.boundary_scan_bytes = cost
                    .boundary_scan_bytes
                    .saturating_add(buffer.len() - start);
                if cost.exceeds(budget) {
                    return messages;
                }
                let dashes = memmem::find_iter(&buffer[start..], b"--").count();
                cost.parts = cost.parts.saturating_add(dashes);
                // The boundary is at most as long as the longest value that was not read.
                cost.boundary_compare_bytes = cost.boundary_compare_bytes.saturating_add(
                    dash_pairs(&buffer[start..]).saturating_mul(block.longest_unread_value),
                );
                if has_digest {
                    messages += dashes;
                }
            }
        }

        for multipart in &block.multiparts {
            for &start in &block.body_starts {
                let extent = extents
                    .get_or_insert_with(|| {
                        multipart_extents(buffer, budget, cost.boundary_scan_bytes).into_iter()
                    })
                    .next()
                    .unwrap_or(start..buffer.len());
                // The body may start later, past any closing delimiter.
                let extent = if headers_anywhere {
                    start..buffer.len()
                } else {
                    extent
                };
                cost.boundary_scan_bytes = cost.boundary_scan_bytes.saturating_add(extent.len());
                if cost.exceeds(budget) {
                    return messages;
                }
                let delimiter = [b"--".as_slice(), &multipart.boundary].concat();
                let delimiters = memmem::find_iter(&buffer[extent.clone()], &delimiter).count();
                cost.parts = cost.parts.saturating_add(delimiters);
                cost.boundary_compare_bytes = cost.boundary_compare_bytes.saturating_add(
                    dash_pairs(&buffer[extent]).saturating_mul(multipart.boundary.len()),
                );
                // Each part of a digest is a message unless it has a type of its own.
                if multipart.digest {
                    messages += delimiters;
                }
                if cost.exceeds(budget) {
                    return messages;
                }
            }
        }

        if levels == 0 {
            continue;
        }
        // A header that runs on moves its body start past a later line of white space, and
        // the fields of the blocks it runs into are its own. So from a header block that may
        // run on, every later block's end may start an encoded message of the types and
        // encodings seen since. Rejecting such dates would reject honest mail: a corpus ham
        // ends its header with `Date: ... UT`. These places are as many as the blocks, which
        // may be a few bytes apart, so what they decode has a smaller budget of its own.
        if block.may_run_on {
            run_on.get_or_insert_with(Block::default);
        }
        if let Some(run_on) = &mut run_on {
            run_on.message_type |= may_be_message;
            run_on.base64 |= block.base64;
            run_on.quoted_printable |= block.quoted_printable;
            if run_on.message_type {
                cost.too_many_body_starts |= block.more_body_starts;
                // The block's own body starts, its end, and the end of each line of white space
                // after it, which the next block skips.
                let mut starts = block.body_starts.clone();
                let mut next = position;
                while let Some(line) = line_at(buffer, next) {
                    starts.push(next);
                    if !is_blank(&buffer[line.clone()]) {
                        break;
                    }
                    next = line.end + 1;
                }
                starts.sort_unstable();
                starts.dedup();
                if add_encoded_messages(buffer, run_on, &starts, true, levels, budget, cost) {
                    return messages;
                }
            }
        }
        if may_be_message
            && add_encoded_messages(
                buffer,
                &block,
                &block.body_starts,
                false,
                levels,
                budget,
                cost,
            )
        {
            return messages;
        }
    }
    messages
}

/// Adds the bounds of the messages that the encodings of `block` may decode from `starts`.
/// With `after_run_on`, the starts are block ends after a header block that may run on, and
/// what they decode, nested messages included, also counts as `run_on_decoded_bytes`.
/// Returns whether the budget is exceeded.
fn add_encoded_messages(
    buffer: &[u8],
    block: &Block,
    starts: &[usize],
    after_run_on: bool,
    levels: usize,
    budget: &Budget,
    cost: &mut ParseCost,
) -> bool {
    for encoding in block.encodings() {
        for &start in starts {
            let (work, decoded) = decode(encoding, &buffer[start..]);
            cost.decoded_bytes = cost.decoded_bytes.saturating_add(work);
            if after_run_on {
                cost.run_on_decoded_bytes = cost.run_on_decoded_bytes.saturating_add(work);
            }
            if cost.exceeds(budget) {
                return true;
            }
            let Some(decoded) = decoded else {
                continue;
            };
            let before = (cost.decoded_bytes, cost.run_on_decoded_bytes);
            let inside = 1 + add_buffer(&decoded, levels - 1, budget, cost);
            if after_run_on {
                cost.run_on_decoded_bytes = before.1.saturating_add(cost.decoded_bytes - before.0);
            }
            cost.encoded_messages = cost.encoded_messages.saturating_add(inside);
            cost.copied_bytes = cost
                .copied_bytes
                .saturating_add(inside.saturating_mul(decoded.len()));
        }
    }
    cost.exceeds(budget)
}

/// Counts the places in `bytes` where mail-parser compares a boundary: every `-` that follows
/// a `-`, so a run of `n` dashes counts `n - 1`.
fn dash_pairs(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .zip(bytes.iter().skip(1))
        .filter(|&(&first, &second)| first == b'-' && second == b'-')
        .count()
}

/// Returns the bytes that mail-parser may read looking for the boundary of each multipart of
/// the buffer. They come in the order in which [`add_buffer`] meets them: a block's
/// multiparts, each with each of its body starts.
///
/// Each reads up to its closing delimiter ([`closing_delimiter`]), or to the end of the buffer
/// without one. But mail-parser looks only for the boundary of the innermost multipart, so a
/// closing delimiter inside the extent of a multipart declared after the body starts is not
/// one: such an extent runs to the end. The extents are computed from the last multipart back,
/// so that those inside are known first. An extent runs to the end too if its delimiters may
/// overlap (`--a-` in `--a--a-`), since mail-parser may then pass over every closing one.
///
/// Finding the closing delimiters reads about as many bytes as the extents hold. It stops and
/// returns no extent in four cases. The extents, with the bytes `scanned` before in the
/// message's other buffers, pass `budget.max_boundary_scan_bytes`. There are more than
/// `budget.max_parts` pairs of multipart and body start. The blocks pass a limit that
/// [`add_buffer`] checks too. Or a header may go on unseen and hide a closing delimiter.
/// [`add_buffer`] then counts every multipart to the end of the buffer.
fn multipart_extents(buffer: &[u8], budget: &Budget, scanned: usize) -> Vec<Range<usize>> {
    struct Declared {
        /// The offset of the `Content-Type` value that declares it.
        at: usize,
        digest: bool,
        /// Its delimiter (`--` and the boundary), or `None` when two may overlap.
        delimiter: Option<memmem::Finder<'static>>,
    }
    let mut declared: Vec<Declared> = Vec::new();
    // Each multipart's index in `declared`, and where its body starts.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    // The parts and parameter work of the blocks so far, which [`add_buffer`] adds up too.
    let mut parts = 0usize;
    let mut continuation_work = 0usize;
    let mut position = 0;
    while let Some(block) = next_block(buffer, &mut position, budget.max_parts) {
        parts = parts.saturating_add(block.fields);
        continuation_work = continuation_work.saturating_add(block.continuation_work);
        // A header that goes on where it is not seen may hide a closing delimiter, since
        // mail-parser does not look for one in a part's header.
        if block.too_many_body_starts
            || block.may_hide_headers()
            || parts > budget.max_parts
            || continuation_work > MAX_CONTINUATION_WORK
        {
            return Vec::new();
        }
        for multipart in block.multiparts {
            let delimiter = [b"--".as_slice(), &multipart.boundary].concat();
            pairs.extend(
                block
                    .body_starts
                    .iter()
                    .map(|&start| (declared.len(), start)),
            );
            declared.push(Declared {
                at: multipart.at,
                digest: multipart.digest,
                delimiter: (!overlaps_itself(&delimiter))
                    .then(|| memmem::Finder::new(&delimiter).into_owned()),
            });
        }
        if pairs.len() > budget.max_parts {
            return Vec::new();
        }
    }

    let mut headers = HeaderIndex::new(buffer);
    let mut ends = MaxTree::new(pairs.len());
    let mut extents = vec![0..0; pairs.len()];
    let mut scanned = scanned;
    // Each step of a walk passes a delimiter that `add_buffer` counts as a part.
    let mut steps = budget.max_parts;
    for (index, &(multipart, start)) in pairs.iter().enumerate().rev() {
        let Declared {
            delimiter, digest, ..
        } = &declared[multipart];
        // A digest's parts are messages unless typed, and where a walk skips a message
        // header that mail-parser does not read, it may take a closing delimiter from one.
        // So a digest reads to the end.
        let walked = match delimiter {
            Some(delimiter) if !digest => {
                let allowed = budget.max_boundary_scan_bytes.saturating_sub(scanned);
                closing_delimiter(buffer, &mut headers, start, delimiter, allowed, &mut steps)
            }
            _ => Walked::Open,
        };
        let end = match walked {
            Walked::OverBudget => return Vec::new(),
            Walked::Open => buffer.len(),
            Walked::Closed(closing) => {
                let closing_start = closing.start;
                // The multiparts declared from the body start up to the closing delimiter.
                let later = &pairs[index + 1..];
                let first = later.partition_point(|&(other, _)| declared[other].at < start);
                let last = later.partition_point(|&(other, _)| declared[other].at < closing_start);
                if ends.max(index + 1 + first, index + 1 + last) > closing_start {
                    buffer.len()
                } else {
                    closing.end
                }
            }
        };
        scanned = scanned.saturating_add(end - start);
        if scanned > budget.max_boundary_scan_bytes {
            return Vec::new();
        }
        ends.set(index, end);
        extents[index] = start..end;
    }
    extents
}

/// Returns the closing delimiter (`--`, the boundary, `--`) of a multipart whose body starts at
/// `start`, as mail-parser walks its parts, or `None` when it has none. The first delimiter
/// opens the first part whatever follows it. After each delimiter comes a part's header, where
/// mail-parser does not look for delimiters, then the part's body up to the next delimiter,
/// which closes the multipart if `--` follows it. Each header is read to the latest place
/// where it and the headers of the messages the part may hold may end
/// ([`part_header_end`]), so a closing delimiter is never taken from inside one. Delimiters
/// of multiparts nested in the parts are not distinguished here (see [`multipart_extents`]).
fn closing_delimiter(
    buffer: &[u8],
    headers: &mut HeaderIndex,
    start: usize,
    delimiter: &memmem::Finder<'_>,
    allowed_bytes: usize,
    steps: &mut usize,
) -> Walked {
    let length = delimiter.needle().len();
    let Some(opening) = delimiter.find(&buffer[start..]) else {
        return Walked::Open;
    };
    let mut position = skip_crlf(buffer, start + opening + length);
    loop {
        if position - start > allowed_bytes || *steps == 0 {
            return Walked::OverBudget;
        }
        *steps -= 1;
        position = part_header_end(buffer, headers, position);
        let Some(found) = delimiter.find(&buffer[position..]) else {
            return Walked::Open;
        };
        let found = position + found;
        position = found + length;
        if buffer[position..].starts_with(b"--") {
            return Walked::Closed(found..position + 2);
        }
        position = after_delimiter(buffer, position);
    }
}

/// The end of a walk over the parts of a multipart.
enum Walked {
    /// At this closing delimiter.
    Closed(Range<usize>),
    /// At the end of the buffer, without a closing delimiter.
    Open,
    /// Past the bytes or steps allowed, so the message is rejected.
    OverBudget,
}

/// Returns where mail-parser's `skip_crlf` stops: past spaces, tabs and `\r`, and one `\n`.
fn skip_crlf(buffer: &[u8], mut position: usize) -> usize {
    while let Some(&byte) = buffer.get(position) {
        match byte {
            b'\r' | b' ' | b'\t' => position += 1,
            b'\n' => return position + 1,
            _ => break,
        }
    }
    position
}

/// Returns where the header of the next part starts after a delimiter that does not close
/// its multipart. mail-parser's `is_multipart_end` reads past `\r\n` or `\n`, or past any
/// other white space byte (a form feed too) and then `skip_crlf`.
fn after_delimiter(buffer: &[u8], position: usize) -> usize {
    match buffer.get(position) {
        Some(b'\r') if buffer.get(position + 1) == Some(&b'\n') => position + 2,
        Some(b'\n') => position + 1,
        Some(byte) if byte.is_ascii_whitespace() => skip_crlf(buffer, position + 1),
        _ => position,
    }
}

/// Returns the latest place where the header of a part that starts at `position` may end,
/// with the headers of the messages inside it that mail-parser reads next. A part that is a
/// message without an encoding has the message's header after its own, and so on down a
/// chain. Any header that names `message` counts, whatever the field. Digests are not walked
/// (see [`multipart_extents`]).
fn part_header_end(buffer: &[u8], headers: &mut HeaderIndex, position: usize) -> usize {
    let end = headers.block_end(buffer, position);
    if !headers.names_message(position..end) || end == buffer.len() {
        return end;
    }
    // Each walk of the buffer may pass the same chain, so its end is kept for every block on
    // the way: 25 walks over a chain of a million blocks took 3 seconds.
    let mut passed = Vec::new();
    let mut block = end;
    let chain_end = loop {
        if let Some(&known) = headers.chain_ends.get(&block) {
            break known;
        }
        passed.push(block);
        let next = headers.block_end(buffer, block);
        if !headers.names_message(block..next) || next == buffer.len() {
            break next;
        }
        block = next;
    };
    for block in passed {
        headers.chain_ends.insert(block, chain_end);
    }
    chain_end
}

/// The places where the header blocks of a buffer may end and where it names `message`,
/// found in one pass each, so that every walk over its parts reads them in logarithmic time.
struct HeaderIndex {
    /// See [`header_block_ends`].
    block_ends: Vec<usize>,
    /// The offsets of `message`, in any case.
    message_words: Vec<usize>,
    /// The end of the chain of blocks that name `message` from each header block walked so
    /// far, keyed by the block's start ([`part_header_end`]).
    chain_ends: HashMap<usize, usize>,
}

impl HeaderIndex {
    fn new(buffer: &[u8]) -> Self {
        let message_words = memchr::memchr2_iter(b'm', b'M', buffer)
            .filter(|&index| {
                buffer[index..]
                    .get(..7)
                    .is_some_and(|word| word.eq_ignore_ascii_case(b"message"))
            })
            .collect();
        Self {
            block_ends: header_block_ends(buffer),
            message_words,
            chain_ends: HashMap::default(),
        }
    }

    fn block_end(&self, buffer: &[u8], position: usize) -> usize {
        header_block_end(buffer, &self.block_ends, position)
    }

    /// Returns whether `message` lies within `range`.
    fn names_message(&self, range: Range<usize>) -> bool {
        let first = self
            .message_words
            .partition_point(|&offset| offset < range.start);
        self.message_words
            .get(first)
            .is_some_and(|&offset| offset + 7 <= range.end)
    }
}

/// Returns the ends (just past the line break) of the lines of `buffer` that end any header
/// block they are in: lines of white space that do not start with a space or tab. Such a line
/// starts with `\n`, `\r` or a form feed after a line break, so only those lines are read.
fn header_block_ends(buffer: &[u8]) -> Vec<usize> {
    let mut ends: Vec<usize> = LINE_ENDS
        .iter()
        .flat_map(|finder| finder.find_iter(buffer))
        .filter_map(|newline| {
            let start = newline + 1;
            let end = memchr::memchr(b'\n', &buffer[start..]).map_or(buffer.len(), |o| start + o);
            is_blank(&buffer[start..end]).then_some((end + 1).min(buffer.len()))
        })
        .collect();
    ends.sort_unstable();
    ends
}

/// Returns the latest place where a header block that starts at `position` may end, with
/// `ends` from [`header_block_ends`]. A first line of white space ends it at once. After it,
/// only a line of white space that does not start with a space or tab surely does, since
/// such a line may continue a field.
fn header_block_end(buffer: &[u8], ends: &[usize], position: usize) -> usize {
    let Some(first_end) = memchr::memchr(b'\n', &buffer[position..]) else {
        return buffer.len();
    };
    let first_end = position + first_end;
    if is_blank(&buffer[position..first_end]) {
        return first_end + 1;
    }
    // The lines that end at or before the first one's line break come before it.
    let later = ends.partition_point(|&end| end <= first_end + 1);
    ends.get(later).copied().unwrap_or(buffer.len())
}

/// A segment tree of the largest value in a range of indices.
struct MaxTree {
    size: usize,
    nodes: Vec<usize>,
}

impl MaxTree {
    fn new(length: usize) -> Self {
        let size = length.next_power_of_two();
        Self {
            size,
            nodes: vec![0; 2 * size],
        }
    }

    fn set(&mut self, index: usize, value: usize) {
        let mut node = index + self.size;
        self.nodes[node] = value;
        while node > 1 {
            node /= 2;
            self.nodes[node] = self.nodes[2 * node].max(self.nodes[2 * node + 1]);
        }
    }

    /// Returns the largest value at the indices from `start` up to `end`, or 0 for none.
    fn max(&self, start: usize, end: usize) -> usize {
        let (mut low, mut high) = (start + self.size, end + self.size);
        let mut largest = 0;
        while low < high {
            if low % 2 == 1 {
                largest = largest.max(self.nodes[low]);
                low += 1;
            }
            if high % 2 == 1 {
                high -= 1;
                largest = largest.max(self.nodes[high]);
            }
            low /= 2;
            high /= 2;
        }
        largest
    }
}

/// Returns whether two matches of `pattern` may overlap: some proper prefix of it is also its
/// suffix (the prefix function of Knuth, Morris and Pratt).
fn overlaps_itself(pattern: &[u8]) -> bool {
    let mut border = vec![0; pattern.len()];
    let mut length = 0;
    for index in 1..pattern.len() {
        while length > 0 && pattern[index] != pattern[length] {
            length = border[length - 1];
        }
        if pattern[index] == pattern[length] {
            length += 1;
        }
        border[index] = length;
    }
    border.last().is_some_and(|&length| length > 0)
}

/// A multipart that a block may declare.
#[derive(Debug)]
struct Multipart {
    boundary: Vec<u8>,
    digest: bool,
    /// The offset of the `Content-Type` value that declares it.
    at: usize,
}

/// The maximum number of places where one block's body may start (see [`next_block`]), and of
/// its multipart types times those places. An honest header block has one of each, and a
/// block with more is rejected.
pub(crate) const MAX_BODY_STARTS: usize = 64;

/// The facts of a block of lines about the part it would head.
#[derive(Debug, Default)]
struct Block {
    /// Offsets where the body may start once a field was read: after each line of white space.
    body_starts: Vec<usize>,
    too_many_body_starts: bool,
    /// `Content-Type`, `Content-Disposition` and `Content-Transfer-Encoding` fields.
    fields: usize,
    /// The cost of the block's lines as header fields.
    header: HeaderCost,
    /// The same for the lines from the first one with a `--` on, which may head a part.
    header_from_dashes: HeaderCost,
    /// Whether a `Date` field may make mail-parser read past the line of white space that ends
    /// the block, so that the header block goes on into the next block.
    may_run_on: bool,
    /// The parameter work of the block's `Content-Type` and `Content-Disposition` values,
    /// their marks times their bytes ([`MAX_CONTINUATION_WORK`]).
    continuation_work: usize,
    /// Whether a `Content-Type` value was too long to read whole, so that it may name any type.
    unknown_type: bool,
    /// The length of the longest such value, an upper bound on the boundary it may name.
    longest_unread_value: usize,
    content_types: usize,
    /// Whether some `Content-Type` parses to `message/rfc822` or `message/global`.
    message_type: bool,
    /// The `Content-Type` values that parse to a message type or were not read whole. Each
    /// may start a message, and a block may hold many, since mail-parser ends a header block
    /// at a line of white space after a line without a colon, where the block goes on here.
    message_fields: usize,
    /// Whether every `Content-Type` starts its line and parses to a type, and no `--` follows
    /// the last one, so that mail-parser surely reads one of them as the part's type.
    surely_typed: bool,
    /// Whether a block without fields has more than [`MAX_BODY_STARTS`] lines of white space,
    /// past the body starts kept.
    more_body_starts: bool,
    /// The offset of the value of the last `Content-Type` that starts its line.
    last_type_at: Option<usize>,
    multiparts: Vec<Multipart>,
    base64: bool,
    quoted_printable: bool,
}

/// The cost of header fields to mail-parser.
#[derive(Debug, Default, Clone, Copy)]
struct HeaderCost {
    /// Lines that mail-parser may read as header fields, the items that the list fields among
    /// them may hold, and the encoded words in them.
    fields: usize,
    /// See [`ParseCost::encoded_word_bytes`].
    encoded_word_bytes: usize,
}

impl HeaderCost {
    fn add(&mut self, fields: usize, encoded_word_bytes: usize) {
        self.fields = self.fields.saturating_add(fields);
        self.encoded_word_bytes = self.encoded_word_bytes.saturating_add(encoded_word_bytes);
    }
}

/// Fields that mail-parser 0.11 parses as dates.
const DATE_FIELDS: [&[u8]; 2] = [b"date", b"resent-date"];

/// Returns where mail-parser's date parser stops reading a value that starts at `value_start`,
/// reading no further than two bytes past the line of white space `blank`. It reads the two
/// bytes after the first letter of an obsolete time zone whatever they are, so a value that
/// ends in `-a` swallows its line break and a line of white space after it. One that ends in
/// `AM` swallows only the next line.
fn date_end(buffer: &[u8], value_start: usize, blank: &Range<usize>) -> usize {
    let mut stream = MessageStream::new(&buffer[value_start..(blank.end + 3).min(buffer.len())]);
    let _ = stream.parse_date();
    value_start + stream.offset()
}

/// Calls `each` for every colon in `text`, which starts at a `--`, with the offset just past
/// it and the last bytes of the field name before it, lowercase and from the last one back.
/// The name starts after a boundary that is not known here, and mail-parser skips white space
/// inside names (`D a t e`), so only the end of the name, white space left out, is known.
fn names_after_dashes(text: &[u8], mut each: impl FnMut(usize, &[u8])) {
    let mut name_start = 0;
    for colon in memchr::memchr_iter(b':', text) {
        // Enough bytes for the longest name looked up.
        let mut reversed = FieldName::default();
        for &byte in text[name_start..colon]
            .iter()
            .rev()
            .filter(|byte| !byte.is_ascii_whitespace())
            .take(reversed.bytes.len())
        {
            reversed.bytes[reversed.length] = byte.to_ascii_lowercase();
            reversed.length += 1;
        }
        each(colon + 1, &reversed.bytes[..reversed.length]);
        name_start = colon + 1;
    }
}

/// Returns whether `reversed`, the end of a field name from its last byte back, ends in one of
/// `names`.
fn ends_in_one_of(reversed: &[u8], names: &[&[u8]]) -> bool {
    names
        .iter()
        .any(|name| name.len() <= reversed.len() && name.iter().rev().eq(&reversed[..name.len()]))
}

/// Returns the offsets in `bytes` where `first` is followed by `second` (overlapping ones too,
/// when the two are the same byte). Lines and values are mostly short, and there one `memchr`
/// costs less than a substring search.
fn pairs(bytes: &[u8], first: u8, second: u8) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(first, bytes).filter(move |&offset| bytes.get(offset + 1) == Some(&second))
}

/// Returns the offset of the first `first` followed by `second` in `bytes` ([`pairs`]).
fn find_pair(bytes: &[u8], first: u8, second: u8) -> Option<usize> {
    pairs(bytes, first, second).next()
}

/// Returns the offsets in `text` where `word`, lowercase ASCII, starts in any case, without a
/// lowercase copy of `text`.
fn find_ignoring_case<'a>(text: &'a [u8], word: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let first = word[0];
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), text).filter(move |&offset| {
        text.get(offset..offset + word.len())
            .is_some_and(|found| found.eq_ignore_ascii_case(word))
    })
}

/// Returns whether one of the `Date` values that start at `dates` runs on past the line of
/// white space `blank` that follows them. Each date comes with whether it surely is a field,
/// one whose name starts its line. Every date is read, even one that an earlier date may have
/// swallowed: that earlier one may itself be part of another field's value, or a line of body
/// text before a boundary. Past [`MAX_UNSURE_DATES`] dates that are not surely fields, or
/// [`MAX_DATES_LEAVING_THEIR_LINE`] that read past their own line, the block may run on.
fn dates_run_on(buffer: &[u8], dates: &[(usize, bool)], blank: &Range<usize>) -> bool {
    let mut unsure = 0;
    let mut leaving = 0;
    // Dates on lines of their own read each byte of the lines once. Many dates after `--` on
    // one long line would read the rest of that line each, so past twice the bytes from the
    // first date to `blank` the block may run on.
    let first = dates
        .first()
        .map_or(blank.start, |&(value_start, _)| value_start);
    let mut own_line_budget = 2 * blank.start.saturating_sub(first) + OWN_LINE_READ_SLACK;
    for &(value_start, surely_a_field) in dates {
        if !surely_a_field {
            unsure += 1;
            if unsure > MAX_UNSURE_DATES {
                return true;
            }
        }
        // Most values end on their own line, and a read that stops at the line's end shows it
        // at the cost of the line. A value that reads on may read to `blank`, and a chain of
        // such values (`Date:-a` swallows the next line's start) would make the reads
        // quadratic, so only a few of them are read to the end.
        let line_end = memchr::memchr(b'\n', &buffer[value_start..blank.start])
            .map_or(blank.start, |offset| value_start + offset);
        let Some(left) = own_line_budget.checked_sub(line_end + 3 - value_start) else {
            return true;
        };
        own_line_budget = left;
        if date_end(buffer, value_start, &(line_end..line_end)) <= line_end + 1 {
            continue;
        }
        leaving += 1;
        if leaving > MAX_DATES_LEAVING_THEIR_LINE {
            return true;
        }
        if date_end(buffer, value_start, blank) > blank.start {
            return true;
        }
    }
    false
}

/// The most `Date` values that may not be fields read before one line of white space: past
/// it, the block may run on.
const MAX_UNSURE_DATES: usize = 64;

/// Bytes that the own-line reads of one block's dates may cover beyond twice the block:
/// each read covers up to 3 bytes past its line.
const OWN_LINE_READ_SLACK: usize = 3 * MAX_UNSURE_DATES;

/// The most `Date` values that read past their own line and are read to the line of white
/// space after them: past it, the block may run on. Each of these reads may cover the whole
/// block, so this bounds the reads to a few times its size. Honest mail has one or two dates.
const MAX_DATES_LEAVING_THEIR_LINE: usize = 16;

/// Reads the next block of lines from `position`: it starts at a line with more than white
/// space and ends at an empty line or a line of white space that does not start with a space
/// or tab. A line of white space that starts with a space or tab continues a field value when
/// it follows a field and ends the header block otherwise, so the body may start after it too.
/// Reading stops once the block has more than `max_fields` fields.
fn next_block(buffer: &[u8], position: &mut usize, max_fields: usize) -> Option<Block> {
    // Skip lines of white space.
    loop {
        let line = line_at(buffer, *position)?;
        if !is_blank(&buffer[line.clone()]) {
            break;
        }
        *position = line.end + 1;
    }

    let mut block = Block {
        surely_typed: true,
        ..Block::default()
    };
    let mut previous_blank = false;
    // The end of the current run of folded lines, and the parameter marks from the current
    // line to it.
    let mut fold: Option<(usize, usize)> = None;
    // Whether a line of the block so far has a `--`.
    let mut dashes_seen = false;
    // Whether the field that the current line may continue is a list.
    let mut in_list = false;
    // Where the values of the `Date` fields since the last line of white space start, and
    // whether each surely is a field ([`dates_run_on`]).
    let mut dates: Vec<(usize, bool)> = Vec::new();
    // The offset of the block's last `--`.
    let mut last_dashes: Option<usize> = None;

    while let Some(line) = line_at(buffer, *position) {
        *position = line.end + 1;
        let text = &buffer[line.clone()];
        if is_blank(text) {
            block.may_run_on |= dates_run_on(buffer, &dates, &line);
            dates.clear();
            let continues = matches!(text.first(), Some(b' ' | b'\t'));
            // After a line of white space that continues a field, the next one that does not
            // ends the header, and the body starts after it. A block without a field may be
            // the rest of a header that ran on, where a line without a colon lets the next
            // line of white space end it.
            if (!previous_blank || !continues) && *position < buffer.len() {
                if block.body_starts.len() < MAX_BODY_STARTS {
                    block.body_starts.push(*position);
                } else if block.fields > 0 {
                    block.too_many_body_starts = true;
                } else {
                    block.more_body_starts = true;
                }
            }
            if !continues {
                break;
            }
            previous_blank = true;
            continue;
        }

        previous_blank = false;
        let dashes = find_pair(text, b'-', b'-');
        dashes_seen |= dashes.is_some();
        if dashes.is_some() {
            last_dashes = memchr::memrchr_iter(b'-', text)
                .find(|&offset| offset > 0 && text[offset - 1] == b'-')
                .map(|offset| line.start + offset);
        }
        let mut fields = 0;
        let name = field_name(text);
        // Any line may contain a `Date` field, a folded one too: after a line without a colon,
        // mail-parser skips the white space that starts the next line and reads a field there.
        if let Some((name, value_offset)) = &name
            && name.is_one_of(&DATE_FIELDS)
        {
            let value_start = line.start + value_offset;
            let starts_line = !matches!(text.first(), Some(b' ' | b'\t'));
            dates.push((value_start, starts_line));
            // A value that reads on into the next line hides that line's fields, a type too.
            if date_end(buffer, value_start, &(line.end..line.end)) > line.end + 1 {
                block.surely_typed = false;
            }
        }
        // mail-parser keeps a piece of a value for each folded line, and in a list the line
        // break may end an item: 2 million folded lines took 250 to 308 MB.
        let folded = matches!(text.first(), Some(b' ' | b'\t'));
        if folded && in_list {
            // A folded line of the list field: its separators are counted below.
            fields += 1;
        } else if let Some((name, _)) = name {
            fields += 1;
            in_list = name.is_one_of(&LIST_FIELDS);
        } else {
            fields += usize::from(folded);
            in_list = false;
        }

        let (end, marks) = match fold {
            Some((end, marks)) if line.start <= end => (end, marks),
            _ => {
                let end = fold_end(buffer, &line);
                let run = &buffer[line.start..end];
                let (words, bytes) = encoded_words(run);
                block.header.add(words, bytes);
                if dashes_seen || find_pair(run, b'-', b'-').is_some() {
                    block.header_from_dashes.add(words, bytes);
                }
                (end, count_parameter_marks(run))
            }
        };
        // A `Date` field after a boundary in the middle of the line may run on as well, and a
        // list field there is a list.
        let mut list_after_dashes = false;
        if let Some(dashes) = dashes {
            let from = line.start + dashes;
            let after = &buffer[from..line.end];
            names_after_dashes(after, |value_offset, reversed| {
                if ends_in_one_of(reversed, &DATE_FIELDS) {
                    dates.push((from + value_offset, false));
                    // The part's header may start at such a date and read on into the next
                    // line.
                    block.surely_typed = false;
                }
                list_after_dashes |= ends_in_one_of(reversed, &LIST_FIELDS);
            });
        }
        fold = Some((end, marks - count_parameter_marks(text)));

        // A `Content-Type` or `Content-Disposition` after a `--` starts a list too.
        in_list |= block.read_line(buffer, line, end, marks, max_fields) || list_after_dashes;
        if in_list {
            fields += list_separators(text);
        }
        block.header.add(fields, 0);
        if dashes_seen {
            block.header_from_dashes.add(fields, 0);
        }
        if block.fields > max_fields || block.continuation_work > MAX_CONTINUATION_WORK {
            break;
        }
    }

    // A part's header starts right after a delimiter, so a `--` after the last type may start
    // a part without one: in a digest, a message.
    if block.content_types == 0 || last_dashes > block.last_type_at {
        block.surely_typed = false;
    }
    // Each multipart reads from each body start, so they count together.
    if block
        .multiparts
        .len()
        .saturating_mul(block.body_starts.len())
        > MAX_BODY_STARTS
    {
        block.too_many_body_starts = true;
    }
    Some(block)
}

/// Returns the end of the value that starts in `line`: the end of the last folded line (one
/// that starts with a space or tab) after it.
fn fold_end(buffer: &[u8], line: &Range<usize>) -> usize {
    let mut end = line.end;
    while matches!(buffer.get(end + 1), Some(b' ' | b'\t'))
        && let Some(next) = line_at(buffer, end + 1)
    {
        end = next.end;
    }
    end
}

/// Counts the RFC 2047 encoded words that mail-parser may try in a field value, folded lines
/// included, and the bytes its decoders may read for them. Each is read from its `=?` to the
/// next `?=`, or to the end of the value when there is none.
fn encoded_words(value: &[u8]) -> (usize, usize) {
    let mut words = 0;
    let mut bytes = 0usize;
    // The next `?=` at or after the current word's text, found once per stretch of the value.
    let mut next_end: Option<usize> = Some(0);
    for start in pairs(value, b'=', b'?') {
        words += 1;
        let from = start + 2;
        if next_end.is_some_and(|end| end < from) {
            next_end = find_pair(&value[from..], b'?', b'=').map(|offset| from + offset);
        }
        let end = next_end.map_or(value.len(), |end| end + 2);
        bytes = bytes.saturating_add(end - start);
    }
    (words, bytes)
}

/// Counts the bytes that make mail-parser's parameter parser do work that grows with the
/// value's length: the `*` of RFC 2231 continuations, whose merging rebuilds the value once
/// each, and the `'` of extended values (`name*=charset'language'text`). After the second
/// `'`, each one copies the parameter's name and compares it with the parameters so far.
fn count_parameter_marks(bytes: &[u8]) -> usize {
    memchr::memchr2_iter(b'*', b'\'', bytes).count()
}

/// Fields that mail-parser 0.11 parses as lists, of addresses and groups, parameters, words or
/// message identifiers. Each item takes up to a few hundred bytes. 2.6 million groups in one
/// `Bcc` field took 676 MB, 2.6 million parameters in a `Content-Type` 243 MB, and a
/// `References` field of `<a>` 109 MB.
const LIST_FIELDS: [&[u8]; 28] = [
    b"content-type",
    b"content-disposition",
    b"from",
    b"to",
    b"cc",
    b"bcc",
    b"reply-to",
    b"sender",
    b"resent-to",
    b"resent-from",
    b"resent-bcc",
    b"resent-cc",
    b"resent-sender",
    b"list-archive",
    b"list-help",
    b"list-id",
    b"list-owner",
    b"list-post",
    b"list-subscribe",
    b"list-unsubscribe",
    b"keywords",
    b"content-language",
    b"message-id",
    b"resent-message-id",
    b"references",
    b"in-reply-to",
    b"content-id",
    b"return-path",
];

/// Returns the name that mail-parser reads if `line` is a header field, lowercase and without
/// white space: the bytes before a colon that follows a byte that is neither white space nor a
/// colon. Returns the offset of its value too, just after that colon.
fn field_name(line: &[u8]) -> Option<(FieldName, usize)> {
    let start = line
        .iter()
        .position(|byte| !byte.is_ascii_whitespace() && *byte != b':')?;
    let colon = start + memchr::memchr(b':', &line[start..])?;
    let mut name = FieldName::default();
    for byte in line[start..colon]
        .iter()
        .filter(|byte| !byte.is_ascii_whitespace())
    {
        if let Some(slot) = name.bytes.get_mut(name.length) {
            *slot = byte.to_ascii_lowercase();
        }
        name.length += 1;
    }
    Some((name, colon + 1))
}

/// A field name, lowercase, kept without an allocation: only the short names of
/// [`LIST_FIELDS`] and [`DATE_FIELDS`] are looked up.
#[derive(Default)]
struct FieldName {
    bytes: [u8; 24],
    length: usize,
}

impl FieldName {
    fn is_one_of(&self, names: &[&[u8]]) -> bool {
        self.bytes
            .get(..self.length)
            .is_some_and(|name| names.contains(&name))
    }
}

/// Counts the bytes that separate or start the items of a list field in a line: addresses and
/// groups, parameters, words, or message identifiers. Comments, quotes and escapes in an
/// address start items of their own too: 2.6 million `a(a)` in a `To` field took 292 MB.
fn list_separators(line: &[u8]) -> usize {
    line.iter()
        .filter(|&&byte| matches!(byte, b',' | b';' | b':' | b'<' | b'(' | b')' | b'"' | b'\\'))
        .count()
}

/// Returns the line that starts at `start`, without its `\n`, or `None` past the end.
fn line_at(buffer: &[u8], start: usize) -> Option<Range<usize>> {
    if start >= buffer.len() {
        return None;
    }
    let end = memchr::memchr(b'\n', &buffer[start..]).map_or(buffer.len(), |offset| start + offset);
    Some(start..end)
}

impl Block {
    /// Reads the fields in `line`, whose values run on to `end` through the folded lines after
    /// it. From the start of the line to `end` there are `marks` parameter marks (`*` and `'`).
    /// Returns whether a `Content-Type` or `Content-Disposition` field, a list of parameters,
    /// is among them.
    fn read_line(
        &mut self,
        buffer: &[u8],
        line: Range<usize>,
        end: usize,
        marks: usize,
        max_fields: usize,
    ) -> bool {
        let found = field_values(&buffer[line.clone()]);
        let lists = found
            .iter()
            .any(|(value_start, _)| value_start.name != Field::TransferEncoding);
        if found.is_empty() {
            return false;
        }
        // The parameter marks of each value: those from its start to `end`.
        let mut counted_to = line.start;
        let mut before = 0;
        let marks: Vec<usize> = found
            .iter()
            .map(|(value_start, _)| {
                let from = line.start + value_start.offset;
                before += count_parameter_marks(&buffer[counted_to..from]);
                counted_to = from;
                marks - before
            })
            .collect();
        for (index, ((value_start, at_line_start), marks)) in
            found.into_iter().zip(marks).enumerate()
        {
            self.fields += 1;
            let from = line.start + value_start.offset;
            if value_start.name != Field::TransferEncoding {
                self.continuation_work = self
                    .continuation_work
                    .saturating_add(marks.saturating_mul(end - from));
                if self.continuation_work > MAX_CONTINUATION_WORK {
                    return lists;
                }
            }
            // Values after the first few in a line overlap them, and are not parsed, so that a
            // line of many costs no more than a few to read.
            let whole = end - from <= MAX_VALUE_BYTES && index < MAX_VALUES_PARSED_PER_LINE;
            let mut value = buffer[from..end.min(from + MAX_VALUE_BYTES)].to_vec();
            value.push(b'\n');
            match value_start.name {
                Field::Type if whole => {
                    self.content_types += 1;
                    self.read_content_type(&value, at_line_start, from);
                }
                Field::Type => {
                    self.content_types += 1;
                    self.message_fields += 1;
                    self.unknown_type = true;
                    self.longest_unread_value = self.longest_unread_value.max(end - from);
                    self.surely_typed = false;
                }
                Field::TransferEncoding if whole => self.read_transfer_encoding(&value),
                Field::TransferEncoding => {
                    self.base64 = true;
                    self.quoted_printable = true;
                }
                Field::Disposition => {}
            }
            if self.fields > max_fields {
                return lists;
            }
        }
        lists
    }

    /// Reads a `Content-Type` value that starts at offset `at` of the buffer.
    fn read_content_type(&mut self, value: &[u8], at_line_start: bool, at: usize) {
        let HeaderValue::ContentType(content_type) = MessageStream::new(value).parse_content_type()
        else {
            // mail-parser reads a value that does not parse as no type at all.
            self.surely_typed = false;
            return;
        };
        // After a line of white space, the header may have ended already.
        self.surely_typed &= at_line_start && self.body_starts.is_empty();
        if at_line_start {
            self.last_type_at = Some(at);
        }
        let ctype = content_type.ctype();
        let subtype = content_type.subtype().unwrap_or_default();
        if ctype.eq_ignore_ascii_case("message")
            && (subtype.eq_ignore_ascii_case("rfc822") || subtype.eq_ignore_ascii_case("global"))
        {
            self.message_type = true;
            self.message_fields += 1;
        }
        if ctype.eq_ignore_ascii_case("multipart")
            && let Some(boundary) = content_type.attribute("boundary")
            && !boundary.is_empty()
        {
            self.multiparts.push(Multipart {
                boundary: boundary.as_bytes().to_vec(),
                digest: subtype.eq_ignore_ascii_case("digest"),
                at,
            });
        }
    }

    fn read_transfer_encoding(&mut self, value: &[u8]) {
        let lowercase = value.to_ascii_lowercase();
        self.base64 |= memmem::find(&lowercase, b"base64").is_some();
        self.quoted_printable |= memmem::find(&lowercase, b"quoted-printable").is_some();
        if let HeaderValue::Text(text) = MessageStream::new(value).parse_unstructured() {
            let text = text.trim();
            self.base64 |= text.eq_ignore_ascii_case("base64");
            self.quoted_printable |= text.eq_ignore_ascii_case("quoted-printable");
        }
    }

    /// Returns whether header fields may follow where they are not looked for: the block's
    /// header may run on past its end, or a boundary with a line break may start a part's
    /// header right after a line of white space.
    fn may_hide_headers(&self) -> bool {
        self.may_run_on
            || self
                .multiparts
                .iter()
                .any(|multipart| multipart.boundary.iter().any(|&b| b == b'\n' || b == b'\r'))
    }

    /// Returns whether mail-parser may read the part as a message: its type is a message type,
    /// or it may have no type that mail-parser reads while a digest in the buffer may hold it.
    fn may_be_message(&self, has_digest: bool) -> bool {
        self.message_type || self.unknown_type || (has_digest && !self.surely_typed)
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

/// The fields that decide whether a part is an encoded message, and `Content-Disposition`,
/// which mail-parser parses as it parses `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Disposition,
    TransferEncoding,
}

/// The start of a field's value in a line.
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
    // A line that starts with white space may continue a field, and then its name is not
    // read.
    if let Some(value) = field_at(line, 0) {
        found.push((value, !matches!(line.first(), Some(b' ' | b'\t'))));
    }
    let Some(dashes) = find_pair(line, b'-', b'-') else {
        return found;
    };
    for start in dashes + 2..line.len() {
        if !matches!(line[start], b'c' | b'C') {
            continue;
        }
        // Every name starts with `co`, white space aside, which spares reading most starts.
        let second = line[start + 1..]
            .iter()
            .find(|byte| !byte.is_ascii_whitespace());
        if matches!(second, Some(b'o' | b'O'))
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
    const NAMES: [(&[u8], Field); 3] = [
        (b"content-type", Field::Type),
        (b"content-disposition", Field::Disposition),
        (b"content-transfer-encoding", Field::TransferEncoding),
    ];
    let mut name = [0; 25];
    let mut length = 0;
    for (offset, &byte) in line.iter().enumerate().skip(start) {
        if byte == b':' {
            if length == 0 {
                continue;
            }
            return NAMES
                .iter()
                .find(|(known, _)| *known == &name[..length])
                .map(|&(_, field)| ValueStart {
                    name: field,
                    offset: offset + 1,
                });
        }
        if !byte.is_ascii_whitespace() {
            // No name is longer than the longest of `NAMES`.
            *name.get_mut(length)? = byte.to_ascii_lowercase();
            length += 1;
        }
    }
    None
}

/// Decodes an encoded message body that starts at the start of `body`. Returns the bytes read
/// and the decoded body, or `None` when mail-parser could not decode it either.
fn decode(encoding: TransferEncoding, body: &[u8]) -> (usize, Option<Vec<u8>>) {
    match encoding {
        // mail-parser's base64 decoder fails at a `--` that is not the boundary and stops at
        // the boundary, so a body it decodes ends at the first `--`.
        TransferEncoding::Base64 => {
            let end = memmem::find(body, b"--").unwrap_or(body.len());
            let (offset, decoded) = MessageStream::new(&body[..end]).decode_base64_mime(b"");
            (end, (offset != usize::MAX).then(|| decoded.into_owned()))
        }
        TransferEncoding::QuotedPrintable => {
            let (read, decoded) = decode_quoted_printable(body);
            (read, Some(decoded))
        }
    }
}

/// Decodes quoted-printable by mail-parser 0.11's rules (`decode_quoted_printable_mime`), on to
/// the end of `body` instead of a boundary, and stops where those rules fail. Returns the bytes
/// read and the decoded bytes, which start with whatever mail-parser decodes from the same
/// start.
fn decode_quoted_printable(body: &[u8]) -> (usize, Vec<u8>) {
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
    // mail-parser writes every line break after the first `\r` it meets as `\r\n`, so one
    // `\r` may double the size of a decoded buffer of empty lines.
    let mut line_break = b"\n".as_slice();
    for (index, &byte) in body.iter().enumerate() {
        match byte {
            b'=' if state != State::Text => return (index, decoded),
            b'=' => state = State::Equals,
            b'\n' => {
                if state == State::Equals {
                    state = State::Text;
                } else {
                    decoded.truncate(decoded.len() - trailing_spaces);
                    decoded.extend_from_slice(line_break);
                }
                trailing_spaces = 0;
            }
            b'\r' => line_break = b"\r\n",
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
    (body.len(), decoded)
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

/// Returns whether mail-parser may end a header block at this line: it skips white space,
/// then stops at the line break.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
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
                value.is_some_and(|value| value.name == Field::Type),
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
    fn encoded_words_are_read_to_their_end() {
        assert_eq!(encoded_words(b"plain text"), (0, 0));
        // Two closed words: each from its `=?` to its `?=`.
        assert_eq!(encoded_words(b"=?a?q?b?= and =?a?q?cd?="), (2, 9 + 10));
        // Unclosed words read on to the next `?=`, or to the end.
        assert_eq!(encoded_words(b"=?x =?a?q?b?= =?y"), (3, 13 + 9 + 3));
        assert_eq!(encoded_words(b"=?=?=?"), (3, 5 + 4 + 2));
    }

    #[test]
    fn dash_pairs_in_runs_and_lines() {
        assert_eq!(dash_pairs(b""), 0);
        assert_eq!(dash_pairs(b"-"), 0);
        assert_eq!(dash_pairs(b"--b\n-x--"), 2);
        assert_eq!(dash_pairs(b"-----"), 4);
    }

    #[test]
    fn fields_after_dashes_count() {
        let found = field_values(b"junk--boundaryContent-Type: message/rfc822");
        let names: Vec<(Field, bool)> = found
            .iter()
            .map(|(value, start)| (value.name, *start))
            .collect();
        assert_eq!(names, [(Field::Type, false)]);
    }

    #[test]
    fn quoted_printable_follows_mail_parser() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"a=3Db", b"a=b"),
            // After the first `\r`, every line break is written as `\r\n`.
            (b"a\nb\r\nc\n\n", b"a\nb\r\nc\r\n\r\n"),
            (b"a\r\n\n\n", b"a\r\n\r\n\r\n"),
            (b"soft=\nbreak", b"softbreak"),
            (b"trailing   \nnext", b"trailing\nnext"),
            // A hex digit, a line break, then the second digit: mail-parser joins them.
            (b"=6\nDessage", b"\nmessage"),
            // Two equals signs: mail-parser's decoding fails there.
            (b"ok==rest", b"ok"),
        ];
        for (encoded, expected) in cases {
            assert_eq!(
                decode_quoted_printable(encoded).1,
                expected,
                "{:?}",
                String::from_utf8_lossy(encoded)
            );
        }
    }

    const UNBOUNDED: Budget = Budget {
        max_parts: usize::MAX,
        max_header_fields: usize::MAX,
        max_encoded_messages: usize::MAX,
        max_copied_bytes: usize::MAX,
        max_decoded_bytes: usize::MAX,
        max_run_on_decoded_bytes: usize::MAX,
        max_decoded_blocks: usize::MAX,
        max_boundary_scan_bytes: usize::MAX,
        max_boundary_compare_bytes: usize::MAX,
        max_encoded_word_bytes: usize::MAX,
    };

    #[test]
    fn dates_that_swallow_the_header_end_are_found() {
        let runs_on = |raw: String| {
            let mut position = 0;
            next_block(raw.as_bytes(), &mut position, usize::MAX).is_some_and(|b| b.may_run_on)
        };
        for (date, last) in [
            ("Mon, 2 Sep 2002 10:10:10 -0700 (PDT)", false),
            ("Mon, 2 Sep 2002 10:10:10 +0000", false),
            ("2 Sep 2002 10:10:10 EST", false),
            ("-a-a", false),
            ("27 Jun 01 3:36:25 AM", true),
            ("2 Sep 2002 10:10:10 UT", true),
            ("-a", true),
        ] {
            // The field last in the header, and followed by one more field.
            assert_eq!(
                runs_on(format!("Subject: hi\nDate: {date}\n\nbody\n")),
                last,
                "{date}"
            );
            assert!(
                !runs_on(format!("Subject: hi\nDate: {date}\nX-A: a\n\nbody\n")),
                "{date}"
            );
        }
        assert!(runs_on("Subject: hi\n--bDate: -a\n\nbody\n".to_owned()));
        // mail-parser skips white space inside a field name.
        assert!(runs_on(
            "Subject: hi\n--b D a t e : -a\n\nbody\n".to_owned()
        ));
        assert!(!runs_on(
            "Subject: hi\n--b D a t e : -a\nX: 1\n\nbody\n".to_owned()
        ));
        // After a line without a colon, mail-parser reads a field on the next line, folded or not.
        assert!(runs_on("Subject: hi\nxyz\n Date: -a\n\nbody\n".to_owned()));
    }

    #[test]
    fn fields_after_a_swallowed_header_end_count() {
        // `Subject` and `Date`, and then the two fields that the date parser lets through.
        let raw = b"Subject: hi\nDate: -a\n\nX-A: a\nX-B: b\n\nbody\n";
        assert_eq!(estimate(raw, &UNBOUNDED).header_fields, 4);
        let raw = b"Subject: hi\nDate: 1 Jan 2002 10:10:10 +0000\n\nX-A: a\nX-B: b\n\nbody\n";
        assert_eq!(estimate(raw, &UNBOUNDED).header_fields, 2);
    }

    #[test]
    fn run_on_multipart_reads_to_end() {
        let tail = "x".repeat(10_000);
        let raw = format!(
            "From: a@example.org\nContent-Type: multipart/mixed; boundary=Z\nDate: -a\n\n\
             X: --Z--\n\n{tail}\n"
        );
        let cost = estimate(raw.as_bytes(), &UNBOUNDED);
        assert!(cost.boundary_scan_bytes > tail.len(), "{cost:?}");
    }

    #[test]
    fn late_delimiters_start_untyped_parts() {
        // mail-parser starts the part's header after `--Q`, so the `Content-Type` above it
        // belongs to the part before, and in a digest a part without a type is a message.
        let encoded = "Content-Type:multipart/digest;boundary=Q\n\nContent-Type:t\n--Q\n\
                       Content-Transfer-Encoding:base64\n\nU3ViamVjdDogYQoKeAo=\n--Q--\n";
        let cost = estimate(encoded.as_bytes(), &UNBOUNDED);
        assert_eq!(cost.encoded_messages, 1, "{cost:?}");
        // The message's header fields count too.
        let plain = |fields: usize| {
            format!(
                "Content-Type:multipart/digest;boundary=B\n\nContent-Type:t\n--B\n\n{}\nx\n--B--\n",
                "Cc:a\n".repeat(fields)
            )
        };
        let fields = |raw: String| estimate(raw.as_bytes(), &UNBOUNDED).header_fields;
        assert!(fields(plain(100)) - fields(plain(0)) >= 100);
    }

    #[test]
    fn unread_types_and_late_bodies_count() {
        // In each, mail-parser reads no type for the part, so in a digest it is a message, or
        // the body starts where the checks did not decode.
        let digest = "Content-Type:multipart/digest;boundary=B\n\n--B\n";
        let encoded = "U3ViamVjdDogYQoKeAo=\n";
        let cases = [
            // The tab line ends the header, so the type is in the body.
            format!(
                "{digest}Content-Transfer-Encoding:quoted-printable\nx\n\t\nContent-Type:t/p\n\n\
                 x\n--B--\n"
            ),
            // A folded line continues the field before it.
            format!(
                "{digest}Content-Transfer-Encoding:base64\nX:\n Content-Type:t/p\n\n{encoded}--B--\n"
            ),
            // The date reads on into the next line.
            format!(
                "{digest}Content-Transfer-Encoding:base64\nDate:-a\nContent-Type:t/p\n\n{encoded}--B--\n"
            ),
            // A header that runs on ends at a later line of white space.
            format!(
                "Content-Type:message/rfc822\nContent-Transfer-Encoding:base64\nDate:-a\n\n\n\x0c\n\
                 {encoded}"
            ),
            // A header that runs on, a line without a colon, then a line of one space.
            format!(
                "Content-Type:message/rfc822\nContent-Transfer-Encoding:base64\nDate:-a\n\r\n\x0b\n \n\
                 {encoded}"
            ),
            // The folded date is part of the value of `m`, so the next one is a field, and
            // reads past the form feed line.
            format!(
                "Content-Type:message/rfc822\nContent-Transfer-Encoding:base64\n\
                 m:\n Date:1 n 2 0:0:0 a\nDate:- a\n\x0c\nX:\x0c\n\n{encoded}"
            ),
            // A date right after the delimiter reads on into the type's line.
            format!(
                "Content-Type:multipart/digest;boundary=B\n\n--BDate:-a\nContent-Type:text/plain\n\
                 Content-Transfer-Encoding:base64\n\n{encoded}--B--\n"
            ),
            // A header that runs on into a block whose own header ends early.
            format!(
                "Content-Transfer-Encoding:base64\nDate:-a\n\n\nContent-Type:message/rfc822\nx\n \n\
                 {encoded}"
            ),
        ];
        for raw in cases {
            let cost = estimate(raw.as_bytes(), &UNBOUNDED);
            assert!(cost.encoded_messages >= 1, "{raw:?}: {cost:?}");
        }
        // Without an encoding, the message's header fields count.
        for part_header in ["X:\n Content-Type:t/p\n", "Date:-a\nContent-Type:t/p\n"] {
            let fields = |count: usize| {
                let raw = format!(
                    "{digest}{part_header}\n{}\nx\n--B--\n",
                    "Cc:a\n".repeat(count)
                );
                estimate(raw.as_bytes(), &UNBOUNDED).header_fields
            };
            assert!(fields(100) - fields(0) >= 100, "{part_header:?}");
        }
    }

    #[test]
    fn dates_after_a_swallowing_date_are_read() {
        // mail-parser reads the folded date after the line without a colon as a field, which
        // swallows the start of the next line, so the third date is the field that runs on.
        let folded = "Content-Type:message/rfc822\nContent-Transfer-Encoding:base64\nx\n Date:-a\n\
                      Date:1 n 2 0:0:0 a\nDate:1 n 2 0:0:0 a\n\nX\n\n\
                      Q29udGVudC1UeXBlOiBtZXNzYWdlL3JmYzgyMgoKVG86IGEKCngK";
        let cost = estimate(folded.as_bytes(), &UNBOUNDED);
        assert!(cost.encoded_messages >= 2, "{cost:?}");
        // The part after the boundary starts with a date that runs on, whatever the date at
        // the start of the body line reads.
        let fields = |count: usize| {
            let raw = format!(
                "Content-Type:multipart;boundary=B\n\ndate:--BResent-Date:1 J 2 1:1:1 M\n\x0c\n{}\n",
                "a:\n".repeat(count)
            );
            estimate(raw.as_bytes(), &UNBOUNDED).header_fields
        };
        assert!(fields(100) - fields(0) >= 100);
    }

    /// Checks whether the dates of `raw` (each `date:` in any case, all surely fields or all
    /// not) run on past its first empty line, as `next_block` calls `dates_run_on`.
    fn first_block_runs_on(raw: &str, surely_fields: bool) -> bool {
        let dates: Vec<(usize, bool)> = find_ignoring_case(raw.as_bytes(), b"date:")
            .map(|at| (at + 5, surely_fields))
            .collect();
        let blank_start = raw.find("\n\n").unwrap() + 1;
        dates_run_on(raw.as_bytes(), &dates, &(blank_start..blank_start + 1))
    }

    #[test]
    fn chains_of_dates_that_read_on_are_cut() {
        // Each `-a` zone swallows the line break and the start of the next `Date`, so each
        // value reads on. Past the limit the block may run on, and no value is read again.
        let chain = |count: usize| format!("{}Date:-a\n x\n\nb\n", "Date:-a\n".repeat(count));
        assert!(!first_block_runs_on(
            &chain(MAX_DATES_LEAVING_THEIR_LINE - 1),
            true
        ));
        assert!(first_block_runs_on(
            &chain(MAX_DATES_LEAVING_THEIR_LINE),
            true
        ));

        // Dates that end on their own line are not limited.
        let plain = format!("{}\nb\n", "Date: 1 Jan 2002 00:00:00 +0000\n".repeat(1000));
        assert!(!first_block_runs_on(&plain, true));
    }

    #[test]
    fn dates_sharing_a_long_line_are_read_once() {
        // Dates after `--` on one line each read the rest of it. Past twice the block's bytes,
        // the block may run on instead.
        let line =
            |count: usize| format!("--{}{}\n\nb\n", "date:1 ".repeat(count), "x".repeat(10_000));
        assert!(!first_block_runs_on(&line(2), false));
        assert!(first_block_runs_on(&line(3), false));
    }

    #[test]
    fn bodies_start_after_a_form_feed_line() {
        // The tab line continues the type's value, so the form feed line ends the header and
        // the base64 body starts after it.
        let raw = "Content-Type:multipart/mixed;boundary=B\n\n--B\n\
                   Content-Transfer-Encoding:base64\nContent-Type:message/rfc822\n\t\n\x0c\n\
                   U3ViamVjdDogYQoKeAo=\n--B--\n";
        let cost = estimate(raw.as_bytes(), &UNBOUNDED);
        assert_eq!(cost.encoded_messages, 1, "{cost:?}");
    }

    #[test]
    fn list_fields_after_a_boundary_count_their_items() {
        // mail-parser starts a part's header right after the delimiter, and skips white space
        // inside the field name, so each `:b;` is an item of the `To` list.
        for line in ["--BTo: ", "text--B T o: "] {
            let raw = format!(
                "From: a@example.org\nContent-Type: multipart/mixed; boundary=B\n\n\
                 --B\n\ntext\n{line}{}\n\nbody\n--B--\n",
                ":b;".repeat(1_000)
            );
            let cost = estimate(raw.as_bytes(), &UNBOUNDED);
            assert!(cost.header_fields > 1_000, "{line:?}: {cost:?}");
        }
    }

    #[test]
    fn fields_after_a_boundary_inside_a_paragraph_count() {
        let message = |fields: &str| {
            format!(
                "From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n\
                 --b\nContent-Type: text/plain\n\nhello\n--b\n{fields}\nbody\n--b--\n"
            )
        };
        let without = estimate(message("").as_bytes(), &UNBOUNDED).header_fields;
        let with = estimate(message("X-A: a\nX-B: b\n").as_bytes(), &UNBOUNDED).header_fields;
        assert_eq!(with - without, 2);
    }

    #[test]
    fn delimiters_that_overlap_are_found() {
        assert!(!overlaps_itself(b"--=_part_0123"));
        assert!(overlaps_itself(b"--a-"));
        assert!(overlaps_itself(b"--a--a"));
        assert!(!overlaps_itself(b""));
    }

    #[test]
    fn fields_after_date_chain_count() {
        let message =
            |fields: &str| format!("Subject: hi\nDate: -a\n\n-a\n\nX: x\n{fields}\nbody\n");
        let without = estimate(message("").as_bytes(), &UNBOUNDED).header_fields;
        let with = estimate(message("X-A: a\nX-B: b\n").as_bytes(), &UNBOUNDED).header_fields;
        assert_eq!(with - without, 2);
    }

    #[test]
    fn fields_after_multiline_boundary_count() {
        let message = |fields: &str| {
            format!(
                "Subject: hi\nContent-Type: multipart/mixed; boundary=\"=?utf-8?q?x=0A=0A?=\"\n\n\
                 --x\n\n{fields}\nbody\n--x\n\n--\n"
            )
        };
        let without = estimate(message("").as_bytes(), &UNBOUNDED).header_fields;
        let with = estimate(message("X-A: a\nX-B: b\n").as_bytes(), &UNBOUNDED).header_fields;
        assert_eq!(with - without, 2);
    }

    #[test]
    fn delimiters_after_a_hidden_closing_delimiter_count() {
        // mail-parser reads `--P--` inside the part of `Q` as text, and goes on to find the
        // parts of `P` after `--Q--`.
        let parts = "--P\n\n".repeat(1_000);
        let raw = format!(
            "Subject: hi\nContent-Type: multipart/mixed; boundary=P\n\n--P\n\
             Content-Type: multipart/mixed; boundary=Q\n\n--Q\n\n--P--\n--Q--\n{parts}"
        );
        assert!(estimate(raw.as_bytes(), &UNBOUNDED).parts > 1_000);
    }

    #[test]
    fn parameter_quotes_count_as_marks() {
        let work = |value: &str| {
            let raw = format!("Subject: hi\nContent-Type: {value}\n\nbody\n");
            estimate(raw.as_bytes(), &UNBOUNDED).continuation_work
        };
        assert_eq!(work("text/plain"), 0);
        // One `*` and two `'`, times the value's bytes from the colon on.
        let extended = "application/pdf; name*=utf-8''a%20b.pdf";
        assert_eq!(work(extended), 3 * (extended.len() + 1));
    }

    #[test]
    fn folded_lines_count_as_header_fields() {
        let fields = |header: &str| {
            let raw = format!("{header}\n\nbody\n");
            estimate(raw.as_bytes(), &UNBOUNDED).header_fields
        };
        assert_eq!(fields("Subject: a\n b\n c") - fields("Subject: a b c"), 2);
        assert_eq!(fields("To: a,\n b") - fields("To: a, b"), 1);
    }

    #[test]
    fn extents_stop_past_the_scan_budget() {
        let raw = format!(
            "Subject: hi\nContent-Type: multipart/mixed; boundary=b\n\n{}",
            "x\n".repeat(1_000)
        );
        assert_eq!(multipart_extents(raw.as_bytes(), &UNBOUNDED, 0).len(), 1);
        let budget = Budget {
            max_boundary_scan_bytes: 100,
            ..UNBOUNDED
        };
        assert!(multipart_extents(raw.as_bytes(), &budget, 0).is_empty());
    }

    #[test]
    fn values_parsed_per_line_are_capped() {
        let unknown_type = |values: usize| {
            let raw = format!(
                "Subject: hi\nX: {}\n\nbody\n",
                "--b Content-Type: text/plain ".repeat(values)
            );
            let mut position = 0;
            next_block(raw.as_bytes(), &mut position, usize::MAX).is_some_and(|b| b.unknown_type)
        };
        assert!(!unknown_type(MAX_VALUES_PARSED_PER_LINE));
        assert!(unknown_type(MAX_VALUES_PARSED_PER_LINE + 1));
    }

    #[test]
    fn each_message_type_counts() {
        let messages =
            |raw: &str| add_buffer(raw.as_bytes(), 0, &UNBOUNDED, &mut ParseCost::default());
        // mail-parser ends a header block at a line of one space after a line without a colon,
        // so each of these fields heads a message of its own.
        let chain = "Content-Type: message/rfc822\nxyz\n \n".repeat(3);
        assert_eq!(messages(&format!("Subject: hi\n\n{chain}\nbody\n")), 3);
        // A value too long to read may name a message type too.
        let long = format!(
            "Content-Type: message/rfc822; x=\"{}\"\n\nbody\n",
            "a".repeat(3_000)
        );
        assert_eq!(messages(&format!("Subject: hi\n\n{long}")), 1);
        assert_eq!(
            messages("Subject: hi\nContent-Type: text/plain\n\nbody\n"),
            0
        );
    }

    #[test]
    fn message_header_chains_are_walked_once() {
        let body = format!("{}X: other\n\nbody\n", "X: message\n\n".repeat(1_000));
        let chain_end = body.find("body").unwrap();
        let mut headers = HeaderIndex::new(body.as_bytes());
        assert_eq!(part_header_end(body.as_bytes(), &mut headers, 0), chain_end);
        let chain_blocks = headers.chain_ends.len();
        assert_eq!(chain_blocks, 1_000);
        // A walk from a later block of the chain reads the end that the first one kept.
        let later = 500 * "X: message\n\n".len();
        assert_eq!(
            part_header_end(body.as_bytes(), &mut headers, later),
            chain_end
        );
        assert_eq!(headers.chain_ends.len(), chain_blocks);
        // A block that does not name `message` ends the chain after it.
        let other = body.find("X: other").unwrap();
        assert_eq!(
            part_header_end(body.as_bytes(), &mut headers, other),
            chain_end
        );
    }

    #[test]
    fn closing_delimiters_follow_the_part_walk() {
        let closing = |body: &str| {
            let delimiter = memmem::Finder::new(b"--B");
            let mut headers = HeaderIndex::new(body.as_bytes());
            match closing_delimiter(
                body.as_bytes(),
                &mut headers,
                0,
                &delimiter,
                usize::MAX,
                &mut 100,
            ) {
                Walked::Closed(range) => Some(range.start),
                Walked::Open => None,
                Walked::OverBudget => panic!("over budget: {body:?}"),
            }
        };
        let body = "--B\nContent-Type: text/plain\n\nhi\n--B--\n";
        assert_eq!(closing(body), body.find("--B--"));
        // The first delimiter opens a part even when `--` follows it.
        assert_eq!(closing("--B--\n\nhi\n--B\n\nthere\n"), None);
        // mail-parser does not look for delimiters in a part's header.
        assert_eq!(closing("--B\nX: --B--\n\nhi\n"), None);
        assert_eq!(closing("--B\nX: a\n \n--B--\n\nhi\n"), None);
        // After a delimiter that does not close, mail-parser passes any one white space byte.
        assert_eq!(closing("--B\n\nhi\n--B\x0c\nX: --B--\n\nthere\n"), None);
        // Nor in the header of a message that a part holds.
        let attached = "--B\nContent-Type: message/rfc822\n\nSubject: --B--\n\nhi\n";
        assert_eq!(closing(attached), None);
    }

    #[test]
    fn walks_stop_past_their_steps() {
        let parts = "--B\n\nx\n".repeat(100);
        let raw =
            format!("Subject: hi\nContent-Type: multipart/mixed; boundary=B\n\n{parts}--B--\n");
        assert_eq!(multipart_extents(raw.as_bytes(), &UNBOUNDED, 0).len(), 1);
        let budget = Budget {
            max_parts: 50,
            ..UNBOUNDED
        };
        assert!(multipart_extents(raw.as_bytes(), &budget, 0).is_empty());
    }

    #[test]
    fn digests_read_to_the_end() {
        let extent_end = |subtype: &str| {
            let raw = format!(
                "Subject: hi\nContent-Type: multipart/{subtype}; boundary=D\n\n\
                 --D\nContent-Type: text/plain\n\nhi\n--D--\ntail\n"
            );
            let extents = multipart_extents(raw.as_bytes(), &UNBOUNDED, 0);
            (extents.first().map(|extent| extent.end), raw.len())
        };
        let (end, length) = extent_end("digest");
        assert_eq!(end, Some(length));
        let (end, length) = extent_end("mixed");
        assert!(end.is_some_and(|end| end < length));
    }

    #[test]
    fn multiparts_nested_within_a_block_count() {
        // mail-parser ends X's header at the line of one space, and reads the two `--X--` as
        // the body of Y's part. Here both multiparts are declared in one block.
        let parts = "--X\n\n".repeat(1_000);
        let raw = format!(
            "Subject: hi\nContent-Type: multipart/mixed; boundary=Z\n\n\
             --Z\nContent-Type: multipart/mixed; boundary=X\nxyz\n \n\
             --X\nContent-Type: multipart/mixed; boundary=Y\n\n\
             --Y\n\n--X--\n\n--X--\n--Y--\n{parts}--X--\n--Z--\n"
        );
        assert!(estimate(raw.as_bytes(), &UNBOUNDED).parts > 1_000);
    }

    #[test]
    fn plain_mail_costs_little() {
        let raw = b"From: a@example.org\nSubject: hi\nContent-Type: text/plain\n\
                    Content-Transfer-Encoding: base64\n\naGVsbG8=\n";
        let cost = estimate(raw, &UNBOUNDED);
        // The Content-Type and Content-Transfer-Encoding fields.
        assert_eq!(cost.parts, 2);
        assert_eq!(cost.encoded_messages, 0);
        assert_eq!(cost.boundary_scan_bytes, 0);
    }
}
