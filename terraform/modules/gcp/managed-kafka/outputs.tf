output "cluster_id" {
  description = "ID of the Kafka cluster."
  value       = google_managed_kafka_cluster.this.cluster_id
}

output "bootstrap_address" {
  description = "Bootstrap host:port (TLS, SASL/OAUTHBEARER) that the service gives every cluster."
  value       = "bootstrap.${google_managed_kafka_cluster.this.cluster_id}.${var.region}.managedkafka.${var.project_id}.cloud.goog:9092"
}

output "topic_names" {
  description = "Names of the created topics."
  value       = sort([for topic in google_managed_kafka_topic.this : topic.topic_id])
}
