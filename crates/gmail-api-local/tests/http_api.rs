//! The gmail-api-local binary over HTTP: every Gmail endpoint, the OAuth stand-in, the
//! control API and every fault switch, on a folder made from the demo mail.

mod common;

use std::time::Instant;

use base64::Engine as _;
use common::{
    INBOX_FILES, ME, OTHER, SPAM_FILES, call, demo_message, google_error, listed_ids,
    mailbox_folder,
};
use gmail_api_local::message::message_id_for_path;
use serde_json::{Value, json};
use spamflow_testkit::{GmailApi, GmailApiOptions, http_get, http_request, http_send};

const USERS_ME: &str = "/gmail/v1/users/me";

fn start() -> (tempfile::TempDir, GmailApi) {
    let folder = mailbox_folder();
    let api = GmailApi::start(folder.path()).expect("failed to start gmail-api-local");
    (folder, api)
}

fn history_id(value: &Value) -> u64 {
    value["historyId"]
        .as_str()
        .unwrap_or_else(|| panic!("historyId is not a string: {value}"))
        .parse()
        .expect("historyId is decimal")
}

#[test]
fn calls_without_valid_token_are_rejected() {
    let (_folder, api) = start();
    let (status, body) = http_get(api.port, &format!("{USERS_ME}/profile")).expect("get");
    assert_eq!(status, 401);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    let (status, body) = call(
        &api,
        "ya29.forged",
        "GET",
        &format!("{USERS_ME}/profile"),
        None,
    );
    assert_eq!(status, 401);
    google_error(&body, 401);

    let token = api.user_token(ME).expect("token");
    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("/gmail/v1/users/{OTHER}/profile"),
        None,
    );
    assert_eq!(status, 403, "{body}");
    google_error(&body, 403);

    let (status, body) = call(&api, &token, "GET", "/gmail/v1/users/me/drafts", None);
    assert_eq!(status, 404);
    google_error(&body, 404);
    let id = message_id_for_path(INBOX_FILES[0]);
    let (status, body) = call(
        &api,
        &token,
        "DELETE",
        &format!("{USERS_ME}/messages/{id}"),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(google_error(&body, 404).contains("DELETE"));
}

