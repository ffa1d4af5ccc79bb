# The ECS cluster that runs the spamflow services on Fargate, the Cloud Map namespace that
# gives the gRPC services stable DNS names, and the security group every task uses.
#
# The security group allows only the traffic the services need: gRPC between tasks, Kafka
# (9098) and Redis (6379) inside the VPC, and HTTPS out for the Gmail API, AWS APIs and
# image pulls. DNS goes to the VPC resolver, which security groups do not filter.

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = var.service_discovery_namespace
  description = "DNS names of the spamflow gRPC services"
  vpc         = var.vpc_id

  tags = var.tags
}

resource "aws_security_group" "tasks" {
  #checkov:skip=CKV2_AWS_5:The ECS services of the ecs-service module attach this group; checkov does not follow the ID across modules.
  name        = "${var.name}-tasks"
  description = "spamflow ECS tasks"
  vpc_id      = var.vpc_id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "grpc_from_tasks" {
  for_each = toset([for port in var.grpc_ports : tostring(port)])

  security_group_id            = aws_security_group.tasks.id
  description                  = "gRPC between spamflow tasks"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "grpc_to_tasks" {
  for_each = toset([for port in var.grpc_ports : tostring(port)])

  security_group_id            = aws_security_group.tasks.id
  description                  = "gRPC between spamflow tasks"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "kafka" {
  security_group_id = aws_security_group.tasks.id
  description       = "MSK brokers, IAM/TLS listener"
  ip_protocol       = "tcp"
  from_port         = 9098
  to_port           = 9098
  cidr_ipv4         = var.vpc_cidr_block
}

resource "aws_vpc_security_group_egress_rule" "redis" {
  security_group_id = aws_security_group.tasks.id
  description       = "ElastiCache Redis over TLS"
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
  cidr_ipv4         = var.vpc_cidr_block
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS: Gmail API, AWS APIs (X-Ray, Secrets Manager, ECR), image pulls"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
