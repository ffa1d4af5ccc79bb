//! The `BloomFilter` gRPC service: fingerprints of confirmed spam, kept in a fastbloom filter
//! in memory and made durable and shared through an append-only insert log in the store
//! (Redis in production).
//!
//! Every replica replays the log on start and catches up with entries appended by others
//! before each request, so all replicas return the same results and a restarted one still contains every
//! fingerprint inserted before. Checks never produce false negatives for logged entries;
//! false positives occur at about the configured rate until the filter contains more than its
//! expected number of items.
//!
//! Ham overrides win over the filter. A Bloom filter cannot remove an entry, so the fingerprints
//! of a message a user corrected to ham go into an exact set in the store, and `Check` never
//! reports them as matches. The set is read only for fingerprints the filter matched, so checks
//! of clean mail cost no extra store round trip.
//!
//! Health follows Redis: a probe pings the store every two seconds and flips the gRPC health
//! status and the `redis` readiness check to NOT_SERVING while it does not answer.
//!
//! NOTE: the log grows by one entry per inserted fingerprint and is replayed in full at
//! start; there is no snapshot of the bit array yet, so start-up time grows with the log.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fastbloom::AtomicBloomFilter;
use spamflow_proto::v1 as pb;
use spamflow_proto::v1::bloom_filter_server::{BloomFilter, BloomFilterServer};
use spamflow_runtime::grpc::{self, ServerArgs};
use spamflow_runtime::http::Readiness;
use spamflow_runtime::store::{RedisArgs, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::Instrument as _;

/// Default gRPC address.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50052";
/// Default address of the HTTP port for /metrics and /healthz.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9404";
/// Readiness check: the store responds to a ping.
pub const CHECK_REDIS: &str = "redis";
/// Time between store health probes.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Maximum wait for one probe. A store slower than this counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Fixed seed, so every replica hashes alike and stats are reproducible.
const HASH_SEED: u128 = 0x5350_414d_464c_4f57_424c_4f4f_4d31;
/// Maximum length of a fingerprint value, in characters; a hex sha256 is 64.
const MAX_VALUE_CHARS: usize = 128;
/// Maximum number of fingerprints in one request.
const MAX_FINGERPRINTS: usize = 1024;

/// Configuration of the bloom-filter service.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bloom-filter", version, about = "gRPC BloomFilter service")]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "SPAMFLOW_LISTEN_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// Address of the HTTP port serving /metrics and /healthz.
    #[arg(long, env = "SPAMFLOW_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// Number of fingerprints the filter is sized for, from 1 to 100,000,000. The filter
    /// takes about -n·ln(p)/ln(2)² bits: 1.8 MB for the defaults, 180 MB for 100,000,000 items
    /// at 0.001 and 360 MB at 0.000001.
    #[arg(
        long,
        env = "SPAMFLOW_BLOOM_EXPECTED_ITEMS",
        default_value_t = 1_000_000,
        value_parser = parse_expected_items
    )]
    pub expected_items: usize,
    /// Target false-positive rate at the expected number of items, from 0.000001 to 0.5.
    /// Each halving of the rate adds about 1.44 bits per item.
    #[arg(
        long,
        env = "SPAMFLOW_BLOOM_FALSE_POSITIVE_RATE",
        default_value_t = 0.001,
        value_parser = parse_false_positive_rate
    )]
    pub false_positive_rate: f64,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Maximum `--expected-items`, so the filter's bits fit in memory: 100,000,000 items take
/// about 360 MB at the smallest rate.
pub const MAX_EXPECTED_ITEMS: usize = 100_000_000;
/// Minimum `--false-positive-rate`. Lower rates cost memory and hashes per check (20 here)
/// for no visible gain.
pub const MIN_FALSE_POSITIVE_RATE: f64 = 0.000_001;
/// Maximum `--false-positive-rate`. Above it most fingerprints never inserted would be
/// reported as seen.
pub const MAX_FALSE_POSITIVE_RATE: f64 = 0.5;

/// Parses `--expected-items` for clap.
///
/// # Errors
///
/// Returns a message when the text is not a whole number from 1 to [`MAX_EXPECTED_ITEMS`].
pub fn parse_expected_items(text: &str) -> Result<usize, String> {
    spamflow_runtime::cli::whole_number_in(1, MAX_EXPECTED_ITEMS)(text)
        .map_err(|error| format!("{error}, because the filter's memory grows with the item count"))
}

