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
