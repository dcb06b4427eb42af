variable "project_id" {
  description = "Project to deploy Tunedrop into."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id."
  }
}

variable "region" {
  description = "Region of the functions, scheduler and buckets."
  type        = string
  default     = "us-central1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region like us-central1."
  }
}

variable "tuning_region" {
  description = "Vertex AI region of the tuning jobs; null means var.region."
  type        = string
  default     = null
  validation {
    condition     = var.tuning_region == null || can(regex("^[a-z]+-[a-z]+[0-9]+$", var.tuning_region))
    error_message = "tuning_region must be a region like us-central1."
  }
}

variable "tuning_quota" {
  description = "Concurrent tuning jobs; equal to the project's global_concurrent_tuning_jobs quota."
  type        = number
  default     = 1
  validation {
    condition     = var.tuning_quota >= 1 && var.tuning_quota <= 1000 && floor(var.tuning_quota) == var.tuning_quota
    error_message = "tuning_quota must be a whole number in 1..1000."
  }
}

variable "quota_regions" {
  description = "Other regions whose active tuning jobs count against the global quota."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for r in var.quota_regions : can(regex("^[a-z]+-[a-z]+[0-9]+$", r))])
    error_message = "quota_regions must be regions like europe-west4."
  }
}

variable "default_base_model" {
  description = "Base model when an upload names none."
  type        = string
  default     = "gemini-3.5-flash"
  validation {
    condition     = length(trimspace(var.default_base_model)) > 0
    error_message = "default_base_model must not be empty."
  }
}

variable "poll_interval_minutes" {
  description = "Minutes between poll ticks."
  type        = number
  default     = 1
  validation {
    condition     = var.poll_interval_minutes >= 1 && var.poll_interval_minutes <= 59 && floor(var.poll_interval_minutes) == var.poll_interval_minutes
    error_message = "poll_interval_minutes must be a whole number in 1..59."
  }
}

variable "notification_channels" {
  description = "Notification channels (projects/P/notificationChannels/ID) for the alerts."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "Each notification channel must look like projects/PROJECT/notificationChannels/123."
  }
}

variable "source_archive_path" {
  description = "Zipped function source; null means build/function-source.zip at the repository root."
  type        = string
  default     = null
}

variable "reports_retention_days" {
  description = "Days validation reports are kept; null keeps them."
  type        = number
  default     = 90
  validation {
    condition     = var.reports_retention_days == null || try(var.reports_retention_days >= 1, false)
    error_message = "reports_retention_days must be null or at least 1."
  }
}

variable "registry_check_repository_uri" {
  description = "https:// URI of the repository holding this Tunedrop source, for the weekly model-registry check; empty turns it off."
  type        = string
  default     = ""
  validation {
    condition     = var.registry_check_repository_uri == "" || can(regex("^https://", var.registry_check_repository_uri))
    error_message = "registry_check_repository_uri must be empty or an https:// URI."
  }
}

variable "teams" {
  description = "Teams and their principals (user:, group:, serviceAccount:, domain:); each creates under incoming/<team>/ and datasets/<team>/ and reads those and reports/<team>/. Validated by the module."
  type = map(object({
    principals = list(string)
  }))
  default = {}
}

variable "default_team_policy" {
  description = "Policy of every team without one of its own (deploy/README.md, \"Team policies\"). Validated by the module."
  type = object({
    allowed_models          = optional(list(string))
    max_priority            = optional(number)
    max_slots               = optional(number)
    weight                  = optional(number)
    monthly_budget_usd      = optional(number)
    over_budget             = optional(string)
    max_epochs              = optional(number)
    allowed_label_keys      = optional(list(string))
    evaluation_max_cost_usd = optional(number)
  })
  default = {}
}

variable "tuning_service_accounts" {
  description = "Service accounts tuning jobs may run as. Validated by the module."
  type        = set(string)
  default     = []
}

variable "default_tuning_service_account" {
  description = "Service account of a job whose manifest names none (\"\": Vertex AI's own)."
  type        = string
  default     = ""
}

variable "encryption_keys" {
  description = "Cloud KMS keys (in the tuning region) tuning jobs may encrypt with. Validated by the module."
  type        = list(string)
  default     = []
}

variable "default_encryption_key" {
  description = "Key of a job whose manifest names none (\"\": Google-managed encryption)."
  type        = string
  default     = ""
}

variable "tuning_prices" {
  description = "Tuning prices in USD per million training tokens, by base model (budgets count jobs at these). Validated by the module."
  type        = map(number)
  default     = {}
}

variable "team_policies" {
  description = "Policies by team, set by operators; a field left out is default_team_policy's. Validated by the module."
  type = map(object({
    allowed_models          = optional(list(string))
    max_priority            = optional(number)
    max_slots               = optional(number)
    weight                  = optional(number)
    monthly_budget_usd      = optional(number)
    over_budget             = optional(string)
    max_epochs              = optional(number)
    allowed_label_keys      = optional(list(string))
    evaluation_max_cost_usd = optional(number)
  }))
  default = {}
}

variable "policy_change_reason" {
  description = "Why the team policies are what they are (one line, at most 500 characters): required while any policy is set. Tunedrop keeps it, with who applied, with each new version of the policies, so write a new one with each change (deploy/README.md, \"Team policies\")."
  type        = string
  default     = null
  validation {
    condition     = var.policy_change_reason == null ? true : length(var.policy_change_reason) <= 500 && !strcontains(var.policy_change_reason, "\n")
    error_message = "policy_change_reason: one line of at most 500 characters."
  }
}

variable "team_wait_alert_minutes" {
  description = "Minutes a team's next queued job may wait before the \"team waiting too long\" alert. Validated by the module."
  type        = number
  default     = 120
}

variable "evaluation_max_cost_usd" {
  description = "The most one evaluation-gate run may cost in USD, estimated before any model is called (over it: inconclusive, no model called). Validated by the module."
  type        = number
  default     = 5
}

variable "evaluation_concurrency" {
  description = "Model calls one evaluation makes at once (1 to 64). Validated by the module."
  type        = number
  default     = 8
}

variable "evaluation_max_examples" {
  description = "Held-out examples one evaluation judges at most, the first of the file (1 to 10000). Validated by the module."
  type        = number
  default     = 500
}
