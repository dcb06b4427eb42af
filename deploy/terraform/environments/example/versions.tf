terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.30.0, < 8.0.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.30.0, < 8.0.0"
    }
  }

  # State lives in a versioned bucket created once by hand (deploy/README.md, "Bootstrap"):
  #   terraform init -backend-config="bucket=STATE_BUCKET"
  backend "gcs" {
    prefix = "tunedrop/example"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
