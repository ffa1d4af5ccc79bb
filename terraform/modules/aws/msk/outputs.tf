output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the MSK cluster, part of every topic and group ARN."
  value       = aws_msk_cluster.this.cluster_name
}

output "cluster_uuid" {
  description = "UUID of the MSK cluster, part of every topic and group ARN."
  value       = aws_msk_cluster.this.cluster_uuid
}

output "bootstrap_brokers_iam" {
  description = "Comma-separated host:port list of the IAM/TLS listener (port 9098)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.brokers.id
}
