output "subscription_name" {
  description = "The push subscription."
  value       = google_pubsub_subscription.this.name
}

output "subscription_id" {
  description = "The push subscription (projects/P/subscriptions/S)."
  value       = google_pubsub_subscription.this.id
}

output "dead_letter_topic_id" {
  description = "Where messages go after max_delivery_attempts failed deliveries."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription_name" {
  description = "Pull subscription holding the dead letters; `tunedrop dlq replay --subscription` reads it."
  value       = google_pubsub_subscription.dead_letter.name
}
