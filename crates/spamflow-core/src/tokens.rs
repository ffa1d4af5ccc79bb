//! Tokens: the named, countable facts about an email that features are built from.
//!
//! Every token carries a namespace prefix so that the same word in different places stays a
//! different feature. The prefixes are `s:` subject words, `b:` body words, `s2:` and `b2:` word bigrams,
//! `hid:` words a reader cannot see, `a:` link text words, `from:` sender domain parts,
//! `fl:` sender local-part pieces, `fn:` sender display-name words, `h:` selected header
//! facts, `u:` URL facts, `html:` markup facts, `mime:` structure facts and `n:` bucketed
//! sizes and ratios.
//!
//! Relay headers (`Received`) and the mbox `From ` envelope line never become tokens: they
//! describe the site that collected the mail more than the mail itself.

use crate::email::Email;
use crate::html::{self, HtmlFacts};

/// Maximum length of a kept word, because longer runs are usually encoded blobs, not words.
const MAX_WORD_CHARS: usize = 30;
/// Upper bound on body characters tokenized, so one huge message cannot stall a worker.
const MAX_BODY_CHARS: usize = 200_000;
/// Upper bound on subject characters tokenized. Real subjects are far shorter.
const MAX_SUBJECT_CHARS: usize = 1_000;

/// Characters of the sender's local part that are read. RFC 5321 allows 64 octets.
const MAX_LOCAL_PART_CHARS: usize = 256;

/// The maximum length of a written domain name (RFC 1035 allows 255 bytes on the wire).
const MAX_DOMAIN_BYTES: usize = 253;

/// Link hosts whose own tokens are pushed, in order of appearance. The counts of links and
/// sites cover more of them, up to [`MAX_URL_HOSTS_FOUND`].
const MAX_URL_HOSTS: usize = 4_096;

/// Distinct link hosts that [`extract_url_hosts`] collects, so the count tokens stop growing
/// at bucket 15. A message of 300,000 distinct hosts took 0.6 seconds without this bound.
const MAX_URL_HOSTS_FOUND: usize = 16_384;
/// Combining marks kept after one character of an unspaced script. Thai puts a vowel and a
/// tone mark on a consonant, so 4 leaves room.
const MAX_MARKS_PER_CHARACTER: usize = 4;
/// Bigrams are taken from this many leading body words. The opening of a message carries
/// most of its phrasing, and the cap bounds the token count of long mail.
const MAX_BIGRAM_WORDS: usize = 2_000;

/// Returns the tokens of an email, with repeats, in a stable order.
pub fn tokenize(email: &Email) -> Vec<String> {
    let mut tokens = Vec::new();

    let subject: String = email.subject.chars().take(MAX_SUBJECT_CHARS).collect();
    let subject_words = words(&subject);
    push_unigrams_and_bigrams(&mut tokens, "s:", "s2:", &subject_words);
    let body: String = email.body_text.chars().take(MAX_BODY_CHARS).collect();
    let body_words = words(&body);
    push_unigrams_and_bigrams(&mut tokens, "b:", "b2:", &body_words);
    // Words of HTML alternatives count as body words: with presence values, the words that
    // both alternatives share add nothing, and a pitch hidden behind a decoy part shows. Only
    // the text a reader sees counts, so ham words hidden there cannot pass as body words.
    let alternatives = html::scan(&email.html_alternatives);
    push_unigrams_and_bigrams(&mut tokens, "b:", "b2:", &words(&alternatives.visible_text));
    push_shape_tokens(&mut tokens, &email.subject, &body, email.is_plain_text);
    push_numeric_tokens(&mut tokens, email, &body);

    push_sender_tokens(&mut tokens, email);
    for (name, value) in &email.headers {
        push_header(&mut tokens, name, value);
    }
    push_consistency_tokens(&mut tokens, email);
    push_recipient_tokens(&mut tokens, email);

    let facts = html::scan(&email.body_html);
    push_html_tokens(&mut tokens, &facts);

    let urls = extract_url_hosts(&email.body_text, &email.body_html);
    tokens.push(format!("u:count:{}", bucket(urls.len())));
    let mut sites: Vec<String> = urls.iter().filter_map(|h| registrable(h)).collect();
    sites.sort_unstable();
    sites.dedup();
    tokens.push(format!("u:sites:{}", bucket(sites.len())));
    for host in urls.iter().take(MAX_URL_HOSTS) {
        push_domain(&mut tokens, "u:", host);
        if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
            tokens.push("u:ip_literal".to_owned());
        }
    }
    push_link_tokens(&mut tokens, &facts);

    push_mime_tokens(&mut tokens, email);
    tokens
}

/// Pushes each word with `unigram_prefix`, and each pair of neighbouring words among the first
/// [`MAX_BIGRAM_WORDS`] with `bigram_prefix`.
fn push_unigrams_and_bigrams(
    tokens: &mut Vec<String>,
    unigram_prefix: &str,
    bigram_prefix: &str,
    words: &[String],
) {
    for word in words {
        tokens.push(format!("{unigram_prefix}{word}"));
    }
    let leading = &words[..words.len().min(MAX_BIGRAM_WORDS)];
    for pair in leading.windows(2) {
        tokens.push(format!("{bigram_prefix}{}_{}", pair[0], pair[1]));
    }
}

/// Pushes the words of text with a prefix.
fn push_words(tokens: &mut Vec<String>, prefix: &str, text: &str) {
    for word in words(text) {
        tokens.push(format!("{prefix}{word}"));
    }
}

/// Splits text into lowercase words of letters and digits. Numbers longer than four digits
/// become `<number>`.
fn words(text: &str) -> Vec<String> {
    let text = without_invisible(text);
    let mut words = Vec::new();
    for run in text.split(|c: char| !is_word_char(c)) {
        if run.chars().any(is_unspaced_script) {
            push_unspaced_words(&mut words, run);
        } else {
            push_word(&mut words, run);
        }
    }
    words
}

/// Pushes one word of a spaced script, lowercased, unless it is too short or too long. Numbers
/// longer than four digits become `<number>`.
fn push_word(words: &mut Vec<String>, word: &str) {
    let word = word.trim_matches('\'');
    let chars = word.chars().count();
    if !(2..=MAX_WORD_CHARS).contains(&chars) {
        return;
    }
    let lower = word.to_lowercase();
    // Long numbers are ids and prices; their shape matters more than their digits.
    if lower.chars().all(|c| c.is_ascii_digit()) && chars > 4 {
        words.push("<number>".to_owned());
    } else {
        words.push(lower);
    }
}

