variable "project_id" {
  description = "Project that hosts everything: bucket, topics, functions, Firestore and the tuning jobs."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id (6-30 lowercase letters, digits, dashes)."
  }
}

variable "region" {
  description = "Region of the functions, the scheduler, the Artifact Registry repository and (by default) the buckets."
  type        = string
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region like us-central1."
  }
}

variable "tuning_region" {
  description = "Vertex AI region where tuning jobs run (TUNEDROP_REGION); null means var.region."
  type        = string
  default     = null
  validation {
    condition     = var.tuning_region == null || can(regex("^[a-z]+-[a-z]+[0-9]+$", var.tuning_region))
    error_message = "tuning_region must be a region like us-central1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (topics, subscriptions, functions, service accounts)."
  type        = string
  default     = "tunedrop"
  validation {
    # Keeps the longest service account ids ("<prefix>-dispatch-inv", "<prefix>-evaluate-inv") within 30 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,12}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-14 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tuning_quota" {
  description = "Concurrent tuning jobs Tunedrop may run (TUNEDROP_QUOTA); match the project's global_concurrent_tuning_jobs quota."
  type        = number
  default     = 1
  validation {
    condition     = var.tuning_quota >= 1 && var.tuning_quota <= 1000 && floor(var.tuning_quota) == var.tuning_quota
    error_message = "tuning_quota must be a whole number in 1..1000 (the range shared/config.py accepts)."
  }
}

variable "quota_regions" {
  description = "Other regions whose active tuning jobs count against the global quota (TUNEDROP_QUOTA_REGIONS); the tuning region always counts."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for r in var.quota_regions : can(regex("^[a-z]+-[a-z]+[0-9]+$", r))])
    error_message = "quota_regions must be regions like europe-west4."
  }
}

variable "default_base_model" {
  description = "Base model when an upload's metadata names none (TUNEDROP_BASE_MODEL)."
  type        = string
  default     = "gemini-3.5-flash"
  validation {
    condition     = length(trimspace(var.default_base_model)) > 0
    error_message = "default_base_model must not be empty."
  }
}

variable "model_retiring_days" {
  description = "Reports and events of a model whose new tuning closes within this many days carry model_retiring (TUNEDROP_MODEL_RETIRING_DAYS)."
  type        = number
  default     = 30
  validation {
    condition     = var.model_retiring_days >= 0 && var.model_retiring_days <= 365 && floor(var.model_retiring_days) == var.model_retiring_days
    error_message = "model_retiring_days must be a whole number 0..365."
  }
}

variable "strict_validation" {
  description = "Hygiene findings (duplicate examples, validation examples also in training) reject the upload instead of warning (TUNEDROP_STRICT_VALIDATION)."
  type        = bool
  default     = false
}

variable "tuning_service_accounts" {
  # A set: one grant per account (for_each), in no particular order.
  description = "Service accounts tuning jobs may run as (TUNEDROP_TUNING_SERVICE_ACCOUNTS): a manifest's service_account must be one of them. The dispatcher gets roles/iam.serviceAccountUser on each (to create jobs running as it), and each may read the validated copies of datasets. Empty: jobs run as Vertex AI's own tuning service agent."
  type        = set(string)
  default     = []
  validation {
    condition     = alltrue([for email in var.tuning_service_accounts : can(regex("^[a-z0-9][a-z0-9-]{0,62}@[a-z0-9][a-z0-9.-]{0,126}[.]gserviceaccount[.]com$", email)) && !can(regex("@gcp-sa-", email))])
    error_message = "tuning_service_accounts: each must be a service account email (name@project.iam.gserviceaccount.com), not a Google service agent."
  }
}

variable "default_tuning_service_account" {
  description = "Service account of a job whose manifest names none (TUNEDROP_DEFAULT_TUNING_SERVICE_ACCOUNT); one of tuning_service_accounts, or \"\" for Vertex AI's own."
  type        = string
  default     = ""
}

variable "encryption_keys" {
  description = "Cloud KMS keys tuning jobs may encrypt with (TUNEDROP_ENCRYPTION_KEYS), each in the tuning region: a manifest's encryption_key must be one of them. Grant Vertex AI's service agent roles/cloudkms.cryptoKeyEncrypterDecrypter on each key yourself (keys often live in another project)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for key in var.encryption_keys : can(regex("^projects/[a-z0-9][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z0-9-]+/keyRings/[A-Za-z0-9_-]{1,63}/cryptoKeys/[A-Za-z0-9_-]{1,63}$", key))])
    error_message = "encryption_keys: each must be projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "default_encryption_key" {
  description = "Key of a job whose manifest names none (TUNEDROP_DEFAULT_ENCRYPTION_KEY); one of encryption_keys, or \"\" for Google-managed encryption."
  type        = string
  default     = ""
}

