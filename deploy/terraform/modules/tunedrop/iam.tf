# Least privilege: each function has its own runtime service account (modules/function) holding only
# what its code calls. deploy/README.md tables these grants with the reason for each; a test forbids
# primitive roles and project-wide admin roles.

locals {
  firestore_database_condition = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""

  # Project-level grants, for the services without finer-grained resources to bind on.
  runtime_project_roles = {
    "upload-datastore"    = { function = "upload", role = "roles/datastore.user" }
    "upload-aiplatform"   = { function = "upload", role = "roles/aiplatform.user" }
    "dispatch-datastore"  = { function = "dispatch", role = "roles/datastore.user" }
    "dispatch-aiplatform" = { function = "dispatch", role = "roles/aiplatform.user" }
    "poll-datastore"      = { function = "poll", role = "roles/datastore.user" }
    "poll-aiplatform"     = { function = "poll", role = "roles/aiplatform.user" }
    # The gate reads the job, records its verdict, and moves aliases (<prefix>_aliases) in the same database.
    "evaluate-datastore" = { function = "evaluate", role = "roles/datastore.user" }
  }

  # Who publishes where (the code's Publisher calls): queued jobs and freed slots wake the dispatcher;
  # outcomes go to the completions topic; every step of a job goes to the lifecycle (events) topic; the
  # poller's reconciler notifies again uploads whose notification was lost. Whoever publishes a completion
  # (shared/services/completions.py) also asks the gate to judge a SUCCEEDED job with promote_as, on the evaluate
  # topic; the gate publishes its promoted / held / candidate_ready events on the completions topic.
  runtime_topic_publishers = {
    "upload-dispatch"      = { function = "upload", topic = "dispatch" }
    "upload-completions"   = { function = "upload", topic = "completions" }
    "upload-lifecycle"     = { function = "upload", topic = "lifecycle" }
    "dispatch-completions" = { function = "dispatch", topic = "completions" }
    "dispatch-lifecycle"   = { function = "dispatch", topic = "lifecycle" }
    "poll-dispatch"        = { function = "poll", topic = "dispatch" }
    "poll-uploads"         = { function = "poll", topic = "uploads" }
    "poll-completions"     = { function = "poll", topic = "completions" }
    "poll-lifecycle"       = { function = "poll", topic = "lifecycle" }
    "upload-evaluate"      = { function = "upload", topic = "evaluate" }
    "dispatch-evaluate"    = { function = "dispatch", topic = "evaluate" }
    "poll-evaluate"        = { function = "poll", topic = "evaluate" }
    "evaluate-completions" = { function = "evaluate", topic = "completions" }
    "evaluate-evaluate"    = { function = "evaluate", topic = "evaluate" }
  }
}

resource "google_project_iam_member" "runtime" {
  for_each = local.runtime_project_roles
  project  = var.project_id
  role     = each.value.role
  member   = "serviceAccount:${module.function[each.value.function].runtime_service_account_email}"

  # Firestore grants are limited to Tunedrop's database.
  dynamic "condition" {
    for_each = each.value.role == "roles/datastore.user" && var.restrict_firestore_to_database ? [local.firestore_database_condition] : []
    content {
      title       = "tunedrop-database-only"
      description = "Only the Firestore database Tunedrop uses."
      expression  = condition.value
    }
  }
}

resource "google_pubsub_topic_iam_member" "runtime_publisher" {
  for_each = local.runtime_topic_publishers
  project  = var.project_id
  topic    = google_pubsub_topic.this[each.value.topic].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${module.function[each.value.function].runtime_service_account_email}"
}

# The upload validator reads datasets (any generation) ...
resource "google_storage_bucket_iam_member" "upload_reader" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${module.function["upload"].runtime_service_account_email}"
}

# ... writes (and, on a redelivery, overwrites) validation reports, under reports/ only ...
resource "google_storage_bucket_iam_member" "upload_report_writer" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${module.function["upload"].runtime_service_account_email}"
  condition {
    title       = "reports-only"
    description = "Validation reports under ${local.reports_prefix} only."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.datasets.name}/objects/${local.reports_prefix}\")"
  }
}

# ... and creates, never overwrites or deletes, the copies of validated datasets under tunedrop-staging/.
resource "google_storage_bucket_iam_member" "upload_copy_creator" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${module.function["upload"].runtime_service_account_email}"
  condition {
    title       = "validated-copies-only"
    description = "Copies of validated datasets under ${local.staging_prefix} only."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.datasets.name}/objects/${local.staging_prefix}\")"
  }
}

# The evaluation gate reads the held-out examples from Tunedrop's copy under tunedrop-staging/ only ...
resource "google_storage_bucket_iam_member" "evaluate_held_out_reader" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${module.function["evaluate"].runtime_service_account_email}"
  condition {
    title       = "validated-copies-only"
    description = "Copies of validated datasets under ${local.staging_prefix} only."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.datasets.name}/objects/${local.staging_prefix}\")"
  }
}

# ... and reads, writes and (on a redelivery) overwrites its results under reports/ only: the chunks it resumes
# from (evaluation-parts/), evaluation.jsonl and report.html.
resource "google_storage_bucket_iam_member" "evaluate_report_writer" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${module.function["evaluate"].runtime_service_account_email}"
  condition {
    title       = "reports-only"
    description = "Evaluation results and reports under ${local.reports_prefix} only."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.datasets.name}/objects/${local.reports_prefix}\")"
  }
}

