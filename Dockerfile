# The Conclave node image.
#
# The binary is built on the host (`cargo build --release -p conclave`, staged as
# target/docker/conclave by scripts/compose-up.sh) and only copied here: no Rust toolchain or
# package is fetched inside the build. The default base, conclave-base:bookworm, is made from the
# Debian mirror by docker/build-base-image.sh (no registry needed); with a registry at hand,
# `--build-arg BASE_IMAGE=debian:bookworm-slim` works as well. The host that builds the binary
# must have a glibc no newer than the base's (Debian 12: 2.36).
#
#   scripts/compose-up.sh                       # all of it, for the three-node cluster
#   docker build -t conclave:local .            # the image alone, once the binary is staged
#   docker run --rm -p 6379:6379 conclave:local # a one-member cluster on port 6379
ARG BASE_IMAGE=conclave-base:bookworm
FROM ${BASE_IMAGE}

RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin conclave \
    && mkdir -p /data \
    && chown conclave:conclave /data \
    && chmod 0750 /data

COPY target/docker/conclave /usr/local/bin/conclave

# Every flag also reads CONCLAVE_<NAME>; these hold for any command line given to the image.
# Set CONCLAVE_REQUIREPASS (not --requirepass) so that the health check can authenticate.
ENV CONCLAVE_BIND=0.0.0.0 \
    CONCLAVE_DATA_DIR=/data

USER conclave
WORKDIR /data
VOLUME ["/data"]

# 6379: clients (RESP); 16379: the internal cluster port (Raft, forwarding).
EXPOSE 6379 16379

STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=4s --start-period=10s --retries=3 \
    CMD ["conclave", "ping", "--port", "6379", "--timeout-ms", "3000"]

ENTRYPOINT ["conclave"]
CMD ["--bind", "0.0.0.0", "--data-dir", "/data"]
