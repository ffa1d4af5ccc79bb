# syntax=docker/dockerfile:1.7
#
# Kafka administration image for Amazon MSK: the Apache Kafka command-line tools, the
# aws-msk-iam-auth library that lets them authenticate with IAM, and create-topics.sh.
# The AWS Terraform example runs it once as an ECS task to create the spamflow topics.
#
#   docker build -f docker/kafka-admin.Dockerfile -t spamflow/kafka-admin .

ARG KAFKA_VERSION=4.1.0

FROM apache/kafka:${KAFKA_VERSION}
ARG MSK_IAM_AUTH_VERSION=2.3.0

USER 0:0
# The "-all" jar bundles the AWS SDK classes the login module needs.
# NOTE: pin the jar with ADD --checksum=sha256:... once the digest of this release is
# recorded; until then the build trusts the TLS download from GitHub.
#checkov:skip=CKV_DOCKER_4:ADD fetches a versioned release jar over HTTPS; COPY cannot fetch URLs.
ADD --chmod=0644 \
    https://github.com/aws/aws-msk-iam-auth/releases/download/v${MSK_IAM_AUTH_VERSION}/aws-msk-iam-auth-${MSK_IAM_AUTH_VERSION}-all.jar \
    /opt/kafka/libs/
COPY --chmod=0644 docker/kafka/msk-iam.properties /etc/spamflow/msk-iam.properties
COPY --chmod=0755 docker/kafka/create-topics.sh /usr/local/bin/create-topics

# appuser (uid 1000), the unprivileged user that apache/kafka creates.
USER 1000:1000
ENV KAFKA_COMMAND_CONFIG=/etc/spamflow/msk-iam.properties \
    TOPIC_REPLICATION_FACTOR=3
# A one-shot job with no port to probe.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/create-topics"]
