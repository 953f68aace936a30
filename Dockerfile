# The karchive daemon image: `karchive run` on the policy mounted at /etc/karchive/policy.yaml.
#
#   docker build -t karchive .
#   docker run --env-file karchive.env -v $PWD/policy.yaml:/etc/karchive/policy.yaml:ro \
#       -p 9464:9464 karchive            # then http://localhost:9464/metrics
#
# Secrets (KALTURA_ADMIN_SECRET, AWS_*) come from the environment or mounted files, never from the
# image. tests/daemon/test_image_steps.py replays the COPY and `pip install` steps below in a fresh
# virtualenv, so CI checks this file without Docker: keep those steps plain.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed non-root uid, so Kubernetes' runAsNonRoot can check it without a name lookup.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent karchive

WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY policies ./policies
COPY reconcilers ./reconcilers
# The runtime dependencies only: no [dev] or [sandbox] extras (pytest, ruff, mypy, moto) and no
# sandbox/ in the image; `karchive sandbox` in it says how to install the sandbox elsewhere.
RUN pip install . && rm -rf /src

# The state directory (the journal: interrupted steps, backoffs) must belong to the user the
# daemon runs as and outlive the container: mount a volume here (docker run -v, a
# PersistentVolumeClaim in deploy/k8s, EFS in deploy/ecs).
RUN mkdir -p /var/lib/karchive && chown 10001 /var/lib/karchive
VOLUME /var/lib/karchive
WORKDIR /var/lib/karchive
USER 10001

# Inside a container the metrics server must listen beyond loopback for the scraper and probes.
ENV KARCHIVE_METRICS_ADDRESS=0.0.0.0 \
    KARCHIVE_METRICS_PORT=9464 \
    KARCHIVE_POLICY=/etc/karchive/policy.yaml \
    KARCHIVE_LOG_FORMAT=json \
    KARCHIVE_STATE_DIR=/var/lib/karchive
EXPOSE 9464

# slim has no curl: ask /healthz with Python's own urllib (non-2xx raises, exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('KARCHIVE_METRICS_PORT', '9464'), timeout=4)"]

ENTRYPOINT ["karchive", "run"]
