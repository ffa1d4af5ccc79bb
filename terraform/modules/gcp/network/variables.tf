variable "name" {
  description = "Name prefix, e.g. spamflow-prod."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region of the subnet."
  type        = string
}

variable "subnet_cidr" {
  description = "IPv4 range of the subnet that holds the Cloud Run egress interfaces and the Kafka endpoints."
  type        = string
  default     = "10.60.0.0/20"
}

variable "enable_nat" {
  description = "Create Cloud NAT so services can reach hosts outside Google. Google APIs need no NAT."
  type        = bool
  default     = false
}
