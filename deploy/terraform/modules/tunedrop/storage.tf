locals {
  bucket_name         = coalesce(var.bucket_name, "${var.project_id}-${local.prefix}-datasets")
  sources_bucket_name = "${var.project_id}-${local.prefix}-sources"

  # Lifecycle rules of the datasets bucket. Versioning keeps every overwritten or deleted dataset as a
  # noncurrent version; these rules only ever remove what an operator chose to expire.
  datasets_lifecycle_rules = concat(
    var.reports_retention_days == null ? [] : [
      # Reports expire; with versioning the expired report becomes noncurrent, removed a day later.
      { age = var.reports_retention_days, days_since_noncurrent_time = null, with_state = "LIVE", prefixes = [local.reports_prefix] },
      { age = null, days_since_noncurrent_time = 1, with_state = "ARCHIVED", prefixes = [local.reports_prefix] },
    ],
    [
      # Tunedrop's copies of validated datasets (what Vertex AI reads) outlive any job's wait and run.
      { age = var.staging_retention_days, days_since_noncurrent_time = null, with_state = "LIVE", prefixes = [local.staging_prefix] },
      { age = null, days_since_noncurrent_time = 1, with_state = "ARCHIVED", prefixes = [local.staging_prefix] },
    ],
    var.noncurrent_dataset_retention_days == null ? [] : [
      { age = null, days_since_noncurrent_time = var.noncurrent_dataset_retention_days, with_state = "ARCHIVED", prefixes = [local.incoming_prefix] },
    ],
  )
}

resource "google_storage_bucket" "datasets" {
  # checkov:skip=CKV_GCP_62: Usage logs are a legacy feature; object reads and writes are audited with Cloud Audit Logs (enable storage DATA_READ/DATA_WRITE at the organization or project level where required).
  project                     = var.project_id
  name                        = local.bucket_name
  location                    = local.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  # An overwritten or deleted dataset is never lost: it stays as a noncurrent version.
  versioning {
    enabled = true
  }

  dynamic "lifecycle_rule" {
    for_each = local.datasets_lifecycle_rules
    content {
      condition {
        age                        = lifecycle_rule.value.age
        days_since_noncurrent_time = lifecycle_rule.value.days_since_noncurrent_time
        with_state                 = lifecycle_rule.value.with_state
        matches_prefix             = lifecycle_rule.value.prefixes
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [google_project_service.this]
}

# The bucket notification: every object finalized under incoming/ is announced on the uploads topic.
resource "google_storage_notification" "incoming" {
  bucket             = google_storage_bucket.datasets.name
  topic              = google_pubsub_topic.this["uploads"].id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = local.incoming_prefix

  depends_on = [google_pubsub_topic_iam_member.gcs_publisher]
}

# The Cloud Storage service agent publishes the notifications, to the uploads topic only.
resource "google_pubsub_topic_iam_member" "gcs_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.this["uploads"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# The function source (deploy/build_source.py). The object is named after its content, so a new build
# is a new object and the functions redeploy; an unchanged build changes nothing.
resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62: Holds build inputs only (this repository's code); Cloud Audit Logs cover access where required.
  project                     = var.project_id
  name                        = local.sources_bucket_name
  location                    = local.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_storage_bucket_object" "source" {
  bucket       = google_storage_bucket.sources.name
  name         = "function-source/${filemd5(var.source_archive_path)}.zip"
  source       = var.source_archive_path
  content_type = "application/zip"
}