variable "tuning_prices" {
  description = "Operators' tuning prices in USD per million training tokens, by base model name as `tunedrop models` lists it (TUNEDROP_TUNING_PRICES). They count jobs against team budgets for models the registry has no price for, or override its price (a negotiated rate). Model names are checked at cold start."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for price in values(var.tuning_prices) : price >= 0 && price <= 1000000])
    error_message = "tuning_prices: each price is USD per million training tokens, 0..1000000."
  }
}

variable "default_team" {
  description = "Team of the objects directly under incoming/ and datasets/, not in a team's folder (TUNEDROP_DEFAULT_TEAM)."
  type        = string
  default     = "default"
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.default_team))
    error_message = "default_team must be a team name: 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen."
  }
}

variable "retirement_notice_days" {
  description = "Days before a base model retires at which each succeeded job's tuned model gets a model_retiring lifecycle event (TUNEDROP_RETIREMENT_NOTICE_DAYS)."
  type        = list(number)
  default     = [30, 7]
  validation {
    condition     = alltrue([for days in var.retirement_notice_days : days >= 1 && days <= 365 && floor(days) == days])
    error_message = "retirement_notice_days must hold whole numbers of days 1..365."
  }
}

variable "poll_interval_minutes" {
  description = "Minutes between two scheduler poll ticks."
  type        = number
  default     = 1
  validation {
    condition     = var.poll_interval_minutes >= 1 && var.poll_interval_minutes <= 59 && floor(var.poll_interval_minutes) == var.poll_interval_minutes
    error_message = "poll_interval_minutes must be a whole number in 1..59."
  }
}

variable "submit_lease_seconds" {
  description = "How long a SUBMITTING claim holds before it is recovered (TUNEDROP_SUBMIT_LEASE_SECONDS)."
  type        = number
  default     = 300
  validation {
    condition     = var.submit_lease_seconds >= 60 && var.submit_lease_seconds <= 86400
    error_message = "submit_lease_seconds must be 60..86400 (longer than two Vertex AI call deadlines)."
  }
}

variable "job_retention_days" {
  description = "Days after which a finished job record expires through the Firestore TTL on expire_at (TUNEDROP_RETENTION_DAYS)."
  type        = number
  default     = 365
  validation {
    condition     = var.job_retention_days >= 2 && var.job_retention_days <= 3650
    error_message = "job_retention_days must be 2..3650 (the reconciler looks back one day less)."
  }
}

variable "stuck_pending_minutes" {
  description = "A job still pending on Vertex AI after this many minutes is reported stuck (TUNEDROP_STUCK_SECONDS)."
  type        = number
  default     = 60
  validation {
    condition     = var.stuck_pending_minutes >= 1 && var.stuck_pending_minutes <= 43200
    error_message = "stuck_pending_minutes must be 1..43200 (30 days)."
  }
}

variable "max_running_hours" {
  description = "A job running longer than this many hours is reported stuck (TUNEDROP_MAX_RUNNING_SECONDS)."
  type        = number
  default     = 48
  validation {
    condition     = var.max_running_hours >= 1 && var.max_running_hours <= 720
    error_message = "max_running_hours must be 1..720 (30 days)."
  }
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/ID) that receive the alerts."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "Each notification channel must look like projects/PROJECT/notificationChannels/123."
  }
}

variable "source_archive_path" {
  description = "Path of the zipped function source built by deploy/build_source.py."
  type        = string
  validation {
    condition     = endswith(var.source_archive_path, ".zip")
    error_message = "source_archive_path must point at a .zip file (python deploy/build_source.py writes build/function-source.zip)."
  }
}

variable "runtime" {
  description = "Cloud Run functions Python runtime (build the source with the same minor Python version)."
  type        = string
  default     = "python311"
  validation {
    condition     = can(regex("^python3(1[1-9])$", var.runtime))
    error_message = "runtime must be python311 or later."
  }
}

variable "bucket_name" {
  description = "Datasets bucket name (globally unique); null means <project>-<prefix>-datasets."
  type        = string
  default     = null
}

