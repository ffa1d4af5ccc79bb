//! The bloom-filter binary over gRPC, persisted in a real Redis server.

use std::process::Command;

use spamflow_proto::v1 as pb;
use spamflow_proto::v1::bloom_filter_client::BloomFilterClient;
use spamflow_testkit::{ChildGuard, Redis, free_port, wait_for_port, workspace_binary};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

fn start_filter(redis: &Redis, prefix: &str, port: u16) -> ChildGuard {
    let mut command = Command::new(workspace_binary("bloom-filter").unwrap());
    command
        .env("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SPAMFLOW_REDIS_URL", &redis.url)
        .env("SPAMFLOW_REDIS_KEY_PREFIX", prefix);
    let mut guard = ChildGuard::spawn("bloom-filter", command).unwrap();
    wait_for_port(
        ([127, 0, 0, 1], port).into(),
        guard.child_mut(),
        "bloom-filter",
    )
    .unwrap();
    guard
}

fn digest(value: &str) -> pb::Fingerprint {
    pb::Fingerprint {
        kind: pb::FingerprintKind::BodyDigest as i32,
        value: value.to_owned(),
    }
}

#[tokio::test]
async fn restarted_filter_keeps_inserted_fingerprints() {
    let redis = Redis::start().unwrap();
    let prefix = format!("bloom-restart-{}", std::process::id());
    let port = free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let mut first = start_filter(&redis, &prefix, port);
    let mut client = BloomFilterClient::connect(url.clone()).await.unwrap();
    let inserted = client
        .insert(pb::InsertRequest {
            fingerprints: vec![digest("aaaa"), digest("bbbb")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inserted.inserted, 2);
    first.kill();
    drop(client);

    let _second = start_filter(&redis, &prefix, port);
    let mut client = BloomFilterClient::connect(url.clone()).await.unwrap();
    let checked = client
        .check(pb::CheckRequest {
            fingerprints: vec![digest("aaaa"), digest("cccc"), digest("bbbb")],
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<&str> = checked.matches.iter().map(|m| m.value.as_str()).collect();
    assert_eq!(values, ["aaaa", "bbbb"]);

    let stats = client
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.items, 2);
    assert!(
        stats.fill_ratio > 0.0 && stats.fill_ratio < 0.01,
        "{stats:?}"
    );

    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest {
            service: "spamflow.v1.BloomFilter".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn invalid_fingerprint_is_invalid_argument() {
    let redis = Redis::start().unwrap();
    let port = free_port().unwrap();
    let _filter = start_filter(&redis, "bloom-invalid", port);
    let mut client = BloomFilterClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let status = client
        .insert(pb::InsertRequest {
            fingerprints: vec![pb::Fingerprint {
                kind: 0,
                value: "x".into(),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("fingerprints[0].kind"),
        "{}",
        status.message()
    );
}

#[test]
fn unreachable_redis_fails_start() {
    let port = free_port().unwrap();
    let output = Command::new(workspace_binary("bloom-filter").unwrap())
        .env("SPAMFLOW_LISTEN_ADDR", "127.0.0.1:0")
        .env("SPAMFLOW_REDIS_URL", format!("redis://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--redis-url (SPAMFLOW_REDIS_URL)"),
        "{stderr}"
    );
}