/// Checks whether a character belongs inside a word: letters, digits, combining marks, the
/// characters of unspaced scripts, and `'` and `$`.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\'' || c == '$' || is_unspaced_script(c) || is_combining_mark(c)
}

/// Removes characters that show nothing: zero-width spaces and joiners, direction marks,
/// invisible operators, variation selectors, tag characters, Hangul fillers, the combining
/// grapheme joiner, the byte order mark and the soft hyphen. Spam puts them inside words
/// (`vi\u{200b}agra`) to split them for filters while readers see the whole word.
fn without_invisible(text: &str) -> std::borrow::Cow<'_, str> {
    let invisible = |c: char| {
        matches!(
            c,
            '\u{ad}'
                | '\u{34f}'
                | '\u{115f}'..='\u{1160}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{e0000}'..='\u{e007f}'
        )
    };
    if text.contains(invisible) {
        text.chars()
            .filter(|&c| !invisible(c))
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// Checks whether a character is a mark that combines with the character before it: the
/// combining diacritics used with Latin letters, Thai vowel and tone marks, the kana voicing
/// marks, and the vowels and final consonants of decomposed Hangul.
fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036f}'   // Combining Diacritical Marks
        | '\u{0e31}'
        | '\u{0e34}'..='\u{0e3a}'
        | '\u{0e47}'..='\u{0e4e}' // Thai marks
        | '\u{1160}'..='\u{11ff}' // Hangul Jamo vowels and final consonants
        | '\u{3099}'..='\u{309a}' // Combining kana voicing marks
        | '\u{ff9e}'..='\u{ff9f}' // Halfwidth kana voicing marks
    )
}

/// Checks whether a character belongs to a script written without spaces between words:
/// Chinese, Japanese kana, and Thai. Korean Hangul, which does use spaces, is included as well:
/// its words carry attached particles, and pairs of syllables match across them.
fn is_unspaced_script(c: char) -> bool {
    matches!(c,
        '\u{0e00}'..='\u{0e7f}'       // Thai
        | '\u{1100}'..='\u{11ff}'     // Hangul Jamo
        | '\u{3005}'..='\u{3007}'     // Ideographic iteration mark, closing mark, zero
        | '\u{3040}'..='\u{30ff}'     // Hiragana, Katakana
        | '\u{3130}'..='\u{318f}'     // Hangul Compatibility Jamo
        | '\u{3400}'..='\u{4dbf}'     // CJK Unified Ideographs Extension A
        | '\u{4e00}'..='\u{9fff}'     // CJK Unified Ideographs
        | '\u{ac00}'..='\u{d7af}'     // Hangul Syllables
        | '\u{f900}'..='\u{faff}'     // CJK Compatibility Ideographs
        | '\u{ff66}'..='\u{ff9f}'     // Halfwidth Katakana
        | '\u{20000}'..='\u{323af}'   // CJK Unified Ideographs Extensions B to H
    )
}

/// Splits a run of letters that contains an unspaced script into words: each pair of
/// neighbouring characters of that script is a word (a lone character is one), and the runs of
/// other letters between them are words as usual. A character keeps the combining marks that
/// follow it. Without this, a Chinese sentence is one long token that never repeats, or none at
/// all past [`MAX_WORD_CHARS`].
fn push_unspaced_words(words: &mut Vec<String>, run: &str) {
    // Each character with its combining marks, as a byte range of `run`.
    let mut clusters: Vec<(usize, usize)> = Vec::new();
    let mut marks = 0;
    for (index, c) in run.char_indices() {
        let end = index + c.len_utf8();
        match clusters.last_mut() {
            // A mark joins the cluster before it. Marks past `MAX_MARKS_PER_CHARACTER` are
            // dropped, so a run of marks cannot make one huge token.
            Some(last) if is_combining_mark(c) => {
                if marks < MAX_MARKS_PER_CHARACTER && last.1 == index {
                    last.1 = end;
                    marks += 1;
                }
            }
            _ => {
                clusters.push((index, end));
                marks = 0;
            }
        }
    }
    let unspaced =
        |&(start, _): &(usize, usize)| run[start..].chars().next().is_some_and(is_unspaced_script);

    let mut first = 0;
    while first < clusters.len() {
        let in_script = unspaced(&clusters[first]);
        let after = clusters[first..]
            .iter()
            .position(|cluster| unspaced(cluster) != in_script)
            .map_or(clusters.len(), |offset| first + offset);
        let segment = &clusters[first..after];
        // Built from the clusters, which leave out dropped marks.
        let text_of = |clusters: &[(usize, usize)]| -> String {
            clusters
                .iter()
                .map(|&(start, end)| &run[start..end])
                .collect()
        };
        if !in_script {
            // Not `words`: a mark of an unspaced script after a Latin letter would send the
            // same text back here forever.
            push_word(words, &text_of(segment));
        } else if segment.len() == 1 {
            words.push(text_of(segment));
        } else {
            for pair in segment.windows(2) {
                words.push(text_of(pair));
            }
        }
        first = after;
    }
}

/// Adds facts about the shape of text rather than its words.
fn push_shape_tokens(tokens: &mut Vec<String>, subject: &str, body: &str, is_plain_text: bool) {
    let letters = subject.chars().filter(|c| c.is_alphabetic()).count();
    let upper = subject.chars().filter(|c| c.is_uppercase()).count();
    if letters >= 6 && upper * 10 >= letters * 7 {
        tokens.push("s:shape:mostly_upper".to_owned());
    }
    if subject.contains('!') {
        tokens.push("s:shape:exclamation".to_owned());
    }
    if subject.is_empty() && !is_plain_text {
        tokens.push("s:shape:empty".to_owned());
    }
    let exclamations = body.matches('!').count();
    tokens.push(format!("b:shape:exclamations:{}", bucket(exclamations)));
    tokens.push(format!("b:shape:length:{}", bucket(body.len() / 256)));
}

