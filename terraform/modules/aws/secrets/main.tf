# The Gmail OAuth credentials of gmail-integration and action-handler.
#
# Terraform creates only the empty secret. The operator stores the credentials JSON with
#   aws secretsmanager put-secret-value --secret-id <arn> --secret-string file://credentials.json
# so the OAuth client secret and refresh token never enter the Terraform state.

resource "aws_secretsmanager_secret" "gmail_credentials" {
  #checkov:skip=CKV2_AWS_57:Google issues and revokes OAuth client secrets and refresh tokens; Secrets Manager has no rotation function for them, so the operator replaces the value by hand.
  name                    = "${var.name}/gmail-credentials"
  description             = "Gmail OAuth client and token JSON for spamflow; written to a file inside the tasks"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days

  tags = var.tags
}
