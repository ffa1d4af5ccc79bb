variable "name" {
  description = "Instance name, e.g. spamflow-prod."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region of the instance."
  type        = string
}

variable "network_id" {
  description = "VPC network the instance is peered with."
  type        = string
}

variable "memory_size_gb" {
  description = "Memory of the instance in GiB."
  type        = number
  default     = 1
}

variable "tier" {
  description = "STANDARD_HA (a replica in another zone with automatic failover) or BASIC (one node, for trials)."
  type        = string
  default     = "STANDARD_HA"
}

variable "redis_version" {
  description = "Redis version as Memorystore names it."
  type        = string
  default     = "REDIS_7_2"
}

variable "kms_key_id" {
  description = "Cloud KMS key for data at rest; null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the instance and the secrets."
  type        = map(string)
  default     = {}
}
