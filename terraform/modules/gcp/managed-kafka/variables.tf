variable "name" {
  description = "Cluster ID, e.g. spamflow-prod."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region of the cluster."
  type        = string
}

variable "subnet_id" {
  description = "Subnet in which the cluster's private endpoints are created (projects/<p>/regions/<r>/subnetworks/<name>)."
  type        = string
}

variable "vcpu_count" {
  description = "vCPUs of the cluster; the service minimum is 3."
  type        = number
  default     = 3
}

variable "memory_gib" {
  description = "Memory of the cluster in GiB, 1 to 8 GiB per vCPU."
  type        = number
  default     = 3
}

variable "topics" {
  description = "Topics to create: name to partition count and topic configs."
  type = map(object({
    partitions = number
    configs    = map(string)
  }))
}

variable "kms_key_id" {
  description = "Cloud KMS key for data at rest; null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the cluster."
  type        = map(string)
  default     = {}
}
