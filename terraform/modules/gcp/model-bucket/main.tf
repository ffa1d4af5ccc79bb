# Shared model storage: a Cloud Storage bucket that Cloud Run mounts (Cloud Storage FUSE, gen2
# execution environment) in the trainer, read-write, and in every spam-detector instance,
# read-only, at the same path. The trainer writes retrained models (and its stored
# corrections) there and announces their path on the models topic; detectors load the
# announced file.
#
# The bucket is private, with uniform bucket-level access and public access prevention. The
# writer gets objectUser and the readers objectViewer, on this bucket only.
#
# NOTE: the trainer writes each file under a temporary name, syncs it, renames it and syncs
# the folder. Cloud Storage FUSE emulates rename with copy and delete; no deployment has yet
# tested that the trainer's writes and the detectors' reads work through the mount.

resource "google_storage_bucket" "models" {
  #checkov:skip=CKV_GCP_62:Access logs would record every FUSE read of a detector; Cloud Audit Logs cover who changes the bucket's settings and permissions.
  project  = var.project_id
  name     = "${var.project_id}-${var.name}-models"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Overwritten or deleted objects stay restorable, so a bad retrain or a mistaken delete
  # can be undone.
  versioning {
    enabled = true
  }

  # Keep noncurrent versions for 30 days only.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }

    action {
      type = "Delete"
    }
  }

  labels = var.labels
}

resource "google_storage_bucket_iam_member" "writer" {
  for_each = toset(var.writer_emails)

  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${each.value}"
}

resource "google_storage_bucket_iam_member" "reader" {
  for_each = toset(var.reader_emails)

  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${each.value}"
}
