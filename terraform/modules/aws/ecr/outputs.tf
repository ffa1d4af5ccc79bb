output "repository_urls" {
  description = "Repository URL per image name, for docker push and the task definitions."
  value       = { for image, repository in aws_ecr_repository.this : image => repository.repository_url }
}

output "repository_arns" {
  description = "Repository ARN per image name, for pull permissions."
  value       = { for image, repository in aws_ecr_repository.this : image => repository.arn }
}
