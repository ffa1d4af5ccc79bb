variable "name" {
  description = "Name prefix of the deployment; the key alias becomes alias/<name>."
  type        = string
}

variable "deletion_window_days" {
  description = "Days a scheduled key deletion waits before the key and all data encrypted with it become unreadable."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
