# One spamflow service on Cloud Run with an OpenTelemetry collector sidecar.
#
# gRPC services (spam-detector, bloom-filter) are served over HTTP/2 end to end: Cloud Run
# terminates TLS and forwards h2c to the container. Kafka consumers have no request traffic,
# so they run with CPU always allocated and at least one instance, and expose only their
# health/metrics port, which Cloud Run requires every service to listen on.
#
# Ingress is internal-only by default. Callers inside the VPC (other spamflow services, which
# send all egress into the VPC) reach the service at its run.app URL on port 443.

locals {
  secrets_dir = "/run/spamflow/secrets"
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  name                = var.name
  location            = var.region
  ingress             = var.ingress
  deletion_protection = var.deletion_protection

  # Network access is limited by the ingress setting. The services call each other without
  # Google ID tokens, so the invoker IAM check is off unless a caller signs its requests (the
  # Gmail push subscription of gmail-integration does).
  # NOTE: with INGRESS_TRAFFIC_ALL and the check off, the service is public; keep it
  # internal-only.
  invoker_iam_disabled = var.invoker_iam_disabled

  template {
    service_account = var.service_account_email
    # Cloud Storage volumes need the second generation execution environment.
    execution_environment = var.gcs_volume == null ? null : "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    vpc_access {
      egress = "ALL_TRAFFIC"

      network_interfaces {
        network    = var.network_id
        subnetwork = var.subnet_id
      }
    }

    containers {
      name       = var.name
      image      = var.image
      depends_on = ["otel-collector"]

      ports {
        name           = var.grpc ? "h2c" : "http1"
        container_port = var.port
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = merge(var.environment, {
          OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:4317"
          OTEL_EXPORTER_OTLP_PROTOCOL = "grpc"
          OTEL_SERVICE_NAME           = var.name
        })

        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_environment

        content {
          name = env.key

          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      dynamic "volume_mounts" {
        for_each = var.secret_files

        content {
          name       = "secret-${volume_mounts.key}"
          mount_path = "${local.secrets_dir}/${volume_mounts.key}"
        }
      }

      dynamic "volume_mounts" {
        for_each = var.gcs_volume == null ? [] : [var.gcs_volume]

        content {
          name       = "gcs"
          mount_path = volume_mounts.value.mount_path
        }
      }

      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 5
        timeout_seconds       = 3
        failure_threshold     = 24

        dynamic "grpc" {
          for_each = var.health_check == "grpc" ? [1] : []

          content {
            port = var.port
          }
        }

        dynamic "http_get" {
          for_each = var.health_check == "http" ? [1] : []

          content {
            path = var.health_check_path
            port = var.port
          }
        }

        dynamic "tcp_socket" {
          for_each = var.health_check == "tcp" ? [1] : []

          content {
            port = var.port
          }
        }
      }

      # Cloud Run liveness probes support gRPC and HTTP only, so a tcp service has none.
      dynamic "liveness_probe" {
        for_each = var.health_check == "tcp" ? [] : [1]

        content {
          period_seconds    = 15
          timeout_seconds   = 5
          failure_threshold = 3

          dynamic "grpc" {
            for_each = var.health_check == "grpc" ? [1] : []

            content {
              port = var.port
            }
          }

          dynamic "http_get" {
            for_each = var.health_check == "http" ? [1] : []

            content {
              path = var.health_check_path
              port = var.port
            }
          }
        }
      }
    }

    containers {
      name = "otel-collector"
      # The contrib distribution includes the googlecloud exporter and the gcp detector.
      image = var.collector_image
      args  = ["--config=/etc/otelcol-contrib/config.yaml"]

      resources {
        limits = {
          cpu    = "0.5"
          memory = "256Mi"
        }
        cpu_idle = !var.cpu_always_allocated
      }

      volume_mounts {
        name       = "collector-config"
        mount_path = "/etc/otelcol-contrib"
      }

      startup_probe {
        period_seconds    = 2
        timeout_seconds   = 1
        failure_threshold = 30

        http_get {
          path = "/"
          port = 13133
        }
      }
    }

    volumes {
      name = "collector-config"

      secret {
        secret = var.collector_config_secret_id

        items {
          version = var.collector_config_version
          path    = "config.yaml"
        }
      }
    }

    # A Cloud Storage bucket mounted with Cloud Storage FUSE.
    dynamic "volumes" {
      for_each = var.gcs_volume == null ? [] : [var.gcs_volume]

      content {
        name = "gcs"

        gcs {
          bucket        = volumes.value.bucket
          read_only     = volumes.value.read_only
          mount_options = volumes.value.mount_options
        }
      }
    }

    dynamic "volumes" {
      for_each = var.secret_files

      content {
        name = "secret-${volumes.key}"

        secret {
          secret = volumes.value.secret

          items {
            version = "latest"
            path    = volumes.value.file_name
          }
        }
      }
    }
  }

  labels = var.labels
}
