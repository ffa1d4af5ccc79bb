# The OpenTelemetry collector configuration shared by every Cloud Run service. Cloud Run mounts
# files only from Secret Manager, so the (non-secret) configuration is stored there, and each
# service's collector sidecar mounts it.

resource "google_secret_manager_secret" "config" {
  project   = var.project_id
  secret_id = "${var.name}-otel-collector-config"

  replication {
    auto {}
  }

  labels = var.labels
}

resource "google_secret_manager_secret_version" "config" {
  secret      = google_secret_manager_secret.config.id
  secret_data = file("${path.module}/collector.yaml")
}
