terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }

  # The state contains the Redis AUTH token. Keep it in an encrypted, access-controlled
  # backend, e.g. uncomment and fill in:
  #
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "spamflow/prod/terraform.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge({ Project = "spamflow", Environment = var.environment }, var.tags)
  }
}
