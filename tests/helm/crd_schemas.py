"""Minimal structural schemas for the custom resources the chart renders.

kubernetes-validate bundles the schemas of Kubernetes' own APIs only; ServiceMonitor, PrometheusRule (Prometheus
Operator), ScaledObject (KEDA) and GRPCRoute (Gateway API) are CRDs it cannot check. These schemas hold the
fields the chart sets, with their types, closed (additionalProperties: false) where a typo would silently do
nothing. They are a hand-written subset of each project's CRD, not the CRD itself.
"""

from __future__ import annotations

from typing import Any

_STR = {"type": "string", "minLength": 1}
_DURATION = {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}
_STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": _STR, "namespace": _STR, "labels": _STRMAP},
}
# Prometheus Operator RelabelConfig (monitoring.coreos.com/v1).
_RELABELINGS = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "sourceLabels": {"type": "array", "items": _STR},
            "separator": {"type": "string"},
            "targetLabel": _STR,
            "regex": {"type": "string"},
            "modulus": {"type": "integer", "minimum": 1},
            "replacement": {"type": "string"},
            "action": {
                "enum": [
                    "replace",
                    "keep",
                    "drop",
                    "hashmod",
                    "labelmap",
                    "labeldrop",
                    "labelkeep",
                    "lowercase",
                    "uppercase",
                    "keepequal",
                    "dropequal",
                ]
            },
        },
    },
}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _META,
            "spec": spec,
        },
    }


SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": {
                "type": "object",
                "required": ["matchLabels"],
                "properties": {"matchLabels": {**_STRMAP, "minProperties": 1}},
            },
            "namespaceSelector": {
                "type": "object",
                "properties": {"matchNames": {"type": "array", "items": _STR}, "any": {"type": "boolean"}},
                "additionalProperties": False,
            },
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["port"],
                    "additionalProperties": False,
                    "properties": {
                        "port": _STR,
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": _DURATION,
                        "scrapeTimeout": _DURATION,
                        "relabelings": _RELABELINGS,
                        "metricRelabelings": _RELABELINGS,
                    },
                },
            },
        },
    },
)

PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    {
        "type": "object",
        "required": ["groups"],
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "additionalProperties": False,
                    "properties": {
                        "name": _STR,
                        "rules": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["expr"],
                                "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                "additionalProperties": False,
                                "properties": {
                                    "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                    "record": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                                    "expr": _STR,
                                    "for": _DURATION,
                                    "labels": _STRMAP,
                                    "annotations": _STRMAP,
                                },
                            },
                        },
                    },
                },
            }
        },
    },
)

SCALED_OBJECT = _resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"apiVersion": _STR, "kind": _STR, "name": _STR},
            },
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "advanced": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "horizontalPodAutoscalerConfig": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"behavior": {"type": "object"}},
                    }
                },
            },
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["type", "metadata"],
                    "additionalProperties": False,
                    "properties": {
                        "type": _STR,
                        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        # KEDA reads every trigger metadata value as a string.
                        "metadata": _STRMAP,
                    },
                },
            },
        },
    },
)

GRPC_ROUTE = _resource(
    "gateway.networking.k8s.io/v1",
    "GRPCRoute",
    {
        "type": "object",
        "required": ["parentRefs", "rules"],
        "additionalProperties": False,
        "properties": {
            "parentRefs": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "required": ["name"], "properties": {"name": _STR}},
            },
            "hostnames": {"type": "array", "items": _STR},
            "rules": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matches": {"type": "array"},
                        "backendRefs": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["name", "port"],
                                "properties": {"name": _STR, "port": {"type": "integer"}},
                            },
                        },
                    },
                },
            },
        },
    },
)

CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": SERVICE_MONITOR,
    "PrometheusRule": PROMETHEUS_RULE,
    "ScaledObject": SCALED_OBJECT,
    "GRPCRoute": GRPC_ROUTE,
}
