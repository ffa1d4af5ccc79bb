output "bucket" {
  description = "Name of the model bucket. Known once the object roles are granted, so the services mount it after that."
  value       = google_storage_bucket.models.name
  depends_on  = [google_storage_bucket_iam_member.writer, google_storage_bucket_iam_member.reader]
}
