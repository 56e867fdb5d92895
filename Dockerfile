# syntax=docker/dockerfile:1
# bbnode container image.
#
# Two stages: `build` turns the project into wheels (dependencies first, in their own layer, so
# that editing bbnode/ does not re-download or rebuild them), the runtime stage installs those
# wheels offline into a slim Python and runs the daemon as a fixed non-root user.
#
#   podman build --format docker -t bbnode .        (or: docker build -t bbnode .)
#   podman run --network host -v bbnode-state:/var/lib/bbnode bbnode
#
# The image works with no configuration: /etc/bbnode/bbnode.toml is a built-in default (listen
# on 0.0.0.0:7400, state in /var/lib/bbnode). Mount your own file over it to configure a node;
# keep node.state_dir = "/var/lib/bbnode" and the default control socket so that the volume and
# the HEALTHCHECK keep working.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Dependency layer: only pyproject.toml (and the README it names) decide what is downloaded.
# A placeholder package lets pip resolve and wheel the dependencies without the real source.
COPY pyproject.toml README.md ./
RUN mkdir bbnode \
    && touch bbnode/__init__.py \
    && pip wheel --wheel-dir /wheels/deps . \
    && rm -f /wheels/deps/bbnode-*.whl \
    && ls -1 /wheels/deps > /wheels/deps.txt \
    && rm -rf bbnode build ./*.egg-info
# Source layer: rebuilt on every change to bbnode/, cheap because it has no dependencies.
COPY bbnode/ bbnode/
RUN pip wheel --no-deps --wheel-dir /wheels/app .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A fixed uid/gid so that volume ownership is the same on every host and every rebuild.
ARG BBNODE_UID=10001
RUN groupadd --system --gid "${BBNODE_UID}" bbnode \
    && useradd --system --uid "${BBNODE_UID}" --gid bbnode --no-create-home \
        --home-dir /var/lib/bbnode --shell /usr/sbin/nologin bbnode \
    && install -d -o bbnode -g bbnode -m 0750 /var/lib/bbnode \
    && install -d -o root -g bbnode -m 0750 /etc/bbnode
# A RUN's cache key does not cover what it bind-mounts from another stage (buildah), so each
# install step is preceded by a COPY of what it installs: the list of dependency wheels (it
# changes exactly when the dependencies do), then the small bbnode wheel itself.
COPY --from=build /wheels/deps.txt /usr/local/share/bbnode/dependency-wheels.txt
RUN --mount=type=bind,from=build,source=/wheels/deps,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
COPY --from=build /wheels/app/ /tmp/bbnode-wheel/
RUN pip install --no-cache-dir --no-index --no-deps /tmp/bbnode-wheel/*.whl \
    && rm -rf /tmp/bbnode-wheel
COPY --chown=root:bbnode --chmod=0640 deploy/image/bbnode.toml /etc/bbnode/bbnode.toml

# Numeric, so that `runAsNonRoot` checks (Kubernetes) can verify it without /etc/passwd.
USER ${BBNODE_UID}:${BBNODE_UID}
WORKDIR /var/lib/bbnode
VOLUME ["/var/lib/bbnode"]
# The node's peer-to-peer port (node.listen in the built-in config).
EXPOSE 7400/tcp
# The daemon handles SIGTERM itself: final snapshot, then exit 0 within shutdown_grace_s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bbnode", "ctl", "--socket", "/var/lib/bbnode/control.sock", "health"]
ENTRYPOINT ["bbnode"]
CMD ["run", "--config", "/etc/bbnode/bbnode.toml"]
