//! Pure spam-detection logic for spamflow, with no I/O.
//!
//! The pipeline is a chain of functions over data:
//! raw RFC 5322 bytes → [`email::Email`] → [`tokens`] → [`features::FeatureVector`] →
//! [`model::Model::score`] → [`verdict::decide`]. Fingerprints for the Bloom filter of known
//! spam come from [`fingerprint`]. Services wrap these functions with gRPC, Kafka and Redis;
//! nothing here blocks, allocates without bound on hostile input, or panics on any input.

#![forbid(unsafe_code)]

pub mod calibration;
pub mod email;
pub mod features;
pub mod fingerprint;
pub mod html;
pub mod metrics;
pub mod model;
mod parse_cost;
pub mod refit;
pub mod split;
pub mod tokens;
pub mod verdict;

pub use email::{Email, EmailError, Limits};
pub use model::{Explanation, Label, Model, ModelError, Score};