#[test]
fn lists_and_gets_messages() {
    let (_folder, api) = start();
    let token = api.user_token(ME).expect("token");

    let (status, profile) = call(&api, &token, "GET", &format!("{USERS_ME}/profile"), None);
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["emailAddress"], ME);
    assert_eq!(profile["messagesTotal"], 6);
    assert!(history_id(&profile) > 0);

    // Spam is hidden by default; the four INBOX files come newest first.
    let (status, inbox) = call(&api, &token, "GET", &format!("{USERS_ME}/messages"), None);
    assert_eq!(status, 200, "{inbox}");
    let ids = listed_ids(&inbox);
    assert_eq!(ids.len(), INBOX_FILES.len());
    assert_eq!(inbox["resultSizeEstimate"], 4);
    let dates: Vec<i64> = ids
        .iter()
        .map(|id| {
            let (_, message) = call(
                &api,
                &token,
                "GET",
                &format!("{USERS_ME}/messages/{id}?format=minimal"),
                None,
            );
            message["internalDate"]
                .as_str()
                .expect("string")
                .parse()
                .expect("number")
        })
        .collect();
    assert!(dates.windows(2).all(|pair| pair[0] >= pair[1]), "{dates:?}");

    let spam_ids: Vec<String> = SPAM_FILES
        .iter()
        .map(|name| message_id_for_path(&format!("SPAM/{name}")))
        .collect();
    for query in ["q=in:spam", "labelIds=SPAM", "q=label:spam%20is:unread"] {
        let (status, spam) = call(
            &api,
            &token,
            "GET",
            &format!("{USERS_ME}/messages?{query}"),
            None,
        );
        assert_eq!(status, 200, "{query}: {spam}");
        let mut listed = listed_ids(&spam);
        listed.sort();
        let mut expected = spam_ids.clone();
        expected.sort();
        assert_eq!(listed, expected, "{query}");
    }
    let (_, all) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages?includeSpamTrash=true"),
        None,
    );
    assert_eq!(listed_ids(&all).len(), 6);
    let (_, not_spam) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages?includeSpamTrash=true&q=-in:spam%20after:0"),
        None,
    );
    assert_eq!(listed_ids(&not_spam).len(), 4);

    // Paging with maxResults and pageToken visits every message once.
    let mut seen = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let token_param = page_token
            .as_deref()
            .map(|t| format!("&pageToken={t}"))
            .unwrap_or_default();
        let (status, page) = call(
            &api,
            &token,
            "GET",
            &format!(
                "{USERS_ME}/messages?labelIds=INBOX&labelIds=UNREAD&maxResults=3{token_param}"
            ),
            None,
        );
        assert_eq!(status, 200, "{page}");
        seen.extend(listed_ids(&page));
        match page["nextPageToken"].as_str() {
            Some(next) => page_token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    // Unsupported query terms and bad parameters are 400s naming the value.
    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages?q=from:bob"),
        None,
    );
    assert_eq!(status, 400);
    assert!(google_error(&body, 400).contains("from:bob"), "{body}");
    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages?pageToken=zz"),
        None,
    );
    assert_eq!(status, 400);
    assert!(google_error(&body, 400).contains("pageToken"), "{body}");
    let (status, _) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages?labelIds=NOPE"),
        None,
    );
    assert_eq!(status, 400);

    // messages.get in each format.
    let id = message_id_for_path(INBOX_FILES[1]);
    let (status, raw) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages/{id}?format=raw"),
        None,
    );
    assert_eq!(status, 200, "{raw}");
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw["raw"].as_str().expect("raw"))
        .expect("base64url");
    assert_eq!(bytes, demo_message(INBOX_FILES[1]));
    assert_eq!(raw["threadId"], id.as_str());
    assert_eq!(raw["sizeEstimate"], bytes.len());
    assert!(raw["historyId"].is_string());

    let (status, metadata) = call(
        &api,
        &token,
        "GET",
        &format!(
            "{USERS_ME}/messages/{id}?format=metadata&metadataHeaders=Subject&metadataHeaders=from"
        ),
        None,
    );
    assert_eq!(status, 200, "{metadata}");
    let names: Vec<&str> = metadata["payload"]["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|header| header["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["From", "Subject"]);
    assert!(metadata.get("raw").is_none());

    // Without format, Gmail's default `full` returns the MIME tree with decoded bodies.
    let (status, full) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages/{id}"),
        None,
    );
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["payload"]["mimeType"], "multipart/alternative");
    let plain = &full["payload"]["parts"][0];
    assert_eq!(plain["partId"], "0");
    assert_eq!(plain["mimeType"], "text/plain");
    let text = base64::engine::general_purpose::URL_SAFE
        .decode(plain["body"]["data"].as_str().expect("body data"))
        .expect("base64url");
    assert!(
        text.starts_with(b"Thank you for your order."),
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert_eq!(full["payload"]["parts"][1]["mimeType"], "text/html");

    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages/{id}?format=pretty"),
        None,
    );
    assert_eq!(status, 400);
    assert!(google_error(&body, 400).contains("pretty"));
    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/messages/0000000000000000"),
        None,
    );
    assert_eq!(status, 404);
    google_error(&body, 404);
}

