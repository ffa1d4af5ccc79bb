# Shared model storage: an encrypted EFS file system that the trainer writes retrained models
# (and its stored corrections) to, and every spam-detector task reads the announced model
# files from, at the same path.
#
# Tasks reach it only through one access point, which maps every client to the services'
# user (10001) and roots them in /spamflow/models. Mounts use TLS and IAM authorization: the
# file system policy refuses clients without TLS, and each task role grants ClientMount (plus
# ClientWrite for the trainer) through that access point only. NFS is open only from the
# client security group, which only the trainer and spam-detector services carry.

data "aws_iam_policy_document" "file_system" {
  statement {
    sid       = "DenyWithoutTls"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.this.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_efs_file_system" "this" {
  creation_token   = "${var.name}-models"
  encrypted        = true
  kms_key_id       = var.kms_key_arn
  performance_mode = "generalPurpose"
  # Model files are small and written about once an hour; elastic throughput bills only
  # what is transferred.
  throughput_mode = "elastic"

  # Older model versions are kept but rarely read again.
  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  lifecycle_policy {
    transition_to_primary_storage_class = "AFTER_1_ACCESS"
  }

  tags = merge(var.tags, { Name = "${var.name}-models" })
}

resource "aws_efs_file_system_policy" "this" {
  file_system_id = aws_efs_file_system.this.id
  policy         = data.aws_iam_policy_document.file_system.json
}

# Daily AWS Backup of the file system: it holds the trainer's stored corrections, which
# cannot be recreated.
resource "aws_efs_backup_policy" "this" {
  file_system_id = aws_efs_file_system.this.id

  backup_policy {
    status = var.backup ? "ENABLED" : "DISABLED"
  }
}

resource "aws_efs_access_point" "models" {
  file_system_id = aws_efs_file_system.this.id

  posix_user {
    uid = var.uid
    gid = var.uid
  }

  root_directory {
    path = "/spamflow/models"

    creation_info {
      owner_uid   = var.uid
      owner_gid   = var.uid
      permissions = "0750"
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-models" })
}

resource "aws_security_group" "file_system" {
  name        = "${var.name}-models-efs"
  description = "spamflow model file system: NFS from the model clients only"
  vpc_id      = var.vpc_id

  tags = var.tags
}

resource "aws_security_group" "clients" {
  #checkov:skip=CKV2_AWS_5:The trainer and spam-detector ECS services attach this group; checkov does not follow the ID across modules.
  name        = "${var.name}-models-clients"
  description = "spamflow tasks that mount the model file system"
  vpc_id      = var.vpc_id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "nfs_from_clients" {
  security_group_id            = aws_security_group.file_system.id
  description                  = "NFS from the trainer and spam-detector tasks"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.clients.id
}

resource "aws_vpc_security_group_egress_rule" "nfs_to_file_system" {
  security_group_id            = aws_security_group.clients.id
  description                  = "NFS to the model file system"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.file_system.id
}

resource "aws_efs_mount_target" "this" {
  count = length(var.subnet_ids)

  file_system_id  = aws_efs_file_system.this.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [aws_security_group.file_system.id]
}
