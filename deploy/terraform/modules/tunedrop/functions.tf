locals {
  # The four entry points of functions/main.py (tests/unit/deploy checks both directions).
  #
  # upload validates one dataset per request: 2 GiB and a whole vCPU per instance, concurrency 1.
  # Reading is streamed (16 MiB range reads behind a 1 MiB buffer), so memory does not grow with the
  # file; time does. A 1 GB dataset streams in about 7 s at ~150 MB/s; checking it is CPU-bound and
  # measured at ~265 MB/s for valid lines and ~70 MB/s when every line is invalid (the slow path) on
  # a developer machine, so even at a third of that speed 1 GB takes under a minute. 540 s leaves
  # ample room for slow reads, retried range requests and a cold start, and stays under the 600 s
  # push acknowledgement deadline, so a slow validation is not delivered a second time meanwhile.
  functions = {
    upload = {
      entry_point     = "on_upload"
      description     = "Validates a dataset dropped under incoming/ and records a QUEUED or REJECTED job."
      memory          = "2Gi"
      cpu             = "1"
      timeout_seconds = 540
      concurrency     = 1
      max_instances   = var.upload_max_instances
    }
    dispatch = {
      entry_point     = "on_dispatch"
      description     = "Submits queued jobs to Vertex AI tuning within the concurrent-job quota."
      memory          = "1Gi"
      cpu             = "1"
      timeout_seconds = 300
      concurrency     = 1
      max_instances   = 3
    }
    poll = {
      entry_point     = "on_poll"
      description     = "Reads running jobs' states from Vertex AI, records outcomes, publishes completion events."
      memory          = "1Gi"
      cpu             = "1"
      timeout_seconds = 300
      concurrency     = 1
      max_instances   = 2
    }
    # evaluate judges one job per request: up to TUNEDROP_EVALUATION_MAX_EXAMPLES (500) held-out examples x 2
    # generations, TUNEDROP_EVALUATION_CONCURRENCY (8) at a time, a chunk of 20 examples at a time, each chunk written
    # under reports/ before the next (shared/services/gate.py). At ~2-4 s a generation, 1,000 of them 8 at a time take
    # 4-8 minutes, plus the judge: two batched EvaluateInstances calls per chunk for exact match, BLEU and ROUGE, one
    # autorater call per example for pairwise. 540 s, the longest that stays under the 600 s push acknowledgement
    # deadline, fits a typical exact-match run in one delivery; a longer one is cut at the timeout and its redelivery
    # goes on from the first chunk not written, so at most one chunk is asked twice. The work waits on the network,
    # so one vCPU does (the bootstrap's 2,000 resamples take milliseconds). 2 GiB: the held-out file is read whole
    # before the first examples are taken, so this leaves room for a file of a few hundred MB beside the chunk in hand.
    # Three instances at most: 3 evaluations x 8 calls is the gate's whole draw on the Vertex AI quota, and
    # evaluations are rare (one per succeeded job with promote_as).
    evaluate = {
      entry_point     = "on_evaluate"
      description     = "Judges a succeeded job's tuned model against its alias's champion on held-out data; promotes or holds it."
      memory          = "2Gi"
      cpu             = "1"
      timeout_seconds = 540
      concurrency     = 1
      max_instances   = 3
    }
  }

  # The operators' team policies as TUNEDROP_TEAM_POLICIES reads them; a field left unset (null) is left out, so
  # it falls back to the default policy's, then to Tunedrop's built-in value. `change` says who changed them and
  # why (shared/policy.py reads it as metadata, never as policy).
  team_policies_document = jsonencode({
    default = { for field, value in var.default_team_policy : field => value if value != null }
    teams = {
      for team, policy in var.team_policies : team => { for field, value in policy : field => value if value != null }
    }
    change = var.policy_change
  })
  # Whether any policy is set: then a recorded change must say why.
  team_policies_set = length(var.team_policies) > 0 || anytrue([for value in values(var.default_team_policy) : value != null])

  # Every setting of shared/config.py SETTINGS except the local-stack-only emulator host. Topic and
  # bucket names are set explicitly so the code never falls back to a default that does not exist.
  function_environment = {
    GOOGLE_CLOUD_PROJECT                    = var.project_id
    TUNEDROP_REGION                         = local.tuning_region
    TUNEDROP_BUCKET                         = google_storage_bucket.datasets.name
    TUNEDROP_INCOMING_PREFIX                = local.incoming_prefix
    TUNEDROP_REPORTS_PREFIX                 = local.reports_prefix
    TUNEDROP_DEFAULT_TEAM                   = var.default_team
    TUNEDROP_TEAM_POLICIES                  = local.team_policies_document
    TUNEDROP_TUNING_PRICES                  = jsonencode(var.tuning_prices)
    TUNEDROP_TUNING_SERVICE_ACCOUNTS        = join(",", sort(var.tuning_service_accounts))
    TUNEDROP_DEFAULT_TUNING_SERVICE_ACCOUNT = var.default_tuning_service_account
    TUNEDROP_ENCRYPTION_KEYS                = join(",", var.encryption_keys)
    TUNEDROP_DEFAULT_ENCRYPTION_KEY         = var.default_encryption_key
    TUNEDROP_UPLOADS_TOPIC                  = google_pubsub_topic.this["uploads"].name
    TUNEDROP_DISPATCH_TOPIC                 = google_pubsub_topic.this["dispatch"].name
    TUNEDROP_POLL_TOPIC                     = google_pubsub_topic.this["poll"].name
    TUNEDROP_COMPLETIONS_TOPIC              = google_pubsub_topic.this["completions"].name
    TUNEDROP_EVENTS_TOPIC                   = google_pubsub_topic.this["lifecycle"].name
    TUNEDROP_EVALUATE_TOPIC                 = google_pubsub_topic.this["evaluate"].name
    TUNEDROP_EVALUATION_MAX_COST_USD        = tostring(var.evaluation_max_cost_usd)
    TUNEDROP_EVALUATION_CONCURRENCY         = tostring(var.evaluation_concurrency)
    TUNEDROP_EVALUATION_MAX_EXAMPLES        = tostring(var.evaluation_max_examples)
    TUNEDROP_QUOTA                          = tostring(var.tuning_quota)
    TUNEDROP_QUOTA_REGIONS                  = join(",", var.quota_regions)
    TUNEDROP_BASE_MODEL                     = var.default_base_model
    TUNEDROP_MODEL_RETIRING_DAYS            = tostring(var.model_retiring_days)
    TUNEDROP_STRICT_VALIDATION              = tostring(var.strict_validation)
    TUNEDROP_RETIREMENT_NOTICE_DAYS         = join(",", [for days in var.retirement_notice_days : tostring(days)])
    TUNEDROP_COLLECTION_PREFIX              = var.collection_prefix
    TUNEDROP_FIRESTORE_DATABASE             = var.firestore_database
    TUNEDROP_SUBMIT_LEASE_SECONDS           = tostring(var.submit_lease_seconds)
    TUNEDROP_RETENTION_DAYS                 = tostring(var.job_retention_days)
    TUNEDROP_STUCK_SECONDS                  = tostring(var.stuck_pending_minutes * 60)
    TUNEDROP_MAX_RUNNING_SECONDS            = tostring(var.max_running_hours * 3600)
    # One page of incoming/ per poll tick, objects between 15 minutes (in a burst a notification may wait that
    # long for an instance; the upload's validation lease is as long) and a week old (jobs live far longer).
    TUNEDROP_RECONCILE_PAGE          = "500"
    TUNEDROP_RECONCILE_GRACE_SECONDS = "900"
    TUNEDROP_RECONCILE_WINDOW_DAYS   = tostring(min(7, var.job_retention_days - 1))
    # Beyond the upload subscription's retries: every delivery may take 540 s and wait up to 600 s.
    TUNEDROP_VALIDATION_TIMEOUT_SECONDS = tostring(max(7200, var.max_delivery_attempts * (540 + 600) + 600))
  }
}