#[test]
fn modify_records_history_and_control_log() {
    let (_folder, api) = start();
    let token = api.user_token(ME).expect("token");
    let (_, profile) = call(&api, &token, "GET", &format!("{USERS_ME}/profile"), None);
    let start = history_id(&profile);

    let id = message_id_for_path(INBOX_FILES[2]);
    let (status, message) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/messages/{id}/modify"),
        Some(json!({"addLabelIds": ["SPAM"], "removeLabelIds": ["INBOX", "STARRED"]})),
    );
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["labelIds"], json!(["SPAM", "UNREAD"]));

    let (status, history) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/history?startHistoryId={start}"),
        None,
    );
    assert_eq!(status, 200, "{history}");
    assert_eq!(history_id(&history), start + 1);
    let record = &history["history"][0];
    assert_eq!(record["id"], (start + 1).to_string());
    assert_eq!(record["labelsAdded"][0]["labelIds"], json!(["SPAM"]));
    assert_eq!(record["labelsAdded"][0]["message"]["id"], id.as_str());
    assert_eq!(
        record["labelsAdded"][0]["message"]["labelIds"],
        json!(["SPAM", "UNREAD"])
    );
    assert_eq!(record["labelsRemoved"][0]["labelIds"], json!(["INBOX"]));

    // A delivered message shows up as messagesAdded; filters narrow the records.
    let delivered = api
        .deliver(&demo_message(SPAM_FILES[0]), None, &[])
        .expect("deliver");
    let (_, history) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/history?startHistoryId={start}&historyTypes=messageAdded"),
        None,
    );
    let records = history["history"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{history}");
    assert_eq!(
        records[0]["messagesAdded"][0]["message"]["id"],
        delivered.as_str()
    );
    assert_eq!(
        records[0]["messagesAdded"][0]["message"]["labelIds"],
        json!(["INBOX", "UNREAD"])
    );
    let (_, history) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/history?startHistoryId={start}&labelId=SPAM&maxResults=1"),
        None,
    );
    assert_eq!(history["history"].as_array().expect("records").len(), 1);
    assert!(history.get("nextPageToken").is_none(), "{history}");

    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/history?startHistoryId=1"),
        None,
    );
    assert_eq!(status, 404, "older than retained history: {body}");
    google_error(&body, 404);
    let (status, body) = call(&api, &token, "GET", &format!("{USERS_ME}/history"), None);
    assert_eq!(status, 400);
    assert!(google_error(&body, 400).contains("startHistoryId"));
    let (status, _) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/history?startHistoryId={start}&historyTypes=labelChanged"),
        None,
    );
    assert_eq!(status, 400);

    // batchModify checks every id before changing anything.
    let ids = [
        message_id_for_path(INBOX_FILES[0]),
        message_id_for_path(INBOX_FILES[1]),
    ];
    let (status, body) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/messages/batchModify"),
        Some(json!({"ids": [ids[0], "ffffffffffffffff"], "removeLabelIds": ["UNREAD"]})),
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/messages/batchModify"),
        Some(json!({"ids": ids, "removeLabelIds": ["UNREAD"]})),
    );
    assert_eq!(status, 204, "{body}");
    let (_, body) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/messages/{id}/modify"),
        Some(json!({"addLabelIds": ["NOPE"]})),
    );
    assert!(google_error(&body, 400).contains("NOPE"));

    let modifications = api.modifications().expect("modifications");
    let entries = modifications.as_array().expect("array");
    assert_eq!(entries.len(), 3, "{modifications}");
    assert_eq!(entries[0]["method"], "messages.modify");
    assert_eq!(entries[0]["message_id"], id.as_str());
    assert_eq!(entries[0]["mailbox"], ME);
    assert_eq!(entries[0]["remove_label_ids"], json!(["INBOX", "STARRED"]));
    assert_eq!(entries[0]["removed"], json!(["INBOX"]));
    assert_eq!(entries[1]["method"], "messages.batchModify");
    assert_eq!(entries[2]["removed"], json!(["UNREAD"]));

    let messages = api.messages(ME).expect("messages");
    let listed = messages["messages"].as_array().expect("messages");
    assert_eq!(listed.len(), 7);
    let modified = listed
        .iter()
        .find(|m| m["id"] == id.as_str())
        .expect("modified message");
    assert_eq!(modified["label_ids"], json!(["SPAM", "UNREAD"]));

    let requests = api.requests().expect("requests");
    assert_eq!(requests["messages.modify"], 2);
    assert_eq!(requests["messages.batchModify"], 2);
    assert_eq!(requests["history.list"], 6);
}

#[test]
fn labels_watch_and_stop() {
    let (_folder, api) = start();
    let token = api.user_token(ME).expect("token");

    let (status, labels) = call(&api, &token, "GET", &format!("{USERS_ME}/labels"), None);
    assert_eq!(status, 200);
    let spam = labels["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .find(|label| label["id"] == "SPAM")
        .expect("SPAM label");
    assert_eq!(spam["type"], "system");

    let (status, spam) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/labels/SPAM"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(spam["messagesTotal"], 2);
    assert_eq!(spam["messagesUnread"], 2);

    let (status, created) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/labels"),
        Some(json!({"name": "spamflow/checked", "labelListVisibility": "labelHide"})),
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["type"], "user");
    let label_id = created["id"].as_str().expect("id").to_owned();
    let (status, body) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/labels"),
        Some(json!({"name": "SpamFlow/Checked"})),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["status"], "ALREADY_EXISTS");
    let (status, body) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/labels"),
        Some(json!({"name": 5})),
    );
    assert_eq!(status, 400, "{body}");

    let (status, fetched) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/labels/{label_id}"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(fetched["messagesTotal"], 0);
    let (status, _) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/labels/Label_99"),
        None,
    );
    assert_eq!(status, 404);

    let (status, watch) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/watch"),
        Some(json!({"topicName": "projects/local/topics/gmail", "labelIds": ["INBOX"]})),
    );
    assert_eq!(status, 200, "{watch}");
    let (_, profile) = call(&api, &token, "GET", &format!("{USERS_ME}/profile"), None);
    assert_eq!(history_id(&watch), history_id(&profile));
    let expiration: i64 = watch["expiration"]
        .as_str()
        .expect("string")
        .parse()
        .expect("ms");
    let now_ms = spamflow_runtime::now_ms();
    let six_days_ms = 6 * 24 * 60 * 60 * 1000;
    assert!(
        expiration > now_ms + six_days_ms,
        "expiration {expiration} is not 7 days ahead"
    );
    let (status, _) = call(
        &api,
        &token,
        "POST",
        &format!("{USERS_ME}/watch"),
        Some(json!({})),
    );
    assert_eq!(status, 400, "topicName is required");

    let (status, body) = call(&api, &token, "POST", &format!("{USERS_ME}/stop"), None);
    assert_eq!(status, 204, "{body}");
}

