# Uploaders by team (var.teams): each team's principals get conditional roles on the datasets bucket
# limited to their own prefixes (modules/team-access says which and why). The functions' grants in
# iam.tf stay as they are: only the upload function writes under reports/.
module "team_access" {
  source   = "../team-access"
  for_each = var.teams

  bucket          = google_storage_bucket.datasets.name
  team            = each.key
  principals      = each.value.principals
  incoming_prefix = local.incoming_prefix
  datasets_prefix = local.datasets_prefix
  reports_prefix  = local.reports_prefix
}
