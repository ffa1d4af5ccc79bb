# spamflow on AWS: a VPC, Amazon MSK with IAM authentication, ElastiCache for Redis with TLS
# and AUTH, and every service on ECS Fargate with an ADOT collector sidecar sending traces
# to X-Ray. The gRPC services get Cloud Map DNS names; nothing is reachable from outside the VPC.
#
# Every endpoint and secret the services need reaches them through the environment set
# here: Kafka brokers and security settings, topic prefix, detector and Bloom filter URLs,
# the Redis URL (a secret), the Gmail credentials file (written from a secret), the Gmail
# mailboxes and action settings, and the model folder on EFS that the trainer writes and the
# detectors read.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  name = "spamflow-${var.environment}"

  availability_zones = var.availability_zones != null ? var.availability_zones : [for suffix in ["a", "b", "c"] : "${var.aws_region}${suffix}"]

  topics = {
    raw      = "${var.topic_prefix}.emails.raw"
    verdicts = "${var.topic_prefix}.emails.verdicts"
    feedback = "${var.topic_prefix}.emails.feedback"
    dlq      = "${var.topic_prefix}.emails.dlq"
    models   = "${var.topic_prefix}.models"
  }

  images = toset([
    "spam-detector",
    "bloom-filter",
    "email-processor",
    "action-handler",
    "trainer",
    "gmail-integration",
    "spamctl",
    "kafka-admin",
  ])

  # MSK IAM resources are named cluster/<name>/<uuid>, topic/<name>/<uuid>/<topic> and
  # group/<name>/<uuid>/<group>.
  kafka_arn_prefix = "arn:${data.aws_partition.current.partition}:kafka:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}"
  kafka_topic_arn  = "${local.kafka_arn_prefix}:topic/${module.msk.cluster_name}/${module.msk.cluster_uuid}"
  kafka_group_arn  = "${local.kafka_arn_prefix}:group/${module.msk.cluster_name}/${module.msk.cluster_uuid}"

  discovery_zone = module.ecs_cluster.service_discovery_namespace
  detector_url   = "http://spam-detector.${local.discovery_zone}:50051"
  bloom_url      = "http://bloom-filter.${local.discovery_zone}:50052"

  credentials_file = "/run/spamflow/secrets/gmail-credentials.json"

  # The trainer writes model files here and announces their path on the models topic; every
  # detector task mounts the same EFS access point at the same path, read-only, and loads
  # the announced file.
  model_dir     = "/srv/spamflow/models"
  model_clients = toset(["trainer", "spam-detector"])

  telemetry_environment = {
    OTEL_TRACES_SAMPLER     = var.traces_sampler
    OTEL_TRACES_SAMPLER_ARG = var.traces_sampler_arg
  }

  # The services authenticate to MSK with SASL/OAUTHBEARER tokens signed with the task role
  # (MSK IAM), over TLS.
  kafka_environment = {
    SPAMFLOW_KAFKA_BROKERS           = module.msk.bootstrap_brokers_iam
    SPAMFLOW_KAFKA_SECURITY_PROTOCOL = "sasl_ssl"
    SPAMFLOW_KAFKA_SASL_MECHANISM    = "OAUTHBEARER"
    SPAMFLOW_TOPIC_PREFIX            = var.topic_prefix
  }

  gmail_environment = {
    SPAMFLOW_GMAIL_API_URL          = var.gmail_api_url
    SPAMFLOW_GMAIL_CREDENTIALS_FILE = local.credentials_file
    SPAMFLOW_GMAIL_MAILBOXES        = join(",", var.gmail_mailboxes)
  }

  # What action-handler changes in Gmail. Dry run needs actions on (the handler exits with
  # status 64 otherwise), so it is only passed as true together with them.
  action_environment = merge(
    {
      SPAMFLOW_GMAIL_ACTIONS = var.gmail_actions ? "on" : "off"
      SPAMFLOW_DRY_RUN       = tostring(var.gmail_actions && var.gmail_dry_run)
      SPAMFLOW_SPAM_ACTION   = var.gmail_spam_action
      SPAMFLOW_SUSPECT_LABEL = var.gmail_suspect_label
    },
    var.gmail_spam_threshold == null ? {} : { SPAMFLOW_SPAM_THRESHOLD = tostring(var.gmail_spam_threshold) },
    var.gmail_suspect_threshold == null ? {} : { SPAMFLOW_SUSPECT_THRESHOLD = tostring(var.gmail_suspect_threshold) },
  )

  gmail_secret_files = { "gmail-credentials.json" = module.secrets.gmail_credentials_secret_arn }
  redis_secret       = { SPAMFLOW_REDIS_URL = module.redis.redis_url_secret_arn }

  # reads and writes name the topics each service consumes and produces; the task role gets
  # exactly those Kafka permissions.
  services = {
    spam-detector = {
      port         = 50051
      health_check = "grpc"
      discoverable = true
      # The detector follows the models topic (manual assignment, no consumer group) and
      # loads each announced model from the shared model folder.
      environment = merge(local.kafka_environment, {
        SPAMFLOW_LISTEN_ADDR   = "0.0.0.0:50051"
        SPAMFLOW_MODEL_UPDATES = "on"
      })
      secret_environment = {}
      secret_files       = {}
      reads              = [local.topics.models]
      writes             = []
    }
    bloom-filter = {
      port               = 50052
      health_check       = "grpc"
      discoverable       = true
      environment        = { SPAMFLOW_LISTEN_ADDR = "0.0.0.0:50052" }
      secret_environment = local.redis_secret
      secret_files       = {}
      reads              = []
      writes             = []
    }
    email-processor = {
      port         = 9402
      health_check = "http"
      discoverable = false
      environment = merge(local.kafka_environment, {
        SPAMFLOW_DETECTOR_URL = local.detector_url
        SPAMFLOW_BLOOM_URL    = local.bloom_url
        SPAMFLOW_HTTP_ADDR    = "0.0.0.0:9402"
      })
      secret_environment = {}
      secret_files       = {}
      reads              = [local.topics.raw]
      writes             = [local.topics.verdicts, local.topics.dlq]
    }
    action-handler = {
      port               = 9405
      health_check       = "http"
      discoverable       = false
      environment        = merge(local.kafka_environment, local.gmail_environment, local.action_environment, { SPAMFLOW_HTTP_ADDR = "0.0.0.0:9405" })
      secret_environment = local.redis_secret
      secret_files       = local.gmail_secret_files
      reads              = [local.topics.verdicts]
      writes             = [local.topics.dlq]
    }
    trainer = {
      port         = 9406
      health_check = "http"
      discoverable = false
      environment = merge(local.kafka_environment, {
        SPAMFLOW_BLOOM_URL = local.bloom_url
        SPAMFLOW_HTTP_ADDR = "0.0.0.0:9406"
        SPAMFLOW_MODEL_DIR = local.model_dir
      })
      secret_environment = {}
      secret_files       = {}
      reads              = [local.topics.feedback]
      writes             = [local.topics.models, local.topics.dlq]
    }
    gmail-integration = {
      port               = 9401
      health_check       = "http"
      discoverable       = false
      environment        = merge(local.kafka_environment, local.gmail_environment, { SPAMFLOW_HTTP_ADDR = "0.0.0.0:9401" })
      secret_environment = {}
      secret_files       = local.gmail_secret_files
      reads              = []
      writes             = [local.topics.raw]
    }
  }

  kafka_services = { for name, service in local.services : name => service if length(service.reads) + length(service.writes) > 0 }

  default_size = { cpu = 512, memory = 1024, desired_count = 1 }
}

