variable "name" {
  description = "Name prefix, e.g. spamflow-prod; the bucket is <project_id>-<name>-models."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Location of the bucket: the region of the Cloud Run services."
  type        = string
}

variable "writer_emails" {
  description = "Service accounts that read and write objects (the trainer)."
  type        = list(string)
}

variable "reader_emails" {
  description = "Service accounts that only read objects (the detectors)."
  type        = list(string)
}

variable "labels" {
  description = "Labels on the bucket."
  type        = map(string)
  default     = {}
}
