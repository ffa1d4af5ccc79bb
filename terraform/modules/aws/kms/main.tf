# One customer-managed key per deployment. It encrypts the CloudWatch log groups, Secrets
# Manager secrets, the MSK broker volumes, ElastiCache and the ECR repositories.
#
# Services that use the key through a grant of their own (MSK, ElastiCache, Secrets Manager,
# ECR) are covered by the account statement: IAM policies in the account decide who may use
# it. CloudWatch Logs is not an IAM principal of the account, so it gets its own statement,
# limited to log groups of this account and region.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" means this key only; the account statement is the AWS default that delegates key use to IAM policies.
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" means this key only; the account statement is the AWS default that delegates key use to IAM policies.
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" means this key only; the account statement is the AWS default that delegates key use to IAM policies.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsLogGroups"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "spamflow ${var.name}: logs, secrets, MSK, ElastiCache and ECR"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_days
  policy                  = data.aws_iam_policy_document.key.json

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
