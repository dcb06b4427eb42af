variable "project_id" {
  description = "Project that hosts the function."
  type        = string
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "name" {
  description = "Function name; also the runtime service account id (the invoker's is name-inv)."
  type        = string
  validation {
    # Service account ids are 6 to 30 characters; the invoker's adds "-inv".
    condition     = can(regex("^[a-z][a-z0-9-]{4,24}[a-z0-9]$", var.name))
    error_message = "name must be 6-26 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "description" {
  description = "What the function does."
  type        = string
  default     = ""
}

variable "entry_point" {
  description = "Name of the function in the source's main.py (functions/main.py in this repository)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.entry_point))
    error_message = "entry_point must be a Python identifier."
  }
}

variable "runtime" {
  description = "Cloud Run functions runtime id."
  type        = string
  default     = "python311"
  validation {
    condition     = can(regex("^python3(1[1-9])$", var.runtime))
    error_message = "runtime must be python311 or later (the code needs Python 3.11+)."
  }
}

variable "source_bucket" {
  description = "Bucket holding the zipped source (deploy/build_source.py builds it)."
  type        = string
}

variable "source_object" {
  description = "Object name of the zipped source in source_bucket."
  type        = string
}

variable "build_service_account_id" {
  description = "Fully qualified id (projects/P/serviceAccounts/EMAIL) of the service account Cloud Build builds with."
  type        = string
}

variable "docker_repository" {
  description = "Artifact Registry repository (projects/P/locations/L/repositories/R) for the built images."
  type        = string
}

variable "memory" {
  description = "Memory of one instance, e.g. 512Mi or 2Gi."
  type        = string
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like 512Mi or 2Gi."
  }
}

variable "cpu" {
  description = "vCPUs of one instance."
  type        = string
  default     = "1"
}

variable "timeout_seconds" {
  description = "Request timeout. Keep it below the push subscription's ack deadline (at most 600 s)."
  type        = number
  validation {
    condition     = var.timeout_seconds >= 10 && var.timeout_seconds <= 570
    error_message = "timeout_seconds must be 10..570 so that a push delivery is answered within its 600 s ack deadline."
  }
}

variable "concurrency" {
  description = "Requests one instance serves at once."
  type        = number
  default     = 1
  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be 1..1000."
  }
}

variable "min_instances" {
  description = "Instances kept warm (0 means no cost when idle)."
  type        = number
  default     = 0
  validation {
    condition     = var.min_instances >= 0
    error_message = "min_instances must be 0 or more."
  }
}

variable "max_instances" {
  description = "Upper bound on instances."
  type        = number
  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000
    error_message = "max_instances must be 1..1000."
  }
}

variable "environment" {
  description = "Environment variables of the function (the settings of shared/config.py)."
  type        = map(string)
}

variable "pubsub_service_agent_email" {
  description = "The project's Pub/Sub service agent, which mints the push subscriptions' OIDC tokens."
  type        = string
}

variable "labels" {
  description = "Labels on the function."
  type        = map(string)
  default     = {}
}
