"""Load-test traffic from a model spec's own rows: one query's real candidates per request, queries drawn with a skew.

The bundled model's traffic is Beauty users (:mod:`tritonrec.measure.traffic`); a team's model is driven with its own
evaluation rows: each request is one query as the served model takes it (the rows layout: the query's N rows; the
query + candidates layout: its query inputs once and its N candidates), with the query's real candidate count.
Queries are drawn with a Zipf skew over a seeded ranking of the queries (``skew`` 0: uniform; 1: the k-th ranked
query drawn 1/k as often as the first), as a few popular queries dominate real search traffic.

perf_analyzer sends one batch size per run (``-b``) and builds a batch of B consecutive rows of its input data (and
checks, ahead of the run, that any B consecutive rows share their shapes), so in the rows layout it can only replay
requests of one row count and one shape: ``rows_per_request`` gives every request exactly that many rows (each
query's rows cycled or cut to it) and pads a dynamic dim to the longest of all requests; our generator then sends
the very same requests. In the query
+ candidates layout a request is one query (``-b 1``) and candidate counts vary freely. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import service_pb2

from tritonrec.client.features import FeatureLimits, check_features, feature_request
from tritonrec.errors import ConfigError
from tritonrec.spec.model_spec import ModelSpec
from tritonrec.spec.rows import SpecRows, pad_alike, read_rows, split_rows

__all__ = [
    "FeatureRequest",
    "SpecTraffic",
    "evaluation_rows",
    "feature_input_data",
    "replayable",
    "served_spec_requests",
    "spec_requests",
    "spec_traffic_record",
]

Features = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecTraffic:
    """How requests are drawn from a spec's evaluation rows.

    Attributes:
        skew: Zipf exponent over the queries (0 = uniform).
        seed: seeds the ranking of the queries and the draw.
        rows_per_request: rows layout: every request exactly this many rows (0 = each query's own count).
    """

    skew: float = 0.0
    seed: int = 0
    rows_per_request: int = 0

    def __post_init__(self) -> None:
        if self.skew < 0 or self.rows_per_request < 0:
            raise ConfigError(f"skew and rows_per_request must be >= 0, got {self.skew}, {self.rows_per_request}")


@dataclass(frozen=True, slots=True)
class FeatureRequest:
    """One request of a spec's model, built once and sent again and again.

    Attributes:
        features: the inputs as the served config takes them.
        model: the model the prebuilt message is addressed to.
        message: its wire form.
        n_candidates: candidate rows it scores.
        batch: its first axis: rows (rows layout) or queries (1, query + candidates layout).
    """

    features: Features
    model: str
    message: service_pb2.ModelInferRequest
    n_candidates: int
    batch: int

    def for_model(self, model: str) -> service_pb2.ModelInferRequest:
        """The wire form addressed to ``model`` (the prebuilt one when it is the same model)."""
        if model == self.model:
            return self.message
        return feature_request(model, "", self.features, self.message.outputs[0].name)


def evaluation_rows(spec: ModelSpec) -> SpecRows:
    """The spec's evaluation rows (what its traffic is drawn from)."""
    return split_rows(spec, read_rows(spec))[1]


def _resized(rows: SpecRows, start: int, stop: int, n: int) -> SpecRows:
    """The query's rows cycled or cut to exactly ``n``."""
    return rows.take(start + np.arange(n) % (stop - start))


def spec_requests(
    rows: SpecRows, limits: FeatureLimits, model: str, n: int, traffic: SpecTraffic | None = None
) -> list[FeatureRequest]:
    """``n`` requests drawn from ``rows`` (see the module docstring), checked against the served model's limits.

    Raises:
        ConfigError: ``rows_per_request`` in the query + candidates layout, or no query in ``rows``.
        InvalidRequestError: the rows do not fit the served model (another dtype or shape than its config's).
    """
    traffic = traffic or SpecTraffic()
    if traffic.rows_per_request and rows.query_layout:
        raise ConfigError("rows_per_request is for the rows layout; a query + candidates request is one query")
    queries = list(rows.queries())
    if not queries:
        raise ConfigError("the spec's evaluation rows hold no query")
    rng = np.random.default_rng(traffic.seed)
    weights = 1.0 / np.arange(1, len(queries) + 1, dtype=np.float64) ** traffic.skew
    ranked = rng.permutation(len(queries))
    drawn = ranked[rng.choice(len(queries), size=n, p=weights / weights.sum())]
    built: list[tuple[Features, int]] = []
    for index in drawn:
        start, stop = queries[int(index)]
        if traffic.rows_per_request:
            part = _resized(rows, start, stop, traffic.rows_per_request)
            features = part.batch(0, len(part))
        else:
            features = rows.batch(start, stop)
        built.append((check_features(features, limits, model), traffic.rows_per_request or stop - start))
    if traffic.rows_per_request:  # perf_analyzer batches any -b consecutive rows: every row must share its shape
        padded = _padded_alike([f for f, _ in built], rows.pads)
        built = [(f, n) for f, (_, n) in zip(padded, built, strict=True)]
    return [
        FeatureRequest(f, model, feature_request(model, "", f, limits.output), n, int(next(iter(f.values())).shape[0]))
        for f, n in built
    ]


def _padded_alike(requests: list[Features], pads: dict[str, float]) -> list[Features]:
    """Each input's per-row dims padded (with the input's pad value) to the longest of all ``requests``."""
    grown = {name: pad_alike([r[name] for r in requests], pads.get(name, 0)) for name in requests[0]}
    return [{name: grown[name][k] for name in grown} for k in range(len(requests))]


def feature_input_data(requests: list[FeatureRequest]) -> tuple[dict[str, Any], int]:
    """perf_analyzer's ``--input-data`` JSON for ``requests`` and the batch size (``-b``) that replays them.

    perf_analyzer stacks ``-b`` consecutive entries into one request, so each entry is one element of the first axis
    (a row, or a query) and every request must have the same first axis.

    Raises:
        ConfigError: the requests differ in their first axis (rows layout without ``rows_per_request``).
    """
    batches = {r.batch for r in requests}
    if len(batches) != 1:
        raise ConfigError(
            f"requests hold {sorted(batches)[:5]}... rows: perf_analyzer sends one batch size per run; draw them "
            "with rows_per_request"
        )
    entries = []
    for request in requests:
        for k in range(request.batch):
            entries.append(
                {
                    name: {"content": values[k].reshape(-1).tolist(), "shape": list(values.shape[1:])}
                    for name, values in request.features.items()
                }
            )
    return {"data": entries}, batches.pop()


def served_spec_requests(
    url: str, model: str, spec: ModelSpec, n: int, traffic: SpecTraffic, *, one_batch_size: bool
) -> tuple[list[FeatureRequest], SpecTraffic]:
    """``n`` requests of the spec's evaluation rows for the served ``model`` at ``url``, and the traffic used.

    ``one_batch_size`` (perf_analyzer takes part): in the rows layout every request gets the median query's row count
    unless ``rows_per_request`` says otherwise, so both generators send the same requests.

    Raises:
        ClientError: the model's config cannot be read.
    """
    from tritonrec.client import RankingClient

    with RankingClient(url, model=model) as client:
        limits = FeatureLimits.from_config(client.model_config())
    rows = evaluation_rows(spec)
    if one_batch_size:
        traffic = replayable(rows, limits, traffic)
    return spec_requests(rows, limits, model, n, traffic), traffic


def replayable(rows: SpecRows, limits: FeatureLimits, traffic: SpecTraffic) -> SpecTraffic:
    """``traffic`` as perf_analyzer can replay it (one row count per run).

    In the rows layout every request gets the median query's row count (at most the model's ``max_batch_size``)
    unless ``rows_per_request`` already says how many; a query + candidates request is one query already.
    """
    if rows.query_layout or traffic.rows_per_request:
        return traffic
    sizes = [stop - start for start, stop in rows.queries()]
    return replace(traffic, rows_per_request=min(int(np.median(sizes)), limits.max_rows))


def spec_traffic_record(spec: ModelSpec, traffic: SpecTraffic, requests: list[FeatureRequest]) -> dict[str, Any]:
    """What a report says of the traffic: where it came from, how it was drawn, the requests' sizes."""
    return {
        "source": f"spec {spec.name} (evaluation rows of {spec.data.path if spec.data else '?'})",
        "layout": spec.layout.value,
        "query_skew": traffic.skew,
        "rows_per_request": traffic.rows_per_request or "each query's own",
        "distinct_requests": len(requests),
        "mean_candidates": round(sum(r.n_candidates for r in requests) / max(len(requests), 1), 1),
    }