/// Sizes and ratios, bucketed so that one token stands for a range of values.
fn push_numeric_tokens(tokens: &mut Vec<String>, email: &Email, body: &str) {
    tokens.push(format!("n:raw_kib:{}", bucket(email.raw_size / 1024)));
    tokens.push(format!(
        "n:subject_chars:{}",
        bucket(email.subject.chars().count())
    ));

    let mut letters = 0usize;
    let mut upper = 0usize;
    let mut digits = 0usize;
    let mut non_ascii = 0usize;
    let mut total = 0usize;
    for c in body.chars().filter(|c| !c.is_whitespace()) {
        total += 1;
        if c.is_alphabetic() {
            letters += 1;
            if c.is_uppercase() {
                upper += 1;
            }
        }
        if c.is_ascii_digit() {
            digits += 1;
        }
        if !c.is_ascii() {
            non_ascii += 1;
        }
    }
    tokens.push(format!("n:upper_share:{}", tenths(upper, letters)));
    tokens.push(format!("n:digit_share:{}", tenths(digits, total)));
    tokens.push(format!("n:non_ascii_share:{}", tenths(non_ascii, total)));
    if !email.body_html.is_empty() {
        // Markup bytes per byte of text: high for image-heavy or table-layout mail.
        let ratio = email.body_html.len() / body.len().max(1);
        tokens.push(format!("n:html_per_text:{}", bucket(ratio)));
    }
}

/// Computes the share `part / whole` in tenths, 0 to 10, or 0 when `whole` is 0.
fn tenths(part: usize, whole: usize) -> usize {
    (part * 10).checked_div(whole).unwrap_or(0)
}

/// Tokens from the `From` address: domain parts, local-part pieces and display-name words.
fn push_sender_tokens(tokens: &mut Vec<String>, email: &Email) {
    if let Some(domain) = &email.from_domain {
        push_domain(tokens, "from:", domain);
    }
    if let Some(local) = &email.from_local {
        let local: String = local.chars().take(MAX_LOCAL_PART_CHARS).collect();
        for piece in local.split(|c: char| !c.is_alphanumeric()) {
            if piece.is_empty() {
                continue;
            }
            if piece.chars().any(|c| c.is_ascii_digit()) {
                // Numbered senders (`offer123`) are typical of bulk senders.
                tokens.push("fl:<has_digits>".to_owned());
            } else {
                tokens.push(format!("fl:{piece}"));
            }
        }
    }
    match &email.from_name {
        Some(name) => {
            let name: String = name.chars().take(MAX_SUBJECT_CHARS).collect();
            push_words(tokens, "fn:", &name);
        }
        // Plain text has no headers, so their absence is no evidence.
        None if !email.is_plain_text => tokens.push("h:from_name:none".to_owned()),
        None => {}
    }
}

/// Pushes whether the reply address and message id belong to the sender's site.
fn push_consistency_tokens(tokens: &mut Vec<String>, email: &Email) {
    let Some(from_site) = email.from_domain.as_deref().and_then(registrable) else {
        if !email.is_plain_text {
            tokens.push("h:from:no_domain".to_owned());
        }
        return;
    };
    for (header, name) in [("reply-to", "reply_to"), ("message-id", "msgid")] {
        let Some(value) = email.header(header) else {
            continue;
        };
        let domain = value
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches(|c: char| c == '>' || c.is_whitespace()));
        match domain.and_then(registrable) {
            Some(site) if site == from_site => tokens.push(format!("h:{name}:same_site")),
            Some(_) => tokens.push(format!("h:{name}:other_site")),
            None => {}
        }
    }
}

/// Markup facts: hidden text and its words, and counts of images, forms, scripts and comments.
fn push_html_tokens(tokens: &mut Vec<String>, facts: &HtmlFacts) {
    for trick in &facts.hidden_by {
        tokens.push(format!("html:hidden:{}", trick.as_str()));
    }
    push_words(tokens, "hid:", &facts.hidden_text);
    tokens.push(format!("html:images:{}", bucket(facts.images)));
    if facts.forms > 0 {
        tokens.push("html:form".to_owned());
    }
    if facts.scripts > 0 {
        tokens.push("html:script".to_owned());
    }
    tokens.push(format!("html:comments:{}", bucket(facts.comments)));
}

/// Link facts: the words of link text, and links whose text names another site than the link
/// target, a phishing staple.
fn push_link_tokens(tokens: &mut Vec<String>, facts: &HtmlFacts) {
    tokens.push(format!("u:links:{}", bucket(facts.links.len())));
    for link in &facts.links {
        push_words(tokens, "a:", &link.text);
        let Some(target) = parse_href(&link.href) else {
            continue;
        };
        if target.has_userinfo {
            tokens.push("u:userinfo".to_owned());
        }
        if target.has_port {
            tokens.push("u:port".to_owned());
        }
        let target_site = registrable(&target.host);
        let shown = extract_url_hosts(&link.text, "");
        if shown
            .iter()
            .any(|host| registrable(host).is_some() && registrable(host) != target_site)
        {
            tokens.push("u:text_names_other_site".to_owned());
        }
    }
}

/// The parts of an `http` or `https` link target that features use.
#[derive(Debug, PartialEq, Eq)]
struct Href {
    host: String,
    /// `user@host` form, which shows a trusted name before the `@` and goes elsewhere.
    has_userinfo: bool,
    has_port: bool,
}

fn parse_href(href: &str) -> Option<Href> {
    let href = href.trim();
    let rest = href
        .strip_prefix("http://")
        .or_else(|| href.strip_prefix("https://"))?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (has_userinfo, host_port) = match authority.rsplit_once('@') {
        Some((_, host_port)) => (true, host_port),
        None => (false, authority),
    };
    let (host, has_port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            (host, true)
        }
        _ => (host_port, false),
    };
    if host.is_empty() {
        return None;
    }
    Some(Href {
        host: host.to_ascii_lowercase(),
        has_userinfo,
        has_port,
    })
}

/// Returns the last two labels of a host name, a stand-in for its registrable domain.
///
/// NOTE: without the public suffix list, `mail.example.co.uk` maps to `co.uk`.
fn registrable(host: &str) -> Option<String> {
    // From the end, so that a host of millions of labels is not split whole.
    let mut labels = host.rsplit('.').filter(|label| !label.is_empty());
    let last = labels.next()?;
    let before = labels.next()?;
    Some(format!("{before}.{last}").to_ascii_lowercase())
}