module "kms" {
  source = "../../modules/aws/kms"

  name = local.name
}

module "network" {
  source = "../../modules/aws/network"

  name                    = local.name
  cidr_block              = var.vpc_cidr_block
  availability_zones      = local.availability_zones
  single_nat_gateway      = var.single_nat_gateway
  kms_key_arn             = module.kms.key_arn
  flow_log_retention_days = var.log_retention_days
}

module "ecs_cluster" {
  source = "../../modules/aws/ecs-cluster"

  name           = local.name
  vpc_id         = module.network.vpc_id
  vpc_cidr_block = module.network.vpc_cidr_block
}

module "msk" {
  source = "../../modules/aws/msk"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.ecs_cluster.task_security_group_id]
  kafka_version             = var.kafka_version
  broker_instance_type      = var.msk_broker_instance_type
  broker_volume_size_gb     = var.msk_broker_volume_size_gb
  default_partitions        = var.topic_partitions
  kms_key_arn               = module.kms.key_arn
  log_retention_days        = var.log_retention_days
}

module "redis" {
  source = "../../modules/aws/redis"

  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = [module.ecs_cluster.task_security_group_id]
  node_type                 = var.redis_node_type
  replica_count             = var.redis_replica_count
  kms_key_arn               = module.kms.key_arn
  log_retention_days        = var.log_retention_days
}

module "ecr" {
  source = "../../modules/aws/ecr"

  name        = "spamflow"
  images      = local.images
  kms_key_arn = module.kms.key_arn
}

module "efs" {
  source = "../../modules/aws/efs"

  name        = local.name
  vpc_id      = module.network.vpc_id
  subnet_ids  = module.network.private_subnet_ids
  kms_key_arn = module.kms.key_arn
  backup      = var.model_storage_backup
}

module "secrets" {
  source = "../../modules/aws/secrets"

  name        = local.name
  kms_key_arn = module.kms.key_arn
}

