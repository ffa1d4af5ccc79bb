variable "name" {
  description = "Cluster name, e.g. spamflow-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the brokers, one per availability zone (2 or 3)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups whose members may connect to the brokers."
  type        = list(string)
}

variable "kafka_version" {
  description = "Apache Kafka version of the cluster, as MSK names it."
  type        = string
  default     = "3.8.x"
}

variable "broker_instance_type" {
  description = "Broker instance type. kafka.t3.small suits trials; production loads need kafka.m7g.large or larger."
  type        = string
  default     = "kafka.t3.small"
}

variable "brokers_per_zone" {
  description = "Brokers in each subnet's availability zone."
  type        = number
  default     = 1
}

variable "broker_volume_size_gb" {
  description = "EBS storage per broker in GiB."
  type        = number
  default     = 100
}

variable "default_partitions" {
  description = "Partitions of a topic created without an explicit count."
  type        = number
  default     = 6
}

variable "kms_key_arn" {
  description = "KMS key that encrypts broker storage and the broker log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep broker logs in CloudWatch."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