variable "bucket_location" {
  description = "Location of the buckets; null means var.region."
  type        = string
  default     = null
}

variable "reports_retention_days" {
  description = "Delete validation reports under reports/ this many days after they are written; null keeps them."
  type        = number
  default     = null
  validation {
    condition     = var.reports_retention_days == null || try(var.reports_retention_days >= 1, false)
    error_message = "reports_retention_days must be null or at least 1."
  }
}

variable "noncurrent_dataset_retention_days" {
  description = "Delete overwritten (noncurrent) dataset versions this many days after they were replaced; null keeps them forever."
  type        = number
  default     = null
  validation {
    condition     = var.noncurrent_dataset_retention_days == null || try(var.noncurrent_dataset_retention_days >= 1, false)
    error_message = "noncurrent_dataset_retention_days must be null or at least 1."
  }
}

variable "create_firestore_database" {
  description = "Create the Firestore database; false when the project already has it."
  type        = bool
  default     = true
}

variable "firestore_database" {
  description = "Firestore database id (TUNEDROP_FIRESTORE_DATABASE)."
  type        = string
  default     = "(default)"
  validation {
    condition     = var.firestore_database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be (default) or a valid database id."
  }
}

variable "firestore_location" {
  description = "Firestore location (a region or a multi-region like nam5); null means var.region."
  type        = string
  default     = null
}

variable "restrict_firestore_to_database" {
  description = "Limit the functions' Firestore role to Tunedrop's database with an IAM condition (false grants it on every database of the project)."
  type        = bool
  default     = true
}

variable "collection_prefix" {
  description = "Prefix of the Firestore collections (TUNEDROP_COLLECTION_PREFIX)."
  type        = string
  default     = "tunedrop"
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,60}$", var.collection_prefix))
    error_message = "collection_prefix must start with a letter and hold letters, digits, _ or -."
  }
}

variable "job_ttl_enabled" {
  description = "Enable the Firestore TTL policy on the job documents' expire_at field."
  type        = bool
  default     = true
}

variable "upload_max_instances" {
  description = "Upper bound on upload validator instances (each validates one dataset at a time)."
  type        = number
  default     = 10
  validation {
    condition     = var.upload_max_instances >= 1 && var.upload_max_instances <= 100
    error_message = "upload_max_instances must be 1..100."
  }
}

variable "evaluation_max_cost_usd" {
  description = "The most one evaluation-gate run may cost in USD, estimated before any model is called; over it no model is called and the verdict is inconclusive (TUNEDROP_EVALUATION_MAX_COST_USD). A team policy or a manifest's gate may only lower it."
  type        = number
  default     = 5
  validation {
    # The bounds shared/config.py accepts; 0 turns every evaluation into an inconclusive verdict.
    condition     = var.evaluation_max_cost_usd >= 0 && var.evaluation_max_cost_usd <= 100000
    error_message = "evaluation_max_cost_usd must be 0..100000 (USD)."
  }
}

variable "evaluation_concurrency" {
  description = "Model calls (GenerateContent) one evaluation makes at once (TUNEDROP_EVALUATION_CONCURRENCY); times the evaluate function's max instances, it bounds the gate's share of the project's Vertex AI quota."
  type        = number
  default     = 8
  validation {
    condition     = var.evaluation_concurrency >= 1 && var.evaluation_concurrency <= 64 && floor(var.evaluation_concurrency) == var.evaluation_concurrency
    error_message = "evaluation_concurrency must be a whole number 1..64."
  }
}

variable "evaluation_max_examples" {
  description = "Held-out examples one evaluation judges at most, the first ones of the file (TUNEDROP_EVALUATION_MAX_EXAMPLES); each costs two generations and, for the pairwise metric, one autorater call."
  type        = number
  default     = 500
  validation {
    condition     = var.evaluation_max_examples >= 1 && var.evaluation_max_examples <= 10000 && floor(var.evaluation_max_examples) == var.evaluation_max_examples
    error_message = "evaluation_max_examples must be a whole number 1..10000."
  }
}

variable "max_delivery_attempts" {
  description = "Push deliveries before a message is dead-lettered."
  type        = number
  default     = 10
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be 5..100."
  }
}

variable "dead_letter_retention_days" {
  description = "Days dead-lettered messages wait for a replay."
  type        = number
  default     = 7
  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 31
    error_message = "dead_letter_retention_days must be 1..31."
  }
}

