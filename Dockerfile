# syntax=docker/dockerfile:1
# quantd: one image with quantd, quantd-worker, quantctl and quantize-awq.
#
# Base images: NVIDIA publishes CUDA container images for Ubuntu, Rocky Linux and UBI, but not for
# Debian, while quantd builds and is tested (CI) on Debian 12 packages through
# scripts/install-deps.sh. Both stages therefore start from debian:12 with NVIDIA's official CUDA
# apt repository for Debian 12 (the same packages NVIDIA's own images install): the build stage
# gets exactly the package versions CI uses, plus nvcc and the CUDA development libraries; the
# runtime stage gets only the shared libraries the binaries load. See docs/deploy.md.
ARG DEBIAN_IMAGE=debian:12
ARG CUDA_REPO=https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64
ARG CUDA_VERSION=13-0

# --- NVIDIA's CUDA apt repository on Debian 12 (shared by both stages) ------------------------
FROM ${DEBIAN_IMAGE} AS cuda-apt
ARG CUDA_REPO
ADD ${CUDA_REPO}/cuda-keyring_1.1-1_all.deb /tmp/cuda-keyring.deb
RUN dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb
# Read by the NVIDIA container toolkit: expose the GPUs and the driver's compute libraries.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/usr/local/cuda/lib64

# --- build: the CI package set, the CUDA compiler, then the four executables -----------------
FROM cuda-apt AS build
ARG CUDA_VERSION
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh \
 && apt-get install -y --no-install-recommends \
      cuda-nvcc-${CUDA_VERSION} cuda-cudart-dev-${CUDA_VERSION} cuda-cccl-${CUDA_VERSION} \
      libcublas-dev-${CUDA_VERSION} \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/cuda/bin:${PATH}
COPY . /src
WORKDIR /src
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTD_CUDA=ON \
 && cmake --build /build --target quantd quantd-worker quantctl quantize-awq
# The runtime stage installs the packages that own the libraries these binaries load.
RUN mkdir /out \
 && cp /build/bin/quantd /build/bin/quantd-worker /build/bin/quantctl /build/bin/quantize-awq /out/ \
 && bash deploy/docker/runtime-packages.sh /out/* > /out/runtime-packages.txt \
 && cat /out/runtime-packages.txt

# --- runtime: shared libraries and the binaries, nothing to compile with ---------------------
FROM cuda-apt AS runtime
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/quantd /out/quantd-worker /out/quantctl /out/quantize-awq /usr/local/bin/
RUN groupadd --system --gid 10001 quantd \
 && useradd --system --uid 10001 --gid quantd --home-dir /var/lib/quantd --create-home quantd \
 && mkdir -p /models && chown quantd:quantd /models
USER 10001:10001
WORKDIR /var/lib/quantd
# Defaults for a container: listen on all interfaces, state under the (volume) home directory,
# JSON logs. The worker's metrics port is 7452 (set QUANTD_METRICS_ADDRESS and
# QUANTD_HEALTH_PORT for it, as deploy/ does).
ENV QUANTD_LISTEN=0.0.0.0:7450 \
    QUANTD_METRICS_ADDRESS=0.0.0.0:7451 \
    QUANTD_HEALTH_PORT=7451 \
    QUANTD_STATE_DIR=/var/lib/quantd \
    QUANTD_ENGINE=/usr/local/bin/quantize-awq \
    QUANTD_LOG_FORMAT=json
VOLUME ["/var/lib/quantd"]
# 7450 gRPC (quantd), 7451 HTTP /metrics /healthz /readyz (quantd), 7452 the same for a worker.
EXPOSE 7450 7451 7452
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsSk "https://127.0.0.1:${QUANTD_HEALTH_PORT}/healthz" || \
      curl -fsS "http://127.0.0.1:${QUANTD_HEALTH_PORT}/healthz" || exit 1
ENTRYPOINT ["/usr/local/bin/quantd"]
