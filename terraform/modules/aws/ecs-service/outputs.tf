output "task_definition_arn" {
  description = "ARN of the task definition revision."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Family of the task definition, for aws ecs run-task."
  value       = aws_ecs_task_definition.this.family
}

output "task_role_arn" {
  description = "IAM role the service runs as."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "CloudWatch log group of all containers of the task."
  value       = aws_cloudwatch_log_group.this.name
}

output "service_name" {
  description = "Name of the ECS service; null for a task definition without service."
  value       = var.create_service ? aws_ecs_service.this[0].name : null
}