fn push_domain(tokens: &mut Vec<String>, prefix: &str, domain: &str) {
    let domain = domain.trim_end_matches('.');
    if domain.len() > MAX_DOMAIN_BYTES {
        // No host name is this long, so its labels are not split: 5 million of them took 226 MB.
        tokens.push(format!("{prefix}too_long"));
        return;
    }
    let domain = domain.to_ascii_lowercase();
    tokens.push(format!("{prefix}{domain}"));
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    if let Some(tld) = labels.last() {
        tokens.push(format!("{prefix}tld:{tld}"));
    }
    if let Some(site) = registrable(&domain) {
        tokens.push(format!("{prefix}site:{site}"));
    }
}

/// Characters kept of a header-value shape or a mailer string.
const MAX_HEADER_TOKEN_CHARS: usize = 60;
/// Characters of a `To` value read for recipient facts. A longer value is cut, so that a
/// crafted header cannot make tokenizing slow.
const MAX_RECIPIENT_CHARS: usize = 4_096;

fn push_header(tokens: &mut Vec<String>, name: &str, value: &str) {
    // Which fields a message has is a fingerprint of the software that wrote it: replies carry
    // `In-Reply-To`, list mail `List-*`, Outlook `X-MimeOLE`, and bulk tools their own mix.
    tokens.push(format!("h:has:{name}"));
    if value.trim().is_empty() {
        return;
    }
    match name {
        "content-type" => {
            let kind = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            tokens.push(format!("h:content-type:{kind}"));
            if let Some(charset) = charset_parameter(value) {
                tokens.push(format!("h:charset:{charset}"));
            }
        }
        "x-mailer" | "user-agent" => {
            let product: String = value
                .split(['/', ' ', '('])
                .next()
                .unwrap_or("")
                .chars()
                .take(MAX_HEADER_TOKEN_CHARS)
                .collect();
            tokens.push(format!("h:mailer:{}", product.to_ascii_lowercase()));
            // The full string with its version: bulk tools forge a few exact versions.
            let full: String = value
                .split_whitespace()
                .flat_map(|word| {
                    std::iter::once('_').chain(word.chars().flat_map(char::to_lowercase))
                })
                .skip(1)
                .take(MAX_HEADER_TOKEN_CHARS)
                .collect();
            tokens.push(format!("h:mailer_full:{full}"));
        }
        "message-id" => {
            let (local, domain) = match value.rsplit_once('@') {
                Some((local, domain)) => (local, Some(domain.trim_end_matches('>'))),
                None => (value, None),
            };
            if let Some(domain) = domain.filter(|d| !d.is_empty()) {
                let domain: String = domain.chars().take(MAX_HEADER_TOKEN_CHARS).collect();
                push_domain(tokens, "h:msgid:", &domain);
            }
            let local = local.trim().trim_start_matches('<');
            tokens.push(format!("h:msgid:shape:{}", shape(local)));
        }
        "date" => tokens.push(format!("h:date:shape:{}", shape(value))),
        "to" | "cc" => {
            let recipients = value.matches('@').count();
            tokens.push(format!("h:{name}:recipients:{}", bucket(recipients)));
        }
        "content-transfer-encoding" => {
            tokens.push(format!("h:cte:{}", value.trim().to_ascii_lowercase()));
        }
        "precedence" | "x-priority" | "importance" => {
            tokens.push(format!("h:{name}:{}", value.trim().to_ascii_lowercase()));
        }
        _ => {}
    }
}

/// Returns the layout of a header value with its content left out: each run of digits
/// becomes `9`, of lowercase letters `a`, of uppercase letters `A`, of white space `_`, and
/// other characters stay.
///
/// `Tue, 7 May 2002 9:38:27 -0600` becomes `Aa,_9_Aa_9_9:9:9_-9`. Mail programs write dates and
/// message ids in their own layouts, so the shape names the program without naming the
/// message.
fn shape(value: &str) -> String {
    let mut shape = String::new();
    let mut last = None;
    for c in value.trim().chars() {
        let class = if c.is_ascii_digit() {
            '9'
        } else if c.is_lowercase() {
            'a'
        } else if c.is_uppercase() {
            'A'
        } else if c.is_whitespace() {
            '_'
        } else {
            c
        };
        let is_run = matches!(class, '9' | 'a' | 'A' | '_');
        if !(is_run && last == Some(class)) {
            shape.push(class);
        }
        last = Some(class);
        if shape.chars().count() >= MAX_HEADER_TOKEN_CHARS {
            break;
        }
    }
    shape
}

/// Pushes facts about the addressees: no `To` at all, undisclosed recipients, mail addressed
/// to its own sender, and a display name that is the address itself. Bulk tools address mail to
/// the sender to hide the list in `Bcc`, and address-harvesting tools write the address as the
/// name.
fn push_recipient_tokens(tokens: &mut Vec<String>, email: &Email) {
    if email.is_plain_text {
        return;
    }
    let Some(to) = email.header("to") else {
        tokens.push("h:to:none".to_owned());
        return;
    };
    let to: String = to
        .chars()
        .take(MAX_RECIPIENT_CHARS)
        .collect::<String>()
        .to_ascii_lowercase();
    if to.contains("undisclosed") || to.trim_end().ends_with(":;") {
        tokens.push("h:to:undisclosed".to_owned());
    }

    // `email.from_local` and `email.from_domain` are ASCII-lowercased, like `to`.
    let from = match (&email.from_local, &email.from_domain) {
        (Some(local), Some(domain)) => Some(format!("{local}@{domain}")),
        _ => None,
    };

    let (mut equals_from, mut name_is_address) = (false, false);
    // A comma inside a quoted name splits one recipient in two. Neither piece then has a name
    // that contains its own address, so the split adds no false match.
    for recipient in to.split(',') {
        let (name, address) = match recipient.split_once('<') {
            Some((name, rest)) => (name, rest.split('>').next().unwrap_or("")),
            None => ("", recipient),
        };
        let Some(address) = first_address(address) else {
            continue;
        };
        equals_from |= from.as_deref() == Some(address);
        name_is_address |= name.contains(address);
    }

    if equals_from {
        tokens.push("h:to:equals_from".to_owned());
    }
    if name_is_address {
        tokens.push("h:to:name_is_address".to_owned());
    }
}

/// Returns the first `local@domain` in text, made of the characters RFC 5322 allows in an
/// unquoted address.
fn first_address(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.@".contains(c)))
        .find(|word| {
            word.split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        })
}

