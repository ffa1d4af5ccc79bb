variable "name" {
  description = "Service name, e.g. email-processor. Also the container name and the Cloud Map name."
  type        = string
}

variable "deployment" {
  description = "Name prefix of the deployment, e.g. spamflow-prod."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster that runs the service."
  type        = string
}

variable "image" {
  description = "Container image, ideally pinned by digest or an immutable tag."
  type        = string
}

variable "command" {
  description = "Arguments passed to the image entrypoint; null keeps the image default."
  type        = list(string)
  default     = null
}

variable "cpu" {
  description = "Task CPU units (1024 = 1 vCPU), a Fargate size that fits memory."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory in MiB, shared by the service and its sidecars."
  type        = number
  default     = 1024
}

variable "architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"
}

variable "create_service" {
  description = "Create a long-running ECS service. false creates only the task definition, for one-shot tasks."
  type        = bool
  default     = true
}

variable "desired_count" {
  description = "Tasks to keep running."
  type        = number
  default     = 1
}

variable "port" {
  description = "Port the service listens on (gRPC or health/metrics HTTP); null for none."
  type        = number
  default     = null
}

variable "health_check" {
  description = "Kind of container health check run by spamflow-healthcheck in the image: grpc, http or tcp; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.health_check == null || contains(["grpc", "http", "tcp"], coalesce(var.health_check, "none"))
    error_message = "health_check must be grpc, http, tcp or null."
  }
}

variable "environment" {
  description = "Plain environment variables of the service container."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Environment variables read from Secrets Manager: variable name to secret ARN."
  type        = map(string)
  default     = {}
}

variable "secret_files" {
  description = "Files written from Secrets Manager into /run/spamflow/secrets before the service starts: file name to secret ARN."
  type        = map(string)
  default     = {}
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "service_discovery_namespace_id" {
  description = "Cloud Map namespace to register the tasks in (gRPC services); null for none."
  type        = string
  default     = null
}

variable "ecr_repository_arn" {
  description = "ECR repository of the image; the execution role may pull from it only."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the log group and of the secrets the task reads."
  type        = string
}

variable "task_policy_json" {
  description = "Extra IAM policy of the task role (Kafka topics, groups); null for none."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days to keep container logs."
  type        = number
  default     = 365
}

variable "enable_otel_collector" {
  description = "Run the ADOT collector sidecar and point OTEL_EXPORTER_OTLP_ENDPOINT at it."
  type        = bool
  default     = true
}

variable "adot_image" {
  description = "AWS Distro for OpenTelemetry collector image."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0"
}

variable "trace_forward_otlp_endpoint" {
  description = "OTLP/gRPC endpoint (host:port) that also receives every trace, e.g. a Jaeger collector; empty for X-Ray only."
  type        = string
  default     = ""
}

variable "trace_forward_otlp_insecure" {
  description = "Send forwarded traces without TLS, for a collector inside the VPC."
  type        = bool
  default     = false
}

variable "prepare_image" {
  description = "Small image with a POSIX shell that prepares the task volumes and secret files."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.37"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "efs_volume" {
  description = "EFS access point to mount in the service container at container_path, through TLS with IAM authorization. The task role gets ClientMount, and ClientWrite unless read_only."
  type = object({
    file_system_id   = string
    file_system_arn  = string
    access_point_id  = string
    access_point_arn = string
    container_path   = string
    read_only        = bool
  })
  default = null
}
