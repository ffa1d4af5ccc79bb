//! A small HTML scanner for the facts that rendered text loses: text a reader cannot see, and
//! the targets and visible text of links.
//!
//! mail-parser already renders HTML to text for the body words. Spam hides words from the
//! reader but not from filters (white or tiny text, `display:none`) and dresses links in text
//! that names another site. This scanner walks tags without building a tree, so malformed
//! markup degrades to fewer facts rather than to an error.
//!
//! NOTE: styles from `<style>` blocks and CSS classes are not resolved, and white text is
//! reported even on a dark background, because the scanner does not track backgrounds.

/// Largest HTML input scanned, in bytes; the rest is ignored so hostile input stays cheap.
pub const MAX_HTML_BYTES: usize = 200_000;

/// Deepest element nesting tracked; deeper open tags are not tracked.
const MAX_DEPTH: usize = 256;

/// Tags that never have a closing tag.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr",
];

/// Tags that start a new line or box when rendered, so the text on either side is two words.
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "br",
    "caption",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
];

/// A way of hiding text from the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HiddenBy {
    DisplayNone,
    VisibilityHidden,
    TinyFont,
    WhiteText,
}

impl HiddenBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DisplayNone => "display_none",
            Self::VisibilityHidden => "visibility_hidden",
            Self::TinyFont => "tiny_font",
            Self::WhiteText => "white_text",
        }
    }
}

/// A link: its `href` and the text between `<a>` and `</a>`, both lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// The facts the scanner found in one HTML document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlFacts {
    /// Lowercase text inside elements styled to be invisible, space separated.
    pub hidden_text: String,
    /// Lowercase text shown to a reader: outside hidden elements, scripts and styles, with
    /// character references decoded. Inline tags join text (`meet<b></b>ing` is `meeting`),
    /// and block tags such as `<p>` and `<br>` separate it.
    pub visible_text: String,
    /// The tricks used, sorted, each once.
    pub hidden_by: Vec<HiddenBy>,
    pub links: Vec<Link>,
    pub images: usize,
    pub forms: usize,
    pub scripts: usize,
    /// HTML comments; spam splits words with empty comments (`vi<!-- -->agra`).
    pub comments: usize,
}

/// Scans HTML for hidden text, links and a few element counts.
pub fn scan(html: &str) -> HtmlFacts {
    let end = floor_char_boundary(html, MAX_HTML_BYTES);
    let html = html[..end].to_ascii_lowercase();
    let mut facts = HtmlFacts::default();
    // Open elements with the trick that hides them, if any.
    let mut stack: Vec<(String, Option<HiddenBy>)> = Vec::new();
    let mut open_link: Option<Link> = None;
    let mut position = 0;

    while position < html.len() {
        let Some(offset) = html[position..].find('<') else {
            add_text(&html[position..], &stack, &mut open_link, &mut facts);
            break;
        };
        let tag_start = position + offset;
        add_text(
            &html[position..tag_start],
            &stack,
            &mut open_link,
            &mut facts,
        );

        if html[tag_start..].starts_with("<!--") {
            facts.comments += 1;
            position = match html[tag_start + 4..].find("-->") {
                Some(close) => tag_start + 4 + close + 3,
                None => html.len(),
            };
            continue;
        }
        let Some(length) = html[tag_start..].find('>') else {
            break;
        };
        let tag = &html[tag_start + 1..tag_start + length];
        position = tag_start + length + 1;

        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            if BLOCK_ELEMENTS.contains(&name) {
                facts.visible_text.push(' ');
            }
            if let Some(depth) = stack.iter().rposition(|(open, _)| open == name) {
                stack.truncate(depth);
            }
            if name == "a"
                && let Some(link) = open_link.take()
            {
                facts.links.push(link);
            }
            continue;
        }

        let name_end = tag
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        let attributes = &tag[name_end..];
        if BLOCK_ELEMENTS.contains(&name) {
            facts.visible_text.push(' ');
        }
        match name {
            "script" | "style" => {
                if name == "script" {
                    facts.scripts += 1;
                }
                // Their contents are code, not text: skip to the closing tag.
                let closing = format!("</{name}");
                position = match html[position..].find(&closing) {
                    Some(close) => position + close,
                    None => html.len(),
                };
                continue;
            }
            "img" => facts.images += 1,
            "form" => facts.forms += 1,
            "a" => {
                if let Some(link) = open_link.take() {
                    facts.links.push(link);
                }
                open_link = Some(Link {
                    href: attribute(attributes, "href").unwrap_or_default().to_owned(),
                    text: String::new(),
                });
            }
            _ => {}
        }
        if VOID_ELEMENTS.contains(&name) || tag.ends_with('/') || name.is_empty() {
            continue;
        }
        if stack.len() < MAX_DEPTH {
            stack.push((name.to_owned(), hidden_by(name, attributes)));
        }
    }
    if let Some(link) = open_link {
        facts.links.push(link);
    }
    facts.hidden_by.sort_unstable();
    facts.hidden_by.dedup();
    facts
}

