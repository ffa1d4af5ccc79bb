# Memorystore for Redis with AUTH and TLS (server authentication). The services read
# SPAMFLOW_REDIS_URL as rediss://:AUTH@HOST:PORT/0 (port 6378 with TLS) from Secret Manager.
# Memorystore signs its TLS certificate with a per-instance CA, so that CA is stored as a
# second secret and mounted as a file for the clients to trust.
# NOTE: the AUTH string is read from the instance into the Terraform state and the secret
# version; keep the state in an encrypted, access-controlled backend.

resource "google_redis_instance" "this" {
  project        = var.project_id
  name           = var.name
  region         = var.region
  tier           = var.tier
  memory_size_gb = var.memory_size_gb
  redis_version  = var.redis_version

  authorized_network      = var.network_id
  connect_mode            = "DIRECT_PEERING"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  customer_managed_key    = var.kms_key_id

  # Hourly snapshots keep the Bloom filter and idempotency keys across a full restart.
  persistence_config {
    persistence_mode    = "RDB"
    rdb_snapshot_period = "ONE_HOUR"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"

      start_time {
        hours   = 3
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }

  labels = var.labels
}

resource "google_secret_manager_secret" "redis_url" {
  project   = var.project_id
  secret_id = "${var.name}-redis-url"

  replication {
    auto {}
  }

  labels = var.labels
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.redis_url.id
  secret_data = "rediss://:${google_redis_instance.this.auth_string}@${google_redis_instance.this.host}:${google_redis_instance.this.port}/0"
}

resource "google_secret_manager_secret" "redis_ca" {
  project   = var.project_id
  secret_id = "${var.name}-redis-ca"

  replication {
    auto {}
  }

  labels = var.labels
}

resource "google_secret_manager_secret_version" "redis_ca" {
  secret      = google_secret_manager_secret.redis_ca.id
  secret_data = join("\n", [for certificate in google_redis_instance.this.server_ca_certs : certificate.cert])
}
