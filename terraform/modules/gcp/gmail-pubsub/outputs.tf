output "topic" {
  description = "Full topic name for users.watch (projects/<p>/topics/<name>)."
  value       = google_pubsub_topic.gmail.id
}

output "subscription" {
  description = "Full name of the push subscription (projects/<p>/subscriptions/<name>); null while push_enabled is false."
  value       = var.push_enabled ? google_pubsub_subscription.gmail[0].id : null
}

output "push_token_secret_id" {
  description = "Secret with the push token, for SPAMFLOW_GMAIL_PUSH_TOKEN. Available once it has a version."
  value       = google_secret_manager_secret.push_token.secret_id
  depends_on  = [google_secret_manager_secret_version.push_token]
}

output "push_service_account_email" {
  description = "Service account Pub/Sub signs its push requests with."
  value       = google_service_account.push.email
}
