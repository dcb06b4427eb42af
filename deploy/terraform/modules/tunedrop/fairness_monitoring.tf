# Visible fairness: per-team queue depth, slots, wait and spend as log-based metrics, a dashboard of them by
# team, and alerts for a team waiting too long and a team over budget.
#
# Sources: the poller's "team gauges" line, one per team with queued work or a slot, every tick
# (shared/services/team_metrics.py); the dispatcher's "tuning job created" line (team, waited_seconds) and its
# "team over budget" and "job rejected over budget" warnings. tests/unit/deploy/test_fairness_monitoring.py checks that each field extracted
# here is one those lines carry.
#
# Google Cloud facts used here (read 2026-11-30):
# - A DISTRIBUTION log-based metric takes its values with value_extractor EXTRACT(field) (a value that does not
#   convert to a double is not recorded) and needs bucket_options; each label of the descriptor needs a
#   label_extractors entry: https://cloud.google.com/logging/docs/reference/v2/rest/v2/projects.metrics and
#   the provider's definition, github.com/GoogleCloudPlatform/magic-modules mmv1/products/logging/Metric.yaml.
# - ALIGN_DELTA keeps a DELTA distribution a distribution; REDUCE_MEAN (distribution in, DOUBLE out) and
#   REDUCE_PERCENTILE_95 accept distributions; ALIGN_SUM and REDUCE_SUM take the counter; ALIGN_MAX and
#   REDUCE_MAX take numbers only: github.com/googleapis/googleapis google/monitoring/v3/common.proto.
# - A metric's labels must not make more than 30,000 time series
#   (cloud.google.com/logging/docs/logs-based-metrics/labels, quoted at
#   https://www.googlecloudcommunity.com/gc/Google-Cloud-s-Observability/Log-based-metrics-visualisation-issues/m-p/636309):
#   the only label is the team, and the poller reports at most 1,000 teams (fairness.MAX_TEAMS).
# - Dashboard JSON (mosaicLayout, tiles, xyChart, timeSeriesFilter, aggregation):
#   https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards

variable "team_wait_alert_minutes" {
  description = "A team whose next queued job has waited longer than this many minutes raises the \"team waiting too long\" alert."
  type        = number
  default     = 120
  validation {
    condition     = var.team_wait_alert_minutes == floor(var.team_wait_alert_minutes) && var.team_wait_alert_minutes >= 10 && var.team_wait_alert_minutes <= 10080
    error_message = "team_wait_alert_minutes must be a whole number of minutes from 10 to 10080 (a week)."
  }
}

locals {
  team_gauges_filter = "${local.functions_log_filter} AND severity>=INFO AND jsonPayload.message=\"team gauges\""
  team_label_help    = "Team (its folder under incoming/)."

  # The distributions read from the poller's "team gauges" line: metric name suffix -> what it extracts.
  team_gauges = {
    queue_depth = {
      field   = "queued"
      display = "Tunedrop queued jobs per team"
      unit    = "1"
      help    = "Jobs QUEUED per team, sampled every poll tick."
      scale   = 1
      growth  = 2
      buckets = 20
    }
    running = {
      field   = "running"
      display = "Tunedrop slots held per team"
      unit    = "1"
      help    = "Tuning-job slots each team holds, sampled every poll tick."
      scale   = 1
      growth  = 2
      buckets = 12
    }
    head_wait = {
      field   = "head_wait_seconds"
      display = "Tunedrop wait of each team's next job"
      unit    = "s"
      help    = "Seconds the head of each team's queue has waited (0 with nothing queued), sampled every poll tick."
      scale   = 1
      growth  = 1.5
      buckets = 40
    }
    spend = {
      field   = "spend_usd"
      display = "Tunedrop spend this month per team (USD)"
      unit    = "1"
      help    = "US dollars each team's month counts so far (estimates of running jobs, costs of ended ones), sampled every poll tick."
      scale   = 0.01
      growth  = 2
      buckets = 40
    }
  }
}

resource "google_logging_metric" "team_gauge" {
  for_each = local.team_gauges

  project         = var.project_id
  name            = "${local.prefix}-team-${replace(each.key, "_", "-")}"
  description     = each.value.help
  filter          = local.team_gauges_filter
  value_extractor = "EXTRACT(jsonPayload.${each.value.field})"
  label_extractors = {
    team = "EXTRACT(jsonPayload.team)"
  }
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = each.value.unit
    display_name = each.value.display
    labels {
      key         = "team"
      value_type  = "STRING"
      description = local.team_label_help
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = each.value.buckets
      growth_factor      = each.value.growth
      scale              = each.value.scale
    }
  }
}

