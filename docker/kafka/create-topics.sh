#!/usr/bin/env bash
# Creates the spamflow topics if they do not exist yet, then prints their layout.
#
# Runs with the Apache Kafka command-line tools: as the one-shot `kafka-topics` job in
# docker-compose.yml (apache/kafka image) and as the AWS topic task (kafka-admin image,
# MSK with IAM authentication). GCP creates the same topics with Terraform resources.
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS   host:port list (required)
#   SPAMFLOW_TOPIC_PREFIX     topic name prefix (default spamflow)
#   TOPIC_PARTITIONS          partitions of the email, verdict, feedback and DLQ topics (default 6)
#   TOPIC_REPLICATION_FACTOR  replicas per partition (default 1; use 3 on a 3-broker cluster)
#   KAFKA_COMMAND_CONFIG      optional client properties file, e.g. SASL/IAM settings
#
# Existing topics are left unchanged, so the script is safe to run on every start.
# NOTE: a topic that exists with fewer partitions than TOPIC_PARTITIONS is not altered; grow
# it by hand with `kafka-topics.sh --alter --partitions`, which remaps keys to partitions.
set -euo pipefail

readonly KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
readonly BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:?KAFKA_BOOTSTRAP_SERVERS is not set}"
readonly PREFIX="${SPAMFLOW_TOPIC_PREFIX:-spamflow}"
readonly PARTITIONS="${TOPIC_PARTITIONS:-6}"
readonly REPLICATION="${TOPIC_REPLICATION_FACTOR:-1}"

# With three replicas a write needs two in-sync copies before it is acknowledged.
if ((REPLICATION >= 3)); then
    readonly MIN_INSYNC=2
else
    readonly MIN_INSYNC=1
fi

readonly DAY_MS=86400000

client_args=(--bootstrap-server "$BOOTSTRAP")
if [[ -n "${KAFKA_COMMAND_CONFIG:-}" ]]; then
    client_args+=(--command-config "$KAFKA_COMMAND_CONFIG")
fi

# create_topic NAME PARTITIONS CONFIG...
create_topic() {
    local name="$1"
    local partitions="$2"
    shift 2

    local config_args=(--config "min.insync.replicas=$MIN_INSYNC")
    local config
    for config in "$@"; do
        config_args+=(--config "$config")
    done

    echo "Ensuring topic $name ($partitions partitions, replication $REPLICATION)"
    "$KAFKA_BIN/kafka-topics.sh" "${client_args[@]}" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor "$REPLICATION" \
        "${config_args[@]}"
}

# Raw emails and verdicts are replayable for a week. Feedback feeds retraining, so it is kept
# for 30 days. Dead letters are kept for 14 days for an operator to inspect and replay.
create_topic "$PREFIX.emails.raw" "$PARTITIONS" "retention.ms=$((7 * DAY_MS))"
create_topic "$PREFIX.emails.verdicts" "$PARTITIONS" "retention.ms=$((7 * DAY_MS))"
create_topic "$PREFIX.emails.feedback" "$PARTITIONS" "retention.ms=$((30 * DAY_MS))"
create_topic "$PREFIX.emails.dlq" "$PARTITIONS" "retention.ms=$((14 * DAY_MS))"

# Model announcements: compaction keeps the latest record per key forever, and one partition
# keeps every announcement in publication order.
create_topic "$PREFIX.models" 1 "cleanup.policy=compact" "retention.ms=-1"

"$KAFKA_BIN/kafka-topics.sh" "${client_args[@]}" --describe --topic "^${PREFIX//./\\.}\\..*"
