# Tunedrop: everything one environment needs, in one project.
#
#   storage.tf     datasets bucket (+ notification into the uploads topic), sources bucket
#   pubsub.tf      topics and one push subscription per (topic, function), each with a dead-letter queue
#   functions.tf   the four functions and their environment (the settings of shared/config.py)
#   iam.tf         the runtime service accounts' roles (tabled in deploy/README.md)
#   firestore.tf   database, composite indexes (from ../../firestore_indexes.json) and the TTL policy
#   scheduler.tf   the poll tick
#   monitoring.tf  log-based metrics, alert policies and a dashboard
#   registry_check.tf  the weekly `tunedrop models check` (Cloud Build trigger, scheduler, drift alert)
#   teams.tf       each team's principals, limited to their own prefixes (../team-access)

locals {
  prefix          = var.name_prefix
  tuning_region   = coalesce(var.tuning_region, var.region)
  bucket_location = upper(coalesce(var.bucket_location, var.region))
  labels          = merge({ app = "tunedrop" }, var.labels)

  # Object prefixes; the code's defaults (TUNEDROP_INCOMING_PREFIX, TUNEDROP_REPORTS_PREFIX) match.
  incoming_prefix = "incoming/"
  reports_prefix  = "reports/"
  # The copies of validated datasets (shared/services/upload.py STAGING_PREFIX); only Tunedrop writes there.
  staging_prefix = "tunedrop-staging/"
  # Each team's own datasets (datasets/<team>/), which its manifests may name.
  datasets_prefix = "datasets/"

  apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ]
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "this" {
  for_each           = var.enable_apis ? toset(local.apis) : toset([])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# Service agents, created now so that IAM bindings on them do not race the APIs' first use.
resource "google_project_service_identity" "pubsub" {
  provider   = google-beta
  project    = var.project_id
  service    = "pubsub.googleapis.com"
  depends_on = [google_project_service.this]
}

resource "google_project_service_identity" "aiplatform" {
  provider   = google-beta
  project    = var.project_id
  service    = "aiplatform.googleapis.com"
  depends_on = [google_project_service.this]
}

data "google_storage_project_service_account" "gcs" {
  project    = var.project_id
  depends_on = [google_project_service.this]
}

# Builds run as this account instead of a default one (see iam.tf for its grants).
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${local.prefix}-build"
  display_name = "${local.prefix} function builds"
  description  = "Cloud Build identity for building the Tunedrop functions from source."
  depends_on   = [google_project_service.this]
}

resource "google_artifact_registry_repository" "functions" {
  # checkov:skip=CKV_GCP_84: Google-managed encryption. The images hold this repository's open-source code and public dependencies, nothing confidential.
  project       = var.project_id
  location      = var.region
  repository_id = "${local.prefix}-functions"
  format        = "DOCKER"
  description   = "Images Cloud Build makes from the Tunedrop function source."
  labels        = local.labels

  # Every deploy adds an image; keep the few a rollback needs.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.this]
}
