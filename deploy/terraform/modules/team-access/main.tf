# One team's access to the datasets bucket: its principals create objects under incoming/<team>/ and
# datasets/<team>/, and read (get and list) those and reports/<team>/. Nothing else: no delete, no
# overwrite, no other team's prefix, and no write under reports/, which only Tunedrop's functions hold.
#
# Sources (read 2026-11-29):
# - https://cloud.google.com/ruby/docs/reference/google-cloud-storage/1.40.0/Google-Cloud-Storage-Policy-Condition
#   a bucket binding's condition names objects as projects/_/buckets/BUCKET/objects/OBJECT and limits a
#   role to a prefix with resource.name.startsWith(...); conditions need uniform bucket-level access and
#   policy version 3 (the datasets bucket has uniform_bucket_level_access = true; the provider asks for v3).
# - https://cloud.google.com/iam/docs/conditions-resource-attributes: resource.type is
#   storage.googleapis.com/Object for objects and storage.googleapis.com/Bucket for the bucket.
# - https://cloud.google.com/storage/docs/access-control/iam-permissions: replacing an existing object
#   needs storage.objects.create AND storage.objects.delete. roles/storage.objectCreator holds create but
#   not delete, so a team adds objects and can neither overwrite nor delete one (with versioning on, a
#   dataset Tunedrop validated keeps its content).
# - Listing is checked on the bucket, not on an object, so an object-name condition never lets a
#   principal list. IAM Conditions' API attribute storage.googleapis.com/objectListPrefix holds the
#   prefix a list request asks for: api.getAttribute("storage.googleapis.com/objectListPrefix", "")
#   .startsWith("incoming/<team>/") lets a team list its own prefixes only (Google's page,
#   https://cloud.google.com/iam/docs/conditions-attribute-reference, was not in the stored reference
#   text; the attribute is used this way in public bucket bindings and credential access boundaries).
# - Managed folders (https://cloud.google.com/storage/docs/managed-folders) would give each team an IAM
#   policy on incoming/<team>/ instead of conditions on the bucket; they need one resource per prefix and
#   team, and conditions keep every team's access in one reviewable place, so this module uses conditions.

locals {
  objects  = "projects/_/buckets/${var.bucket}/objects/"
  incoming = "${var.incoming_prefix}${var.team}/"
  datasets = "${var.datasets_prefix}${var.team}/"
  reports  = "${var.reports_prefix}${var.team}/"

  # Written out rather than built with for-expressions so that a reviewer (and the offline test in
  # tests/unit/deploy) reads the exact expression IAM evaluates. Every prefix ends with "/": team "a"
  # never matches team "a-2".
  create_condition = "resource.name.startsWith(\"${local.objects}${local.incoming}\") || resource.name.startsWith(\"${local.objects}${local.datasets}\")"
  read_condition   = "${local.create_condition} || resource.name.startsWith(\"${local.objects}${local.reports}\") || ${local.list_condition}"
  list_condition   = "(resource.type == \"storage.googleapis.com/Bucket\" && (${local.list_prefix}.startsWith(\"${local.incoming}\") || ${local.list_prefix}.startsWith(\"${local.datasets}\") || ${local.list_prefix}.startsWith(\"${local.reports}\")))"
  list_prefix      = "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\")"
}

resource "google_storage_bucket_iam_member" "creator" {
  for_each = var.principals
  bucket   = var.bucket
  role     = "roles/storage.objectCreator"
  member   = each.value
  condition {
    title       = "team-${var.team}-create"
    description = "Create (never overwrite or delete) objects under ${local.incoming} and ${local.datasets} only."
    expression  = local.create_condition
  }
}

resource "google_storage_bucket_iam_member" "reader" {
  for_each = var.principals
  bucket   = var.bucket
  role     = "roles/storage.objectViewer"
  member   = each.value
  condition {
    title       = "team-${var.team}-read"
    description = "Read and list objects under ${local.incoming}, ${local.datasets} and ${local.reports} only."
    expression  = local.read_condition
  }
}
