output "config_secret_id" {
  description = "Secret that contains the collector configuration."
  value       = google_secret_manager_secret.config.secret_id
}

output "config_secret_version" {
  description = "Version of the configuration, so a changed file rolls out a new revision."
  value       = google_secret_manager_secret_version.config.version
}
