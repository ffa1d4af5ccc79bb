output "primary_endpoint" {
  description = "Host name of the primary node; writes go here and fail over with it."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret that contains the full rediss:// URL with the AUTH token."
  value       = aws_secretsmanager_secret.redis_url.arn
}

output "security_group_id" {
  description = "Security group of the cache nodes."
  value       = aws_security_group.redis.id
}
