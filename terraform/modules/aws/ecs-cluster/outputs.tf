output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_discovery_namespace_id" {
  description = "Cloud Map namespace of the gRPC services."
  value       = aws_service_discovery_private_dns_namespace.this.id
}

output "service_discovery_namespace" {
  description = "DNS zone of the gRPC services; spam-detector is spam-detector.<zone>."
  value       = aws_service_discovery_private_dns_namespace.this.name
}

output "task_security_group_id" {
  description = "Security group of every spamflow task."
  value       = aws_security_group.tasks.id
}
