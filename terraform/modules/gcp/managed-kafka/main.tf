# Google Cloud Managed Service for Apache Kafka with the spamflow topics. Clients connect over
# TLS on port 9092 and authenticate with SASL/OAUTHBEARER using their service account's
# Google access token, so access is granted with IAM (roles/managedkafka.client).

locals {
  # Three replicas, two in sync: one broker can fail without losing an acknowledged write.
  replication_factor = 3
}

resource "google_managed_kafka_cluster" "this" {
  project    = var.project_id
  cluster_id = var.name
  location   = var.region

  capacity_config {
    vcpu_count   = var.vcpu_count
    memory_bytes = var.memory_gib * 1024 * 1024 * 1024
  }

  gcp_config {
    kms_key = var.kms_key_id

    access_config {
      network_configs {
        subnet = var.subnet_id
      }
    }
  }

  rebalance_config {
    mode = "AUTO_REBALANCE_ON_SCALE_UP"
  }

  labels = var.labels
}

resource "google_managed_kafka_topic" "this" {
  for_each = var.topics

  project            = var.project_id
  cluster            = google_managed_kafka_cluster.this.cluster_id
  location           = var.region
  topic_id           = each.key
  partition_count    = each.value.partitions
  replication_factor = local.replication_factor
  configs            = merge({ "min.insync.replicas" = "2" }, each.value.configs)
}
