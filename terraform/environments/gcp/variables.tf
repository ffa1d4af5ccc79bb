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
  description = "Create Cloud NAT for outbound traffic to hosts outside Google."
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

variable "gmail_mailboxes" {
  description = "Mailbox addresses gmail-integration reads and action-handler acts on (SPAMFLOW_GMAIL_MAILBOXES, comma-joined). With a service account key, these are the mailboxes it acts for through domain-wide delegation."
  type        = list(string)

  validation {
    condition     = length(var.gmail_mailboxes) > 0 && alltrue([for address in var.gmail_mailboxes : can(regex("^[^@,[:space:]]+@[^@,[:space:]]+$", address))])
    error_message = "gmail_mailboxes must list at least one address, each of the form user@domain, without commas or spaces."
  }
}

variable "gmail_actions" {
  description = "Let action-handler act on Gmail (SPAMFLOW_GMAIL_ACTIONS). Off, it only logs and records each verdict."
  type        = bool
  default     = true
}

variable "gmail_dry_run" {
  description = "Make action-handler only log the changes it would make in Gmail (SPAMFLOW_DRY_RUN). On by default: set it to false once the log shows the changes you want. Has no effect while gmail_actions is false."
  type        = bool
  default     = true
}

variable "gmail_spam_action" {
  description = "What action-handler does with verdicts in the spam band (SPAMFLOW_SPAM_ACTION): move-to-spam, label or log."
  type        = string
  default     = "move-to-spam"

  validation {
    condition     = contains(["move-to-spam", "label", "log"], var.gmail_spam_action)
    error_message = "gmail_spam_action must be move-to-spam, label or log."
  }
}

variable "gmail_spam_threshold" {
  description = "Lowest spam probability for the spam action (SPAMFLOW_SPAM_THRESHOLD); null leaves it unset, so every SPAM verdict gets the spam action."
  type        = number
  default     = null

  validation {
    condition     = var.gmail_spam_threshold == null ? true : var.gmail_spam_threshold >= 0 && var.gmail_spam_threshold <= 1
    error_message = "gmail_spam_threshold must be between 0 and 1."
  }
}

variable "gmail_suspect_threshold" {
  description = "Lowest spam probability for the suspect label (SPAMFLOW_SUSPECT_THRESHOLD); must be below gmail_spam_threshold. Null leaves it unset."
  type        = number
  default     = null

  validation {
    condition     = var.gmail_suspect_threshold == null ? true : var.gmail_suspect_threshold >= 0 && var.gmail_suspect_threshold <= 1
    error_message = "gmail_suspect_threshold must be between 0 and 1."
  }
}

variable "gmail_suspect_label" {
  description = "Gmail label for suspected spam, created if missing (SPAMFLOW_SUSPECT_LABEL)."
  type        = string
  default     = "spamflow/suspected"
}
