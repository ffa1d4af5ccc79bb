output "artifact_registry_url" {
  description = "Image prefix: docker push <url>/<image>:<image_tag>."
  value       = module.artifact_registry.repository_url
}

output "kafka_bootstrap_address" {
  description = "Managed Kafka bootstrap address, TLS with SASL/OAUTHBEARER (SPAMFLOW_KAFKA_BROKERS)."
  value       = module.kafka.bootstrap_address
}

output "kafka_topics" {
  description = "Topic names the services use."
  value       = module.kafka.topic_names
}

output "redis_host" {
  description = "Memorystore private address and TLS port."
  value       = "${module.redis.host}:${module.redis.port}"
}

output "grpc_endpoints" {
  description = "Internal-only HTTPS URLs of the gRPC services, reachable from the VPC."
  value       = { for name, service in module.grpc_service : name => service.uri }
}

output "consumer_services" {
  description = "Cloud Run services of the Kafka consumers."
  value       = { for name, service in module.consumer : name => service.name }
}

output "gmail_credentials_secret" {
  description = "Secret to add the Gmail credentials JSON to, before setting gmail_credentials_ready = true."
  value       = google_secret_manager_secret.gmail_credentials.secret_id
}

output "gmail_push_topic" {
  description = "Pub/Sub topic for Gmail users.watch (SPAMFLOW_GMAIL_PUBSUB_TOPIC)."
  value       = module.gmail_pubsub.topic
}

output "gmail_push_subscription" {
  description = "Push subscription that delivers Gmail notifications to gmail-integration's POST /gmail/push; null until gmail_credentials_ready is true."
  value       = module.gmail_pubsub.subscription
}

output "gmail_push_token_secret" {
  description = "Secret with the push token gmail-integration checks (SPAMFLOW_GMAIL_PUSH_TOKEN)."
  value       = module.gmail_pubsub.push_token_secret_id
}

output "service_accounts" {
  description = "Service account of each service."
  value       = { for name, account in google_service_account.service : name => account.email }
}

output "model_bucket" {
  description = "Cloud Storage bucket mounted at SPAMFLOW_MODEL_DIR in the trainer (read-write) and spam-detector (read-only)."
  value       = module.model_bucket.bucket
}
