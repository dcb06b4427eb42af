output "created_prefixes" {
  description = "Prefixes where the team's principals may create objects."
  value       = [local.incoming, local.datasets]
}

output "read_prefixes" {
  description = "Prefixes the team's principals may read and list."
  value       = [local.incoming, local.datasets, local.reports]
}
