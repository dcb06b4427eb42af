output "name" {
  description = "Function name (also the name of its Cloud Run service)."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "HTTPS address of the function's Cloud Run service; the push subscriptions' endpoint and OIDC audience."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "runtime_service_account_email" {
  description = "Runtime service account; the caller grants it the roles it needs."
  value       = google_service_account.runtime.email
}

output "invoker_service_account_email" {
  description = "Service account whose OIDC token the push subscriptions present."
  value       = google_service_account.invoker.email
}
