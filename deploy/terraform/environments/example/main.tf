# A thin root: one environment of Tunedrop. Copy this directory per environment (staging, prod, ...),
# give it its own backend prefix and terraform.tfvars.

module "tunedrop" {
  source = "../../modules/tunedrop"

  project_id         = var.project_id
  region             = var.region
  tuning_region      = var.tuning_region
  tuning_quota       = var.tuning_quota
  quota_regions      = var.quota_regions
  default_base_model = var.default_base_model
  # The weekly model-registry check builds from this repository (empty: no check).
  registry_check_repository_uri = var.registry_check_repository_uri
  poll_interval_minutes         = var.poll_interval_minutes
  notification_channels         = var.notification_channels
  # Built by `python deploy/build_source.py` at the repository root.
  source_archive_path    = coalesce(var.source_archive_path, "${path.root}/../../../../build/function-source.zip")
  reports_retention_days = var.reports_retention_days
  # Uploaders by team, each limited to its own prefixes (deploy/README.md, "Adding a team").
  teams = var.teams
  # What each team may ask for, set here by operators only (deploy/README.md, "Team policies").
  default_team_policy = var.default_team_policy
  team_policies       = var.team_policies
  # Prices for models the registry has none for, or your negotiated rates (deploy/README.md, "Team policies").
  tuning_prices = var.tuning_prices
  # Who tuning jobs may run as, and which keys may encrypt them (deploy/README.md, "Tuning service accounts and keys").
  tuning_service_accounts        = var.tuning_service_accounts
  default_tuning_service_account = var.default_tuning_service_account
  encryption_keys                = var.encryption_keys
  default_encryption_key         = var.default_encryption_key
  # Who applies, and why the policies are what they are; Tunedrop keeps them with each new version of the
  # policies, so the apply that changes them is the one recorded (`tunedrop policy history`).
  policy_change = {
    changed_by = data.google_client_openid_userinfo.applier.email
    reason     = var.policy_change_reason
  }
  # Alert when a team's next job has waited longer than this (deploy/README.md, "Alerts and dashboard").
  team_wait_alert_minutes = var.team_wait_alert_minutes
  # The evaluation gate's bounds: what one evaluation may cost, its model calls at once, its held-out examples
  # (deploy/README.md, "The evaluation gate").
  evaluation_max_cost_usd = var.evaluation_max_cost_usd
  evaluation_concurrency  = var.evaluation_concurrency
  evaluation_max_examples = var.evaluation_max_examples
  labels                  = { environment = "example" }
}

# Who is applying: the email of the credentials the google provider uses (it asks for the userinfo.email scope by
# default). https://registry.terraform.io/providers/hashicorp/google/latest/docs/data-sources/client_openid_userinfo
# (read 2026-11-30).
data "google_client_openid_userinfo" "applier" {}