fn add_text(
    text: &str,
    stack: &[(String, Option<HiddenBy>)],
    open_link: &mut Option<Link>,
    facts: &mut HtmlFacts,
) {
    let hidden = stack.iter().rev().find_map(|(_, hidden)| *hidden);
    if text.trim().is_empty() {
        // White space between two inline elements still separates their words.
        if hidden.is_none() && !text.is_empty() {
            facts.visible_text.push(' ');
        }
        return;
    }
    let text = text.replace("&nbsp;", " ");
    if let Some(link) = open_link {
        link.text.push_str(&text);
    }
    match hidden {
        Some(trick) => {
            facts.hidden_text.push_str(text.trim());
            facts.hidden_text.push(' ');
            facts.hidden_by.push(trick);
        }
        None => facts.visible_text.push_str(&decode_entities(&text)),
    }
}

/// Decodes the character references that carry words: `&amp;`, `&lt;`, `&gt;`, `&quot;`,
/// `&apos;`, and decimal or hexadecimal ones such as `&#233;` and `&#xe9;`. Others stay as
/// they are.
fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return text.into();
    }
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        decoded.push_str(&rest[..start]);
        rest = &rest[start..];
        // A reference is at most 10 bytes long, so only those are searched for its `;`.
        let end = rest.as_bytes()[..rest.len().min(11)]
            .iter()
            .position(|&byte| byte == b';');
        let replacement = end.and_then(|end| match &rest[1..end] {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            reference => {
                let number = reference.strip_prefix('#')?;
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                char::from_u32(code)
            }
        });
        match (end, replacement) {
            (Some(end), Some(c)) => {
                decoded.push(c);
                rest = &rest[end + 1..];
            }
            _ => {
                decoded.push('&');
                rest = &rest[1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded.into()
}

/// Returns the trick by which an element's attributes hide its text, if any.
fn hidden_by(name: &str, attributes: &str) -> Option<HiddenBy> {
    if let Some(style) = attribute(attributes, "style") {
        let style: String = style.chars().filter(|c| !c.is_whitespace()).collect();
        if style.contains("display:none") {
            return Some(HiddenBy::DisplayNone);
        }
        if style.contains("visibility:hidden") {
            return Some(HiddenBy::VisibilityHidden);
        }
        for declaration in style.split(';') {
            if let Some(size) = declaration.strip_prefix("font-size:")
                && is_tiny_font_size(size)
            {
                return Some(HiddenBy::TinyFont);
            }
            if let Some(color) = declaration.strip_prefix("color:")
                && is_white(color)
            {
                return Some(HiddenBy::WhiteText);
            }
        }
    }
    if name == "font" {
        if attribute(attributes, "color").is_some_and(is_white) {
            return Some(HiddenBy::WhiteText);
        }
        if attribute(attributes, "size").is_some_and(|size| size.trim() == "0") {
            return Some(HiddenBy::TinyFont);
        }
    }
    None
}

/// Checks for a CSS font size below 3 pixels or points, which no reader can read.
fn is_tiny_font_size(size: &str) -> bool {
    let digits: String = size
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let unit = &size[digits.len()..];
    match digits.parse::<f64>() {
        Ok(value) if unit.is_empty() || unit.starts_with("px") || unit.starts_with("pt") => {
            value < 3.0
        }
        Ok(value) if unit.starts_with("em") || unit.starts_with("rem") => value < 0.2,
        _ => false,
    }
}

fn is_white(color: &str) -> bool {
    matches!(
        color.trim().trim_end_matches("!important"),
        "#fff" | "#ffffff" | "white" | "rgb(255,255,255)"
    )
}

/// Returns the value of an attribute in a lowercase tag's attribute text.
fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let mut search = 0;
    while let Some(offset) = attributes[search..].find(name) {
        let start = search + offset;
        search = start + name.len();
        // The name must stand alone: `color` must not match inside `bgcolor`.
        let standalone = attributes[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_ascii_whitespace() || c == '"' || c == '\'');
        let rest = attributes[search..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            continue;
        };
        if !standalone {
            continue;
        }
        let value = value.trim_start();
        return Some(match value.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &value[1..];
                &inner[..inner.find(quote).unwrap_or(inner.len())]
            }
            _ => {
                &value[..value
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(value.len())]
            }
        });
    }
    None
}

