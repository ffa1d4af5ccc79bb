variable "name" {
  description = "Topic and subscription name prefix, e.g. spamflow-prod."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "subscriber_service_account_email" {
  description = "Service account of gmail-integration, which pulls the notifications."
  type        = string
}

variable "kms_key_id" {
  description = "Cloud KMS key for stored messages; null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the topic and subscription."
  type        = map(string)
  default     = {}
}
