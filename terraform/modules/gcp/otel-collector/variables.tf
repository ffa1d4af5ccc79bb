variable "name" {
  description = "Secret name prefix, e.g. spamflow-prod."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "labels" {
  description = "Labels on the secret."
  type        = map(string)
  default     = {}
}
