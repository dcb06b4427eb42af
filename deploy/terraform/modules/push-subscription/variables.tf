variable "project_id" {
  description = "Project of the subscription."
  type        = string
}

variable "name" {
  description = "Subscription name; the dead-letter topic and subscription are name-dlq."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,250}$", var.name))
    error_message = "name must be a valid Pub/Sub subscription id (leaving room for the -dlq suffix)."
  }
}

variable "topic_id" {
  description = "Topic to subscribe to (projects/P/topics/T)."
  type        = string
}

variable "push_endpoint" {
  description = "HTTPS endpoint the messages are pushed to."
  type        = string
  validation {
    condition     = startswith(var.push_endpoint, "https://")
    error_message = "push_endpoint must be an https:// address."
  }
}

variable "audience" {
  description = "Audience of the OIDC token (the Cloud Run service URL)."
  type        = string
}

variable "invoker_service_account_email" {
  description = "Service account whose OIDC token authenticates each push."
  type        = string
}

variable "pubsub_service_agent_email" {
  description = "The project's Pub/Sub service agent (service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string
}

variable "ack_deadline_seconds" {
  description = "How long Pub/Sub waits for the endpoint's answer; longer than the function's timeout."
  type        = number
  default     = 600
  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be 10..600."
  }
}

variable "message_retention_duration" {
  description = "How long undelivered messages are kept, e.g. 604800s."
  type        = string
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration))
    error_message = "message_retention_duration must be a number of seconds like 600s."
  }
}

variable "dead_letter_retention" {
  description = "How long dead-lettered messages wait for a replay."
  type        = string
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention))
    error_message = "dead_letter_retention must be a number of seconds like 604800s."
  }
}

variable "minimum_backoff" {
  description = "First retry delay of the exponential backoff."
  type        = string
  default     = "10s"
}

variable "maximum_backoff" {
  description = "Largest retry delay of the exponential backoff."
  type        = string
  default     = "600s"
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message is dead-lettered."
  type        = number
  default     = 10
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be 5..100 (Pub/Sub's bounds)."
  }
}

variable "labels" {
  description = "Labels on the subscriptions and the dead-letter topic."
  type        = map(string)
  default     = {}
}
