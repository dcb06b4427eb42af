locals {
  topics = {
    uploads     = "${local.prefix}-uploads"     # bucket notifications (OBJECT_FINALIZE under incoming/)
    dispatch    = "${local.prefix}-dispatch"    # "a job was queued / a slot was freed"
    poll        = "${local.prefix}-poll"        # the scheduler's ticks
    completions = "${local.prefix}-completions" # CloudEvents (binary mode) when a job ends; for users
    lifecycle   = "${local.prefix}-events"      # lifecycle events (queued ... finished, stuck); for users
    evaluate    = "${local.prefix}-evaluate"    # {"job_id": ...}: a succeeded job with promote_as, for the gate
  }

  # Topics users subscribe to: keep a week of messages so a late or new subscriber can seek back.
  retained_topics = ["completions", "lifecycle"]

  # One push subscription of our own per (topic, function). The dispatcher is fed by two: queued jobs
  # and freed slots on the dispatch topic, and every poll tick. deploy/local/stack.py wires the same.
  subscriptions = {
    "uploads-to-upload"    = { topic = "uploads", function = "upload" }
    "dispatch-to-dispatch" = { topic = "dispatch", function = "dispatch" }
    "poll-to-dispatch"     = { topic = "poll", function = "dispatch" }
    "poll-to-poll"         = { topic = "poll", function = "poll" }
    "evaluate-to-evaluate" = { topic = "evaluate", function = "evaluate" }
  }

  # A tick is worth nothing after a few minutes; other messages wait up to a week for a healthy function.
  short_lived_topics = ["poll"]
}

resource "google_pubsub_topic" "this" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption. Messages carry object names, job ids and job outcomes, never dataset content; CMEK would add a KMS key and service-agent grants per topic.
  for_each                   = local.topics
  project                    = var.project_id
  name                       = each.value
  labels                     = local.labels
  message_retention_duration = contains(local.retained_topics, each.key) ? "604800s" : null

  depends_on = [google_project_service.this]
}

module "subscription" {
  source   = "../push-subscription"
  for_each = local.subscriptions

  project_id = var.project_id
  name       = "${local.prefix}-${each.key}"
  topic_id   = google_pubsub_topic.this[each.value.topic].id
  # The topic in the path lets functions-framework name the event's source, as on the local stack.
  push_endpoint                 = "${module.function[each.value.function].uri}/${google_pubsub_topic.this[each.value.topic].id}"
  audience                      = module.function[each.value.function].uri
  invoker_service_account_email = module.function[each.value.function].invoker_service_account_email
  pubsub_service_agent_email    = google_project_service_identity.pubsub.email
  # Pub/Sub waits for the answer a little longer than the function may run.
  ack_deadline_seconds       = min(600, local.functions[each.value.function].timeout_seconds + 30)
  message_retention_duration = contains(local.short_lived_topics, each.value.topic) ? "600s" : "604800s"
  dead_letter_retention      = "${var.dead_letter_retention_days * 86400}s"
  minimum_backoff            = "10s"
  maximum_backoff            = "600s"
  max_delivery_attempts      = var.max_delivery_attempts
  labels                     = local.labels
}
