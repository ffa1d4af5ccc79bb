variable "project_id" {
  description = "Google Cloud project of the deployment."
  type        = string
}

variable "region" {
  description = "Region of every resource."
  type        = string
  default     = "europe-west1"
}

variable "environment" {
  description = "Deployment name, e.g. prod; resources are named spamflow-<environment>."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,9}$", var.environment))
    error_message = "environment must be 2 to 10 lowercase letters, digits or hyphens, starting with a letter, to fit service account IDs."
  }
}

variable "labels" {
  description = "Extra labels on every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "subnet_cidr" {
  description = "IPv4 range of the subnet for Cloud Run egress and the Kafka endpoints."
  type        = string
  default     = "10.60.0.0/20"
}

variable "enable_nat" {
  description = "Create Cloud NAT for outbound traffic to non-Google hosts (webhooks)."
  type        = bool
  default     = false
}

variable "image_tag" {
  description = "Tag of the spamflow images pushed to Artifact Registry, e.g. a git commit."
  type        = string
}

variable "topic_prefix" {
  description = "Prefix of the Kafka topic names (SPAMFLOW_TOPIC_PREFIX)."
  type        = string
  default     = "spamflow"
}

variable "topic_partitions" {
  description = "Partitions of the email, verdict, feedback and DLQ topics; the upper bound on consumer parallelism."
  type        = number
  default     = 6
}

variable "kafka_vcpu_count" {
  description = "vCPUs of the Managed Kafka cluster (minimum 3)."
  type        = number
  default     = 3
}

variable "kafka_memory_gib" {
  description = "Memory of the Managed Kafka cluster in GiB (1 to 8 per vCPU)."
  type        = number
  default     = 3
}

variable "redis_tier" {
  description = "Memorystore tier: STANDARD_HA or BASIC (single node, trials only)."
  type        = string
  default     = "STANDARD_HA"
}

variable "redis_memory_size_gb" {
  description = "Memorystore memory in GiB."
  type        = number
  default     = 1
}

variable "gmail_credentials_ready" {
  description = "Deploy gmail-integration and action-handler. Set to true after adding a version to the Gmail credentials secret, because Cloud Run cannot start them without it."
  type        = bool
  default     = false
}

variable "gmail_api_url" {
  description = "Base URL of the Gmail API (SPAMFLOW_GMAIL_API_URL)."
  type        = string
  default     = "https://gmail.googleapis.com"
}

variable "traces_sampler" {
  description = "OTEL_TRACES_SAMPLER of every service."
  type        = string
  default     = "parentbased_traceidratio"
}

variable "traces_sampler_arg" {
  description = "OTEL_TRACES_SAMPLER_ARG: the fraction of root traces kept by the ratio samplers."
  type        = string
  default     = "0.1"
}

variable "deletion_protection" {
  description = "Make terraform destroy fail for the Cloud Run services while true."
  type        = bool
  default     = true
}
