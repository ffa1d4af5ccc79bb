# Gmail push notifications. gmail-integration calls users.watch with this topic; Gmail then
# publishes a message (mailbox and latest history ID) on every mailbox change, and the service
# pulls it from the subscription and runs an incremental history.list sync.
#
# Gmail publishes as gmail-api-push@system.gserviceaccount.com, which therefore needs the
# publisher role on the topic. A pull subscription needs no public endpoint.

locals {
  gmail_publisher = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
}

resource "google_pubsub_topic" "gmail" {
  project      = var.project_id
  name         = "${var.name}-gmail-push"
  kms_key_name = var.kms_key_id

  # Notifications only point at history to fetch; a day covers a long outage of the service,
  # which falls back to a full sync when its history ID has expired.
  message_retention_duration = "86400s"

  labels = var.labels
}

resource "google_pubsub_topic_iam_member" "gmail_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.gmail.name
  role    = "roles/pubsub.publisher"
  member  = local.gmail_publisher
}

resource "google_pubsub_subscription" "gmail" {
  project = var.project_id
  name    = "${var.name}-gmail-push"
  topic   = google_pubsub_topic.gmail.id

  ack_deadline_seconds       = 60
  message_retention_duration = "86400s"

  # Never expire the subscription, even while the service is scaled to zero for weeks.
  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  labels = var.labels
}

resource "google_pubsub_subscription_iam_member" "subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.gmail.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.subscriber_service_account_email}"
}
