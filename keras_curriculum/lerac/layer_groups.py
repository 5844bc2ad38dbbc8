"""Ordering a model's trainable variables into layer groups, from the input side to the output.

LeRaC gives every group its own learning rate, lower the deeper the group sits. The default order
comes from the Functional graph: a layer's depth is the number of layers with trainable variables
on the longest path from an input to it, so parallel branches (a residual shortcut beside the main
path, inception branches) share a depth, and a nested Functional model (a keras-hub backbone
inside a task model) is expanded in place. Layers that are not Functional graphs (a subclassed
model, a Sequential model that was never built on an input) fall back to the order in which they
track their sub-layers, which is the order of `model.layers`.
"""

import fnmatch
from typing import NamedTuple

import keras

from keras_curriculum import _keras_internals as internals
from keras_curriculum._validation import check_model
from keras_curriculum._validation import check_sequence


class LayerGroup(NamedTuple):
    """One LeRaC group: a name for logs and plots, its layers and their trainable variables."""

    name: str
    layers: tuple
    variables: tuple


def _trainable(layer):
    # Graph nodes may also be plain operations (`x[:, 0]`, `keras.ops.*` on KerasTensors, as in
    # keras-hub backbones): they hold no variables.
    return bool(getattr(layer, "trainable_variables", None))


def _is_graph(layer):
    return isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth")


def _graph_levels(model, base, levels):
    """Assigns levels to the weighted layers of a Functional graph; returns its weighted length."""
    node_level = {}
    length = 0
    # Keras numbers node depth from the outputs, so decreasing depth is input-to-output order.
    for depth in sorted(internals.nodes_by_depth(model), reverse=True):
        for node in internals.nodes_by_depth(model)[depth]:
            parents = [p for p in node.parent_nodes if p in node_level]
            start = max((node_level[p] for p in parents), default=base)
            span = _layer_levels(node.operation, start, levels)
            node_level[node] = start + span
            length = max(length, node_level[node] - base)
    return length


def _sequence_levels(layers, base, levels):
    level = base
    for layer in layers:
        level += _layer_levels(layer, level, levels)
    return level - base


def _layer_levels(layer, base, levels):
    """Records the level of `layer` (or of its parts) and returns how many levels it spans."""
    if not _trainable(layer):
        return 0
    if _is_graph(layer) and layer.built:
        return _graph_levels(layer, base, levels)
    if isinstance(layer, keras.Sequential):
        return _sequence_levels(layer.layers, base, levels)
    if isinstance(layer, keras.Model) and layer.layers:
        return _sequence_levels(layer.layers, base, levels)
    # A layer used at several places of a graph keeps its shallowest level.
    levels[layer] = min(levels.get(layer, base), base)
    return 1


def depth_groups(model):
    """Groups `model`'s trainable variables by depth, input side first.

    Args:
        model: a built `keras.Model` (Functional, Sequential or subclassed).

    Returns:
        list of `LayerGroup`, ordered from the input to the output.

    Raises:
        ValueError: if some trainable variable belongs to no layer that can be ordered (a
            variable created directly on a subclassed model): pass explicit groups instead.
    """
    check_model("model", model)
    levels = {}
    _layer_levels(model, 0, levels)
    by_level = {}
    for layer, level in levels.items():
        by_level.setdefault(level, []).append(layer)
    groups = [by_level[level] for level in sorted(by_level)]
    return _finish(model, groups, "groups='depth'")


def pattern_groups(model, patterns):
    """Groups variables by layer-name patterns: group j holds the layers matching entry j.

    Args:
        model: a built `keras.Model`.
        patterns: list, input side first; each entry an `fnmatch` pattern (`"block1_*"`) or a
            list of patterns, matched against the names of all layers, nested ones included. A
            layer matched by several entries belongs to the first; a layer's sub-layers follow it.

    Raises:
        ValueError: if an entry matches no layer or some trainable variable is left over.
    """
    all_layers = internals.flatten_layers(model)
    groups = []
    for entry in patterns:
        entry_patterns = [entry] if isinstance(entry, str) else list(entry)
        matched = [
            layer
            for layer in all_layers
            if any(fnmatch.fnmatchcase(layer.name, p) for p in entry_patterns)
        ]
        if not matched:
            names = sorted(layer.name for layer in all_layers if _trainable(layer))
            raise ValueError(
                f"`groups` entry {entry!r} matches no layer of model '{model.name}'. "
                f"Layers with trainable variables: {names}"
            )
        groups.append(matched)
    return _finish(model, groups, "groups=[patterns]")


def explicit_groups(model, groups):
    """Groups given as lists of layers and/or variables, input side first (see `pattern_groups`)."""
    if not isinstance(groups, (list, tuple)):
        raise TypeError(
            "`groups` (a callable) must return a list of groups, each a layer, a variable or a "
            f"list of them. Received: {groups!r}"
        )
    normalized = []
    for entry in groups:
        items = list(entry) if isinstance(entry, (list, tuple)) else [entry]
        if not items:
            raise ValueError("`groups` returned an empty group: every group needs a layer.")
        strays = [i for i in items if not isinstance(i, (keras.layers.Layer, keras.Variable))]
        if strays:
            raise TypeError(
                "`groups` (a callable) must return groups of layers or variables of the model. "
                f"Received in a group: {strays[:3]!r}"
            )
        normalized.append(items)
    return _finish(model, normalized, "groups=callable")


def _finish(model, groups, how):
    """Turns lists of layers (or variables) into `LayerGroup`s and checks every variable is used."""
    seen = set()
    result = []
    for members in groups:
        variables = []
        for member in members:
            member_vars = (
                [member] if isinstance(member, keras.Variable) else member.trainable_variables
            )
            for variable in member_vars:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        if not variables:
            continue
        names = [getattr(m, "name", "?") for m in members]
        name = names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}"
        result.append(LayerGroup(name, tuple(members), tuple(variables)))
    missing = [v.path for v in model.trainable_variables if id(v) not in seen]
    if missing:
        raise ValueError(
            f"LeRaC {how} leaves trainable variables of model '{model.name}' without a group: "
            f"{missing[:10]}{' ...' if len(missing) > 10 else ''}. Every trainable variable "
            "needs a learning rate: pass `groups` as a list of layer-name patterns or a callable "
            "that covers them."
        )
    if not result:
        raise ValueError(f"Model '{model.name}' has no trainable variables for LeRaC to schedule.")
    return result


def check_groups(groups):
    """'depth', a callable, or a non-empty list whose entries are patterns or lists of them."""
    if groups == "depth" or callable(groups):
        return groups
    if isinstance(groups, str):
        raise ValueError(
            "`groups` must be 'depth', a list of layer-name patterns or a callable. "
            f"Received: groups={groups!r}"
        )
    for entry in check_sequence("groups", groups):
        patterns = [entry] if isinstance(entry, str) else entry
        if (
            not isinstance(patterns, (list, tuple))
            or not patterns
            or not all(isinstance(p, str) for p in patterns)
        ):
            raise TypeError(
                "`groups` entries must be layer-name patterns (str) or non-empty lists of them. "
                f"Received: groups={groups!r}"
            )
    return groups