/// Parses `--false-positive-rate` for clap.
///
/// # Errors
///
/// Returns a message when the text is not a number from [`MIN_FALSE_POSITIVE_RATE`] to
/// [`MAX_FALSE_POSITIVE_RATE`].
pub fn parse_false_positive_rate(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number; pass a rate such as 0.001"))?;
    if (MIN_FALSE_POSITIVE_RATE..=MAX_FALSE_POSITIVE_RATE).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{text:?} is outside [0.000001, 0.5]: lower rates cost memory and hashes for no \
             gain, and higher ones report most new fingerprints as seen; pass a rate such as \
             0.001"
        ))
    }
}

/// The filter and how far into the store's insert log it has read.
pub struct Filter {
    bloom: AtomicBloomFilter,
    store: Store,
    /// Next insert-log position to read.
    position: AtomicU64,
    /// Serializes catch-up reads so two requests do not apply the same entries twice.
    sync_lock: Mutex<()>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("bits", &self.bloom.num_bits())
            .field("position", &self.position.load(Ordering::Relaxed))
            .finish()
    }
}

impl Filter {
    /// Creates an empty filter sized for `expected_items` at `false_positive_rate`, then
    /// replays the store's insert log.
    ///
    /// # Errors
    ///
    /// Fails on a rate or item count outside the flags' ranges, or when the store cannot be
    /// read.
    pub async fn open(
        store: Store,
        expected_items: usize,
        false_positive_rate: f64,
    ) -> anyhow::Result<Arc<Self>> {
        // The flags' parsers check these too. This guards callers that build a filter
        // directly, since fastbloom panics on every check of a filter sized to 0 bits.
        if !(MIN_FALSE_POSITIVE_RATE..=MAX_FALSE_POSITIVE_RATE).contains(&false_positive_rate) {
            anyhow::bail!(
                "false-positive rate {false_positive_rate} is outside [0.000001, 0.5]; set \
                 --false-positive-rate (SPAMFLOW_BLOOM_FALSE_POSITIVE_RATE) to a value such \
                 as 0.001"
            );
        }
        if !(1..=MAX_EXPECTED_ITEMS).contains(&expected_items) {
            anyhow::bail!(
                "expected items {expected_items} is outside 1 to {MAX_EXPECTED_ITEMS}; set \
                 --expected-items (SPAMFLOW_BLOOM_EXPECTED_ITEMS)"
            );
        }
        let bloom = AtomicBloomFilter::with_false_pos(false_positive_rate)
            .seed(&HASH_SEED)
            .expected_items(expected_items);
        let filter = Arc::new(Self {
            bloom,
            store,
            position: AtomicU64::new(0),
            sync_lock: Mutex::new(()),
        });
        filter.sync().await?;
        tracing::info!(
            items = filter.position.load(Ordering::Relaxed),
            bits = filter.bloom.num_bits(),
            hashes = filter.bloom.num_hashes(),
            "Bloom filter loaded from the insert log"
        );
        Ok(filter)
    }

