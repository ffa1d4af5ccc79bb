# The Docker repository for the spamflow images. Tags are immutable, so a deployed tag
# always names the same image.

resource "google_artifact_registry_repository" "this" {
  project       = var.project_id
  location      = var.region
  repository_id = var.name
  description   = "spamflow service images"
  format        = "DOCKER"
  kms_key_name  = var.kms_key_id

  docker_config {
    immutable_tags = true
  }

  # Deletes versions older than 30 days unless they are among the newest keep_image_count.
  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"

    condition {
      older_than = "2592000s"
    }
  }

  cleanup_policies {
    id     = "keep-newest"
    action = "KEEP"

    most_recent_versions {
      keep_count = var.keep_image_count
    }
  }

  labels = var.labels
}
