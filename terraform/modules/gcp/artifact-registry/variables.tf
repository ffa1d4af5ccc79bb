variable "name" {
  description = "Repository ID, e.g. spamflow."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region of the repository; the same as Cloud Run keeps pulls regional."
  type        = string
}

variable "keep_image_count" {
  description = "Newest versions kept per image; older versions past 30 days are deleted."
  type        = number
  default     = 30
}

variable "kms_key_id" {
  description = "Cloud KMS key for stored images; null uses Google-managed encryption."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the repository."
  type        = map(string)
  default     = {}
}
