output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets, one per availability zone, for tasks, brokers and Redis."
  value       = aws_subnet.private[*].id
}

output "nat_public_ips" {
  description = "Public addresses that outbound traffic from the tasks comes from, for allowlists of outside services."
  value       = aws_eip.nat[*].public_ip
}
