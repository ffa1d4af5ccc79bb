//! The `SpamDetector` gRPC service: classifies raw RFC 5322 messages or plain text with the
//! logistic-regression model, and reports which features drove each score.
//!
//! The model sits behind a lock so a new version can be swapped in without a restart; a
//! request always scores with one consistent model. With Kafka configured, [`updates`] follows
//! the models topic and swaps in each version the trainer announces. Each scored message gets
//! a `classify_message` span, and `spamflow_model_info` names the version served.

#![forbid(unsafe_code)]

pub mod updates;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use spamflow_core::{Email, EmailError, Label, Limits, Model, ModelError};
use spamflow_proto::v1 as pb;
use spamflow_proto::v1::spam_detector_server::{SpamDetector, SpamDetectorServer};
use spamflow_runtime::grpc::{self, ServerArgs};
use spamflow_runtime::kafka::KafkaArgs;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// The model shipped with spamflow, trained on the TRAIN split of the SpamAssassin public
/// corpus by `spamctl train`.
pub const DEFAULT_MODEL_JSON: &str = include_str!("../../../models/default.json");

/// Default gRPC address.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// Default address of the HTTP port for /metrics and /healthz.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9403";
/// Readiness check: a model is loaded.
pub const CHECK_MODEL: &str = "model";

/// Loads the model shipped in `models/default.json`.
///
/// # Errors
///
/// Returns [`ModelError`] if the embedded file is invalid, which a test guards against.
pub fn default_model() -> Result<Model, ModelError> {
    Model::from_json(DEFAULT_MODEL_JSON)
}

/// Configuration of the spam-detector service.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "spam-detector", version, about = "gRPC SpamDetector service")]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "SPAMFLOW_LISTEN_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// Address of the HTTP port serving /metrics and /healthz.
    #[arg(long, env = "SPAMFLOW_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// Model file to load; the shipped default model when absent.
    #[arg(long, env = "SPAMFLOW_MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// Largest message accepted, in bytes.
    #[arg(
        long,
        env = "SPAMFLOW_MAX_MESSAGE_BYTES",
        default_value_t = Limits::DEFAULT_MAX_MESSAGE_BYTES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub max_message_bytes: usize,
    /// Most messages accepted in one ClassifyBatch call.
    #[arg(
        long,
        env = "SPAMFLOW_MAX_BATCH",
        default_value_t = 100,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub max_batch: usize,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Follow the models topic and serve each announced version: `auto` follows when Kafka
    /// brokers are set (--kafka-brokers or SPAMFLOW_KAFKA_BROKERS), `on` always, `off` never.
    #[arg(
        long,
        env = "SPAMFLOW_MODEL_UPDATES",
        value_enum,
        default_value = "auto"
    )]
    pub model_updates: updates::ModelUpdates,
    /// Name of the model to follow; announcements keyed by another name are ignored.
    #[arg(
        long,
        env = "SPAMFLOW_MODEL_NAME",
        default_value = updates::DEFAULT_MODEL_NAME,
        value_parser = spamflow_runtime::cli::parse_non_empty
    )]
    pub model_name: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

impl Config {
    /// Loads the configured model.
    ///
    /// # Errors
    ///
    /// Fails naming the file when it cannot be read or is not a valid model.
    pub fn load_model(&self) -> anyhow::Result<Model> {
        match &self.model_path {
            None => default_model().context("failed to load the shipped default model"),
            Some(path) => load_model_file(path, "--model-path (SPAMFLOW_MODEL_PATH)"),
        }
    }
}

/// The largest model file read. The shipped model, with 8,000 tokens, is about 0.2 MB, so this
/// leaves room for vocabularies far larger than any `spamctl train` setting makes.
pub const MAX_MODEL_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Loads the model file at `path`, which the flag `flag` named. A file that cannot be read or
/// is not a valid model is a usage error, so the binaries exit with status 64 and name the flag.
///
/// # Errors
///
/// Returns a [`spamflow_runtime::cli::UsageError`] naming the flag, the file and the reason.
pub fn load_model_file(path: &std::path::Path, flag: &str) -> anyhow::Result<Model> {
    use std::io::Read as _;
    let read = || -> anyhow::Result<Model> {
        let mut json = String::new();
        std::fs::File::open(path)?
            .take(MAX_MODEL_FILE_BYTES + 1)
            .read_to_string(&mut json)?;
        if json.len() as u64 > MAX_MODEL_FILE_BYTES {
            anyhow::bail!("the file is larger than {MAX_MODEL_FILE_BYTES} bytes");
        }
        Ok(Model::from_json(&json)?)
    };
    read().map_err(|error| {
        spamflow_runtime::cli::UsageError(format!(
            "{flag}: failed to load model file {}: {}; pass a model file that `spamctl train` \
             wrote, or leave the flag out for the shipped model",
            path.display(),
            spamflow_runtime::cli::error_chain(&error)
        ))
        .into()
    })
}