resource "google_logging_metric" "team_wait_at_start" {
  project         = var.project_id
  name            = "${local.prefix}-team-wait-at-start"
  description     = "Seconds each job waited from queued to its tuning job's creation, per team (the dispatcher's \"tuning job created\" line)."
  filter          = "${local.functions_log_filter} AND severity>=INFO AND jsonPayload.message=\"tuning job created\""
  value_extractor = "EXTRACT(jsonPayload.waited_seconds)"
  label_extractors = {
    team = "EXTRACT(jsonPayload.team)"
  }
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Tunedrop wait before start per team"
    labels {
      key         = "team"
      value_type  = "STRING"
      description = local.team_label_help
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.5
      scale              = 1
    }
  }
}

resource "google_logging_metric" "team_over_budget" {
  project     = var.project_id
  name        = "${local.prefix}-team-over-budget"
  description = "Jobs held back (\"team over budget\") or rejected (\"job rejected over budget\") because their team's month would go over its budget: the dispatcher's warnings."
  filter      = "${local.functions_log_filter} AND severity>=WARNING AND (jsonPayload.message=\"team over budget\" OR jsonPayload.message=\"job rejected over budget\")"
  label_extractors = {
    team = "EXTRACT(jsonPayload.team)"
  }
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Tunedrop jobs over their team's budget"
    labels {
      key         = "team"
      value_type  = "STRING"
      description = local.team_label_help
    }
  }
}

resource "google_monitoring_alert_policy" "team_waiting" {
  project      = var.project_id
  display_name = "Tunedrop: a team waits longer than ${var.team_wait_alert_minutes} minutes"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "A team's next queued job has waited more than ${var.team_wait_alert_minutes} minutes"
    condition_threshold {
      filter          = format(local.log_metric_filter, google_logging_metric.team_gauge["head_wait"].name)
      comparison      = "COMPARISON_GT"
      threshold_value = var.team_wait_alert_minutes * 60
      duration        = "0s"
      # The mean of a team's samples over five minutes (exact, unlike a percentile read off the buckets): it
      # passes the bound within about three minutes of the head's wait doing so.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_MEAN"
        group_by_fields      = ["metric.label.team"]
      }
      trigger {
        count = 1
      }
    }
  }

  notification_channels = var.notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "A team's next job has waited more than ${var.team_wait_alert_minutes} minutes (the team is in the incident's `metric.label.team`). `tunedrop quota` shows each team's running and queued jobs and its share; a team at its `max_slots`, with a small `weight` among busy teams, or over its budget waits by design. If no team runs anything, look at the dispatcher's logs and the jobs-stuck alert. deploy/README.md, \"Alerts and dashboard\"."
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "team_over_budget" {
  project      = var.project_id
  display_name = "Tunedrop: a team is over its monthly budget"
  combiner     = "OR"
  severity     = "WARNING"

  conditions {
    display_name = "A job is held back or rejected by its team's monthly budget"
    condition_threshold {
      filter          = format(local.log_metric_filter, google_logging_metric.team_over_budget.name)
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.team"]
      }
      trigger {
        count = 1
      }
    }
  }

  notification_channels = var.notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "A team's job would take its month over the team's `monthly_budget_usd`: it waits QUEUED with the reason `over_budget` (or was REJECTED, if the policy says so). It goes on when the month turns or an operator raises the budget (deploy/README.md, \"Team policies\"). `tunedrop quota` shows each team's spend this month."
  }
  alert_strategy {
    auto_close = "86400s"
  }
}

locals {
  # One chart per figure, a line per team.
  team_charts = [
    { title = "Queued jobs per team", metric = google_logging_metric.team_gauge["queue_depth"].name, reducer = "REDUCE_MEAN" },
    { title = "Slots held per team", metric = google_logging_metric.team_gauge["running"].name, reducer = "REDUCE_MEAN" },
    { title = "Wait of each team's next job (s)", metric = google_logging_metric.team_gauge["head_wait"].name, reducer = "REDUCE_MEAN" },
    { title = "Wait before start per team, p95 (s)", metric = google_logging_metric.team_wait_at_start.name, reducer = "REDUCE_PERCENTILE_95" },
    { title = "Spend this month per team (USD)", metric = google_logging_metric.team_gauge["spend"].name, reducer = "REDUCE_MEAN" },
    { title = "Jobs held back or rejected over budget per team", metric = google_logging_metric.team_over_budget.name, reducer = "REDUCE_SUM" },
  ]
}

resource "google_monitoring_dashboard" "teams" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Tunedrop teams (${local.prefix})"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, chart in local.team_charts : {
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
                    filter = format(local.log_metric_filter, chart.metric)
                    aggregation = {
                      alignmentPeriod = "60s"
                      # ALIGN_DELTA keeps the distributions whole for the reducer; for the counter it is the count.
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = chart.reducer
                      groupByFields      = ["metric.label.team"]
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
