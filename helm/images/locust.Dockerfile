# Image for the chart's in-cluster load test (loadTest.*): the tritonrec package with its gRPC client and locust,
# plus bench/ (locustfile.py, scenarios/). Build from the repository root and push where the cluster pulls from:
#   docker build -f helm/images/locust.Dockerfile -t registry.example.com/tritonrec-locust:0.1.0 .
#   docker push registry.example.com/tritonrec-locust:0.1.0
# then: --set loadTest.enabled=true,loadTest.image.repository=registry.example.com/tritonrec-locust,loadTest.image.tag=0.1.0
# Not built in this repository's CI (no container runtime there).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
COPY bench ./bench
# client: RankingClient (tritonclient[grpc]); bench: locust. constraints.txt pins what the repository tests with.
RUN pip install --no-cache-dir ".[client,bench]" -c constraints.txt
# The chart runs it as uid 10001 (no system user: checkov CKV_K8S_40) with a read-only root filesystem and HOME=/tmp.
USER 10001:10001
ENTRYPOINT ["locust"]
