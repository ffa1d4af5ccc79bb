variable "name" {
  description = "Replication group name, e.g. spamflow-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache nodes."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the cache nodes."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups whose members may connect to Redis."
  type        = list(string)
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "replica_count" {
  description = "Read replicas besides the primary. At least 1 enables automatic failover across zones."
  type        = number
  default     = 1
}

variable "engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "snapshot_retention_days" {
  description = "Days to keep daily snapshots; the Bloom filter and idempotency keys live here."
  type        = number
  default     = 7
}

variable "kms_key_arn" {
  description = "KMS key for data at rest, the slow log group and the connection secret."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the Redis slow log in CloudWatch."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
