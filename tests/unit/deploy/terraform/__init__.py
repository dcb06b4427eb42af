"""Offline checks of the deployment against the code, one module per concern.

- paths: where the Terraform, functions/main.py and the index catalog live.
- tfmodel: reading the Terraform (hcl2) and resolving the few expression shapes the modules use.
- functions: the deployed functions against functions/main.py's entry points.
- environment: the variables the code reads against those Terraform sets.
- indexes: the Firestore composite indexes against the store's queries.
- iam: least privilege of the IAM grants.
- logs: the log messages the monitoring filters compare with against what the code logs.
- references: an offline `terraform validate` of references between blocks and modules.

Every checker takes the paths it reads, so a test can run it on a temporary copy with a deliberate
mismatch and see it complain.
"""
