output "topic" {
  description = "Full topic name for users.watch (projects/<p>/topics/<name>)."
  value       = google_pubsub_topic.gmail.id
}

output "subscription" {
  description = "Full name of the pull subscription (projects/<p>/subscriptions/<name>)."
  value       = google_pubsub_subscription.gmail.id
}
