output "ecr_repository_urls" {
  description = "Where to push each image: docker push <url>:<image_tag>."
  value       = module.ecr.repository_urls
}

output "kafka_bootstrap_brokers" {
  description = "MSK brokers, IAM/TLS listener (SPAMFLOW_KAFKA_BROKERS)."
  value       = module.msk.bootstrap_brokers_iam
}

output "kafka_topics" {
  description = "Topic names the services use."
  value       = local.topics
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint (TLS, port 6379)."
  value       = module.redis.primary_endpoint
}

output "redis_url_secret_arn" {
  description = "Secret with the full rediss:// URL including the AUTH token."
  value       = module.redis.redis_url_secret_arn
}

output "gmail_credentials_secret_arn" {
  description = "Secret to fill with the Gmail credentials JSON before the Gmail services can sync."
  value       = module.secrets.gmail_credentials_secret_arn
}

output "grpc_endpoints" {
  description = "Cloud Map DNS endpoints of the gRPC services, reachable inside the VPC."
  value = {
    spam-detector = local.detector_url
    bloom-filter  = local.bloom_url
  }
}

output "ecs_cluster_name" {
  description = "ECS cluster of the services."
  value       = module.ecs_cluster.cluster_name
}

output "log_groups" {
  description = "CloudWatch log group per service."
  value       = { for name, service in module.service : name => service.log_group_name }
}

output "nat_public_ips" {
  description = "Addresses outbound traffic comes from, for allowlists of outside services."
  value       = module.network.nat_public_ips
}

output "create_topics_command" {
  description = "Runs the one-shot task that creates the Kafka topics; run it once after the first apply, before the services can consume."
  value = join(" ", [
    "aws ecs run-task",
    "--region ${data.aws_region.current.region}",
    "--cluster ${module.ecs_cluster.cluster_name}",
    "--launch-type FARGATE",
    "--task-definition ${module.create_topics.task_definition_family}",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", module.network.private_subnet_ids)}],securityGroups=[${module.ecs_cluster.task_security_group_id}],assignPublicIp=DISABLED}'",
  ])
}

output "model_file_system_id" {
  description = "EFS file system mounted at SPAMFLOW_MODEL_DIR in the trainer (read-write) and spam-detector (read-only)."
  value       = module.efs.file_system_id
}