    /// Applies insert-log entries appended since the last sync.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot be read.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let _guard = self.sync_lock.lock().await;
        loop {
            let from = self.position.load(Ordering::Acquire);
            let entries = self.store.bloom_read(from).await?;
            if entries.is_empty() {
                return Ok(());
            }
            for entry in &entries {
                self.bloom.insert(entry.as_str());
            }
            self.position
                .store(from + entries.len() as u64, Ordering::Release);
        }
    }

    /// Returns which keys the filter probably contains.
    pub fn contains(&self, key: &str) -> bool {
        self.bloom.contains(key)
    }

    /// Logs keys durably, then adds them. Returns how many were not in the filter before.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot be written; nothing is added then.
    pub async fn insert(&self, keys: &[String]) -> Result<u32, StoreError> {
        let new = keys
            .iter()
            .filter(|key| !self.bloom.contains(key.as_str()))
            .count() as u32;
        self.store.bloom_append(keys).await?;
        self.sync().await?;
        Ok(new)
    }

    /// Splits `keys`, all of which the filter contains, into those without a ham override and
    /// those with one, returned as two lists of indices into `keys`.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot be read.
    pub async fn split_overridden(
        &self,
        keys: &[String],
    ) -> Result<(Vec<usize>, Vec<usize>), StoreError> {
        let overridden = self.store.ham_overridden(keys).await?;
        let (hidden, kept): (Vec<usize>, Vec<usize>) =
            (0..keys.len()).partition(|&index| overridden.get(index).copied().unwrap_or(false));
        Ok((kept, hidden))
    }

    /// Adds ham overrides for `keys` and returns how many are new.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot be written.
    pub async fn add_ham_overrides(&self, keys: &[String]) -> Result<u64, StoreError> {
        self.store.ham_overrides_add(keys).await
    }

    /// Removes ham overrides for `keys` and returns how many existed.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the store cannot be written.
    pub async fn remove_ham_overrides(&self, keys: &[String]) -> Result<u64, StoreError> {
        self.store.ham_overrides_remove(keys).await
    }

    /// Copies the filter's size and fill into the Bloom gauges of the metrics registry.
    pub fn update_metrics(&self) {
        let stats = self.stats();
        let metrics = spamflow_runtime::metrics::global();
        metrics.bloom_fill_ratio.set(stats.fill_ratio);
        metrics
            .bloom_false_positive_rate
            .set(stats.estimated_false_positive_rate);
        metrics.bloom_items.set(stats.items as i64);
    }

    /// Size and fill of the filter.
    pub fn stats(&self) -> pb::BloomStats {
        let bits = self.bloom.num_bits() as u64;
        let set: u64 = self
            .bloom
            .iter()
            .map(|block| u64::from(block.count_ones()))
            .sum();
        let fill_ratio = if bits == 0 {
            0.0
        } else {
            set as f64 / bits as f64
        };
        let hashes = self.bloom.num_hashes();
        pb::BloomStats {
            bits,
            hashes,
            items: self.position.load(Ordering::Relaxed),
            fill_ratio,
            // A lookup of an absent key is a false positive when all its bits are set.
            estimated_false_positive_rate: fill_ratio.powi(hashes as i32),
        }
    }
}

/// The gRPC service over a shared [`Filter`].
#[derive(Debug, Clone)]
pub struct BloomService {
    filter: Arc<Filter>,
}

impl BloomService {
    pub fn new(filter: Arc<Filter>) -> Self {
        Self { filter }
    }
}

/// Validates request fingerprints and returns their keys.
fn fingerprint_keys(fingerprints: &[pb::Fingerprint]) -> Result<Vec<String>, Status> {
    if fingerprints.len() > MAX_FINGERPRINTS {
        return Err(Status::invalid_argument(format!(
            "fingerprints holds {} entries, above the limit of {MAX_FINGERPRINTS}; split the request",
            fingerprints.len()
        )));
    }
    fingerprints
        .iter()
        .enumerate()
        .map(|(index, fingerprint)| {
            let kind = match pb::FingerprintKind::try_from(fingerprint.kind) {
                Ok(pb::FingerprintKind::BodyDigest) => {
                    spamflow_core::fingerprint::FingerprintKind::BodyDigest
                }
                Ok(pb::FingerprintKind::NearDuplicate) => {
                    spamflow_core::fingerprint::FingerprintKind::NearDuplicate
                }
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "fingerprints[{index}].kind {} is not BODY_DIGEST or NEAR_DUPLICATE",
                        fingerprint.kind
                    )));
                }
            };
            let value = fingerprint.value.trim();
            if value.is_empty() || value.len() > MAX_VALUE_CHARS {
                return Err(Status::invalid_argument(format!(
                    "fingerprints[{index}].value must be 1 to {MAX_VALUE_CHARS} characters, got {}",
                    value.len()
                )));
            }
            if let Some(rule) = value_rule(kind, value) {
                return Err(Status::invalid_argument(format!(
                    "fingerprints[{index}].value {value:?} is not a fingerprint of its kind: {rule}"
                )));
            }
            // Hex is case-blind, so `AB` and `ab` are one fingerprint.
            Ok(spamflow_core::fingerprint::Fingerprint {
                kind,
                value: value.to_ascii_lowercase(),
            }
            .bloom_key())
        })
        .collect()
}

/// Returns the rule that `value` breaks for its kind, or `None` when it has the form that
/// `spamflow_core::fingerprint` writes. A body digest is hex digits (a sha256 has 64). A
/// near-duplicate band is its number, `-` and hex digits (`3-00ff12ab34cd56ef`).
fn value_rule(
    kind: spamflow_core::fingerprint::FingerprintKind,
    value: &str,
) -> Option<&'static str> {
    let is_hex = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit());
    match kind {
        spamflow_core::fingerprint::FingerprintKind::BodyDigest => (!(is_hex(value)
            && value.len() <= 64))
            .then_some("a BODY_DIGEST is up to 64 hex digits, the sha256 of the normalized body"),
        spamflow_core::fingerprint::FingerprintKind::NearDuplicate => {
            let well_formed = value.split_once('-').is_some_and(|(band, hash)| {
                !band.is_empty() && band.bytes().all(|b| b.is_ascii_digit()) && is_hex(hash)
            });
            (!well_formed).then_some(
                "a NEAR_DUPLICATE is a band number, `-` and hex digits, such as 3-00ff12ab34cd56ef",
            )
        }
    }
}