#[test]
fn fault_switches_fail_calls_as_set() {
    let (_folder, api) = start();
    let token = api.user_token(ME).expect("token");
    let profile = format!("{USERS_ME}/profile");

    api.set_faults(json!({"status_429": 2, "status_500": 1}))
        .expect("faults");
    let (status, current) = http_get(api.port, "/control/faults").expect("get faults");
    assert_eq!(status, 200);
    let current: Value = serde_json::from_str(&current).expect("json");
    assert_eq!(current["status_429"], 2);
    assert_eq!(current["status_500"], 1);
    let statuses: Vec<u16> = (0..4)
        .map(|_| call(&api, &token, "GET", &profile, None).0)
        .collect();
    assert_eq!(statuses, [429, 429, 500, 200]);
    let (_, body) = {
        api.set_faults(json!({"status_429": 1})).expect("faults");
        call(&api, &token, "GET", &profile, None)
    };
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(api.requests().expect("requests")["users.getProfile"], 5);

    api.set_faults(json!({"history_404": true}))
        .expect("faults");
    let (_, current) = call(&api, &token, "GET", &profile, None);
    let start = history_id(&current);
    let history = format!("{USERS_ME}/history?startHistoryId={start}");
    for _ in 0..2 {
        let (status, body) = call(&api, &token, "GET", &history, None);
        assert_eq!(status, 404, "{body}");
    }
    api.set_faults(json!({})).expect("clear faults");
    assert_eq!(call(&api, &token, "GET", &history, None).0, 200);

    // The delay is a lower bound: a sleep never ends early.
    api.set_faults(json!({"delay_ms": 300})).expect("faults");
    let started = Instant::now();
    assert_eq!(call(&api, &token, "GET", &profile, None).0, 200);
    assert!(started.elapsed().as_millis() >= 300);

    // Tokens issued with a lifetime of 0 seconds are expired at once; refreshing after the
    // switch is cleared gives a working token.
    api.set_faults(json!({"token_expires_in": 0}))
        .expect("faults");
    let (status, text) = http_request(
        api.port,
        "GET",
        "/o/oauth2/auth?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&state=s1",
        None,
        b"",
    )
    .expect("authorize");
    assert_eq!(status, 302, "{text}");
    let short = api.user_token(ME).expect("short-lived token");
    let (status, body) = call(&api, &short, "GET", &profile, None);
    assert_eq!(status, 401);
    assert!(google_error(&body, 401).contains("expired"));
    api.set_faults(json!({})).expect("clear faults");

    let (status, body) = http_request(
        api.port,
        "POST",
        "/control/faults",
        Some("application/json"),
        br#"{"status_503": 1}"#,
    )
    .expect("request");
    assert_eq!(status, 400);
    assert!(body.contains("status_503"), "{body}");
}