variable "error_rate_threshold" {
  description = "Fraction of a function's requests answered 5xx over 5 minutes that raises the error-rate alert."
  type        = number
  default     = 0.05
  validation {
    condition     = var.error_rate_threshold > 0 && var.error_rate_threshold < 1
    error_message = "error_rate_threshold must be between 0 and 1."
  }
}

variable "stuck_after_minutes" {
  description = "Age of the oldest unacknowledged message on a function's subscription that raises the jobs-stuck alert."
  type        = number
  default     = 30
  validation {
    condition     = var.stuck_after_minutes >= 5
    error_message = "stuck_after_minutes must be at least 5."
  }
}

variable "enable_apis" {
  description = "Enable the APIs Tunedrop needs (false when another team manages project services)."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "teams" {
  description = "Teams by name, each with its IAM principals: they create objects under incoming/<team>/ and datasets/<team>/ and read those and reports/<team>/ (modules/team-access; deploy/README.md, \"Adding a team\")."
  type = map(object({
    principals = list(string)
  }))
  default = {}
  validation {
    # A team name is one path segment of the object names (incoming/<team>/...).
    condition     = alltrue([for team in keys(var.teams) : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", team))])
    error_message = "Team names must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen."
  }
  validation {
    condition = alltrue(flatten([
      for team in values(var.teams) : [
        for principal in team.principals : can(regex("^((user|group|serviceAccount):[^@\\s]+@[^@\\s]+\\.[^@\\s]+|domain:[a-z0-9.-]+\\.[a-z]+)$", principal))
      ]
    ]))
    error_message = "Each principal must be user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN (never allUsers or allAuthenticatedUsers)."
  }
  validation {
    condition     = alltrue([for team in values(var.teams) : length(team.principals) > 0])
    error_message = "Each team needs at least one principal."
  }
}

variable "registry_check_repository_uri" {
  description = "URI of the repository that holds this Tunedrop source (e.g. https://github.com/ORG/tunedrop); the weekly model-registry check builds from it. Empty: no registry check."
  type        = string
  default     = ""
  validation {
    condition     = var.registry_check_repository_uri == "" || can(regex("^https://", var.registry_check_repository_uri))
    error_message = "registry_check_repository_uri must be empty or an https:// repository URI."
  }
}

variable "registry_check_repo_type" {
  description = "Kind of repository registry_check_repository_uri names (Cloud Build's repo_type)."
  type        = string
  default     = "GITHUB"
  validation {
    condition     = contains(["GITHUB", "CLOUD_SOURCE_REPOSITORIES", "BITBUCKET_SERVER", "GITLAB"], var.registry_check_repo_type)
    error_message = "registry_check_repo_type must be GITHUB, CLOUD_SOURCE_REPOSITORIES, BITBUCKET_SERVER or GITLAB."
  }
}

variable "registry_check_branch" {
  description = "Branch the weekly model-registry check builds."
  type        = string
  default     = "main"
  validation {
    condition     = length(trimspace(var.registry_check_branch)) > 0
    error_message = "registry_check_branch must not be empty."
  }
}

variable "registry_check_schedule" {
  description = "Cron schedule (UTC) of the model-registry check; weekly by default (Mondays 06:00)."
  type        = string
  default     = "0 6 * * 1"
  validation {
    condition     = length(split(" ", var.registry_check_schedule)) == 5
    error_message = "registry_check_schedule must be a five-field cron expression."
  }
}

variable "staging_retention_days" {
  description = "Days Tunedrop's copies of validated datasets (tunedrop-staging/, what Vertex AI reads) are kept; longer than any job waits and runs."
  type        = number
  default     = 30
  validation {
    condition     = var.staging_retention_days >= 7 && floor(var.staging_retention_days) == var.staging_retention_days
    error_message = "staging_retention_days must be a whole number of at least 7."
  }
}

variable "default_team_policy" {
  description = "Team policy of every team without one of its own, and the fields a team's policy leaves out (TUNEDROP_TEAM_POLICIES; deploy/README.md, \"Team policies\"). Unset fields: today's behaviour (every model, priority up to 1000, no slot cap, weight 1, no budget, no epoch cap beyond the model's, any label key)."
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
  default  = {}
  nullable = false
  validation {
    condition = alltrue([for policy in [var.default_team_policy] : alltrue([
      policy.allowed_models == null ? true : length(policy.allowed_models) > 0,
      policy.max_priority == null ? true : (policy.max_priority >= -1000 && policy.max_priority <= 1000 && floor(policy.max_priority) == policy.max_priority),
      policy.max_slots == null ? true : (policy.max_slots >= 1 && policy.max_slots <= 1000 && floor(policy.max_slots) == policy.max_slots),
      policy.weight == null ? true : (policy.weight >= 1 && policy.weight <= 1000 && floor(policy.weight) == policy.weight),
      policy.monthly_budget_usd == null ? true : policy.monthly_budget_usd >= 0,
      policy.evaluation_max_cost_usd == null ? true : policy.evaluation_max_cost_usd >= 0,
      policy.over_budget == null ? true : contains(["wait", "reject"], policy.over_budget),
      policy.max_epochs == null ? true : (policy.max_epochs >= 1 && policy.max_epochs <= 10000 && floor(policy.max_epochs) == policy.max_epochs),
      policy.allowed_label_keys == null ? true : alltrue([for key in policy.allowed_label_keys : can(regex("^[a-z][a-z0-9_-]{0,62}$", key))]),
    ])])
    error_message = "default_team_policy: allowed_models must not be empty; max_priority a whole number -1000..1000; max_slots and weight whole numbers 1..1000; monthly_budget_usd and evaluation_max_cost_usd 0 or more; over_budget \"wait\" or \"reject\"; max_epochs a whole number 1..10000; allowed_label_keys valid Vertex AI label keys. Tunedrop checks model names at cold start."
  }
}

# Between the two policy variables on purpose: the policies' rendering reads these three variables alone.
variable "policy_change" {
  description = "Who applies the team policies and why they are what they are: rendered into TUNEDROP_TEAM_POLICIES as `change`, which changes no policy; Tunedrop keeps it with each new version of the policies (`tunedrop policy history`), so the apply that changes them is the one recorded. The example environment sets it from the applying identity and policy_change_reason (deploy/README.md, \"Team policies\"). The reason is required while any policy is set. null: not recorded."
  type = object({
    changed_by = string
    reason     = string
  })
  default = null
  validation {
    condition = var.policy_change == null ? true : (
      try(length(var.policy_change.changed_by), 0) <= 320 && try(length(var.policy_change.reason), 0) <= 500
    )
    error_message = "policy_change: changed_by is at most 320 characters and reason at most 500 (what Tunedrop keeps)."
  }
}

variable "team_policies" {
  description = "Team policies by team name, set by operators: a field left out is default_team_policy's (TUNEDROP_TEAM_POLICIES; deploy/README.md, \"Team policies\"). An upload asking for more than its team's policy allows is REJECTED naming the policy."
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
  default  = {}
  nullable = false
  validation {
    condition     = alltrue([for team in keys(var.team_policies) : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", team))])
    error_message = "Team names must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen."
  }
  validation {
    condition = alltrue([for policy in values(var.team_policies) : alltrue([
      policy.allowed_models == null ? true : length(policy.allowed_models) > 0,
      policy.max_priority == null ? true : (policy.max_priority >= -1000 && policy.max_priority <= 1000 && floor(policy.max_priority) == policy.max_priority),
      policy.max_slots == null ? true : (policy.max_slots >= 1 && policy.max_slots <= 1000 && floor(policy.max_slots) == policy.max_slots),
      policy.weight == null ? true : (policy.weight >= 1 && policy.weight <= 1000 && floor(policy.weight) == policy.weight),
      policy.monthly_budget_usd == null ? true : policy.monthly_budget_usd >= 0,
      policy.evaluation_max_cost_usd == null ? true : policy.evaluation_max_cost_usd >= 0,
      policy.over_budget == null ? true : contains(["wait", "reject"], policy.over_budget),
      policy.max_epochs == null ? true : (policy.max_epochs >= 1 && policy.max_epochs <= 10000 && floor(policy.max_epochs) == policy.max_epochs),
      policy.allowed_label_keys == null ? true : alltrue([for key in policy.allowed_label_keys : can(regex("^[a-z][a-z0-9_-]{0,62}$", key))]),
    ])])
    error_message = "team_policies: allowed_models must not be empty; max_priority a whole number -1000..1000; max_slots and weight whole numbers 1..1000; monthly_budget_usd and evaluation_max_cost_usd 0 or more; over_budget \"wait\" or \"reject\"; max_epochs a whole number 1..10000; allowed_label_keys valid Vertex AI label keys. Tunedrop checks model names at cold start."
  }
}
