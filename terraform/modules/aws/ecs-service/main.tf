# One spamflow service on ECS Fargate: the task definition, its IAM roles, its log group, the
# ECS service and, for gRPC services, its Cloud Map name.
#
# Each task runs up to three containers:
#   prepare         runs first and exits: makes /tmp and the state folder writable for the
#                   service user and writes secret files (the Gmail credentials) owner-only
#   <name>          the service, non-root with a read-only root file system
#   otel-collector  the ADOT collector, receives OTLP on 127.0.0.1:4317 and sends to X-Ray

data "aws_region" "current" {}

locals {
  # The user the spamflow images run as (docker/Dockerfile).
  service_uid = 10001

  secrets_dir = "/run/spamflow/secrets"
  state_dir   = "/var/lib/spamflow"

  secret_file_names = sort(keys(var.secret_files))

  # The prepare container receives each secret file as SECRET_FILE_<index> and writes it out.
  prepare_script = join(" && ", concat(
    [
      "set -eu",
      "chmod 1777 /volumes/tmp",
      "chown ${local.service_uid}:${local.service_uid} /volumes/state /volumes/secrets",
      "chmod 0750 /volumes/state",
      "chmod 0500 /volumes/secrets",
      "umask 077",
    ],
    flatten([
      for index, file_name in local.secret_file_names : [
        "printf '%s' \"$SECRET_FILE_${index}\" > /volumes/secrets/${file_name}",
        "chown ${local.service_uid}:${local.service_uid} /volumes/secrets/${file_name}",
        "chmod 0400 /volumes/secrets/${file_name}",
      ]
    ]),
  ))

  collector_config = file("${path.module}/${var.trace_forward_otlp_endpoint == "" ? "adot-xray.yaml" : "adot-xray-otlp.yaml"}")

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.this.name
      awslogs-region        = data.aws_region.current.region
      awslogs-stream-prefix = var.name
    }
  }

  prepare_container = {
    name                   = "prepare"
    image                  = var.prepare_image
    essential              = false
    user                   = "0"
    readonlyRootFilesystem = true
    command                = ["sh", "-c", local.prepare_script]
    secrets = [
      for index, file_name in local.secret_file_names : {
        name      = "SECRET_FILE_${index}"
        valueFrom = var.secret_files[file_name]
      }
    ]
    mountPoints = [
      { sourceVolume = "tmp", containerPath = "/volumes/tmp", readOnly = false },
      { sourceVolume = "state", containerPath = "/volumes/state", readOnly = false },
      { sourceVolume = "secrets", containerPath = "/volumes/secrets", readOnly = false },
    ]
    logConfiguration = local.log_configuration
  }

  service_environment = merge(
    { AWS_REGION = data.aws_region.current.region },
    var.enable_otel_collector ? {
      OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:4317"
      OTEL_EXPORTER_OTLP_PROTOCOL = "grpc"
    } : {},
    { OTEL_SERVICE_NAME = var.name },
    var.environment,
  )

  service_container = {
    name                   = var.name
    image                  = var.image
    command                = var.command
    essential              = true
    user                   = "${local.service_uid}:${local.service_uid}"
    readonlyRootFilesystem = true
    portMappings           = var.port == null ? [] : [{ containerPort = var.port, protocol = "tcp" }]
    environment            = [for key in sort(keys(local.service_environment)) : { name = key, value = local.service_environment[key] }]
    secrets = [
      for key in sort(keys(var.secret_environment)) : { name = key, valueFrom = var.secret_environment[key] }
    ]
    mountPoints = concat(
      [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
        { sourceVolume = "state", containerPath = local.state_dir, readOnly = false },
        { sourceVolume = "secrets", containerPath = local.secrets_dir, readOnly = true },
      ],
      var.efs_volume == null ? [] : [
        { sourceVolume = "efs", containerPath = var.efs_volume.container_path, readOnly = var.efs_volume.read_only },
      ],
    )
    linuxParameters = {
      capabilities = { drop = ["ALL"] }
    }
    healthCheck = var.health_check == null ? null : {
      command     = ["CMD", "spamflow-healthcheck", var.health_check]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    # Services drain in-flight Kafka work on SIGTERM before ECS sends SIGKILL.
    stopTimeout = 30
    dependsOn = concat(
      [{ containerName = "prepare", condition = "SUCCESS" }],
      var.enable_otel_collector ? [{ containerName = "otel-collector", condition = "HEALTHY" }] : [],
    )
    logConfiguration = local.log_configuration
  }

  collector_environment = merge(
    { AOT_CONFIG_CONTENT = local.collector_config },
    var.trace_forward_otlp_endpoint == "" ? {} : {
      TRACE_FORWARD_OTLP_ENDPOINT = var.trace_forward_otlp_endpoint
      TRACE_FORWARD_OTLP_INSECURE = tostring(var.trace_forward_otlp_insecure)
    },
  )

  collector_container = {
    name  = "otel-collector"
    image = var.adot_image
    # A task whose collector died would lose every trace, so ECS replaces the whole task.
    essential              = true
    readonlyRootFilesystem = true
    environment            = [for key in sort(keys(local.collector_environment)) : { name = key, value = local.collector_environment[key] }]
    healthCheck = {
      # The ADOT image ships this probe of the health_check extension on port 13133.
      command     = ["CMD", "/healthcheck"]
      interval    = 10
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
    logConfiguration = local.log_configuration
  }

  containers = concat(
    [local.prepare_container, local.service_container],
    var.enable_otel_collector ? [local.collector_container] : [],
  )
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/spamflow/${var.deployment}/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The execution role is what ECS itself uses to start the task: pull the image, write logs,
# and read the secrets it injects. The service never holds these permissions.
resource "aws_iam_role" "execution" {
  name               = "${var.deployment}-${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "PullServiceImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [var.ecr_repository_arn]
  }

  # ECR issues registry tokens per account; the action has no resource to scope it to.
  statement {
    sid       = "GetRegistryToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "WriteContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.secret_environment) + length(var.secret_files) > 0 ? [1] : []

    content {
      sid       = "ReadInjectedSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = distinct(concat(values(var.secret_environment), values(var.secret_files)))
    }
  }

  dynamic "statement" {
    for_each = length(var.secret_environment) + length(var.secret_files) > 0 ? [1] : []

    content {
      sid       = "DecryptInjectedSecrets"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${data.aws_region.current.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-task"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The task role is what the service and its collector run as.
resource "aws_iam_role" "task" {
  name               = "${var.deployment}-${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json

  tags = var.tags
}

data "aws_iam_policy_document" "traces" {
  # X-Ray ingestion and sampling actions have no resource to scope them to.
  statement {
    sid = "SendTracesToXRay"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:GetSamplingStatisticSummaries",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "traces" {
  count = var.enable_otel_collector ? 1 : 0

  name   = "send-traces"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.traces.json
}

# Mount the EFS access point, and write to it unless the volume is read-only.
data "aws_iam_policy_document" "efs" {
  count = var.efs_volume == null ? 0 : 1

  statement {
    sid       = "MountThroughAccessPoint"
    actions   = var.efs_volume.read_only ? ["elasticfilesystem:ClientMount"] : ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [var.efs_volume.file_system_arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [var.efs_volume.access_point_arn]
    }
  }
}

resource "aws_iam_role_policy" "efs" {
  count = var.efs_volume == null ? 0 : 1

  name   = "mount-efs"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.efs[0].json
}

resource "aws_iam_role_policy" "task" {
  count = var.task_policy_json == null ? 0 : 1

  name   = "service-access"
  role   = aws_iam_role.task.id
  policy = var.task_policy_json
}

resource "aws_ecs_task_definition" "this" {
  family                   = "${var.deployment}-${var.name}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.containers)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.architecture
  }

  # Task-local storage on the Fargate ephemeral disk; gone when the task stops.
  volume {
    name = "tmp"
  }

  volume {
    name = "state"
  }

  volume {
    name = "secrets"
  }

  # Shared storage on EFS, kept after the task stops.
  dynamic "volume" {
    for_each = var.efs_volume == null ? [] : [var.efs_volume]

    content {
      name = "efs"

      efs_volume_configuration {
        file_system_id     = volume.value.file_system_id
        transit_encryption = "ENABLED"

        authorization_config {
          access_point_id = volume.value.access_point_id
          iam             = "ENABLED"
        }
      }
    }
  }

  tags = var.tags
}

resource "aws_service_discovery_service" "this" {
  count = var.create_service && var.service_discovery_namespace_id != null ? 1 : 0

  name = var.name

  dns_config {
    namespace_id   = var.service_discovery_namespace_id
    routing_policy = "MULTIVALUE"

    # A short TTL lets clients stop using a stopped task within seconds.
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  # ECS reports task health to Cloud Map, so only healthy tasks are returned.
  health_check_custom_config {}

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  count = var.create_service ? 1 : 0

  name                   = var.name
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.this.arn
  desired_count          = var.desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  # Start the new task before stopping the old one, and roll back a deployment whose tasks
  # never become healthy.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  dynamic "service_registries" {
    for_each = aws_service_discovery_service.this

    content {
      registry_arn = service_registries.value.arn
    }
  }

  tags = var.tags
}