#[test]
fn oauth_grants_act_for_the_right_mailbox() {
    let (_folder, api) = start();
    let form = |body: &str| {
        let (status, text) = http_request(
            api.port,
            "POST",
            "/token",
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
        )
        .expect("token request");
        (status, serde_json::from_str::<Value>(&text).expect("json"))
    };

    // The redirect carries the code and the state.
    let response = http_send(
        api.port,
        "GET",
        "/o/oauth2/auth?client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%3Fa%3Db&state=xyz&response_type=code",
        &[],
        b"",
    )
    .expect("authorize");
    assert_eq!(response.status, 302);
    let location = response.header("location").expect("location").to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:9/cb?a=b&code="),
        "{location}"
    );
    assert!(location.ends_with("&state=xyz"), "{location}");
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("code");

    let (status, issued) = form(&format!("grant_type=authorization_code&code={code}"));
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["expires_in"], 3600);
    assert_eq!(issued["token_type"], "Bearer");
    let (status, reused) = form(&format!("grant_type=authorization_code&code={code}"));
    assert_eq!(status, 400);
    assert_eq!(reused["error"], "invalid_grant");

    let refresh_token = issued["refresh_token"].as_str().expect("refresh token");
    let (status, refreshed) = form(&format!(
        "grant_type=refresh_token&refresh_token={refresh_token}"
    ));
    assert_eq!(status, 200, "{refreshed}");
    let access = refreshed["access_token"].as_str().expect("access token");
    let (_, profile) = call(&api, access, "GET", &format!("{USERS_ME}/profile"), None);
    assert_eq!(profile["emailAddress"], ME);

    // A service-account JWT acts for its `sub`, here the second mailbox.
    let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let jwt = |claims: &str| {
        format!(
            "{}.{}.unchecked-signature",
            encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            encode(claims)
        )
    };
    let (status, issued) = form(&format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        jwt(
            r#"{"iss":"sa@local.iam.gserviceaccount.com","sub":"other@example.com","scope":"https://www.googleapis.com/auth/gmail.modify"}"#
        )
    ));
    assert_eq!(status, 200, "{issued}");
    assert!(issued.get("refresh_token").is_none());
    let token = issued["access_token"].as_str().expect("access token");
    let (status, profile) = call(
        &api,
        token,
        "GET",
        &format!("/gmail/v1/users/{OTHER}/profile"),
        None,
    );
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["emailAddress"], OTHER);
    assert_eq!(profile["messagesTotal"], 1);
    let (status, _) = call(
        &api,
        token,
        "GET",
        &format!("/gmail/v1/users/{ME}/profile"),
        None,
    );
    assert_eq!(status, 403);

    let (status, body) = form(&format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        jwt(r#"{"iss":"sa@local","sub":"nobody@example.com"}"#)
    ));
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("nobody@example.com")
    );
    let (status, body) = form("grant_type=password&username=x");
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (status, _) =
        http_request(api.port, "GET", "/o/oauth2/auth?state=x", None, b"").expect("authorize");
    assert_eq!(status, 400);
}

#[test]
fn control_deliver_validates_input() {
    let (_folder, api) = start();
    let other_id = api
        .deliver(&demo_message(SPAM_FILES[1]), Some(OTHER), &["SPAM"])
        .expect("deliver");
    let other = api.messages(OTHER).expect("messages");
    let delivered = other["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|message| message["id"] == other_id.as_str())
        .expect("delivered message");
    assert_eq!(delivered["label_ids"], json!(["SPAM"]));

    for (body, expected) in [
        (json!({"raw_base64": "!!!"}), "raw_base64"),
        (json!({"raw_base64": ""}), "empty"),
        (
            json!({"raw_base64": "aGk=", "mailbox": "nobody@example.com"}),
            "nobody@example.com",
        ),
        (json!({"raw_base64": "aGk=", "label_ids": ["NOPE"]}), "NOPE"),
        (json!({"raw": "aGk="}), "raw_base64"),
    ] {
        let (status, text) = http_request(
            api.port,
            "POST",
            "/control/deliver",
            Some("application/json"),
            body.to_string().as_bytes(),
        )
        .expect("deliver");
        assert!(status == 400 || status == 404, "{body} gave {status}");
        assert!(text.contains(expected), "{body} gave {text}");
    }
    assert!(api.messages("nobody@example.com").is_err());
}

#[test]
fn history_beyond_retention_is_404() {
    let folder = mailbox_folder();
    let options = GmailApiOptions {
        history_retention: Some(2),
        ..GmailApiOptions::default()
    };
    let api = GmailApi::start_with(folder.path(), &options).expect("start gmail-api-local");
    let token = api.user_token(ME).expect("token");
    let (_, profile) = call(&api, &token, "GET", &format!("{USERS_ME}/profile"), None);
    let start = history_id(&profile);

    for name in INBOX_FILES.iter().take(3) {
        api.user_modify(ME, &message_id_for_path(name), &["STARRED"], &[])
            .expect("modify");
    }

    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/history?startHistoryId={start}"),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(google_error(&body, 404).contains("full sync"), "{body}");
    let (status, body) = call(
        &api,
        &token,
        "GET",
        &format!("{USERS_ME}/history?startHistoryId={}", start + 1),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["history"].as_array().expect("records").len(), 2);
}

#[test]
fn restart_keeps_message_ids() {
    let folder = mailbox_folder();
    let ids = |api: &GmailApi| -> Vec<Value> {
        let messages = api.messages(ME).expect("messages");
        messages["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|message| message["id"].clone())
            .collect()
    };
    let first = ids(&GmailApi::start(folder.path()).expect("first start"));
    let second = ids(&GmailApi::start(folder.path()).expect("second start"));
    assert_eq!(first.len(), 6);
    assert_eq!(first, second);
}
