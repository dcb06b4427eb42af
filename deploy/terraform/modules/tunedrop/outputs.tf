output "datasets_bucket" {
  description = "Bucket users drop datasets into (under incoming/); reports appear under reports/."
  value       = google_storage_bucket.datasets.name
}

output "incoming_uri" {
  description = "Where to upload a dataset: gs://BUCKET/incoming/NAME.jsonl."
  value       = "gs://${google_storage_bucket.datasets.name}/${local.incoming_prefix}"
}

output "topics" {
  description = "Topic ids by role (uploads, dispatch, poll, completions, lifecycle, evaluate)."
  value       = { for key, topic in google_pubsub_topic.this : key => topic.id }
}

output "completions_topic" {
  description = "Subscribe here for completion events (CloudEvents, binary content mode)."
  value       = google_pubsub_topic.this["completions"].id
}

output "lifecycle_topic" {
  description = "Lifecycle events of every job (queued, submitted, running, stuck, finished)."
  value       = google_pubsub_topic.this["lifecycle"].id
}

output "push_subscriptions" {
  description = "The functions' push subscriptions."
  value       = { for key, sub in module.subscription : key => sub.subscription_id }
}

output "dead_letter_replay" {
  description = "For each dead-letter subscription, the topic its messages came from: the arguments of `tunedrop dlq replay`."
  value = {
    for key, sub in module.subscription : sub.dead_letter_subscription_name => google_pubsub_topic.this[local.subscriptions[key].topic].name
  }
}

output "functions" {
  description = "Each function's name, URL, runtime and invoker service accounts."
  value = {
    for key, fn in module.function : key => {
      name    = fn.name
      uri     = fn.uri
      runtime = fn.runtime_service_account_email
      invoker = fn.invoker_service_account_email
    }
  }
}

output "function_environment" {
  description = "The environment variables every function gets (the settings of shared/config.py)."
  value       = local.function_environment
}

output "dashboard" {
  description = "The Cloud Monitoring dashboard."
  value       = google_monitoring_dashboard.this.id
}
