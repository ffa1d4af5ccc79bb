//! The spam-detector binary keeps serving when model updates cannot reach Kafka.

use std::process::Command;
use std::time::Duration;

use spamflow_proto::v1 as pb;
use spamflow_proto::v1::spam_detector_client::SpamDetectorClient;
use spamflow_testkit::{
    ChildGuard, eventually, free_port, http_get, wait_for_port, workspace_binary,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_while_broker_is_unreachable() {
    // Nothing listens on this port, so every metadata request for the models topic fails.
    let broker_port = free_port().unwrap();
    let port = free_port().unwrap();
    let http_port = free_port().unwrap();
    let mut command = Command::new(workspace_binary("spam-detector").unwrap());
    command
        .env("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("SPAMFLOW_KAFKA_BROKERS", format!("127.0.0.1:{broker_port}"))
        .env("SPAMFLOW_MODEL_UPDATES", "on");
    let mut process = ChildGuard::spawn("spam-detector", command).unwrap();
    wait_for_port(
        ([127, 0, 0, 1], port).into(),
        process.child_mut(),
        "spam-detector",
    )
    .unwrap();

    let mut client = SpamDetectorClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let shipped = spam_detector::default_model().unwrap();
    for _ in 0..3 {
        let response = client
            .classify(pb::ClassifyRequest {
                content: Some(pb::classify_request::Content::Text("lunch at noon?".into())),
                message_id: "m1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.model_version, shipped.version());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = eventually(Duration::from_secs(10), "the health endpoint", || {
        Ok(http_get(http_port, "/healthz")
            .ok()
            .map(|(status, _)| status))
    })
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        process.child_mut().try_wait().unwrap().is_none(),
        "the detector exited"
    );
}
