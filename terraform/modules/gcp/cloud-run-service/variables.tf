variable "name" {
  description = "Service name, e.g. spam-detector."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region of the service."
  type        = string
}

variable "image" {
  description = "Container image, ideally pinned by digest or an immutable tag."
  type        = string
}

variable "service_account_email" {
  description = "Service account the service runs as."
  type        = string
}

variable "port" {
  description = "Port the service listens on: its gRPC port, or its health/metrics HTTP port for Kafka consumers."
  type        = number
}

variable "grpc" {
  description = "Serve gRPC: Cloud Run then forwards requests as HTTP/2 cleartext (h2c) to the port."
  type        = bool
  default     = false
}

variable "health_check" {
  description = "Startup and liveness probe: grpc (gRPC health protocol), http (GET health_check_path) or tcp."
  type        = string

  validation {
    condition     = contains(["grpc", "http", "tcp"], var.health_check)
    error_message = "health_check must be grpc, http or tcp."
  }
}

variable "health_check_path" {
  description = "Path of the http health check."
  type        = string
  default     = "/healthz"
}

variable "environment" {
  description = "Plain environment variables of the service container."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Environment variables read from Secret Manager (latest version): variable name to secret ID."
  type        = map(string)
  default     = {}
}

variable "secret_files" {
  description = "Secrets mounted as files: folder name under /run/spamflow/secrets to the secret ID and file name."
  type = map(object({
    secret    = string
    file_name = string
  }))
  default = {}
}

variable "gcs_volume" {
  description = "Cloud Storage bucket to mount in the service container at mount_path; switches the service to the gen2 execution environment. The service account needs an object role on the bucket."
  type = object({
    bucket     = string
    mount_path = string
    read_only  = bool
    # gcsfuse flags without the leading dashes, e.g. uid=10001.
    mount_options = optional(list(string), [])
  })
  default = null
}

variable "cpu" {
  description = "CPU limit of the service container, e.g. \"1\"."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of the service container, e.g. \"512Mi\"."
  type        = string
  default     = "512Mi"
}

variable "cpu_always_allocated" {
  description = "Keep CPU allocated between requests. Required for Kafka consumers, which work without incoming requests."
  type        = bool
  default     = false
}

variable "min_instances" {
  description = "Instances kept running; at least 1 for Kafka consumers."
  type        = number
  default     = 1
}

variable "max_instances" {
  description = "Upper bound of autoscaling. For consumers, instances beyond the partition count stay idle."
  type        = number
  default     = 3
}

variable "subnet_id" {
  description = "Subnet that receives all outbound traffic (direct VPC egress)."
  type        = string
}

variable "network_id" {
  description = "VPC network of subnet_id."
  type        = string
}

variable "ingress" {
  description = "Who may reach the service: INGRESS_TRAFFIC_INTERNAL_ONLY (the VPC and Google services of the project) or INGRESS_TRAFFIC_ALL."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
}

variable "invoker_iam_disabled" {
  description = "Skip Cloud Run's roles/run.invoker check. False requires callers to send a Google-signed ID token of a member holding that role."
  type        = bool
  default     = true
}

variable "collector_config_secret_id" {
  description = "Secret with the OpenTelemetry collector configuration (otel-collector module)."
  type        = string
}

variable "collector_config_version" {
  description = "Secret version of the collector configuration to mount."
  type        = string
  default     = "latest"
}

variable "collector_image" {
  description = "OpenTelemetry collector (contrib distribution) image for the tracing sidecar."
  type        = string
  default     = "otel/opentelemetry-collector-contrib:0.125.0"
}

variable "deletion_protection" {
  description = "Make terraform destroy fail for this service while true."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on the service."
  type        = map(string)
  default     = {}
}
