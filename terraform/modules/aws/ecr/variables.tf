variable "name" {
  description = "Repository name prefix, e.g. spamflow; repositories are <name>/<image>."
  type        = string
}

variable "images" {
  description = "Image names, one repository each."
  type        = set(string)
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the stored images."
  type        = string
}

variable "keep_image_count" {
  description = "Images kept per repository; older ones are expired."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
