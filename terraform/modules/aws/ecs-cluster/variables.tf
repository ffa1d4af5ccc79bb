variable "name" {
  description = "Cluster name, e.g. spamflow-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "vpc_cidr_block" {
  description = "IPv4 range of the VPC; the tasks may reach MSK and Redis inside it."
  type        = string
}

variable "service_discovery_namespace" {
  description = "Private DNS zone in which Cloud Map registers the gRPC services, e.g. spamflow.internal."
  type        = string
  default     = "spamflow.internal"
}

variable "grpc_ports" {
  description = "Ports the gRPC services listen on; tasks of the cluster may call each other on them."
  type        = list(number)
  default     = [50051, 50052]
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
