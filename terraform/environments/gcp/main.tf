# spamflow on Google Cloud: a VPC, Managed Service for Apache Kafka with the spamflow topics,
# Memorystore for Redis with AUTH and TLS, Artifact Registry, Secret Manager, the Pub/Sub
# topic for Gmail push notifications, and every service on Cloud Run with an OpenTelemetry
# collector sidecar sending traces to Cloud Trace. Each service runs as its own service
# account with only the roles it needs.
#
# Every endpoint and secret the services need reaches them through the environment set
# here: Kafka bootstrap address and security settings, topic prefix, detector and Bloom filter
# URLs, the Redis URL and CA (secrets), the Gmail credentials file (a secret), the Gmail
# mailboxes and action settings, the Pub/Sub topic and push token (a secret), and the model
# folder, a Cloud Storage bucket that the trainer writes and the detectors read.

locals {
  name   = "spamflow-${var.environment}"
  labels = merge({ project = "spamflow", environment = var.environment }, var.labels)

  apis = toset([
    "artifactregistry.googleapis.com",
    "cloudtrace.googleapis.com",
    "compute.googleapis.com",
    "gmail.googleapis.com",
    "managedkafka.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  day_ms = 86400000

  # The same topics and settings as docker/kafka/create-topics.sh.
  topics = {
    "${var.topic_prefix}.emails.raw"      = { partitions = var.topic_partitions, configs = { "retention.ms" = tostring(7 * local.day_ms) } }
    "${var.topic_prefix}.emails.verdicts" = { partitions = var.topic_partitions, configs = { "retention.ms" = tostring(7 * local.day_ms) } }
    "${var.topic_prefix}.emails.feedback" = { partitions = var.topic_partitions, configs = { "retention.ms" = tostring(30 * local.day_ms) } }
    "${var.topic_prefix}.emails.dlq"      = { partitions = var.topic_partitions, configs = { "retention.ms" = tostring(14 * local.day_ms) } }
    "${var.topic_prefix}.models"          = { partitions = 1, configs = { "cleanup.policy" = "compact", "retention.ms" = "-1" } }
  }

  image_prefix = module.artifact_registry.repository_url

  telemetry_environment = {
    OTEL_TRACES_SAMPLER     = var.traces_sampler
    OTEL_TRACES_SAMPLER_ARG = var.traces_sampler_arg
  }

  # The services authenticate to Managed Kafka with SASL/OAUTHBEARER, using access tokens of
  # their service account, over TLS.
  kafka_environment = {
    SPAMFLOW_KAFKA_BROKERS           = module.kafka.bootstrap_address
    SPAMFLOW_KAFKA_SECURITY_PROTOCOL = "sasl_ssl"
    SPAMFLOW_KAFKA_SASL_MECHANISM    = "OAUTHBEARER"
    SPAMFLOW_TOPIC_PREFIX            = var.topic_prefix
  }

  # NOTE: SPAMFLOW_REDIS_CA_FILE names the PEM file of Memorystore's server CA. The services
  # must trust it for rediss:// to Memorystore, whose certificate no public CA signs.
  redis_environment = { SPAMFLOW_REDIS_CA_FILE = "/run/spamflow/secrets/redis-ca/ca.pem" }
  redis_secret      = { SPAMFLOW_REDIS_URL = module.redis.redis_url_secret_id }
  redis_ca_file     = { redis-ca = { secret = module.redis.redis_ca_secret_id, file_name = "ca.pem" } }

  gmail_environment = {
    SPAMFLOW_GMAIL_API_URL          = var.gmail_api_url
    SPAMFLOW_GMAIL_CREDENTIALS_FILE = "/run/spamflow/secrets/gmail/credentials.json"
    SPAMFLOW_GMAIL_MAILBOXES        = join(",", var.gmail_mailboxes)
  }
  # What action-handler changes in Gmail. Dry run needs actions on (the handler exits with
  # status 64 otherwise), so it is only passed as true together with them.
  action_environment = merge(
    {
      SPAMFLOW_GMAIL_ACTIONS = var.gmail_actions ? "on" : "off"
      SPAMFLOW_DRY_RUN       = tostring(var.gmail_actions && var.gmail_dry_run)
      SPAMFLOW_SPAM_ACTION   = var.gmail_spam_action
      SPAMFLOW_SUSPECT_LABEL = var.gmail_suspect_label
    },
    var.gmail_spam_threshold == null ? {} : { SPAMFLOW_SPAM_THRESHOLD = tostring(var.gmail_spam_threshold) },
    var.gmail_suspect_threshold == null ? {} : { SPAMFLOW_SUSPECT_THRESHOLD = tostring(var.gmail_suspect_threshold) },
  )

  gmail_file = { gmail = { secret = google_secret_manager_secret.gmail_credentials.secret_id, file_name = "credentials.json" } }

  # The trainer writes model files here and announces their path on the models topic; every
  # detector instance mounts the same bucket at the same path, read-only, and loads the
  # announced file.
  model_dir = "/srv/spamflow/models"
  # The images run as uid and gid 10001, and gcsfuse otherwise shows every file as owned by
  # the user that mounted the bucket, so the trainer could not write.
  model_mount_options = ["uid=10001", "gid=10001"]

  all_service_names = ["spam-detector", "bloom-filter", "email-processor", "action-handler", "trainer", "gmail-integration"]

  # The gRPC services, deployed first because the consumers need their URLs.
  grpc_services = {
    spam-detector = {
      port = 50051
      # The detector follows the models topic and loads each announced model from the
      # shared model folder.
      environment = merge(local.kafka_environment, {
        SPAMFLOW_LISTEN_ADDR   = "0.0.0.0:50051"
        SPAMFLOW_MODEL_UPDATES = "on"
      })
      secret_environment = {}
      secret_files       = {}
    }
    bloom-filter = {
      port               = 50052
      environment        = merge(local.redis_environment, { SPAMFLOW_LISTEN_ADDR = "0.0.0.0:50052" })
      secret_environment = local.redis_secret
      secret_files       = local.redis_ca_file
    }
  }

  # Cloud Run requires a listening port, so the consumers expose their health/metrics port.
  all_consumers = {
    email-processor = {
      port = 9402
      environment = merge(local.kafka_environment, {
        SPAMFLOW_DETECTOR_URL = module.grpc_service["spam-detector"].uri
        SPAMFLOW_BLOOM_URL    = module.grpc_service["bloom-filter"].uri
        SPAMFLOW_HTTP_ADDR    = "0.0.0.0:9402"
      })
      secret_environment = {}
      secret_files       = {}
    }
    action-handler = {
      port               = 9405
      environment        = merge(local.kafka_environment, local.redis_environment, local.gmail_environment, local.action_environment, { SPAMFLOW_HTTP_ADDR = "0.0.0.0:9405" })
      secret_environment = local.redis_secret
      secret_files       = merge(local.redis_ca_file, local.gmail_file)
    }
    trainer = {
      port = 9406
      environment = merge(local.kafka_environment, {
        SPAMFLOW_BLOOM_URL = module.grpc_service["bloom-filter"].uri
        SPAMFLOW_HTTP_ADDR = "0.0.0.0:9406"
        SPAMFLOW_MODEL_DIR = local.model_dir
      })
      secret_environment = {}
      secret_files       = {}
    }
    gmail-integration = {
      port = 9401
      environment = merge(local.kafka_environment, local.gmail_environment, {
        SPAMFLOW_HTTP_ADDR          = "0.0.0.0:9401"
        SPAMFLOW_GMAIL_PUBSUB_TOPIC = module.gmail_pubsub.topic
      })
      # Pub/Sub pushes to POST /gmail/push?token=TOKEN on the HTTP port; see gmail-pubsub.
      secret_environment = { SPAMFLOW_GMAIL_PUSH_TOKEN = module.gmail_pubsub.push_token_secret_id }
      secret_files       = local.gmail_file
    }
  }

  gmail_services = ["action-handler", "gmail-integration"]
  consumers      = { for name, service in local.all_consumers : name => service if var.gmail_credentials_ready || !contains(local.gmail_services, name) }

  kafka_clients = toset(concat(keys(local.all_consumers), ["spam-detector"]))

  # Secret access per secret: who may read it.
  secret_readers = {
    redis-url   = { secret = module.redis.redis_url_secret_id, readers = ["bloom-filter", "action-handler"] }
    redis-ca    = { secret = module.redis.redis_ca_secret_id, readers = ["bloom-filter", "action-handler"] }
    gmail       = { secret = google_secret_manager_secret.gmail_credentials.secret_id, readers = local.gmail_services }
    gmail-push  = { secret = module.gmail_pubsub.push_token_secret_id, readers = ["gmail-integration"] }
    otel-config = { secret = module.otel_collector.config_secret_id, readers = local.all_service_names }
  }
  secret_bindings = merge([
    for key, entry in local.secret_readers : {
      for reader in entry.readers : "${key}/${reader}" => { secret = entry.secret, reader = reader }
    }
  ]...)

  project_roles = ["roles/cloudtrace.agent", "roles/logging.logWriter", "roles/monitoring.metricWriter"]
  project_bindings = merge(
    merge([
      for name in local.all_service_names : { for role in local.project_roles : "${name}/${role}" => { name = name, role = role } }
    ]...),
    { for name in local.kafka_clients : "${name}/roles/managedkafka.client" => { name = name, role = "roles/managedkafka.client" } },
  )
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project = var.project_id
  service = each.value
  # Other workloads of the project may use the same APIs.
  disable_on_destroy = false
}

resource "google_service_account" "service" {
  for_each = toset(local.all_service_names)

  project      = var.project_id
  account_id   = "sf-${var.environment}-${each.key}"
  display_name = "spamflow ${var.environment} ${each.key}"
}

resource "google_project_iam_member" "service" {
  for_each = local.project_bindings

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.service[each.value.name].email}"
}

resource "google_secret_manager_secret_iam_member" "service" {
  for_each = local.secret_bindings

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.service[each.value.reader].email}"
}