/// Validates the fingerprints of a ham override request, which must not be empty.
fn override_keys(fingerprints: &[pb::Fingerprint]) -> Result<Vec<String>, Status> {
    let keys = fingerprint_keys(fingerprints)?;
    if keys.is_empty() {
        return Err(Status::invalid_argument(
            "fingerprints is empty: send at least one",
        ));
    }
    Ok(keys)
}

/// Maps a store failure to `UNAVAILABLE`, which clients retry, without leaking details.
fn store_status(error: &StoreError) -> Status {
    tracing::warn!(%error, "Bloom filter store failed");
    Status::unavailable("the Bloom filter store is unavailable; retry with backoff")
}

#[tonic::async_trait]
impl BloomFilter for BloomService {
    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        let fingerprints = request.into_inner().fingerprints;
        let span = tracing::info_span!(
            "check_fingerprints",
            fingerprints = fingerprints.len(),
            matches = tracing::field::Empty,
            overridden = tracing::field::Empty,
        );
        async {
            // Like Insert: a call without fingerprints is a client's mistake.
            let keys = override_keys(&fingerprints)?;
            self.filter.sync().await.map_err(|e| store_status(&e))?;
            let (found, found_keys): (Vec<&pb::Fingerprint>, Vec<String>) = fingerprints
                .iter()
                .zip(keys)
                .filter(|(_, key)| self.filter.contains(key))
                .unzip();
            let (kept, hidden) = if found_keys.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                self.filter
                    .split_overridden(&found_keys)
                    .await
                    .map_err(|e| store_status(&e))?
            };
            let matches: Vec<pb::Fingerprint> =
                kept.iter().map(|&index| found[index].clone()).collect();
            let overridden: Vec<pb::Fingerprint> =
                hidden.iter().map(|&index| found[index].clone()).collect();
            let span = tracing::Span::current();
            span.record("matches", matches.len());
            span.record("overridden", overridden.len());
            Ok(Response::new(pb::CheckResponse {
                matches,
                overridden,
            }))
        }
        .instrument(span)
        .await
    }

    async fn insert(
        &self,
        request: Request<pb::InsertRequest>,
    ) -> Result<Response<pb::InsertResponse>, Status> {
        let keys = fingerprint_keys(&request.into_inner().fingerprints)?;
        if keys.is_empty() {
            return Err(Status::invalid_argument(
                "fingerprints is empty: send at least one",
            ));
        }
        let span = tracing::info_span!("insert_fingerprints", fingerprints = keys.len());
        let inserted = self
            .filter
            .insert(&keys)
            .instrument(span)
            .await
            .map_err(|e| store_status(&e))?;
        Ok(Response::new(pb::InsertResponse { inserted }))
    }

    async fn add_ham_overrides(
        &self,
        request: Request<pb::HamOverridesRequest>,
    ) -> Result<Response<pb::HamOverridesResponse>, Status> {
        let keys = override_keys(&request.into_inner().fingerprints)?;
        let span = tracing::info_span!("add_ham_overrides", fingerprints = keys.len());
        let changed = self
            .filter
            .add_ham_overrides(&keys)
            .instrument(span)
            .await
            .map_err(|e| store_status(&e))?;
        Ok(Response::new(pb::HamOverridesResponse {
            changed: changed as u32,
        }))
    }

    async fn remove_ham_overrides(
        &self,
        request: Request<pb::HamOverridesRequest>,
    ) -> Result<Response<pb::HamOverridesResponse>, Status> {
        let keys = override_keys(&request.into_inner().fingerprints)?;
        let span = tracing::info_span!("remove_ham_overrides", fingerprints = keys.len());
        let changed = self
            .filter
            .remove_ham_overrides(&keys)
            .instrument(span)
            .await
            .map_err(|e| store_status(&e))?;
        Ok(Response::new(pb::HamOverridesResponse {
            changed: changed as u32,
        }))
    }

    async fn get_stats(
        &self,
        _request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::BloomStats>, Status> {
        self.filter.sync().await.map_err(|e| store_status(&e))?;
        Ok(Response::new(self.filter.stats()))
    }
}