# The gate calls two Vertex AI methods: PredictionService.GenerateContent, on publisher models and on tuned models'
# endpoints ("aiplatform.endpoints.predict" on the model resource), and EvaluationService.EvaluateInstances
# ("aiplatform.locations.evaluateInstances" on the location): package google.cloud.aiplatform.v1 / v1beta1,
# https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rpc/google.cloud.aiplatform.v1beta1 (read
# 2026-11-30). Every predefined role holding both (roles/aiplatform.user and up) also creates, deploys and deletes
# models, endpoints and jobs; Vertex AI's access-control guide recommends a custom role for exactly such a case,
# naming aiplatform.endpoints.predict as its example, https://cloud.google.com/vertex-ai/docs/general/access-control
# (read 2026-11-30). So a custom role with those two permissions and nothing else. Whether the pairwise autorater
# needs more of the caller, no page says: the first pairwise run against the real service will tell.
resource "google_project_iam_custom_role" "evaluation_gate" {
  project     = var.project_id
  role_id     = "${replace(local.prefix, "-", "_")}_evaluation_gate"
  title       = "Tunedrop evaluation gate"
  description = "Generates answers with Gemini models and tuned endpoints (GenerateContent) and scores them (EvaluateInstances)."
  permissions = ["aiplatform.endpoints.predict", "aiplatform.locations.evaluateInstances"]
}

resource "google_project_iam_member" "evaluate_vertex" {
  project = var.project_id
  role    = google_project_iam_custom_role.evaluation_gate.name
  member  = "serviceAccount:${module.function["evaluate"].runtime_service_account_email}"
}

# The poller's reconciler lists incoming/ to find uploads whose notification was lost.
resource "google_storage_bucket_iam_member" "poll_lister" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${module.function["poll"].runtime_service_account_email}"
}

# Vertex AI reads the training datasets as its service agent.
resource "google_storage_bucket_iam_member" "vertex_dataset_reader" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_project_service_identity.aiplatform.email}"
}

# A job that runs as one of the operators' tuning service accounts is created by the dispatcher, which must
# act as that account ("Users starting the pipeline must have the iam.serviceAccounts.actAs permission on this
# service account": TuningJob.serviceAccount, read 2026-11-30); granted on those accounts only.
resource "google_service_account_iam_member" "dispatch_acts_as_tuning_account" {
  for_each = var.tuning_service_accounts
  # "-" lets IAM find the account's own project from its email (accounts of other projects included).
  service_account_id = "projects/-/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${module.function["dispatch"].runtime_service_account_email}"
}

# The workload of such a job reads the validated copies of its datasets, as that account.
resource "google_storage_bucket_iam_member" "tuning_account_dataset_reader" {
  for_each = var.tuning_service_accounts
  bucket   = google_storage_bucket.datasets.name
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${each.value}"
  condition {
    title       = "validated-copies-only"
    description = "Copies of validated datasets under ${local.staging_prefix} only."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.datasets.name}/objects/${local.staging_prefix}\")"
  }
}

# Evaluation during tuning writes its results under the job's reports/<team>/<job_id>/evaluation/ ("The directory
# is created if it doesn't exist": GcsDestination.output_uri_prefix, aiplatform_v1 2.7, read 2026-11-30). No page
# says which identity writes them: the job's own account when it has one, else Vertex AI's agent; both may
# create objects under the reports prefix only (create, never overwrite or delete: the first run against the
# real service will say whether that is enough).
resource "google_storage_bucket_iam_member" "vertex_evaluation_writer" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_project_service_identity.aiplatform.email}"
  condition {
    title       = "evaluation-results-only"
    description = "Evaluation results under ${local.reports_prefix} only."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.datasets.name}/objects/${local.reports_prefix}\")"
  }
}

resource "google_storage_bucket_iam_member" "tuning_account_evaluation_writer" {
  for_each = var.tuning_service_accounts
  bucket   = google_storage_bucket.datasets.name
  role     = "roles/storage.objectCreator"
  member   = "serviceAccount:${each.value}"
  condition {
    title       = "evaluation-results-only"
    description = "Evaluation results under ${local.reports_prefix} only."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.datasets.name}/objects/${local.reports_prefix}\")"
  }
}

# --------------------------------------------------------------------------- build service account

resource "google_project_iam_member" "build" {
  for_each = {
    # Build logs.
    "log-writer" = { role = "roles/logging.logWriter", condition = null }
    # Cloud Run functions stages the source in its own gcf-v2-* buckets; the build reads it there.
    "gcf-staging" = {
      role      = "roles/storage.objectUser"
      condition = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\") || resource.name.startsWith(\"projects/_/buckets/gcf-v2-uploads-\")"
    }
  }
  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.build.email}"

  dynamic "condition" {
    for_each = each.value.condition == null ? [] : [each.value.condition]
    content {
      title       = "gcf-staging-buckets-only"
      description = "Only the buckets where Cloud Run functions stages function source."
      expression  = condition.value
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}
