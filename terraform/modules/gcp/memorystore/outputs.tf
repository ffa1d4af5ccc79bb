output "host" {
  description = "Private address of the primary."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "TLS port of the instance (6378 with in-transit encryption)."
  value       = google_redis_instance.this.port
}

output "redis_url_secret_id" {
  description = "Secret with the rediss:// URL including the AUTH string."
  value       = google_secret_manager_secret.redis_url.secret_id
}

output "redis_ca_secret_id" {
  description = "Secret with the PEM certificates of the instance's server CA."
  value       = google_secret_manager_secret.redis_ca.secret_id
}
