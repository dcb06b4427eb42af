locals {
  firestore_location = coalesce(var.firestore_location, var.region)

  # ONE catalog of composite indexes and TTL fields, shared with the tests that compare it with the
  # queries in shared/adapters/firestore_store.py. Collections are suffixes of the collection prefix.
  firestore_catalog = jsondecode(file("${path.module}/../../firestore_indexes.json"))
  firestore_indexes = {
    for index in local.firestore_catalog.indexes :
    "${index.collection}:${join(",", [for f in index.fields : "${f.field_path}:${f.order}"])}" => index
  }
  firestore_ttl_fields = {
    for ttl in local.firestore_catalog.ttl_fields : "${ttl.collection}.${ttl.field_path}" => ttl
  }
}

resource "google_firestore_database" "this" {
  count                             = var.create_firestore_database ? 1 : 0
  project                           = var.project_id
  name                              = var.firestore_database
  location_id                       = local.firestore_location
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.this]
}

resource "google_firestore_index" "this" {
  for_each    = local.firestore_indexes
  project     = var.project_id
  database    = var.firestore_database
  collection  = "${var.collection_prefix}_${each.value.collection}"
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_database.this]
}

# Documents expire when their TTL field's time has passed (the code sets it on job documents).
resource "google_firestore_field" "ttl" {
  for_each   = var.job_ttl_enabled ? local.firestore_ttl_fields : {}
  project    = var.project_id
  database   = var.firestore_database
  collection = "${var.collection_prefix}_${each.value.collection}"
  field      = each.value.field_path

  ttl_config {}

  # A TTL timestamp is never queried: no single-field indexes on it (avoids write hotspots).
  index_config {}

  depends_on = [google_firestore_database.this]
}