# Kafka permissions of each service's task role: connect, then read or write its own topics.
data "aws_iam_policy_document" "kafka" {
  for_each = local.kafka_services

  statement {
    sid       = "ConnectToCluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [module.msk.cluster_arn]
  }

  dynamic "statement" {
    for_each = length(each.value.reads) > 0 ? [1] : []

    content {
      sid       = "ConsumeOwnTopics"
      actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
      resources = [for topic in each.value.reads : "${local.kafka_topic_arn}/${topic}"]
    }
  }

  # NOTE: the services choose their consumer group names, so every group of this cluster is
  # allowed; narrow the ARN to the group names once they are fixed. The detector reads the
  # models topic without a group, so it gets no group permission.
  dynamic "statement" {
    for_each = length(each.value.reads) > 0 && each.key != "spam-detector" ? [1] : []

    content {
      sid       = "CommitConsumerOffsets"
      actions   = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
      resources = ["${local.kafka_group_arn}/*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.writes) > 0 ? [1] : []

    content {
      sid       = "ProduceToOwnTopics"
      actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
      resources = [for topic in each.value.writes : "${local.kafka_topic_arn}/${topic}"]
    }
  }

  # The idempotent producer (no duplicates on retry) needs this cluster-level permission.
  dynamic "statement" {
    for_each = length(each.value.writes) > 0 ? [1] : []

    content {
      sid       = "ProduceIdempotently"
      actions   = ["kafka-cluster:WriteDataIdempotently"]
      resources = [module.msk.cluster_arn]
    }
  }
}

module "service" {
  source   = "../../modules/aws/ecs-service"
  for_each = local.services

  name                           = each.key
  deployment                     = local.name
  cluster_arn                    = module.ecs_cluster.cluster_arn
  image                          = "${module.ecr.repository_urls[each.key]}:${var.image_tag}"
  cpu                            = lookup(var.service_sizes, each.key, local.default_size).cpu
  memory                         = lookup(var.service_sizes, each.key, local.default_size).memory
  desired_count                  = lookup(var.service_sizes, each.key, local.default_size).desired_count
  port                           = each.value.port
  health_check                   = each.value.health_check
  environment                    = merge(local.telemetry_environment, each.value.environment)
  secret_environment             = each.value.secret_environment
  secret_files                   = each.value.secret_files
  subnet_ids                     = module.network.private_subnet_ids
  security_group_ids             = concat([module.ecs_cluster.task_security_group_id], contains(local.model_clients, each.key) ? [module.efs.client_security_group_id] : [])
  service_discovery_namespace_id = each.value.discoverable ? module.ecs_cluster.service_discovery_namespace_id : null
  ecr_repository_arn             = module.ecr.repository_arns[each.key]
  kms_key_arn                    = module.kms.key_arn
  task_policy_json               = contains(keys(local.kafka_services), each.key) ? data.aws_iam_policy_document.kafka[each.key].json : null
  log_retention_days             = var.log_retention_days
  trace_forward_otlp_endpoint    = var.trace_forward_otlp_endpoint

  efs_volume = contains(local.model_clients, each.key) ? {
    file_system_id   = module.efs.file_system_id
    file_system_arn  = module.efs.file_system_arn
    access_point_id  = module.efs.access_point_id
    access_point_arn = module.efs.access_point_arn
    container_path   = local.model_dir
    read_only        = each.key != "trainer"
  } : null
}

# The topics task: a one-shot run of docker/kafka/create-topics.sh in the kafka-admin image,
# started by the operator after the first apply (see the create_topics_command output).
data "aws_iam_policy_document" "create_topics" {
  statement {
    sid       = "ConnectToCluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [module.msk.cluster_arn]
  }

  statement {
    sid = "CreateSpamflowTopics"
    actions = [
      "kafka-cluster:CreateTopic",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:DescribeTopicDynamicConfiguration",
    ]
    resources = ["${local.kafka_topic_arn}/${var.topic_prefix}.*"]
  }
}

module "create_topics" {
  source = "../../modules/aws/ecs-service"

  name               = "create-topics"
  deployment         = local.name
  cluster_arn        = module.ecs_cluster.cluster_arn
  image              = "${module.ecr.repository_urls["kafka-admin"]}:${var.image_tag}"
  cpu                = 256
  memory             = 1024
  create_service     = false
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.ecs_cluster.task_security_group_id]
  ecr_repository_arn = module.ecr.repository_arns["kafka-admin"]
  kms_key_arn        = module.kms.key_arn
  task_policy_json   = data.aws_iam_policy_document.create_topics.json
  log_retention_days = var.log_retention_days

  # The Kafka tools trace nothing, so the task runs without a collector.
  enable_otel_collector = false

  environment = {
    KAFKA_BOOTSTRAP_SERVERS  = module.msk.bootstrap_brokers_iam
    SPAMFLOW_TOPIC_PREFIX    = var.topic_prefix
    TOPIC_PARTITIONS         = tostring(var.topic_partitions)
    TOPIC_REPLICATION_FACTOR = tostring(min(3, length(local.availability_zones)))
    # The root file system is read-only; the Kafka scripts write their logs here instead.
    LOG_DIR = "/tmp/kafka-logs"
  }
}
