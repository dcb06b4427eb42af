"""Who a tuning job runs as and which key encrypts what it makes: declared shapes, shared by the settings (the
operators' allow-lists and defaults) and the manifest (what an upload asks for).

- A job's `service_account`: "The service account that the tuningJob workload runs as. If not specified, the
  Vertex AI Secure Fine-Tuned Service Agent in the project will be used. [...] Users starting the pipeline must
  have the iam.serviceAccounts.actAs permission on this service account." (TuningJob.serviceAccount,
  googleapis.github.io/kotlin-genai/.../-tuning-job/service-account.html, read 2026-11-30). So the dispatcher's
  own service account needs roles/iam.serviceAccountUser on each allowed account (Terraform grants it).
- A job's `encryption_spec.kms_key_name`: "If this is set, then all resources created by the TuningJob will be
  encrypted with the provided encryption key" (TuningJob.encryptionSpec, googleapis.github.io/java-genai/...,
  read 2026-11-30); a Cloud KMS key, `projects/*/locations/*/keyRings/*/cryptoKeys/*`. Tunedrop requires the key's
  location to be the tuning region (the stricter reading: Vertex AI resources are encrypted by keys in their
  own region).
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from msgspec import Meta

# A Google service account's email: <name>@<project>.iam.gserviceaccount.com, or a Google-managed one
# (<number>-compute@developer.gserviceaccount.com). \A and \Z: a `$` would let a trailing newline through.
# Google's own service agents (service-N@gcp-sa-....iam.gserviceaccount.com) are not accounts a job runs as.
SERVICE_ACCOUNT_PATTERN: Final = (
    r"\A[a-z0-9][a-z0-9-]{0,62}@(?!gcp-sa-)[a-z0-9][a-z0-9.-]{0,126}\.gserviceaccount\.com\Z"
)
KMS_KEY_PATTERN: Final = (
    r"\Aprojects/[a-z0-9][a-z0-9-]{4,28}[a-z0-9]/locations/([a-z0-9-]+)/keyRings/[A-Za-z0-9_-]{1,63}"
    r"/cryptoKeys/[A-Za-z0-9_-]{1,63}\Z"
)
ServiceAccount = Annotated[str, Meta(pattern=SERVICE_ACCOUNT_PATTERN)]
KmsKeyName = Annotated[str, Meta(pattern=KMS_KEY_PATTERN)]


def key_location(kms_key_name: str) -> str:
    """The location of a KMS key name (shaped like KMS_KEY_PATTERN), or "" for another shape."""
    match = re.match(KMS_KEY_PATTERN, kms_key_name)
    return match.group(1) if match else ""
