variable "aws_region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Deployment name, e.g. prod or staging; resources are named spamflow-<environment>."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment))
    error_message = "environment must be 2 to 21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr_block" {
  description = "IPv4 range of the new VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "2 or 3 availability zones; MSK runs one broker per zone. null means <region>a, b and c, which not every region has."
  type        = list(string)
  default     = null
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheaper) instead of one per zone."
  type        = bool
  default     = true
}

variable "image_tag" {
  description = "Tag of the spamflow images pushed to the ECR repositories, e.g. a git commit."
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

variable "kafka_version" {
  description = "Apache Kafka version of the MSK cluster."
  type        = string
  default     = "3.8.x"
}

variable "msk_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.t3.small"
}

variable "msk_broker_volume_size_gb" {
  description = "EBS storage per MSK broker in GiB."
  type        = number
  default     = 100
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_replica_count" {
  description = "ElastiCache replicas besides the primary; 0 disables automatic failover."
  type        = number
  default     = 1
}

variable "service_sizes" {
  description = "Fargate size and task count per service. Services not listed use 512 CPU units, 1024 MiB and 1 task."
  type = map(object({
    cpu           = number
    memory        = number
    desired_count = number
  }))
  default = {
    spam-detector   = { cpu = 512, memory = 1024, desired_count = 2 }
    bloom-filter    = { cpu = 256, memory = 512, desired_count = 2 }
    email-processor = { cpu = 512, memory = 1024, desired_count = 2 }
  }
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

variable "trace_forward_otlp_endpoint" {
  description = "OTLP/gRPC host:port that receives a copy of every trace besides X-Ray, e.g. a Jaeger collector; empty for none."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  description = "Days to keep service, broker, Redis and flow logs in CloudWatch."
  type        = number
  default     = 365
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

variable "model_storage_backup" {
  description = "Back up the model file system (retrained models and the trainer's stored corrections) daily with AWS Backup."
  type        = bool
  default     = true
}
