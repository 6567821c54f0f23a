#!/usr/bin/env python3
"""Liveness by a real inference: exit 0 when every model answers one ranking request with scores, 1 otherwise.

A Python-backend model whose stub process died answers every request with an error while Triton's health
endpoints (/v2/health/live, /v2/health/ready, the model's ready) still say 200; only an inference notices. The
Helm chart runs this script as the Triton container's liveness probe (probes.deadBackendCheck), so the kubelet
restarts a pod with a dead backend. Standard library only: it runs with the image's python3.

    infer_probe.py --url http://127.0.0.1:8000 --models ranker_onnx [--timeout-s 3]

Each model gets one user with an all-padding history of its max_history (from its config) and one candidate.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request


def _get(url, timeout_s):
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


def probe(url, model, timeout_s):
    """None when ``model`` answered scores, else what went wrong."""
    try:
        config = _get(f"{url}/v2/models/{model}/config", timeout_s)
        length = int(config.get("parameters", {}).get("max_history", {}).get("string_value", "0"))
        body = {
            "inputs": [
                {"name": "history", "datatype": "INT64", "shape": [1, length], "data": [0] * length},
                {"name": "candidates", "datatype": "INT64", "shape": [1, 1], "data": [1]},
            ],
            "outputs": [{"name": "scores"}],
        }
        request = urllib.request.Request(
            f"{url}/v2/models/{model}/infer",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as e:
        return f"{model}: HTTP {e.code}: {e.read()[:300].decode(errors='replace')}"
    except (OSError, ValueError) as e:
        return f"{model}: {e}"
    outputs = [o for o in answer.get("outputs", []) if o.get("name") == "scores"]
    if not outputs or len(outputs[0].get("data", [])) != 1:
        return f"{model}: no score in the answer {str(answer)[:300]}"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Triton's HTTP endpoint")
    parser.add_argument("--models", required=True, help="comma-separated models to probe")
    parser.add_argument("--timeout-s", type=float, default=3.0, help="deadline of each HTTP call")
    args = parser.parse_args(argv)
    problems = [p for m in args.models.split(",") if m.strip() for p in [probe(args.url, m.strip(), args.timeout_s)] if p]
    for problem in problems:
        print(f"infer_probe: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