/// The service implementation.
#[derive(Debug, Clone)]
pub struct Detector {
    model: Arc<RwLock<Arc<Model>>>,
    limits: Limits,
    max_batch: usize,
}

impl Detector {
    pub fn new(model: Model, limits: Limits, max_batch: usize) -> Self {
        spamflow_runtime::metrics::global().set_model_version(model.version());
        Self {
            model: Arc::new(RwLock::new(Arc::new(model))),
            limits,
            max_batch,
        }
    }

    /// Returns the model that serves requests now.
    pub fn model(&self) -> Arc<Model> {
        // Writers only swap an Arc, so a poisoned lock still holds a whole model.
        self.model
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the model; requests in flight finish with the old one.
    pub fn swap_model(&self, model: Model) {
        tracing::info!(
            model_version = model.version(),
            "Serving a new model version"
        );
        spamflow_runtime::metrics::global().set_model_version(model.version());
        *self
            .model
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(model);
    }

    /// Classifies one request. `field` names the request in error messages, for example
    /// `requests[3]` in a batch.
    fn classify_one(
        &self,
        request: pb::ClassifyRequest,
        field: &str,
    ) -> Result<pb::ClassifyResponse, Status> {
        if request.message_id.len() > MAX_MESSAGE_ID_BYTES {
            return Err(Status::invalid_argument(format!(
                "{field}message_id is {} bytes, above the limit of {MAX_MESSAGE_ID_BYTES}: send \
                 the message's own id, such as its Message-ID field, or leave it empty",
                request.message_id.len()
            )));
        }
        let span = tracing::info_span!(
            "classify_message",
            message_id = %request.message_id,
            model_version = tracing::field::Empty,
            label = tracing::field::Empty,
        );
        let _entered = span.enter();
        let email = match request.content {
            None => {
                return Err(Status::invalid_argument(format!(
                    "{field}content is missing: set `raw` to the RFC 5322 bytes or `text` to plain text"
                )));
            }
            Some(pb::classify_request::Content::Raw(raw)) => Email::parse(&raw, self.limits)
                .map_err(|error| email_error_status(&format!("{field}raw"), &error))?,
            Some(pb::classify_request::Content::Text(text)) => {
                Email::from_plain_text(&text, self.limits)
                    .map_err(|error| email_error_status(&format!("{field}text"), &error))?
            }
        };
        let model = self.model();
        let score = model.score(&email);
        span.record("model_version", model.version());
        span.record("label", score.label.as_str());
        tracing::debug!(
            message_id = %request.message_id,
            model_version = model.version(),
            probability = score.probability,
            "Classified message"
        );
        Ok(pb::ClassifyResponse {
            message_id: request.message_id,
            spam_probability: score.probability,
            label: label_to_proto(score.label) as i32,
            model_version: model.version().to_owned(),
            threshold: score.threshold,
            top_features: score
                .top_features
                .into_iter()
                .map(|(feature, contribution)| pb::FeatureContribution {
                    feature,
                    contribution,
                })
                .collect(),
        })
    }
}

/// The maximum length of a request's `message_id`, in bytes. The response, the logs and the
/// trace span repeat it, and a Message-ID field fits in one line of at most 998 characters
/// (RFC 5322).
pub const MAX_MESSAGE_ID_BYTES: usize = 1024;

/// Maps a parse error to `INVALID_ARGUMENT`, naming the field and the rule.
fn email_error_status(field: &str, error: &EmailError) -> Status {
    let hint = match error {
        EmailError::TooLarge { .. } => {
            " (raise --max-message-bytes or SPAMFLOW_MAX_MESSAGE_BYTES on the server)"
        }
        EmailError::Empty => "; send the raw RFC 5322 bytes in `raw` or plain text in `text`",
        EmailError::MalformedHeader { .. }
        | EmailError::NoHeaders
        | EmailError::BinaryHeader { .. } => "; send plain text in the `text` field instead",
        EmailError::TooManyParts { .. }
        | EmailError::TooManyEncodedMessages { .. }
        | EmailError::EncodedMessagesTooLarge { .. }
        | EmailError::RunOnHeaderDecoding { .. }
        | EmailError::EncodedMessagesTooDense { .. }
        | EmailError::TooManyBoundaries { .. }
        | EmailError::BoundaryComparisons { .. }
        | EmailError::EncodedWordsTooLong { .. }
        | EmailError::TooManyContinuations { .. }
        | EmailError::TooManyHeaderFields { .. }
        | EmailError::BlankHeaderLines { .. }
        | EmailError::Unparseable => "",
    };
    Status::invalid_argument(format!("{field}: {error}{hint}"))
}

pub fn label_to_proto(label: Label) -> pb::Label {
    match label {
        Label::Ham => pb::Label::Ham,
        Label::Spam => pb::Label::Spam,
    }
}

#[tonic::async_trait]
impl SpamDetector for Detector {
    async fn classify(
        &self,
        request: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        self.classify_one(request.into_inner(), "")
            .map(Response::new)
    }

