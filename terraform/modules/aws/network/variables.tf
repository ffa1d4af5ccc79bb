variable "name" {
  description = "Name prefix for every resource, e.g. spamflow-prod."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 range of the VPC. Each subnet gets a /20 of it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zone names to spread subnets over, e.g. [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]. MSK needs 2 or 3."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "availability_zones must name 2 or 3 zones, because MSK places brokers evenly across 2 or 3 zones."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for all zones (cheaper) instead of one per zone (survives a zone outage)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the VPC flow log group."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Days to keep VPC flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