fn push_mime_tokens(tokens: &mut Vec<String>, email: &Email) {
    let has_text = email.parts.iter().any(|p| p.content_type == "text/plain");
    let has_html = email.parts.iter().any(|p| p.content_type == "text/html");
    if has_html && !has_text {
        tokens.push("mime:html_only".to_owned());
    }
    for part in &email.parts {
        tokens.push(format!("mime:part:{}", part.content_type));
        if part.is_attachment {
            tokens.push(format!("mime:attachment:{}", part.content_type));
        }
    }
    tokens.push(format!("mime:parts:{}", bucket(email.parts.len())));
}

/// Maps a count to a small set of log-scale buckets: 0, 1, 2-3, 4-7, 8-15, ...
fn bucket(count: usize) -> u32 {
    usize::BITS - count.leading_zeros()
}

/// Returns the lowercase hosts of `http`, `https` and `www.` links in the text and HTML, each
/// once and in order of appearance, up to [`MAX_URL_HOSTS_FOUND`] of them.
pub fn extract_url_hosts(text: &str, html: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    // A set beside the list, because a message can name hundreds of thousands of hosts.
    let mut seen = std::collections::HashSet::new();
    let sources = [text.to_ascii_lowercase(), html.to_ascii_lowercase()];
    for lower in &sources {
        let mut starts = UrlStarts::new(lower);
        let mut position = 0;
        while let Some(start) = starts.next_from(position) {
            let rest = &lower[start..];
            // The scheme's `://` comes within the first 8 bytes, or it is not a scheme.
            let head = &rest.as_bytes()[..rest.len().min(8)];
            let skipped = match memchr::memmem::find(head, b"://") {
                Some(offset) if offset <= 5 => offset + 3,
                _ => 0,
            };
            let after_scheme = &rest[skipped..];
            let host_end = after_scheme
                .bytes()
                .position(|byte| !(byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-'))
                .unwrap_or(after_scheme.len());
            let host = &after_scheme[..host_end];
            position = start + skipped + host.len().max(1);
            // Only a new host is copied: a message may repeat one a million times.
            if host.contains('.') && host.len() <= MAX_DOMAIN_BYTES && seen.insert(host) {
                hosts.push(host.to_owned());
                if hosts.len() == MAX_URL_HOSTS_FOUND {
                    return hosts;
                }
            }
        }
    }
    hosts
}

/// Finds where URLs may start in a text, front to back: the first `http://`, `https://` or
/// `www.` from a position. Each needle's next match is kept until the position passes it, so
/// the text is searched once per needle in all.
struct UrlStarts<'a> {
    text: &'a str,
    /// For each needle, the offset of its next match, `None` once there is none left.
    next: [Option<usize>; 3],
    /// The position each entry of `next` was searched from.
    searched_from: [usize; 3],
}

impl<'a> UrlStarts<'a> {
    const NEEDLES: [&'static [u8]; 3] = [b"http://", b"https://", b"www."];

    fn new(text: &'a str) -> Self {
        let mut starts = Self {
            text,
            next: [None; 3],
            searched_from: [0; 3],
        };
        for index in 0..3 {
            starts.next[index] = memchr::memmem::find(text.as_bytes(), Self::NEEDLES[index]);
        }
        starts
    }

    /// Returns the offset of the first match at or after `position`.
    fn next_from(&mut self, position: usize) -> Option<usize> {
        for index in 0..3 {
            if let Some(found) = self.next[index]
                && found < position
                && position > self.searched_from[index]
            {
                self.searched_from[index] = position;
                self.next[index] = self
                    .text
                    .as_bytes()
                    .get(position..)
                    .and_then(|rest| memchr::memmem::find(rest, Self::NEEDLES[index]))
                    .map(|offset| position + offset);
            }
        }
        self.next.iter().flatten().copied().min()
    }
}

/// Returns the `charset` parameter of a Content-Type value (RFC 2045), lowercased and without
/// its quotes. It also reads the sloppy forms that mailers write: spaces around `=`, a stray
/// quote, and parameters separated by whitespace instead of `;`. A `;` or `charset=` inside
/// another parameter's quoted value does not count.
fn charset_parameter(content_type: &str) -> Option<String> {
    // `charset = x` arrives as the words `charset`, `=`, `x`: join a lone name to its value.
    let mut parameter = String::new();
    for word in parameter_words(content_type) {
        if parameter.is_empty() || parameter.ends_with('=') || word.starts_with('=') {
            parameter.push_str(word);
            continue;
        }
        if let Some(charset) = charset_value(&parameter) {
            return Some(charset);
        }
        parameter.clear();
        parameter.push_str(word);
    }
    charset_value(&parameter)
}

/// Cuts a Content-Type value into words at `;` and white space outside double quotes, keeping
/// quoted text with the word it belongs to. Runs of separators give no empty words.
fn parameter_words(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && (c == ';' || c.is_whitespace())
            })
            .map_or(rest.len(), |(index, _)| index);
        let (word, after) = rest.split_at(end);
        rest = after;
        Some(word)
    })
}

