output "file_system_id" {
  description = "ID of the model file system."
  value       = aws_efs_file_system.this.id
}

output "file_system_arn" {
  description = "ARN of the model file system, for the task roles' elasticfilesystem permissions."
  value       = aws_efs_file_system.this.arn
}

output "access_point_id" {
  description = "Access point the tasks mount. Known once the mount targets exist, so tasks start after them."
  value       = aws_efs_access_point.models.id
  depends_on  = [aws_efs_mount_target.this]
}

output "access_point_arn" {
  description = "ARN of the access point, for the task roles' condition."
  value       = aws_efs_access_point.models.arn
}

output "client_security_group_id" {
  description = "Security group that may reach the file system over NFS; attach it to the trainer and spam-detector services only."
  value       = aws_security_group.clients.id
}