/// Returns the largest index at most `index` that falls on a character boundary of `text`.
pub(crate) fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_references_decode() {
        assert_eq!(
            decode_entities("caf&#233; &amp; cr&#xE8;me"),
            "café & crème"
        );
        for unchanged in [
            "a & b",
            "&#xZZ;",
            "&#99999999;",
            "&unknown;",
            "&",
            "été&",
            "&amp",
        ] {
            assert_eq!(decode_entities(unchanged), unchanged);
        }
        // A reference ends within 10 bytes of its `&`; a later `;` ends no reference.
        assert_eq!(decode_entities("a&&amp;b"), "a&&b");
        assert_eq!(decode_entities("&ampxxxxxxxx;"), "&ampxxxxxxxx;");
        let run = "&".repeat(100_000);
        assert_eq!(decode_entities(&format!("{run};")), format!("{run};"));
    }

    #[test]
    fn finds_text_hidden_by_display_none() {
        let facts = scan("<p>Hello</p><div style=\"display: none\">viagra cheap</div>");
        assert_eq!(facts.hidden_text.trim(), "viagra cheap");
        assert_eq!(facts.hidden_by, [HiddenBy::DisplayNone]);
    }

    #[test]
    fn finds_tiny_and_white_text() {
        let facts = scan(
            "<span style='font-size:1px'>tiny words</span>\
             <font color=\"#FFFFFF\">white words</font><p style=\"font-size:12px\">seen</p>",
        );
        assert!(facts.hidden_text.contains("tiny words"), "{facts:?}");
        assert!(facts.hidden_text.contains("white words"), "{facts:?}");
        assert!(!facts.hidden_text.contains("seen"), "{facts:?}");
        assert_eq!(facts.hidden_by, [HiddenBy::TinyFont, HiddenBy::WhiteText]);
    }

    #[test]
    fn background_color_is_not_white_text() {
        let facts = scan("<td bgcolor=\"#ffffff\" style=\"background-color:#fff\">shown</td>");
        assert!(facts.hidden_text.is_empty(), "{facts:?}");
        assert!(facts.hidden_by.is_empty());
    }

    #[test]
    fn hidden_state_ends_with_its_element() {
        let facts = scan("<div style=\"visibility:hidden\"><b>in</b></div><p>out</p>");
        assert_eq!(facts.hidden_text.trim(), "in");
    }

    #[test]
    fn collects_links_with_text() {
        let facts = scan(
            "<a href=\"http://evil.example/login\">www.bank.example</a> \
             <A HREF=http://ok.example>Click <b>here</b></A>",
        );
        assert_eq!(facts.links.len(), 2);
        assert_eq!(facts.links[0].href, "http://evil.example/login");
        assert_eq!(facts.links[0].text, "www.bank.example");
        assert_eq!(facts.links[1].href, "http://ok.example");
        assert_eq!(facts.links[1].text, "click here");
    }

    #[test]
    fn counts_images_forms_scripts_comments() {
        let facts = scan(
            "<img src=a.gif><img src=b.gif/><form action=x></form>\
             <script>var s = '<p>not text</p>';</script>vi<!-- -->agra",
        );
        assert_eq!(facts.images, 2);
        assert_eq!(facts.forms, 1);
        assert_eq!(facts.scripts, 1);
        assert_eq!(facts.comments, 1);
        assert!(facts.links.is_empty());
    }

    #[test]
    fn survives_truncated_markup() {
        for html in ["<", "<a href=\"x", "<!--", "<div style=", "</", "<script>"] {
            let _ = scan(html);
        }
        let long = "é".repeat(MAX_HTML_BYTES);
        assert!(scan(&long).hidden_text.is_empty());
    }
}