/// Serves the filter on `listener` until `shutdown` completes.
///
/// # Errors
///
/// Fails when the gRPC server cannot start or its transport fails.
pub async fn run(
    filter: Arc<Filter>,
    server: &ServerArgs,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_readiness(filter, server, listener, Readiness::default(), shutdown).await
}

/// Serves the filter like [`run`], and keeps the gRPC health status and the [`CHECK_REDIS`]
/// check of `readiness` in step with the store.
///
/// # Errors
///
/// Fails when the gRPC server cannot start or its transport fails.
pub async fn run_with_readiness(
    filter: Arc<Filter>,
    server: &ServerArgs,
    listener: TcpListener,
    readiness: Readiness,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (health, router) = grpc::standard_router(server)?;
    // The first probe runs before serving, so health is known from the first request on.
    let reachable = report_store(&filter, &health, &readiness, None).await;
    let probe = tokio::spawn(probe_store(
        filter.clone(),
        health,
        readiness,
        Some(reachable),
    ));
    let service = BloomFilterServer::new(BloomService::new(filter));
    let result = grpc::serve(router.add_service(service), listener, shutdown).await;
    probe.abort();
    result?;
    Ok(())
}

/// Pings the store every [`PROBE_INTERVAL`] and reports each change in its reachability to
/// gRPC health (the filter service and the whole server) and to `readiness`. `last` is the
/// reachability reported before.
async fn probe_store(
    filter: Arc<Filter>,
    health: HealthReporter,
    readiness: Readiness,
    mut last: Option<bool>,
) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        last = Some(report_store(&filter, &health, &readiness, last).await);
    }
}