# Terraform creates the secret only. Add the credentials JSON with
#   gcloud secrets versions add <secret> --data-file=credentials.json
# so the OAuth client secret and refresh token never enter the Terraform state.
resource "google_secret_manager_secret" "gmail_credentials" {
  project   = var.project_id
  secret_id = "${local.name}-gmail-credentials"

  replication {
    auto {}
  }

  labels = local.labels

  depends_on = [google_project_service.apis]
}

module "network" {
  source = "../../modules/gcp/network"

  name        = local.name
  project_id  = var.project_id
  region      = var.region
  subnet_cidr = var.subnet_cidr
  enable_nat  = var.enable_nat

  depends_on = [google_project_service.apis]
}

module "kafka" {
  source = "../../modules/gcp/managed-kafka"

  name       = local.name
  project_id = var.project_id
  region     = var.region
  subnet_id  = module.network.subnet_id
  vcpu_count = var.kafka_vcpu_count
  memory_gib = var.kafka_memory_gib
  topics     = local.topics
  labels     = local.labels

  depends_on = [google_project_service.apis]
}

module "redis" {
  source = "../../modules/gcp/memorystore"

  name           = local.name
  project_id     = var.project_id
  region         = var.region
  network_id     = module.network.network_id
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  labels         = local.labels

  depends_on = [google_project_service.apis]
}

