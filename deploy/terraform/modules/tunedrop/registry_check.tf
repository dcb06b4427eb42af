# The weekly registry check: a manual Cloud Build trigger that runs `tunedrop models check` against
# Google's supervised-tuning, tuning-reference and model-versions pages, started every week by Cloud
# Scheduler. A difference (or a page that cannot be read) fails the build and logs a line the
# registry_drift alert counts. Off unless registry_check_repository_uri names this repository.

locals {
  registry_check_count = var.registry_check_repository_uri == "" ? 0 : 1
}

# The build runs as its own account: it only writes its logs.
resource "google_service_account" "registry_check" {
  count        = local.registry_check_count
  project      = var.project_id
  account_id   = "${local.prefix}-registry-check"
  display_name = "Tunedrop weekly model-registry check (Cloud Build)"
}

resource "google_project_iam_member" "registry_check_logs" {
  count   = local.registry_check_count
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.registry_check[0].email}"
}

resource "google_cloudbuild_trigger" "registry_check" {
  count           = local.registry_check_count
  project         = var.project_id
  location        = var.region
  name            = "${local.prefix}-registry-check"
  description     = "Weekly: compare Tunedrop's model registry with Google's tuning and model-versions pages."
  service_account = google_service_account.registry_check[0].id

  source_to_build {
    uri       = var.registry_check_repository_uri
    ref       = "refs/heads/${var.registry_check_branch}"
    repo_type = var.registry_check_repo_type
  }

  git_file_source {
    path      = "deploy/registry-check.cloudbuild.yaml"
    uri       = var.registry_check_repository_uri
    revision  = "refs/heads/${var.registry_check_branch}"
    repo_type = var.registry_check_repo_type
  }

  depends_on = [google_project_service.this]
}

# Cloud Scheduler starts the trigger with an account that may only run builds as the check's account.
resource "google_service_account" "registry_check_scheduler" {
  count        = local.registry_check_count
  project      = var.project_id
  account_id   = "${local.prefix}-registry-sched"
  display_name = "Tunedrop: starts the weekly registry check"
}

# Running a trigger takes one permission; a custom role grants that and nothing else.
resource "google_project_iam_custom_role" "registry_check_runner" {
  count       = local.registry_check_count
  project     = var.project_id
  role_id     = "${replace(local.prefix, "-", "_")}_registry_check_runner"
  title       = "Tunedrop registry check runner"
  description = "Starts builds (runs the weekly registry-check trigger)."
  permissions = ["cloudbuild.builds.create"]
}

resource "google_project_iam_member" "registry_check_scheduler_builds" {
  count   = local.registry_check_count
  project = var.project_id
  role    = google_project_iam_custom_role.registry_check_runner[0].name
  member  = "serviceAccount:${google_service_account.registry_check_scheduler[0].email}"
}

resource "google_service_account_iam_member" "registry_check_scheduler_act_as" {
  count              = local.registry_check_count
  service_account_id = google_service_account.registry_check[0].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.registry_check_scheduler[0].email}"
}

resource "google_cloud_scheduler_job" "registry_check" {
  count       = local.registry_check_count
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-registry-check"
  description = "Runs the ${local.prefix}-registry-check build trigger."
  schedule    = var.registry_check_schedule
  time_zone   = "Etc/UTC"

  http_target {
    http_method = "POST"
    uri         = "https://cloudbuild.googleapis.com/v1/projects/${var.project_id}/locations/${var.region}/triggers/${google_cloudbuild_trigger.registry_check[0].trigger_id}:run"
    body        = base64encode(jsonencode({ source = { branchName = var.registry_check_branch } }))
    headers     = { "Content-Type" = "application/json" }
    oauth_token {
      service_account_email = google_service_account.registry_check_scheduler[0].email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_project_service.this]
}

# Every DIFFERENCE line, and the check's own error when a page cannot be read.
resource "google_logging_metric" "registry_drift" {
  count       = local.registry_check_count
  project     = var.project_id
  name        = "${local.prefix}-registry-drift"
  description = "Lines of the weekly registry check that report a difference from Google's pages, or a page it could not read."
  filter      = "resource.type=\"build\" AND resource.labels.build_trigger_id=\"${google_cloudbuild_trigger.registry_check[0].trigger_id}\" AND (textPayload:\"DIFFERENCE\" OR textPayload:\"tunedrop models check:\")"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "registry_drift" {
  count        = local.registry_check_count
  project      = var.project_id
  display_name = "Tunedrop: the model registry differs from Google's pages"
  combiner     = "OR"
  conditions {
    display_name = "registry check reported a difference"
    condition_threshold {
      filter          = "resource.type = \"build\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.registry_drift[0].name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "3600s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
  documentation {
    content   = "The weekly `tunedrop models check` found a difference between shared/models.json and Google's documentation (or could not read a page). Read the build's log, update shared/models.json with each figure's source and the date read, and redeploy. See README.md, \"Base models and their lifecycle\"."
    mime_type = "text/markdown"
  }
  notification_channels = var.notification_channels
  alert_strategy {
    auto_close = "604800s"
  }
}