/// Pings the store once and reports a change from `last`; returns the reachability.
async fn report_store(
    filter: &Filter,
    health: &HealthReporter,
    readiness: &Readiness,
    last: Option<bool>,
) -> bool {
    let reachable = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, filter.store.ping()).await,
        Ok(Ok(()))
    );
    if last != Some(reachable) {
        let status = if reachable {
            tracing::info!("Bloom filter store is reachable; serving");
            ServingStatus::Serving
        } else {
            tracing::warn!("Bloom filter store is unreachable; health is NOT_SERVING");
            ServingStatus::NotServing
        };
        health
            .set_service_status(
                <BloomFilterServer<BloomService> as tonic::server::NamedService>::NAME,
                status,
            )
            .await;
        health.set_service_status("", status).await;
        readiness.set(CHECK_REDIS, reachable);
    }
    reachable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(value: &str) -> pb::Fingerprint {
        pb::Fingerprint {
            kind: pb::FingerprintKind::BodyDigest as i32,
            value: value.to_owned(),
        }
    }

    #[tokio::test]
    async fn inserted_keys_are_found_after_replay() {
        let store = Store::memory();
        let filter = Filter::open(store.clone(), 1000, 0.01).await.unwrap();
        assert_eq!(
            filter
                .insert(&["body:aa".into(), "body:bb".into()])
                .await
                .unwrap(),
            2
        );
        assert_eq!(filter.insert(&["body:aa".into()]).await.unwrap(), 0);

        let reopened = Filter::open(store, 1000, 0.01).await.unwrap();
        assert!(reopened.contains("body:aa"));
        assert!(reopened.contains("body:bb"));
        assert!(!reopened.contains("body:cc"));
        assert_eq!(reopened.stats().items, 3);
    }

    #[tokio::test]
    async fn ham_override_hides_match_until_removed() {
        let filter = Filter::open(Store::memory(), 1000, 0.01).await.unwrap();
        let service = BloomService::new(filter.clone());
        filter
            .insert(&["body:aa".into(), "body:bb".into()])
            .await
            .unwrap();
        let check = || async {
            service
                .check(Request::new(pb::CheckRequest {
                    fingerprints: vec![digest("aa"), digest("bb")],
                }))
                .await
                .unwrap()
                .into_inner()
        };
        assert_eq!(check().await.matches.len(), 2);

        let added = service
            .add_ham_overrides(Request::new(pb::HamOverridesRequest {
                fingerprints: vec![digest("aa")],
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(added.changed, 1);
        let response = check().await;
        assert_eq!(response.matches, vec![digest("bb")]);
        assert_eq!(response.overridden, vec![digest("aa")]);

        let removed = service
            .remove_ham_overrides(Request::new(pb::HamOverridesRequest {
                fingerprints: vec![digest("aa")],
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(removed.changed, 1);
        let response = check().await;
        assert_eq!(response.matches.len(), 2);
        assert!(response.overridden.is_empty());
    }

    #[tokio::test]
    async fn empty_ham_override_is_invalid() {
        let service = BloomService::new(Filter::open(Store::memory(), 10, 0.01).await.unwrap());
        let error = service
            .add_ham_overrides(Request::new(pb::HamOverridesRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn replicas_see_each_others_inserts() {
        let store = Store::memory();
        let first = Filter::open(store.clone(), 1000, 0.01).await.unwrap();
        let second = Filter::open(store, 1000, 0.01).await.unwrap();
        first.insert(&["near:1-ab".into()]).await.unwrap();
        second.sync().await.unwrap();
        assert!(second.contains("near:1-ab"));
    }

    #[test]
    fn rejects_unspecified_kind_and_empty_value() {
        let error = fingerprint_keys(&[pb::Fingerprint {
            kind: 0,
            value: "x".into(),
        }])
        .unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("fingerprints[0].kind"),
            "{}",
            error.message()
        );
        let error = fingerprint_keys(&[digest("  ")]).unwrap_err();
        assert!(
            error.message().contains("fingerprints[0].value"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn values_must_have_the_form_of_their_kind() {
        let near = |value: &str| pb::Fingerprint {
            kind: pb::FingerprintKind::NearDuplicate as i32,
            value: value.to_owned(),
        };
        let bad = [
            digest("xyz"),
            digest(&"a".repeat(65)),
            near("ab"),
            near("x-ab"),
            near("3-"),
        ];
        for (index, fingerprint) in bad.iter().enumerate() {
            let error = fingerprint_keys(std::slice::from_ref(fingerprint)).unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument, "case {index}");
            assert!(
                error.message().contains("is not a fingerprint of its kind"),
                "case {index}: {}",
                error.message()
            );
        }
        let keys = fingerprint_keys(&[digest("AbC0"), near("3-00FF")]).unwrap();
        assert_eq!(keys, ["body:abc0", "near:3-00ff"]);
    }

    #[tokio::test]
    async fn check_without_fingerprints_is_invalid() {
        let service = BloomService::new(Filter::open(Store::memory(), 10, 0.01).await.unwrap());
        let error = service
            .check(Request::new(pb::CheckRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("fingerprints is empty"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn expected_items_range() {
        assert_eq!(parse_expected_items("1"), Ok(1));
        assert_eq!(parse_expected_items("100000000"), Ok(MAX_EXPECTED_ITEMS));
        for text in [
            "0",
            "-1",
            "100000001",
            "1000000000000",
            "18446744073709551615",
            "1e6",
        ] {
            let error = parse_expected_items(text).unwrap_err();
            assert!(error.contains("from 1 to 100000000"), "{text}: {error}");
        }
    }

    #[test]
    fn false_positive_rate_range() {
        assert_eq!(parse_false_positive_rate("0.000001"), Ok(0.000_001));
        assert_eq!(parse_false_positive_rate("0.5"), Ok(0.5));
        for text in ["1e-300", "0.0000009", "0", "0.6", "1", "NaN", "inf", "-0.1"] {
            let error = parse_false_positive_rate(text).unwrap_err();
            assert!(error.contains("0.001"), "{text}: {error}");
        }
    }

    #[test]
    fn largest_filter_size_matches_help() {
        // fastbloom 0.17 sizes the filter with -n·ln(p)/ln(2)² bits, rounded up to whole bytes.
        let bytes = |items, rate| fastbloom::optimal_size(items, rate) / 8;
        assert_eq!(bytes(1_000_000, 0.001) / 100_000, 17);
        assert_eq!(bytes(MAX_EXPECTED_ITEMS, 0.001) / 10_000_000, 17);
        assert_eq!(
            bytes(MAX_EXPECTED_ITEMS, MIN_FALSE_POSITIVE_RATE) / 10_000_000,
            35
        );
    }

    #[tokio::test]
    async fn rejects_invalid_false_positive_rate() {
        let error = Filter::open(Store::memory(), 10, 1.5)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SPAMFLOW_BLOOM_FALSE_POSITIVE_RATE"),
            "{error}"
        );
    }
}
