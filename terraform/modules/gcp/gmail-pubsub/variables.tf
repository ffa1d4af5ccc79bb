variable "name" {
  description = "Name prefix of the topic, subscription, secret and push service account, e.g. spamflow-prod."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "push_enabled" {
  description = "Create the push subscription and its invoker grant. False while gmail-integration is not deployed."
  type        = bool
  default     = true
}

variable "push_service_uri" {
  description = "HTTPS URL of the gmail-integration Cloud Run service; the subscription pushes to <uri>/gmail/push. Null while push_enabled is false."
  type        = string
  default     = null
}

variable "push_service_name" {
  description = "Name of the gmail-integration Cloud Run service, on which the push identity gets roles/run.invoker."
  type        = string
  default     = null
}

variable "push_service_location" {
  description = "Region of the gmail-integration Cloud Run service."
  type        = string
  default     = null
}

variable "kms_key_id" {
  description = "Cloud KMS key for stored messages; null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the topic, subscription and secret."
  type        = map(string)
  default     = {}
}
