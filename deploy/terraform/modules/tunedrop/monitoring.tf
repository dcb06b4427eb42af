# Alerts: dead letters, function error rate, failed jobs, stuck jobs; and one dashboard.
#
# The log-based metrics read the functions' JSON log lines (shared/logs.py): Cloud Logging turns
# `severity` into the entry's severity and keeps the other fields under jsonPayload. The messages
# below are the code's own (tests/unit/deploy checks that each still exists in shared/).

locals {
  function_service_regex = "^${local.prefix}-(${join("|", keys(local.functions))})$"
  functions_log_filter   = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"${local.function_service_regex}\""
  function_metric_filter = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = monitoring.regex.full_match(\"${local.prefix}-(${join("|", keys(local.functions))})\")"

  dead_letter_subscription_regex = "${local.prefix}-.*-dlq"
  push_subscription_regex        = "${local.prefix}-.*-to-.*"
  replay_hint                    = "List the dead letters with `tunedrop dlq replay --subscription SUB --topic TOPIC --dry-run`, fix the cause, then replay without --dry-run (deploy/README.md, \"Dead letters\")."
}

resource "google_logging_metric" "jobs_failed" {
  project     = var.project_id
  name        = "${local.prefix}-jobs-failed"
  description = "Tuning jobs that ended FAILED (the poller's \"job finished\" log line)."
  filter      = "${local.functions_log_filter} AND severity>=INFO AND jsonPayload.message=\"job finished\" AND jsonPayload.state=\"FAILED\""
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Tunedrop jobs failed"
  }
}

resource "google_logging_metric" "jobs_stuck" {
  project     = var.project_id
  name        = "${local.prefix}-jobs-stuck"
  description = "Jobs pending or running far too long on Vertex AI (the poller's \"job stuck\"), and submissions that outlived their lease."
  filter      = "${local.functions_log_filter} AND severity>=WARNING AND (jsonPayload.message=\"job stuck\" OR jsonPayload.message=\"resuming a submission\" OR jsonPayload.message=\"re-queueing a claim that never got a slot\")"
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Tunedrop stuck jobs"
  }
}

resource "google_logging_metric" "polls" {
  project     = var.project_id
  name        = "${local.prefix}-polls"
  description = "Completed poll ticks: the heartbeat that moves running jobs forward."
  filter      = "${local.functions_log_filter} AND jsonPayload.function=\"poll\" AND jsonPayload.message=\"poll done\""
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Tunedrop polls completed"
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project_id
  display_name = "Tunedrop: messages in a dead-letter subscription"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "Undelivered messages in a Tunedrop dead-letter subscription"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = monitoring.regex.full_match(\"${local.dead_letter_subscription_regex}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  notification_channels = var.notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "A message failed ${var.max_delivery_attempts} deliveries and was dead-lettered. The function's logs (filter on the message id) say why. ${local.replay_hint}"
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "function_errors" {
  project      = var.project_id
  display_name = "Tunedrop: function error rate"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "Share of a function's requests answered 5xx above error_rate_threshold"
    condition_threshold {
      filter             = "${local.function_metric_filter} AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\""
      denominator_filter = "${local.function_metric_filter} AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_rate_threshold
      duration           = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  notification_channels = var.notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "A function answers 5xx: the message is redelivered with backoff and dead-lettered after ${var.max_delivery_attempts} attempts. Look for \"transient error; message will be redelivered\" in the function's logs."
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "jobs_failed" {
  project      = var.project_id
  display_name = "Tunedrop: tuning job failed"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "A tuning job ended FAILED"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.jobs_failed.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  notification_channels = var.notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "Vertex AI reported a tuning job FAILED. `tunedrop jobs --state FAILED` lists them; `tunedrop job ID` shows the error. The completion event went to the completions topic."
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "jobs_stuck" {
  project      = var.project_id
  display_name = "Tunedrop: jobs stuck"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "A job is stuck on Vertex AI, or a submission outlived its lease"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.jobs_stuck.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "No poll completed for 15 minutes (running jobs are not advancing)"
    condition_absent {
      filter   = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.polls.name}\""
      duration = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "A message waits more than ${var.stuck_after_minutes} minutes on a function's subscription"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id = monitoring.regex.full_match(\"${local.push_subscription_regex}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = var.stuck_after_minutes * 60
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  notification_channels = var.notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "Jobs are not moving: a job is pending or running on Vertex AI for too long (stuck_pending_minutes, max_running_hours), a submission needed recovery, the poll tick stopped (check the Cloud Scheduler job ${local.prefix}-poll), or a function keeps failing a message. `tunedrop jobs --state SUBMITTING` and `tunedrop jobs --state QUEUED` show what waits."
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

locals {
  log_metric_filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/%s\""
  dashboard_charts = [
    {
      title   = "Requests per function and response class (per s)"
      filter  = "${local.function_metric_filter} AND metric.type = \"run.googleapis.com/request_count\""
      aligner = "ALIGN_RATE"
      reducer = "REDUCE_SUM"
      group   = ["resource.label.service_name", "metric.label.response_code_class"]
    },
    {
      title   = "Request latency p95 per function"
      filter  = "${local.function_metric_filter} AND metric.type = \"run.googleapis.com/request_latencies\""
      aligner = "ALIGN_DELTA"
      reducer = "REDUCE_PERCENTILE_95"
      group   = ["resource.label.service_name"]
    },
    {
      title   = "Instances per function"
      filter  = "${local.function_metric_filter} AND metric.type = \"run.googleapis.com/container/instance_count\""
      aligner = "ALIGN_MAX"
      reducer = "REDUCE_SUM"
      group   = ["resource.label.service_name"]
    },
    {
      title   = "Oldest unacknowledged message per subscription (s)"
      filter  = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id = monitoring.regex.full_match(\"${local.push_subscription_regex}\")"
      aligner = "ALIGN_MAX"
      reducer = "REDUCE_MAX"
      group   = ["resource.label.subscription_id"]
    },
    {
      title   = "Dead letters waiting"
      filter  = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = monitoring.regex.full_match(\"${local.dead_letter_subscription_regex}\")"
      aligner = "ALIGN_MAX"
      reducer = "REDUCE_SUM"
      group   = ["resource.label.subscription_id"]
    },
    {
      title   = "Jobs failed"
      filter  = format(local.log_metric_filter, google_logging_metric.jobs_failed.name)
      aligner = "ALIGN_SUM"
      reducer = "REDUCE_SUM"
      group   = []
    },
    {
      title   = "Stuck jobs"
      filter  = format(local.log_metric_filter, google_logging_metric.jobs_stuck.name)
      aligner = "ALIGN_SUM"
      reducer = "REDUCE_SUM"
      group   = []
    },
    {
      title   = "Polls completed"
      filter  = format(local.log_metric_filter, google_logging_metric.polls.name)
      aligner = "ALIGN_SUM"
      reducer = "REDUCE_SUM"
      group   = []
    },
  ]
}

resource "google_monitoring_dashboard" "this" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Tunedrop (${local.prefix})"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, chart in local.dashboard_charts : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = chart.title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = chart.filter
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = chart.aligner
                      crossSeriesReducer = chart.reducer
                      groupByFields      = chart.group
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })

}
