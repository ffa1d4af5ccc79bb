//! The at-least-once consume loop shared by the Kafka services, the dead-letter producer, and
//! retry with backoff.
//!
//! Records are handled concurrently but completed in order, so an offset is stored only when
//! its record and every record before it on the partition are done. A stored offset is
//! committed in the background by librdkafka and once more, synchronously, at shutdown. A
//! crash therefore redelivers at most the records after the last commit, and handlers must be
//! idempotent by message id.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio::sync::watch;

use crate::kafka::{GroupConsumer, HEADER_DLQ_ORIGIN, HEADER_DLQ_REASON};

/// A handler's outcome for one record.
#[derive(Debug)]
pub enum Handled {
    /// The work is durably handed on; the offset may be stored.
    Done,
    /// Shutdown interrupted the work; the record must be delivered again.
    Interrupted,
}

/// A record's topic, partition and offset.
struct Position {
    topic: String,
    partition: i32,
    offset: i64,
}

/// A shutdown flag that retry loops can wait on.
#[derive(Debug, Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// Creates the flag and the sender that raises it.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (sender, receiver) = watch::channel(false);
        (sender, Self(receiver))
    }

    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once the flag is raised or its sender is gone.
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which also means stop.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Exponential backoff with full jitter, between `initial` and `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// Returns the delay before retry number `attempt` (0-based): a random duration up to
    /// `initial * 2^attempt`, capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        let nanos = ceiling.as_nanos() as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random_u64() % nanos + 1)
    }
}

/// Returns a cheap random number from the standard library's randomly seeded hasher, enough for
/// jitter.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
}

/// Sleeps for the backoff delay, or returns false at once if shutdown begins.
pub async fn sleep_or_stop(backoff: &Backoff, attempt: u32, stopping: &mut Stopping) -> bool {
    tokio::select! {
        () = tokio::time::sleep(backoff.delay(attempt)) => true,
        () = stopping.wait() => false,
    }
}

/// Consumes the subscribed topics until `stopping` is raised, handling up to `concurrency`
/// records at once and storing each offset in order once its handler is [`Handled::Done`].
/// After `stopping` is raised, in-flight handlers finish (they see the same flag and give up
/// retries) and stored offsets are committed.
///
/// # Errors
///
/// Returns the Kafka error that ended consumption, after committing what was done.
pub async fn consume_in_order<F, Fut>(
    consumer: &GroupConsumer,
    concurrency: usize,
    stopping: Stopping,
    handler: F,
) -> anyhow::Result<()>
where
    F: Fn(OwnedMessage) -> Fut,
    Fut: Future<Output = Handled>,
{
    let mut stop_signal = stopping;
    let mut stopped = false;
    let mut in_flight = FuturesOrdered::new();
    let mut failure = None;
    loop {
        if stopped && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            // Finish work before taking more, so memory stays bounded by `concurrency`.
            biased;
            Some((Position { topic, partition, offset }, handled)) = in_flight.next(), if !in_flight.is_empty() => {
                match handled {
                    Handled::Done => {
                        if let Err(error) = consumer.store_offset(&topic, partition, offset) {
                            tracing::warn!(%error, topic, partition, offset, "Failed to store offset; the record may be redelivered");
                        }
                    }
                    Handled::Interrupted => {
                        tracing::info!(topic, partition, offset, "Stopping before a record finished; it will be redelivered");
                        break;
                    }
                }
            }
            () = stop_signal.wait(), if !stopped => {
                stopped = true;
            }
            received = consumer.recv(), if !stopped && in_flight.len() < concurrency.max(1) => {
                match received {
                    Ok(message) => {
                        crate::metrics::global().consumed(message.topic());
                        let message = message.detach();
                        let position = Position {
                            topic: message.topic().to_owned(),
                            partition: message.partition(),
                            offset: message.offset(),
                        };
                        let work = handler(message);
                        in_flight.push_back(async move { (position, work.await) });
                    }
                    Err(error) => {
                        tracing::error!(%error, "Kafka consumer failed");
                        failure = Some(error);
                        break;
                    }
                }
            }
        }
    }
    drop(in_flight);

    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!("Committed stored offsets"),
        // Nothing stored since the last commit is not an error worth reporting.
        Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => {}
        Err(error) => {
            tracing::warn!(%error, "Failed to commit offsets at shutdown; the last records may be redelivered")
        }
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

/// Sends a record that cannot be processed to the dead-letter topic with its reason, origin
/// and the current trace context in headers, keeping its key and value, retrying until Kafka
/// acknowledges it or shutdown begins.
pub async fn dead_letter(
    producer: &FutureProducer,
    dlq_topic: &str,
    message: &OwnedMessage,
    reason: &str,
    stopping: &mut Stopping,
) -> Handled {
    let origin = format!(
        "{}/{}/{}",
        message.topic(),
        message.partition(),
        message.offset()
    );
    tracing::warn!(origin, reason, "Sending record to the dead-letter topic");
    let backoff = Backoff::default();
    let mut attempt = 0;
    loop {
        let headers = crate::propagation::inject_kafka(
            OwnedHeaders::new()
                .insert(Header {
                    key: HEADER_DLQ_REASON,
                    value: Some(reason),
                })
                .insert(Header {
                    key: HEADER_DLQ_ORIGIN,
                    value: Some(&origin),
                }),
        );
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq_topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        match producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
        {
            Ok(_) => {
                let metrics = crate::metrics::global();
                metrics.produced(dlq_topic);
                metrics
                    .dead_letters
                    .get_or_create(&crate::metrics::TopicLabels {
                        topic: message.topic().to_owned(),
                    })
                    .inc();
                return Handled::Done;
            }
            Err((error, _)) => {
                tracing::warn!(%error, origin, attempt, "Failed to write to the dead-letter topic; retrying");
                if !sleep_or_stop(&backoff, attempt, stopping).await {
                    return Handled::Interrupted;
                }
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 0..20 {
            let delay = backoff.delay(attempt);
            assert!(delay <= Duration::from_secs(1), "{delay:?}");
            assert!(delay > Duration::ZERO);
        }
        assert!(backoff.delay(0) <= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn stopping_wakes_waiters() {
        let (sender, mut stopping) = Stopping::new();
        assert!(!stopping.is_stopping());
        sender.send(true).unwrap();
        stopping.wait().await;
        assert!(stopping.is_stopping());
    }
}
