output "datasets_bucket" {
  description = "Drop datasets under incoming/ in this bucket."
  value       = module.tunedrop.datasets_bucket
}

output "incoming_uri" {
  description = "Upload address prefix for datasets."
  value       = module.tunedrop.incoming_uri
}

output "topics" {
  description = "Topic ids by role."
  value       = module.tunedrop.topics
}

output "completions_topic" {
  description = "Subscribe here for completion events."
  value       = module.tunedrop.completions_topic
}

output "lifecycle_topic" {
  description = "Job lifecycle events topic."
  value       = module.tunedrop.lifecycle_topic
}

output "push_subscriptions" {
  description = "The functions' push subscriptions."
  value       = module.tunedrop.push_subscriptions
}

output "dead_letter_replay" {
  description = "Dead-letter subscription => topic to replay into."
  value       = module.tunedrop.dead_letter_replay
}

output "functions" {
  description = "Functions and their service accounts."
  value       = module.tunedrop.functions
}
