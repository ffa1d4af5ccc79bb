//! Wire compatibility with the real `google-gmail1` 7 client: the hub is pointed at the local
//! server through its base and root URL overrides and authenticates with a token from
//! `/token`.

mod common;

use common::{INBOX_FILES, ME, SPAM_FILES, demo_message, mailbox_folder};
use google_gmail1::Gmail;
use google_gmail1::api::{BatchModifyMessagesRequest, Label, ModifyMessageRequest, WatchRequest};
use google_gmail1::hyper_util::client::legacy::Client;
use google_gmail1::hyper_util::client::legacy::connect::HttpConnector;
use google_gmail1::hyper_util::rt::TokioExecutor;
use spamflow_testkit::GmailApi;

type Hub = Gmail<HttpConnector>;

/// Builds a hub over plain HTTP to the local server. No TLS is needed on loopback.
fn hub(api: &GmailApi, token: String) -> Hub {
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut hub = Gmail::new(client, token);
    hub.base_url(api.base_url());
    hub.root_url(api.base_url());
    hub
}

/// Returns the HTTP status inside a client error, when the server responded with JSON.
fn error_code(error: &google_gmail1::Error) -> Option<i64> {
    match error {
        google_gmail1::Error::BadRequest(value) => value["error"]["code"].as_i64(),
        _ => None,
    }
}

#[test]
fn google_gmail1_client_round_trips() {
    let folder = mailbox_folder();
    let api = GmailApi::start(folder.path()).expect("failed to start gmail-api-local");
    let token = api.user_token(ME).expect("token");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let hub = hub(&api, token);
        let users = hub.users();

        let (_, profile) = users.get_profile("me").doit().await.expect("getProfile");
        assert_eq!(profile.email_address.as_deref(), Some(ME));
        let start = profile.history_id.expect("historyId");

        // messages.list, two pages.
        let (_, first) = users
            .messages_list("me")
            .add_label_ids("INBOX")
            .max_results(3)
            .doit()
            .await
            .expect("messages.list");
        assert_eq!(first.result_size_estimate, Some(4));
        let mut ids: Vec<String> = first
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| message.id)
            .collect();
        let page_token = first.next_page_token.expect("a second page");
        let (_, second) = users
            .messages_list("me")
            .add_label_ids("INBOX")
            .max_results(3)
            .page_token(&page_token)
            .doit()
            .await
            .expect("messages.list page 2");
        ids.extend(
            second
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.id),
        );
        assert_eq!(ids.len(), INBOX_FILES.len());

        let (_, spam) = users
            .messages_list("me")
            .q("in:spam")
            .doit()
            .await
            .expect("messages.list in:spam");
        assert_eq!(
            spam.messages.map(|messages| messages.len()),
            Some(SPAM_FILES.len())
        );

        let error = users
            .messages_list("me")
            .q("subject:prize")
            .doit()
            .await
            .expect_err("unsupported query term");
        assert_eq!(error_code(&error), Some(400), "{error:?}");

        // messages.get RAW decodes to the file's bytes.
        let id = gmail_api_local::message::message_id_for_path(INBOX_FILES[0]);
        let (_, message) = users
            .messages_get("me", &id)
            .format("raw")
            .doit()
            .await
            .expect("messages.get raw");
        assert_eq!(
            message.raw.as_deref(),
            Some(demo_message(INBOX_FILES[0]).as_slice())
        );
        assert!(message.internal_date.is_some_and(|ms| ms > 0));
        assert_eq!(
            message.label_ids,
            Some(vec!["INBOX".to_owned(), "UNREAD".to_owned()])
        );

        // The default format is full, with the MIME tree in the payload.
        let multipart_id = gmail_api_local::message::message_id_for_path(INBOX_FILES[1]);
        let (_, full) = users
            .messages_get("me", &multipart_id)
            .doit()
            .await
            .expect("messages.get full");
        let payload = full.payload.expect("payload");
        assert_eq!(payload.mime_type.as_deref(), Some("multipart/alternative"));
        let parts = payload.parts.expect("parts");
        assert_eq!(parts.len(), 2);
        let text = parts[0]
            .body
            .as_ref()
            .and_then(|body| body.data.clone())
            .expect("text body");
        assert!(text.starts_with(b"Thank you for your order."));

        // messages.modify, then history.list shows the change.
        let request = ModifyMessageRequest {
            add_label_ids: Some(vec!["SPAM".to_owned()]),
            remove_label_ids: Some(vec!["INBOX".to_owned()]),
        };
        let (_, modified) = users
            .messages_modify(request, "me", &id)
            .doit()
            .await
            .expect("messages.modify");
        assert_eq!(
            modified.label_ids,
            Some(vec!["SPAM".to_owned(), "UNREAD".to_owned()])
        );
        let (_, history) = users
            .history_list("me")
            .start_history_id(start)
            .add_history_types("labelAdded")
            .add_history_types("labelRemoved")
            .label_id("SPAM")
            .doit()
            .await
            .expect("history.list");
        assert_eq!(history.history_id, Some(start + 1));
        let records = history.history.expect("records");
        assert_eq!(records.len(), 1);
        let added = &records[0].labels_added.as_ref().expect("labelsAdded")[0];
        assert_eq!(added.label_ids, Some(vec!["SPAM".to_owned()]));
        assert_eq!(
            added.message.as_ref().and_then(|m| m.id.as_deref()),
            Some(id.as_str())
        );
        let removed = &records[0].labels_removed.as_ref().expect("labelsRemoved")[0];
        assert_eq!(removed.label_ids, Some(vec!["INBOX".to_owned()]));

        let error = users
            .history_list("me")
            .start_history_id(1)
            .doit()
            .await
            .expect_err("history older than retained");
        assert_eq!(error_code(&error), Some(404), "{error:?}");

        // batchModify returns an empty body.
        let batch = BatchModifyMessagesRequest {
            ids: Some(vec![ids[0].clone(), ids[1].clone()]),
            remove_label_ids: Some(vec!["UNREAD".to_owned()]),
            add_label_ids: None,
        };
        let response = users
            .messages_batch_modify(batch, "me")
            .doit()
            .await
            .expect("messages.batchModify");
        assert_eq!(response.status(), 204);

        // labels.create, and 409 on a duplicate.
        let label = Label {
            name: Some("spamflow-reviewed".to_owned()),
            ..Label::default()
        };
        let (_, created) = users
            .labels_create(label.clone(), "me")
            .doit()
            .await
            .expect("labels.create");
        assert!(created.id.is_some_and(|id| id.starts_with("Label_")));
        let error = users
            .labels_create(label, "me")
            .doit()
            .await
            .expect_err("duplicate label");
        assert_eq!(error_code(&error), Some(409), "{error:?}");
        let (_, labels) = users.labels_list("me").doit().await.expect("labels.list");
        assert!(
            labels
                .labels
                .unwrap_or_default()
                .iter()
                .any(|label| label.name.as_deref() == Some("spamflow-reviewed"))
        );

        // users.watch and users.stop.
        let watch = WatchRequest {
            topic_name: Some("projects/local/topics/gmail".to_owned()),
            ..WatchRequest::default()
        };
        let (_, watching) = users.watch(watch, "me").doit().await.expect("users.watch");
        assert!(watching.expiration.is_some());
        assert_eq!(watching.history_id, Some(start + 3));
        users.stop("me").doit().await.expect("users.stop");
    });

    let requests = api.requests().expect("requests");
    assert_eq!(requests["messages.list"], 4);
    assert_eq!(requests["messages.get"], 2);
    assert_eq!(requests["messages.modify"], 1);
}
