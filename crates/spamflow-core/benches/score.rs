//! The in-process path of one message through the detector: parse, tokenize, vectorize and
//! score with the shipped model.
//!
//! Run with `cargo bench -p spamflow-core --bench score`. The messages are built here, so the
//! benchmark needs no corpus: a short plain-text ham, and an HTML spam with hidden text and
//! links that exercises the HTML scanner.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use spamflow_core::{Email, Limits, Model};

const MODEL_JSON: &str = include_str!("../../../models/default.json");

const PLAIN_HAM: &str = "From: Alice Example <alice@lists.example.org>\r\n\
Subject: Re: release notes for the parser\r\n\
Message-ID: <20020101.1234@lists.example.org>\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Hi Bob,\r\n\
\r\n\
I went through the release notes and the patch for the header parser. The folding fix\r\n\
looks right to me; the only thing missing is a test for continuation lines that start\r\n\
with a tab. Could you add one before we tag the release on Friday?\r\n\
\r\n\
Thanks,\r\nAlice\r\n";

fn html_spam() -> String {
    let mut body = String::from(
        "<html><body><p style=\"font-size:14px\">Dear friend, LIMITED TIME OFFER!!!</p>",
    );
    for i in 0..20 {
        body.push_str(&format!(
            "<p>Save {i}0% on <b>premium</b> products. \
             <a href=\"http://offers{i}.example.biz/track?id={i}\">www.trusted-bank.example</a></p>"
        ));
    }
    body.push_str(
        "<div style=\"display:none\">meeting agenda project review</div>\
         <font color=\"#ffffff\">unsubscribe newsletter invoice</font></body></html>",
    );
    format!(
        "From: Best Deals <deals4u@promo.example.biz>\r\n\
         Subject: You have been selected!!!\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=iso-8859-1\r\n\
         \r\n{body}\r\n"
    )
}

fn score_path(c: &mut Criterion) {
    let model = Model::from_json(MODEL_JSON).expect("the shipped model loads");
    let spam = html_spam();
    for (name, raw) in [
        ("plain_ham", PLAIN_HAM.as_bytes()),
        ("html_spam", spam.as_bytes()),
    ] {
        c.bench_function(&format!("parse_and_score/{name}"), |b| {
            b.iter(|| {
                let email = Email::parse(black_box(raw), Limits::default()).expect("parses");
                black_box(model.score(&email))
            })
        });
        let email = Email::parse(raw, Limits::default()).expect("parses");
        c.bench_function(&format!("score_parsed/{name}"), |b| {
            b.iter(|| black_box(model.score(black_box(&email))))
        });
    }
}

criterion_group!(benches, score_path);
criterion_main!(benches);
