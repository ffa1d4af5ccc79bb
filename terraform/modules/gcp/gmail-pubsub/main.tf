# Gmail push notifications. gmail-integration calls users.watch with this topic; Gmail then
# publishes a message (mailbox and latest history ID) on every mailbox change, and a push
# subscription delivers it to the service's HTTP endpoint, POST /gmail/push?token=TOKEN,
# which starts an incremental history.list sync.
#
# Gmail publishes as gmail-api-push@system.gserviceaccount.com, which therefore needs the
# publisher role on the topic. Pub/Sub pushes with an OIDC token of a service account of its
# own, the only member allowed to invoke the Cloud Run service. The token in the URL is a
# second check, made by the service itself; it is generated here and kept in Secret Manager,
# from where the service reads it as SPAMFLOW_GMAIL_PUSH_TOKEN.

locals {
  gmail_publisher = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
  pubsub_agent    = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project_id
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

# The push token. It is in the Terraform state, like the Redis AUTH string, so keep the state
# in an access-controlled backend.
resource "random_password" "push_token" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "push_token" {
  project   = var.project_id
  secret_id = "${var.name}-gmail-push-token"

  replication {
    auto {}
  }

  labels = var.labels
}

resource "google_secret_manager_secret_version" "push_token" {
  secret      = google_secret_manager_secret.push_token.id
  secret_data = random_password.push_token.result
}

# The identity Pub/Sub signs its push requests with.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = trimsuffix(substr("${var.name}-gmail-push", 0, 30), "-")
  display_name = "${var.name} Gmail push to gmail-integration"
}

# Pub/Sub mints the OIDC tokens of the push identity. Projects created since April 2021 grant
# this implicitly; older ones need the binding.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count = var.push_enabled ? 1 : 0

  project  = var.project_id
  location = var.push_service_location
  name     = var.push_service_name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

resource "google_pubsub_subscription" "gmail" {
  count = var.push_enabled ? 1 : 0

  project = var.project_id
  name    = "${var.name}-gmail-push"
  topic   = google_pubsub_topic.gmail.id

  ack_deadline_seconds       = 30
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = "${var.push_service_uri}/gmail/push?token=${random_password.push_token.result}"

    # The audience is the service URL, which Cloud Run accepts, and keeps the token out of the
    # signed JWT.
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = var.push_service_uri
    }
  }

  # Never expire the subscription, even without traffic for weeks.
  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  labels = var.labels

  depends_on = [google_cloud_run_v2_service_iam_member.push_invoker]
}

# Earlier versions created the subscription without count, as a pull subscription. The move
# lets Terraform update that subscription instead of planning a delete and a new create.
moved {
  from = google_pubsub_subscription.gmail
  to   = google_pubsub_subscription.gmail[0]
}
