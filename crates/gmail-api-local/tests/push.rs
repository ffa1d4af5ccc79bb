//! Push notifications: a tiny HTTP listener in the test receives the Pub/Sub envelopes the
//! server POSTs after each change while a watch is active.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use common::{INBOX_FILES, ME, call, demo_message, mailbox_folder};
use serde_json::{Value, json};
use spamflow_testkit::{GmailApi, GmailApiOptions};

/// One request the listener received.
struct Received {
    request_line: String,
    body: Value,
}

/// Accepts connections on a loopback port, responds 204 and sends each request to the
/// returned channel.
fn start_listener() -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind push listener");
    let port = listener.local_addr().expect("address").port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut content_length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; content_length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if sender
                .send(Received {
                    request_line: request_line.trim().to_owned(),
                    body,
                })
                .is_err()
            {
                break;
            }
        }
    });
    (port, receiver)
}

/// Waits for the next push and returns its request line and decoded data.
fn next_push(receiver: &mpsc::Receiver<Received>) -> (String, Value) {
    let received = receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("no push arrived within 10 seconds");
    assert_eq!(
        received.body["subscription"], "projects/local/subscriptions/gmail",
        "{}",
        received.body
    );
    assert!(received.body["message"]["messageId"].is_string());
    assert!(received.body["message"]["publishTime"].is_string());
    let data = base64::engine::general_purpose::STANDARD
        .decode(received.body["message"]["data"].as_str().expect("data"))
        .expect("data is base64");
    let data = serde_json::from_slice(&data).expect("data is JSON");
    (received.request_line, data)
}

#[test]
fn watch_pushes_each_change_with_token() {
    let (port, receiver) = start_listener();
    let folder = mailbox_folder();
    let options = GmailApiOptions {
        push_endpoint: Some(format!("http://127.0.0.1:{port}/gmail/push")),
        push_token: Some("s3cret token".to_owned()),
        ..GmailApiOptions::default()
    };
    let api = GmailApi::start_with(folder.path(), &options).expect("start gmail-api-local");
    let token = api.user_token(ME).expect("token");
    let watch = json!({"topicName": "projects/local/topics/gmail"});
    let (status, _) = call(
        &api,
        &token,
        "POST",
        "/gmail/v1/users/me/watch",
        Some(watch.clone()),
    );
    assert_eq!(status, 200);

    api.deliver(&demo_message(INBOX_FILES[0]), None, &[])
        .expect("deliver");
    let delivered_history = api.messages(ME).expect("messages")["history_id"].clone();
    let (request_line, data) = next_push(&receiver);
    assert_eq!(request_line, "POST /gmail/push?token=s3cret+token HTTP/1.1");
    assert_eq!(
        data,
        json!({"emailAddress": ME, "historyId": delivered_history})
    );

    let id = gmail_api_local::message::message_id_for_path(INBOX_FILES[1]);
    api.user_modify(ME, &id, &["SPAM"], &["INBOX"])
        .expect("modify");
    let (_, data) = next_push(&receiver);
    assert_eq!(
        data["historyId"],
        delivered_history.as_u64().expect("number") + 1
    );

    // After users.stop nothing is pushed: the next push, after a new watch, carries the
    // latest history id, and pushes are sent in order.
    let (status, _) = call(&api, &token, "POST", "/gmail/v1/users/me/stop", None);
    assert_eq!(status, 204);
    api.deliver(&demo_message(INBOX_FILES[2]), None, &[])
        .expect("deliver unwatched");
    let (status, _) = call(
        &api,
        &token,
        "POST",
        "/gmail/v1/users/me/watch",
        Some(watch),
    );
    assert_eq!(status, 200);
    api.deliver(&demo_message(INBOX_FILES[3]), None, &[])
        .expect("deliver watched");
    let latest = api.messages(ME).expect("messages")["history_id"].clone();
    let (_, data) = next_push(&receiver);
    assert_eq!(data["historyId"], latest);
}
