"""Layer groups of the exported ranker: which ONNX node belongs to which part of the model.

The dynamo exporter records each node's module path in its ``pkg.torch.onnx.name_scopes`` metadata (for
example ``['', 'history', 'history.attn.0', 'history.attn.0.query', 'linear_1']``). The group follows from the
first module below the root:

| group | modules | what it holds |
|---|---|---|
| ``embeddings`` | ``items`` | the item/attribute/side embedding gathers and the item projection |
| ``history_attention`` | ``history`` | the history self-attention block, its feed-forward part and norms |
| ``target_attention`` | ``target_attention`` | candidate-over-history attention |
| ``cross`` | ``cross`` | the DCN-v2 cross layers |
| ``mlp`` | ``mlp`` (all but the last linear) | the hidden MLP layers |
| ``head`` | the MLP's last linear and the root scope | the logit: last linear, the wide dot products, the sum |

A graph without scope metadata (another exporter) falls back to the node name, which then must contain one of
the module names; nodes that match nothing are ``head`` (root-level glue).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    import onnx

__all__ = [
    "SCOPE_KEY",
    "LayerGroup",
    "NodeInfo",
    "graph_nodes",
    "group_of",
    "node_names",
    "nodes_by_group",
    "parse_groups",
]

SCOPE_KEY = "pkg.torch.onnx.name_scopes"
_MLP_LINEAR = re.compile(r"^mlp\.net\.(\d+)$")


class LayerGroup(enum.StrEnum):
    """The parts of the ranker quantized (or kept in floating point) together."""

    EMBEDDINGS = "embeddings"
    HISTORY_ATTENTION = "history_attention"
    TARGET_ATTENTION = "target_attention"
    CROSS = "cross"
    MLP = "mlp"
    HEAD = "head"


_TOP_MODULES = {
    "items": LayerGroup.EMBEDDINGS,
    "history": LayerGroup.HISTORY_ATTENTION,
    "target_attention": LayerGroup.TARGET_ATTENTION,
    "cross": LayerGroup.CROSS,
    "mlp": LayerGroup.MLP,
}


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One ONNX node: its name, op type and module scopes (outermost first, root ``''`` dropped)."""

    name: str
    op_type: str
    scopes: tuple[str, ...]


def _scopes(node: onnx.NodeProto) -> tuple[str, ...]:
    for prop in node.metadata_props:
        if prop.key == SCOPE_KEY:
            # a Python list literal of strings: ['', 'history', 'history.attn.0', ...]
            return tuple(s for s in re.findall(r"'([^']*)'", prop.value) if s)
    return ()


def graph_nodes(model: onnx.ModelProto) -> list[NodeInfo]:
    """Every node of ``model``'s main graph with its scopes."""
    return [NodeInfo(node.name, node.op_type, _scopes(node)) for node in model.graph.node]


def _last_mlp_linear(nodes: Iterable[NodeInfo]) -> str | None:
    indices = [int(m.group(1)) for n in nodes for s in n.scopes if (m := _MLP_LINEAR.match(s))]
    return f"mlp.net.{max(indices)}" if indices else None


def group_of(node: NodeInfo, *, last_mlp_linear: str | None) -> LayerGroup:
    """The group ``node`` belongs to (see the module docstring)."""
    if last_mlp_linear is not None and last_mlp_linear in node.scopes:
        return LayerGroup.HEAD
    if node.scopes:
        return _TOP_MODULES.get(node.scopes[0].split(".")[0], LayerGroup.HEAD)
    for module, group in _TOP_MODULES.items():  # no metadata: the exporter's node name is all there is
        if module in node.name:
            return group
    return LayerGroup.HEAD


def nodes_by_group(nodes: Sequence[NodeInfo]) -> dict[LayerGroup, list[NodeInfo]]:
    """The nodes of each group (every group present as a key, possibly empty), in graph order."""
    last = _last_mlp_linear(nodes)
    out: dict[LayerGroup, list[NodeInfo]] = {g: [] for g in LayerGroup}
    for node in nodes:
        out[group_of(node, last_mlp_linear=last)].append(node)
    return out


def parse_groups(text: str | Iterable[str]) -> tuple[LayerGroup, ...]:
    """``"cross, mlp"`` (or a list of names) -> groups, in :class:`LayerGroup` order, without repeats.

    Raises:
        ConfigError: a name is not a group.
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    known = {g.value: g for g in LayerGroup}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown layer group(s) {unknown}; known: {', '.join(known)}")
    return tuple(g for g in LayerGroup if g.value in names)


def node_names(groups: Mapping[LayerGroup, Sequence[NodeInfo]], chosen: Iterable[LayerGroup]) -> list[str]:
    """Names of the nodes of the ``chosen`` groups."""
    return [n.name for g in chosen for n in groups.get(g, ())]
