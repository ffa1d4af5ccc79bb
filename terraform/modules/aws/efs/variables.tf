variable "name" {
  description = "Name prefix of the file system and security groups, e.g. spamflow-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the mount targets."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per zone, that get a mount target."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the file system at rest."
  type        = string
}

variable "uid" {
  description = "POSIX user and group the access point maps every client to: the services' user."
  type        = number
  default     = 10001
}

variable "backup" {
  description = "Enable the daily AWS Backup of the file system."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
