//! The store against a real Redis server.

use spamflow_runtime::store::Store;
use spamflow_testkit::Redis;

fn unique_prefix(test: &str) -> String {
    format!(
        "test-{test}-{}-{}",
        std::process::id(),
        spamflow_runtime::now_ms()
    )
}

#[tokio::test]
async fn verdict_is_recorded_once() {
    let redis = Redis::start().unwrap();
    let store = Store::redis(&redis.url, &unique_prefix("verdict"))
        .await
        .unwrap();
    assert!(store.is_durable());

    assert!(store.record_verdict("box/m1", "spam").await.unwrap());
    assert!(
        !store.record_verdict("box/m1", "ham").await.unwrap(),
        "second record must be a no-op"
    );
    assert_eq!(
        store.verdict("box/m1").await.unwrap().as_deref(),
        Some("spam")
    );
    assert_eq!(store.verdicts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bloom_log_survives_new_connection() {
    let redis = Redis::start().unwrap();
    let prefix = unique_prefix("bloom");
    let writer = Store::redis(&redis.url, &prefix).await.unwrap();
    assert_eq!(
        writer
            .bloom_append(&["body:a".into(), "body:b".into()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(writer.bloom_append(&["near:c".into()]).await.unwrap(), 3);

    let reader = Store::redis(&redis.url, &prefix).await.unwrap();
    assert_eq!(
        reader.bloom_read(0).await.unwrap(),
        ["body:a", "body:b", "near:c"]
    );
    assert_eq!(reader.bloom_read(2).await.unwrap(), ["near:c"]);
    assert!(reader.bloom_read(3).await.unwrap().is_empty());
}

#[tokio::test]
async fn ham_overrides_are_added_and_removed() {
    let redis = Redis::start().unwrap();
    let store = Store::redis(&redis.url, &unique_prefix("overrides"))
        .await
        .unwrap();
    let keys = ["body:a".to_owned(), "near:0-b".to_owned()];
    assert_eq!(store.ham_overrides_add(&keys).await.unwrap(), 2);
    assert_eq!(store.ham_overrides_add(&keys[..1]).await.unwrap(), 0);
    assert_eq!(
        store
            .ham_overridden(&["near:0-b".into(), "body:z".into()])
            .await
            .unwrap(),
        [true, false]
    );
    assert_eq!(store.ham_overrides_remove(&keys[1..]).await.unwrap(), 1);
    assert_eq!(store.ham_overridden(&keys).await.unwrap(), [true, false]);
    assert!(store.ham_overridden(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_redis_is_an_error() {
    let port = spamflow_testkit::free_port().unwrap();
    let error = Store::redis(&format!("redis://127.0.0.1:{port}"), "x")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Redis"), "{error}");
}

#[tokio::test]
async fn invalid_url_names_expected_form() {
    let error = Store::redis("http://not-redis", "x").await.unwrap_err();
    assert!(error.to_string().contains("redis://"), "{error}");
}

/// Runs the value checks on one store: set, read, take once, and expiry.
async fn check_values(store: &Store) {
    let key = spamflow_runtime::store::own_label_change_key("me@example.com", "18c", "SPAM", true);
    assert_eq!(key, "gmail:own:me@example.com:18c:+SPAM");
    assert_eq!(store.value(&key).await.unwrap(), None);
    store.set_value(&key, "1", None).await.unwrap();
    assert_eq!(store.value(&key).await.unwrap().as_deref(), Some("1"));
    assert_eq!(store.take_value(&key).await.unwrap().as_deref(), Some("1"));
    assert_eq!(
        store.take_value(&key).await.unwrap(),
        None,
        "a marker is taken once"
    );

    store
        .set_value("checkpoint", "42", Some(std::time::Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(
        store.value("checkpoint").await.unwrap().as_deref(),
        Some("42")
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        store.value("checkpoint").await.unwrap(),
        None,
        "the value outlived its time to live"
    );
}

#[tokio::test]
async fn values_are_set_taken_and_expire_in_redis() {
    let redis = Redis::start().unwrap();
    let store = Store::redis(&redis.url, &unique_prefix("values"))
        .await
        .unwrap();
    check_values(&store).await;
}

#[tokio::test]
async fn values_are_set_taken_and_expire_in_memory() {
    check_values(&Store::memory()).await;
}