module "artifact_registry" {
  source = "../../modules/gcp/artifact-registry"

  name       = local.name
  project_id = var.project_id
  region     = var.region
  labels     = local.labels

  depends_on = [google_project_service.apis]
}

module "otel_collector" {
  source = "../../modules/gcp/otel-collector"

  name       = local.name
  project_id = var.project_id
  labels     = local.labels

  depends_on = [google_project_service.apis]
}

module "model_bucket" {
  source = "../../modules/gcp/model-bucket"

  name          = local.name
  project_id    = var.project_id
  region        = var.region
  writer_emails = [google_service_account.service["trainer"].email]
  reader_emails = [google_service_account.service["spam-detector"].email]
  labels        = local.labels

  depends_on = [google_project_service.apis]
}

module "gmail_pubsub" {
  source = "../../modules/gcp/gmail-pubsub"

  name       = local.name
  project_id = var.project_id
  labels     = local.labels

  # The subscription pushes to gmail-integration, which is deployed with the Gmail credentials.
  push_enabled          = var.gmail_credentials_ready
  push_service_uri      = var.gmail_credentials_ready ? module.consumer["gmail-integration"].uri : null
  push_service_name     = var.gmail_credentials_ready ? module.consumer["gmail-integration"].name : null
  push_service_location = var.region

