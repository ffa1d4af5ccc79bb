//! Async locks by key, so two deliveries of the same verdict that the consume loop handles at
//! once apply its action one after the other. The records of one message share a key, so Kafka
//! puts them on one partition, which one consumer owns. This in-process lock is therefore
//! enough to order them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

type Locks = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// A set of async locks created on demand, one per key, and dropped when no task holds or
/// waits for them.
#[derive(Debug, Clone, Default)]
pub struct KeyedLocks {
    locks: Locks,
}

/// Holds the lock of one key until dropped.
#[derive(Debug)]
pub struct KeyGuard {
    locks: Locks,
    key: String,
    mutex: Arc<tokio::sync::Mutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits until no other task holds the lock of `key`, then takes it.
    pub async fn lock(&self, key: &str) -> KeyGuard {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(key.to_owned()).or_default().clone()
        };
        let guard = mutex.clone().lock_owned().await;
        KeyGuard {
            locks: self.locks.clone(),
            key: key.to_owned(),
            mutex,
            guard: Some(guard),
        }
    }

    /// Returns how many keys have a lock.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // The map and this guard hold the only references unless another task waits.
        if Arc::strong_count(&self.mutex) == 2 {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_key_waits_and_lock_is_dropped() {
        let locks = KeyedLocks::default();
        let first = locks.lock("a").await;
        let other_key = tokio::time::timeout(std::time::Duration::from_secs(5), locks.lock("b"))
            .await
            .expect("another key does not wait");
        drop(other_key);

        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.lock("a").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert_eq!(locks.len(), 1);

        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(locks.len(), 1);
        drop(second);
        assert_eq!(locks.len(), 0);
    }
}