/// Returns the lowercase value of a `charset=` parameter, without its quotes.
fn charset_value(parameter: &str) -> Option<String> {
    let (name, value) = parameter.split_once('=')?;
    if !name.eq_ignore_ascii_case("charset") {
        return None;
    }
    // An unclosed quote leaves the rest of the field in the value; cut it at the end.
    let charset = value
        .trim_matches('"')
        .split(|c: char| c == ';' || c == '"' || c.is_whitespace())
        .next()
        .unwrap_or("");
    (!charset.is_empty()).then(|| charset.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Limits;

    #[test]
    fn tokens_carry_namespaces() {
        let email = Email::parse(
            b"From: Shop <deals@mail.Example.co.uk>\nSubject: FREE MONEY NOW\n\nClick http://bad.example.com/x now!\n",
            Limits::default(),
        )
        .unwrap();
        let tokens = tokenize(&email);
        for expected in [
            "s:free",
            "s:shape:mostly_upper",
            "b:click",
            "from:mail.example.co.uk",
            "from:site:co.uk",
            "u:bad.example.com",
            "u:tld:com",
        ] {
            assert!(
                tokens.iter().any(|t| t == expected),
                "missing {expected}: {tokens:?}"
            );
        }
    }

    #[test]
    fn plain_text_has_no_header_absence_tokens() {
        let email = Email::from_plain_text("lunch tomorrow at noon?", Limits::default()).unwrap();
        let tokens = tokenize(&email);
        assert!(
            !tokens
                .iter()
                .any(|t| t == "h:from_name:none" || t == "s:shape:empty"),
            "{tokens:?}"
        );
    }

    #[test]
    fn long_numbers_collapse() {
        let email = Email::from_plain_text("call 5551234567 today", Limits::default()).unwrap();
        let tokens = tokenize(&email);
        assert!(tokens.contains(&"b:<number>".to_owned()));
        assert!(!tokens.iter().any(|t| t.contains("5551234567")));
    }

    #[test]
    fn extracts_url_hosts_once() {
        let hosts = extract_url_hosts(
            "see https://A.example.org/path and http://a.example.org again, www.b.net",
            "<a href=\"http://10.0.0.1/x\">",
        );
        assert_eq!(hosts, vec!["a.example.org", "www.b.net", "10.0.0.1"]);
    }

    #[test]
    fn url_schemes_and_hosts_overlap_once() {
        let hosts = extract_url_hosts(
            "https://www.a.example.com/x http://https.b.example.org www.www.c.example.net",
            "",
        );
        assert_eq!(
            hosts,
            vec![
                "www.a.example.com",
                "https.b.example.org",
                "www.www.c.example.net"
            ]
        );
    }

    #[test]
    fn many_link_hosts_are_counted_but_cut() {
        let links: String = (0..MAX_URL_HOSTS + 100)
            .map(|index| format!("http://h{index}.example.org/ "))
            .collect();
        let tokens = tokenize(&parse(&format!(
            "From: a@example.org\nSubject: x\n\n{links}\n"
        )));
        let host_tokens = tokens
            .iter()
            .filter(|t| t.starts_with("u:h") && t.ends_with(".example.org"))
            .count();
        assert_eq!(host_tokens, MAX_URL_HOSTS);
        let many: String = (0..MAX_URL_HOSTS_FOUND + 1)
            .map(|index| format!("www.h{index}.example.org "))
            .collect();
        assert_eq!(extract_url_hosts(&many, "").len(), MAX_URL_HOSTS_FOUND);
        assert!(
            has(&tokens, &format!("u:count:{}", bucket(MAX_URL_HOSTS + 100))),
            "{tokens:?}"
        );
    }

    #[test]
    fn overlong_domains_are_not_split() {
        let domain = format!("{}com", "a.".repeat(200));
        let tokens = tokenize(&parse(&format!("From: x@{domain}\nSubject: hi\n\nhello\n")));
        assert!(has(&tokens, "from:too_long"), "{tokens:?}");
        assert!(
            !tokens.iter().any(|t| t.starts_with("from:tld:")),
            "{tokens:?}"
        );
    }

    #[test]
    fn charset_parameter_loses_its_quotes() {
        for content_type in [
            "text/plain; charset=\"US-ASCII\"; format=flowed",
            "text/plain; charset=us-ascii",
            "text/plain; charset = \"us-ascii\"",
            "text/plain;\n charset=\"us-ascii\" format=flowed",
            "text/plain; name=\"a;charset=evil\"; charset=us-ascii",
            "text/plain; charset=us-ascii\"",
            "text/plain; format=flowed charset=us-ascii",
            "text/plain charset=US-ASCII",
        ] {
            let tokens = tokenize(&parse(&format!(
                "From: a@example.org\nSubject: x\nContent-Type: {content_type}\n\nhello\n"
            )));
            let charsets: Vec<&String> = tokens
                .iter()
                .filter(|t| t.starts_with("h:charset:"))
                .collect();
            assert_eq!(charsets, ["h:charset:us-ascii"], "{content_type}");
        }
    }

    #[test]
    fn header_layouts_become_shapes() {
        assert_eq!(
            shape("Tue, 7 May 2002 9:38:27 -0600"),
            "Aa,_9_Aa_9_9:9:9_-9"
        );
        assert_eq!(shape("002a01c24a99$f8570760"), "9a9a9a9$a9");
        assert!(shape(&"x".repeat(500)).chars().count() <= MAX_HEADER_TOKEN_CHARS);
    }

    #[test]
    fn sender_software_fields_become_tokens() {
        let tokens = tokenize(&parse(
            "From: Ann <ann@example.org>\nTo: bob@example.net\nSubject: Re: lunch\n\
             Date: Tue, 7 May 2002 09:38:27 -0600\nMessage-ID: <20020507.1234@mail.example.org>\n\
             In-Reply-To: <abc@example.net>\nX-Mailer: Microsoft Outlook Express 6.00.2600.0000\n\
             Return-Path: <ann@example.org>\nDelivered-To: bob@example.net\n\nyes, noon works\n",
        ));
        for expected in [
            "h:has:in-reply-to",
            "h:has:date",
            "h:date:shape:Aa,_9_Aa_9_9:9:9_-9",
            "h:msgid:shape:9.9",
            "h:mailer:microsoft",
            "h:mailer_full:microsoft_outlook_express_6.00.2600.0000",
        ] {
            assert!(has(&tokens, expected), "missing {expected}: {tokens:?}");
        }
        // Delivery adds these; they describe the receiving site, not the message.
        assert!(!has(&tokens, "h:has:return-path"), "{tokens:?}");
        assert!(!has(&tokens, "h:has:delivered-to"), "{tokens:?}");
    }

    #[test]
    fn recipient_tricks_become_tokens() {
        let hidden = tokenize(&parse(
            "From: deals@shop.example\nTo: deals@shop.example\nSubject: hi\n\nbuy\n",
        ));
        assert!(has(&hidden, "h:to:equals_from"), "{hidden:?}");
        let undisclosed = tokenize(&parse(
            "From: deals@shop.example\nTo: undisclosed-recipients:;\nSubject: hi\n\nbuy\n",
        ));
        assert!(has(&undisclosed, "h:to:undisclosed"), "{undisclosed:?}");
        let harvested = tokenize(&parse(
            "From: deals@shop.example\nTo: \"bob@example.net\" <bob@example.net>\nSubject: hi\n\nbuy\n",
        ));
        assert!(has(&harvested, "h:to:name_is_address"), "{harvested:?}");
        let missing = tokenize(&parse("From: deals@shop.example\nSubject: hi\n\nbuy\n"));
        assert!(has(&missing, "h:to:none"), "{missing:?}");
        let plain = tokenize(&parse(
            "From: Ann <ann@example.org>\nTo: Bob <bob@example.net>\nSubject: hi\n\nlunch?\n",
        ));
        for trick in [
            "h:to:none",
            "h:to:undisclosed",
            "h:to:equals_from",
            "h:to:name_is_address",
        ] {
            assert!(!has(&plain, trick), "{plain:?}");
        }
    }

    #[test]
    fn recipient_checks_stay_within_each_recipient() {
        let tokens_for = |to: &str| {
            tokenize(&parse(&format!(
                "From: o@shop.example\nTo: {to}\nSubject: hi\n\nbuy\n"
            )))
        };
        // Alice's bare address comes before Bob's name, but it is not Bob's name.
        let mixed = tokens_for(r#"alice@example.org, "Bob" <bob@example.net>"#);
        assert!(!has(&mixed, "h:to:name_is_address"), "{mixed:?}");
        // A name that shows another address than its own is a list alias, not harvesting.
        let alias = tokens_for(r#""list@example.org" <list@relay.example>"#);
        assert!(!has(&alias, "h:to:name_is_address"), "{alias:?}");
        // An apostrophe belongs to the address, so o'brien is not the sender o.
        let apostrophe = tokens_for("o'brien@shop.example");
        assert!(!has(&apostrophe, "h:to:equals_from"), "{apostrophe:?}");
    }

    #[test]
    fn long_recipient_lists_are_cut() {
        let filler = "x".repeat(MAX_RECIPIENT_CHARS);
        let tokens = tokenize(&parse(&format!(
            "From: o@shop.example\nTo: {filler}, \"bob@example.net\" <bob@example.net>\n\
             Subject: hi\n\nbuy\n"
        )));
        // The harvested-name recipient lies beyond the part that is read.
        assert!(!has(&tokens, "h:to:name_is_address"), "{tokens:?}");
    }

    #[test]
    fn folded_dates_have_the_unfolded_shape() {
        let folded = tokenize(&parse(
            "From: a@example.org\r\nDate: Tue,\r\n 7 May 2002 09:38:27 -0600\r\n\r\nhi\r\n",
        ));
        assert!(
            has(&folded, "h:date:shape:Aa,_9_Aa_9_9:9:9_-9"),
            "{folded:?}"
        );
    }

    #[test]
    fn empty_header_values_give_presence_only() {
        let tokens = tokenize(&parse(
            "From: a@example.org\nX-Mailer:\nMessage-ID: <@>\nSubject: hi\n\nhi\n",
        ));
        assert!(has(&tokens, "h:has:x-mailer"), "{tokens:?}");
        assert!(
            !tokens
                .iter()
                .any(|t| t.starts_with("h:mailer") || t == "h:msgid:"),
            "{tokens:?}"
        );
    }

    #[test]
    fn bucket_is_log_scale() {
        assert_eq!([0, 1, 2, 3, 4, 8].map(bucket), [0, 1, 2, 2, 3, 4]);
    }

    fn parse(raw: &str) -> Email {
        Email::parse(raw.as_bytes(), Limits::default()).unwrap()
    }

    fn has(tokens: &[String], expected: &str) -> bool {
        tokens.iter().any(|t| t == expected)
    }

    #[test]
    fn bigrams_join_neighbouring_words() {
        let tokens = tokenize(&parse(
            "From: a@b.example\nSubject: Act now\n\nLimited time offer\n",
        ));
        assert!(has(&tokens, "s2:act_now"), "{tokens:?}");
        assert!(has(&tokens, "b2:limited_time"), "{tokens:?}");
        assert!(has(&tokens, "b2:time_offer"), "{tokens:?}");
        assert!(!has(&tokens, "b2:offer_"), "{tokens:?}");
    }

    #[test]
    fn unspaced_scripts_become_character_pairs() {
        let email = Email::from_plain_text("免费发票 offer 美女 x 好", Limits::default()).unwrap();
        let tokens = tokenize(&email);
        for expected in ["b:免费", "b:费发", "b:发票", "b:offer", "b:美女", "b:好"] {
            assert!(has(&tokens, expected), "{expected} missing: {tokens:?}");
        }
        assert!(!has(&tokens, "b:免费发票"), "{tokens:?}");
        // Latin letters glued to ideographs stay words of their own.
        assert_eq!(words("VIP会员price"), ["vip", "会员", "price"]);
    }

    /// Returns the tokens of a multipart/alternative message with a plain-text decoy and `html`.
    fn alternative(html: &str) -> Vec<String> {
        tokenize(&parse(&format!(
            "From: a@b.example\nSubject: x\nMIME-Version: 1.0\n\
             Content-Type: multipart/alternative; boundary=\"b\"\n\n\
             --b\nContent-Type: text/plain\n\nYour mail program cannot show this message.\n\
             --b\nContent-Type: text/html\n\n{html}\n--b--\n"
        )))
    }

    #[test]
    fn html_alternative_words_count_as_body_words() {
        let tokens = alternative("<p>Refinance your mortgage today</p>");
        assert!(has(&tokens, "b:program"), "{tokens:?}");
        assert!(has(&tokens, "b:mortgage"), "{tokens:?}");
        assert!(has(&tokens, "b2:refinance_your"), "{tokens:?}");
    }

    #[test]
    fn hidden_alternative_words_stay_hidden() {
        let tokens =
            alternative("<p>Cheap pills</p><div style=\"display:none\">meeting agenda</div>");
        assert!(has(&tokens, "b:pills"), "{tokens:?}");
        assert!(has(&tokens, "hid:agenda"), "{tokens:?}");
        assert!(!has(&tokens, "b:agenda"), "{tokens:?}");
        assert!(!has(&tokens, "b:meeting"), "{tokens:?}");
    }

    #[test]
    fn alternative_words_are_those_a_reader_sees() {
        // Hidden words split by tags or comments stay hidden.
        let split = alternative(
            "<p>Cheap pills</p><div style=\"display:none\">meet<b></b>ing sched<!-- -->ule</div>",
        );
        assert!(!has(&split, "b:meeting"), "{split:?}");
        assert!(!has(&split, "b:schedule"), "{split:?}");
        // A word shown to the reader stays a body word when it is also hidden.
        let both = alternative(
            "<p>cheap viagra pills</p><div style=\"display:none\">viagra pills cheap</div>",
        );
        assert!(has(&both, "b:viagra"), "{both:?}");
        assert!(has(&both, "b2:cheap_viagra"), "{both:?}");
        // Inline tags join, block tags separate, and character references are decoded.
        let layout = alternative("<p>re<b>fin</b>ance</p><p>caf&#233; &amp; more</p>");
        assert!(has(&layout, "b:refinance"), "{layout:?}");
        assert!(has(&layout, "b:café"), "{layout:?}");
        assert!(!has(&layout, "b:refinancecafé"), "{layout:?}");
    }

    #[test]
    fn marks_stay_with_their_characters() {
        // Thai: marks above a consonant stay with it, in pairs of clusters.
        assert_eq!(words("ก\u{e47}ได\u{e49}"), ["ก\u{e47}ไ", "ได\u{e49}"]);
        // A kana with a combining voicing mark, and the ideographic iteration mark.
        assert_eq!(words("か\u{3099}い 人々"), ["か\u{3099}い", "人々"]);
        // Halfwidth katakana with its voicing mark, and an ideograph outside the BMP.
        assert_eq!(words("ﾌﾟﾚ 𠮷野"), ["ﾌﾟﾚ", "𠮷野"]);
        // Decomposed Hangul: each syllable is one leading consonant and its vowel.
        assert_eq!(
            words("\u{1106}\u{116e}\u{1105}\u{116d}"),
            ["\u{1106}\u{116e}\u{1105}\u{116d}"]
        );
    }

    #[test]
    fn unspaced_marks_after_latin_letters_end() {
        for mark in ['\u{0e31}', '\u{1161}', '\u{3099}', '\u{ff9e}'] {
            let text = format!("hello a{mark} there $\u{0301}{mark}");
            let found = words(&text);
            assert!(found.contains(&"hello".to_owned()), "{found:?}");
            assert!(found.contains(&format!("a{mark}")), "{found:?}");
        }
    }

    #[test]
    fn long_mark_runs_are_cut() {
        let text = format!("中{}文", "\u{0e31}".repeat(10_000));
        let found = words(&text);
        assert_eq!(
            found,
            [format!(
                "中{}文",
                "\u{0e31}".repeat(MAX_MARKS_PER_CHARACTER)
            )]
        );
    }

    #[test]
    fn invisible_characters_do_not_split_words() {
        assert_eq!(words("免\u{200b}费发\u{feff}票"), ["免费", "费发", "发票"]);
        assert_eq!(words("vi\u{200b}ag\u{ad}ra"), ["viagra"]);
        for invisible in [
            '\u{200e}',
            '\u{2062}',
            '\u{fe0f}',
            '\u{180e}',
            '\u{e0041}',
            '\u{3164}',
            '\u{34f}',
        ] {
            assert_eq!(
                words(&format!("vi{invisible}agra")),
                ["viagra"],
                "{invisible:?}"
            );
        }
    }

    #[test]
    fn hidden_html_text_gets_own_namespace() {
        let tokens = tokenize(&parse(
            "From: a@b.example\nSubject: x\nContent-Type: text/html\n\n\
             <p>Hello</p><div style=\"display:none\">mortgage rates</div>\n",
        ));
        assert!(has(&tokens, "html:hidden:display_none"), "{tokens:?}");
        assert!(has(&tokens, "hid:mortgage"), "{tokens:?}");
        assert!(!has(&tokens, "hid:hello"), "{tokens:?}");
    }

    #[test]
    fn link_text_naming_other_site_is_flagged() {
        let tokens = tokenize(&parse(
            "From: a@b.example\nSubject: x\nContent-Type: text/html\n\n\
             <a href=\"http://login.evil.example/\">www.mybank.example</a>\
             <a href=\"http://user@host.example:8080/\">Click here</a>\n",
        ));
        assert!(has(&tokens, "u:text_names_other_site"), "{tokens:?}");
        assert!(has(&tokens, "u:userinfo"), "{tokens:?}");
        assert!(has(&tokens, "u:port"), "{tokens:?}");
        assert!(has(&tokens, "a:click"), "{tokens:?}");
        assert!(has(&tokens, "u:links:2"), "{tokens:?}");
    }

    #[test]
    fn link_text_naming_same_site_is_not_flagged() {
        let tokens = tokenize(&parse(
            "From: a@b.example\nSubject: x\nContent-Type: text/html\n\n\
             <a href=\"https://www.shop.example/a\">shop.example</a>\n",
        ));
        assert!(!has(&tokens, "u:text_names_other_site"), "{tokens:?}");
    }

    #[test]
    fn sender_parts_become_tokens() {
        let tokens = tokenize(&parse(
            "From: Best Deals <offers.daily99@promo.example.com>\nReply-To: x@other.example\n\
             Message-ID: <1@mx.example.com>\nSubject: x\n\nbody\n",
        ));
        assert!(has(&tokens, "fl:offers"), "{tokens:?}");
        assert!(has(&tokens, "fl:<has_digits>"), "{tokens:?}");
        assert!(has(&tokens, "fn:deals"), "{tokens:?}");
        assert!(has(&tokens, "h:reply_to:other_site"), "{tokens:?}");
        assert!(has(&tokens, "h:msgid:same_site"), "{tokens:?}");
    }

    #[test]
    fn numeric_facts_are_bucketed() {
        let tokens = tokenize(&parse("From: a@b.example\nSubject: x\n\nBUY NOW 1234\n"));
        assert!(has(&tokens, "n:upper_share:10"), "{tokens:?}");
        assert!(has(&tokens, "n:digit_share:4"), "{tokens:?}");
        assert!(has(&tokens, "n:non_ascii_share:0"), "{tokens:?}");
        assert!(has(&tokens, "n:raw_kib:0"), "{tokens:?}");
    }

    #[test]
    fn href_parsing() {
        assert_eq!(
            parse_href("https://paypal.example@evil.example:81/x"),
            Some(Href {
                host: "evil.example".into(),
                has_userinfo: true,
                has_port: true
            })
        );
        assert_eq!(parse_href("mailto:a@b.example"), None);
        assert_eq!(parse_href("http:///path"), None);
        assert_eq!(registrable("a.b.example.com."), Some("example.com".into()));
        assert_eq!(registrable("localhost"), None);
    }
}
