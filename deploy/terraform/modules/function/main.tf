# One Cloud Run function (2nd gen) with its own runtime identity and its own invoker identity.
#
# The function is reachable only from inside the project (ALLOW_INTERNAL_ONLY, which admits Pub/Sub
# push) and only with an OIDC token of the invoker service account, the single principal holding
# run.invoker on this function's service. Roles of the runtime service account are granted by the
# caller, next to the resources they concern.

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = var.name
  display_name = "${var.name} runtime"
  description  = "Runtime identity of the ${var.name} Cloud Run function; its roles are listed in deploy/README.md."
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name}-inv"
  display_name = "${var.name} invoker"
  description  = "Identity of the Pub/Sub push subscriptions that invoke ${var.name}; holds run.invoker on that service only."
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime           = var.runtime
    entry_point       = var.entry_point
    service_account   = var.build_service_account_id
    docker_repository = var.docker_repository
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    timeout_seconds                  = var.timeout_seconds
    max_instance_request_concurrency = var.concurrency
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    environment_variables            = var.environment
    # Internal traffic only: Pub/Sub push from this project counts as internal, the internet does not.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email
  }
}

# The only principal allowed to invoke the function. There is deliberately no allUsers binding.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

# Pub/Sub mints the push subscriptions' OIDC tokens as the invoker (needed in projects created before
# April 2021, harmless after). Granted on this one service account, not on the project.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent_email}"
}
