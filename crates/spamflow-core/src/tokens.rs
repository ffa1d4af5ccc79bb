//! Tokens: the named, countable facts about an email that features are built from.
//!
//! Every token carries a namespace prefix so that the same word in different places stays a
//! different feature: `s:` subject words, `b:` body words, `from:` sender domain parts,
//! `h:` selected header facts, `u:` URL facts, `mime:` structure facts.

use crate::email::Email;

/// Longest word kept; longer runs are usually encoded blobs, not words.
const MAX_WORD_CHARS: usize = 30;
/// Upper bound on body characters tokenized, so one huge message cannot stall a worker.
const MAX_BODY_CHARS: usize = 200_000;

/// Returns the tokens of an email, with repeats, in a stable order.
pub fn tokenize(email: &Email) -> Vec<String> {
    let mut tokens = Vec::new();

    push_words(&mut tokens, "s:", &email.subject);
    let body: String = email.body_text.chars().take(MAX_BODY_CHARS).collect();
    push_words(&mut tokens, "b:", &body);
    push_shape_tokens(&mut tokens, &email.subject, &body, email.is_plain_text);

    if let Some(domain) = &email.from_domain {
        push_domain(&mut tokens, "from:", domain);
    }
    // Plain text has no headers, so their absence says nothing about it.
    if email.from_name.is_none() && !email.is_plain_text {
        tokens.push("h:from_name:none".to_owned());
    }

    for (name, value) in &email.headers {
        push_header(&mut tokens, name, value);
    }

    let urls = extract_url_hosts(&email.body_text, &email.body_html);
    tokens.push(format!("u:count:{}", bucket(urls.len())));
    for host in &urls {
        push_domain(&mut tokens, "u:", host);
        if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
            tokens.push("u:ip_literal".to_owned());
        }
    }

    push_mime_tokens(&mut tokens, email);
    tokens
}

/// Splits text into lowercase words of letters and digits.
fn push_words(tokens: &mut Vec<String>, prefix: &str, text: &str) {
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '$')) {
        let word = word.trim_matches('\'');
        let chars = word.chars().count();
        if !(2..=MAX_WORD_CHARS).contains(&chars) {
            continue;
        }
        let lower = word.to_lowercase();
        // Long numbers are ids and prices; their shape matters more than their digits.
        if lower.chars().all(|c| c.is_ascii_digit()) && chars > 4 {
            tokens.push(format!("{prefix}<number>"));
        } else {
            tokens.push(format!("{prefix}{lower}"));
        }
    }
}

/// Facts about how text looks rather than what it says.
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

fn push_domain(tokens: &mut Vec<String>, prefix: &str, domain: &str) {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    tokens.push(format!("{prefix}{domain}"));
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    if let Some(tld) = labels.last() {
        tokens.push(format!("{prefix}tld:{tld}"));
    }
    if labels.len() >= 2 {
        let registrable = labels[labels.len() - 2..].join(".");
        tokens.push(format!("{prefix}site:{registrable}"));
    }
}

fn push_header(tokens: &mut Vec<String>, name: &str, value: &str) {
    match name {
        "content-type" => {
            let kind = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            tokens.push(format!("h:content-type:{kind}"));
            if let Some(charset) = value.to_ascii_lowercase().split("charset=").nth(1) {
                let charset = charset.trim_matches(|c: char| c == '"' || c.is_whitespace());
                let charset = charset.split(';').next().unwrap_or("");
                tokens.push(format!("h:charset:{charset}"));
            }
        }
        "x-mailer" | "user-agent" => {
            let product = value.split(['/', ' ', '(']).next().unwrap_or("");
            tokens.push(format!("h:mailer:{}", product.to_ascii_lowercase()));
        }
        "message-id" => {
            if let Some(domain) = value.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>')) {
                push_domain(tokens, "h:msgid:", domain);
            }
        }
        "to" | "cc" => {
            let recipients = value.matches('@').count();
            tokens.push(format!("h:{name}:recipients:{}", bucket(recipients)));
        }
        "reply-to" | "return-path" | "list-id" | "precedence" | "x-priority" | "importance"
        | "mime-version" => {
            tokens.push(format!("h:has:{name}"));
            if name == "precedence" || name == "x-priority" || name == "importance" {
                tokens.push(format!("h:{name}:{}", value.trim().to_ascii_lowercase()));
            }
        }
        _ => {}
    }
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

/// Returns the lowercase hosts of `http`, `https` and `www.` links in the text and HTML.
pub fn extract_url_hosts(text: &str, html: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    for source in [text, html] {
        let lower = source.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(start) = find_url_start(rest) {
            let (after_scheme, skipped) = match rest[start..].find("://") {
                Some(offset) if offset <= 5 => (&rest[start + offset + 3..], offset + 3),
                _ => (&rest[start..], 0),
            };
            let host: String = after_scheme
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            if host.contains('.') && host.len() <= 253 && !hosts.contains(&host) {
                hosts.push(host.clone());
            }
            rest = &rest[start + skipped + host.len().max(1)..];
        }
    }
    hosts
}

fn find_url_start(text: &str) -> Option<usize> {
    ["http://", "https://", "www."]
        .iter()
        .filter_map(|needle| text.find(needle))
        .min()
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
    fn bucket_is_log_scale() {
        assert_eq!([0, 1, 2, 3, 4, 8].map(bucket), [0, 1, 2, 2, 3, 4]);
    }
}
