# The poll tick. Both the poller and the dispatcher subscribe to it, so a tick both advances running
# jobs and retries submissions. A missed tick is replaced by the next one: no scheduler retries.
resource "google_cloud_scheduler_job" "poll" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-poll"
  description = "Publishes Tunedrop's poll tick every ${var.poll_interval_minutes} minute(s)."
  schedule    = var.poll_interval_minutes == 1 ? "* * * * *" : "*/${var.poll_interval_minutes} * * * *"
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 0
  }

  pubsub_target {
    topic_name = google_pubsub_topic.this["poll"].id
    data       = base64encode(jsonencode({ source = "cloud-scheduler", job = "${local.prefix}-poll" }))
  }

  depends_on = [google_project_service.this]
}
