terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.30, < 8.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }

  # The state contains the Redis AUTH string. Keep it in an encrypted, access-controlled
  # backend, e.g. uncomment and fill in:
  #
  # backend "gcs" {
  #   bucket = "my-terraform-state"
  #   prefix = "spamflow/prod"
  # }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
