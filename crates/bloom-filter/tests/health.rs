//! Health of the bloom-filter binary follows its Redis server: SERVING while Redis responds,
//! NOT_SERVING (and `/healthz` 503) once it stops.

use std::process::Command;
use std::time::Duration;

use spamflow_testkit::{ChildGuard, Redis, eventually, free_port, wait_for_port, workspace_binary};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// Returns the status code and body of `GET /healthz` on a loopback port.
fn healthz(port: u16) -> anyhow::Result<(u16, String)> {
    spamflow_testkit::http_get(port, "/healthz")
}

async fn grpc_status(client: &mut HealthClient<tonic::transport::Channel>, service: &str) -> i32 {
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_flips_when_redis_stops() {
    let redis = Redis::start().unwrap();
    let grpc_port = free_port().unwrap();
    let http_port = free_port().unwrap();
    let mut command = Command::new(workspace_binary("bloom-filter").unwrap());
    command
        .env("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("SPAMFLOW_REDIS_URL", &redis.url)
        .env("SPAMFLOW_REDIS_KEY_PREFIX", "bloom-health");
    let mut filter = ChildGuard::spawn("bloom-filter", command).unwrap();
    for port in [grpc_port, http_port] {
        wait_for_port(
            ([127, 0, 0, 1], port).into(),
            filter.child_mut(),
            "bloom-filter",
        )
        .unwrap();
    }

    let service = "spamflow.v1.BloomFilter";
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    assert_eq!(
        grpc_status(&mut client, service).await,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        grpc_status(&mut client, "").await,
        ServingStatus::Serving as i32
    );
    let (status, body) = tokio::task::block_in_place(|| healthz(http_port)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"redis\":true"), "{body}");

    // NOTE: with SPAMFLOW_TEST_REDIS_URL set, the shared server cannot be stopped here.
    if std::env::var("SPAMFLOW_TEST_REDIS_URL").is_ok() {
        return;
    }
    drop(redis);

    tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(30), "/healthz to return 503", || {
            Ok((healthz(http_port)?.0 == 503).then_some(()))
        })
    })
    .unwrap();
    let (_, body) = tokio::task::block_in_place(|| healthz(http_port)).unwrap();
    assert!(body.contains("\"redis\":false"), "{body}");
    assert_eq!(
        grpc_status(&mut client, service).await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        grpc_status(&mut client, "").await,
        ServingStatus::NotServing as i32
    );
}