# The document the functions get; its precondition refuses, at plan, policies recorded without a reason.
output "team_policies_document" {
  description = "TUNEDROP_TEAM_POLICIES as the functions get it: the team policies and who applied them and why."
  value       = local.team_policies_document
  precondition {
    condition     = var.policy_change == null || !local.team_policies_set || trimspace(try(coalesce(var.policy_change.reason, " "), " ")) != ""
    error_message = "policy_change_reason: say why the team policies are what they are (one line, at most 500 characters); Tunedrop keeps it, with who applied, with each new version of the policies. Write a new one with each change."
  }
}

module "function" {
  source   = "../function"
  for_each = local.functions

  project_id                 = var.project_id
  region                     = var.region
  name                       = "${local.prefix}-${each.key}"
  description                = each.value.description
  entry_point                = each.value.entry_point
  runtime                    = var.runtime
  source_bucket              = google_storage_bucket.sources.name
  source_object              = google_storage_bucket_object.source.name
  build_service_account_id   = google_service_account.build.id
  docker_repository          = google_artifact_registry_repository.functions.id
  memory                     = each.value.memory
  cpu                        = each.value.cpu
  timeout_seconds            = each.value.timeout_seconds
  concurrency                = each.value.concurrency
  min_instances              = 0
  max_instances              = each.value.max_instances
  environment                = local.function_environment
  pubsub_service_agent_email = google_project_service_identity.pubsub.email
  labels                     = merge(local.labels, { function = each.key })

  depends_on = [
    google_project_service.this,
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build_writer,
    google_storage_bucket_iam_member.build_source_reader,
  ]
}

# Checks between variables, at plan time (a variable's own validation may name another variable only from
# Terraform 1.9 on; this module supports 1.5): the defaults are among the allowed, and every key is in the
# tuning region (the functions refuse otherwise at cold start).
output "tuning_identity" {
  description = "What tuning jobs may run as and encrypt with, and the defaults (TUNEDROP_TUNING_SERVICE_ACCOUNTS ...)."
  value = {
    service_accounts        = sort(var.tuning_service_accounts)
    default_service_account = var.default_tuning_service_account
    encryption_keys         = var.encryption_keys
    default_encryption_key  = var.default_encryption_key
  }
  precondition {
    condition     = var.default_tuning_service_account == "" || contains(var.tuning_service_accounts, var.default_tuning_service_account)
    error_message = "default_tuning_service_account must be one of tuning_service_accounts (or empty)."
  }
  precondition {
    condition     = var.default_encryption_key == "" || contains(var.encryption_keys, var.default_encryption_key)
    error_message = "default_encryption_key must be one of encryption_keys (or empty)."
  }
  precondition {
    condition     = alltrue([for key in var.encryption_keys : split("/", key)[3] == local.tuning_region])
    error_message = "encryption_keys: each key must be in the tuning region (projects/P/locations/<region>/...)."
  }
}