  depends_on = [google_project_service.apis]
}

module "grpc_service" {
  source   = "../../modules/gcp/cloud-run-service"
  for_each = local.grpc_services

  name                  = each.key
  project_id            = var.project_id
  region                = var.region
  image                 = "${local.image_prefix}/${each.key}:${var.image_tag}"
  service_account_email = google_service_account.service[each.key].email
  port                  = each.value.port
  grpc                  = true
  health_check          = "grpc"
  # The detector follows the models topic between requests, so its CPU stays allocated.
  cpu_always_allocated       = each.key == "spam-detector"
  gcs_volume                 = each.key == "spam-detector" ? { bucket = module.model_bucket.bucket, mount_path = local.model_dir, read_only = true, mount_options = local.model_mount_options } : null
  environment                = merge(local.telemetry_environment, each.value.environment)
  secret_environment         = each.value.secret_environment
  secret_files               = each.value.secret_files
  min_instances              = 1
  max_instances              = 5
  network_id                 = module.network.network_id
  subnet_id                  = module.network.subnet_id
  collector_config_secret_id = module.otel_collector.config_secret_id
  collector_config_version   = module.otel_collector.config_secret_version
  deletion_protection        = var.deletion_protection
  labels                     = local.labels

  depends_on = [google_project_iam_member.service, google_secret_manager_secret_iam_member.service]
}

module "consumer" {
  source   = "../../modules/gcp/cloud-run-service"
  for_each = local.consumers

  name                  = each.key
  project_id            = var.project_id
  region                = var.region
  image                 = "${local.image_prefix}/${each.key}:${var.image_tag}"
  service_account_email = google_service_account.service[each.key].email
  port                  = each.value.port
  health_check          = "http"
  environment           = merge(local.telemetry_environment, each.value.environment)
  secret_environment    = each.value.secret_environment
  secret_files          = each.value.secret_files
  cpu_always_allocated  = true
  min_instances         = 1
  max_instances         = var.topic_partitions
  # gmail-integration takes requests only from the Gmail push subscription, which signs them
  # with an OIDC token of its own service account, so the invoker check rejects other callers.
  # NOTE: internal-only ingress admits Pub/Sub push from the same project, as Cloud Run's
  # ingress documentation states. No deployment has tested this path yet.
  invoker_iam_disabled       = each.key != "gmail-integration"
  gcs_volume                 = each.key == "trainer" ? { bucket = module.model_bucket.bucket, mount_path = local.model_dir, read_only = false, mount_options = local.model_mount_options } : null
  network_id                 = module.network.network_id
  subnet_id                  = module.network.subnet_id
  collector_config_secret_id = module.otel_collector.config_secret_id
  collector_config_version   = module.otel_collector.config_secret_version
  deletion_protection        = var.deletion_protection
  labels                     = local.labels

  depends_on = [google_project_iam_member.service, google_secret_manager_secret_iam_member.service]
}