    async fn classify_batch(
        &self,
        request: Request<pb::ClassifyBatchRequest>,
    ) -> Result<Response<pb::ClassifyBatchResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.is_empty() {
            return Err(Status::invalid_argument(
                "requests is empty: send at least one message",
            ));
        }
        if requests.len() > self.max_batch {
            return Err(Status::invalid_argument(format!(
                "requests holds {} messages, above the limit of {} (SPAMFLOW_MAX_BATCH); split the batch",
                requests.len(),
                self.max_batch
            )));
        }
        let responses = requests
            .into_iter()
            .enumerate()
            .map(|(index, request)| self.classify_one(request, &format!("requests[{index}].")))
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Response::new(pb::ClassifyBatchResponse { responses }))
    }

    async fn get_model_info(
        &self,
        _request: Request<pb::GetModelInfoRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        let model = self.model();
        let training = model.training();
        Ok(Response::new(pb::ModelInfo {
            model_version: model.version().to_owned(),
            format_version: spamflow_core::model::FORMAT_VERSION,
            threshold: model.threshold(),
            vocabulary_size: model.vocabulary_size() as u32,
            training_set_sha256: training.training_set_sha256.clone(),
            training_messages: training.messages,
            training_accuracy: training.training_accuracy,
            training_auc: training.training_auc,
            trained_at: training.trained_at.clone(),
        }))
    }
}

/// Serves the detector on `listener` until `shutdown` completes.
///
/// # Errors
///
/// Fails when the gRPC server cannot start or its transport fails.
pub async fn run(
    detector: Detector,
    server: &ServerArgs,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (health, router) = grpc::standard_router(server)?;
    let max_message = detector.limits.max_message_bytes;
    let service = SpamDetectorServer::new(detector)
        // Leave room for the protobuf framing around a message of the maximum size, so an
        // oversized message reaches the handler and gets a precise INVALID_ARGUMENT.
        .max_decoding_message_size(max_message.saturating_mul(2).max(4 * 1024 * 1024));
    health.set_serving::<SpamDetectorServer<Detector>>().await;
    grpc::serve(router.add_service(service), listener, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> Detector {
        Detector::new(
            default_model().unwrap(),
            Limits {
                max_message_bytes: 1000,
            },
            2,
        )
    }

    #[test]
    fn shipped_model_loads() {
        let model = default_model().unwrap();
        assert!(model.vocabulary_size() > 1000);
    }

    #[test]
    fn missing_content_is_invalid_argument() {
        let error = detector()
            .classify_one(pb::ClassifyRequest::default(), "")
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("content is missing"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn long_message_id_is_invalid_argument() {
        let request = pb::ClassifyRequest {
            content: Some(pb::classify_request::Content::Text("hello".into())),
            message_id: "m".repeat(MAX_MESSAGE_ID_BYTES + 1),
        };
        let error = detector()
            .classify_one(request, "requests[2].")
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error
                .message()
                .starts_with("requests[2].message_id is 1025 bytes"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn oversized_raw_names_limit() {
        let request = pb::ClassifyRequest {
            content: Some(pb::classify_request::Content::Raw(vec![b'a'; 1001])),
            message_id: String::new(),
        };
        let error = detector().classify_one(request, "").unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("1001 bytes"),
            "{}",
            error.message()
        );
        assert!(error.message().contains("SPAMFLOW_MAX_MESSAGE_BYTES"));
    }

    #[test]
    fn plain_text_spam_is_spam() {
        let request = pb::ClassifyRequest {
            content: Some(pb::classify_request::Content::Text(
                "Congratulations! You have been selected to receive a FREE credit card offer. \
                 Click here now to claim your cash bonus, limited time offer, order today!"
                    .into(),
            )),
            message_id: "m1".into(),
        };
        let response = detector().classify_one(request, "").unwrap();
        assert_eq!(response.message_id, "m1");
        assert_eq!(response.label, pb::Label::Spam as i32, "{response:?}");
        assert!(!response.top_features.is_empty());
    }
}
