"""The one plugin manager: the built-ins listed here, third-party plugins through the entry-point group.

Built-ins are plugin modules like any other (the same hooks, the same lookup), loaded from the one list below as
simonw/llm loads its default plugins: a source tree that was never pip-installed has them too, and no copy of the
list in pyproject.toml can drift from it."""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import pluggy

from taosr1_plugins import hookspecs
from taosr1_plugins.errors import UnknownPluginError, UserError

ENTRY_POINT_GROUP = "taosr1_plugins"

# The one list of built-in plugins: plugin name -> module.
DEFAULT_PLUGINS = {
    "schemes": "taosr1_plugins.builtin.schemes",
    "importers": "taosr1_plugins.builtin.importers",
    "teachers": "taosr1_plugins.builtin.teachers",
    "generation_backends": "taosr1_plugins.builtin.generation_backends",
    "rewards": "taosr1_plugins.builtin.rewards",
    "prompt_samplers": "taosr1_plugins.builtin.prompt_samplers",
    "deployment": "taosr1_plugins.builtin.deployment",
    # a framework's folder registers its training backend itself; its module imports the framework only on use
    "llamafactory": "taosr1_plugins.integrations.llamafactory.backend",
    "trl": "taosr1_plugins.integrations.trl.backend",
    "openrlhf": "taosr1_plugins.integrations.openrlhf.backend",
}

pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
pm.add_hookspecs(hookspecs)
_loaded = False


class PluginError(UserError):
    pass


def load_plugins() -> pluggy.PluginManager:
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for name, module_name in DEFAULT_PLUGINS.items():
        pm.register(importlib.import_module(module_name), name=name)
    # an old install's metadata may still list built-ins as entry points: pluggy skips names already registered
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


class Kind(NamedTuple):
    hook: str
    one: str  # what one of them is called in messages
    many: str  # and all of them, in `taosr1 plugins`


KINDS = {
    "scheme": Kind("register_label_schemes", "label scheme", "label schemes"),
    "importer": Kind("register_importers", "importer", "dataset importers"),
    "teacher": Kind("register_teachers", "teacher", "teachers"),
    "generation_backend": Kind("register_generation_backends", "generation backend", "generation backends"),
    "reward": Kind("register_reward_functions", "reward function", "reward functions"),
    "prompt_sampler": Kind("register_prompt_samplers", "prompt sampler", "prompt samplers"),
    "deployment_adapter": Kind("register_deployment_adapters", "deployment adapter", "deployment adapters"),
    "training_backend": Kind("register_training_backends", "training backend", "training backends"),
}
# hook name -> what it provides
HOOKS = {kind.hook: kind.many for kind in KINDS.values()}


def _name_of(hook_name: str, args: tuple) -> str:
    return args[0].name if hook_name == "register_label_schemes" else args[0]


def _duplicate(hook_name: str, name: str) -> PluginError:
    # Only on this error path are the plugins called one by one: the name of the second provider is
    # what a plugin author needs to see.
    providers = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        names: list[str] = []
        impl.function(register=lambda *args, _names=names: _names.append(_name_of(hook_name, args)))
        if name in names:
            providers.append(impl.plugin_name)
    again = f" (again by plugin {providers[1]!r})" if len(providers) > 1 else ""
    return PluginError(f"{HOOKS[hook_name]}: {name!r} is registered twice{again}")


def registered(kind: str) -> dict[str, Any]:
    """Everything of ``kind`` (a key of :data:`KINDS`) that the plugins register, by name."""
    hook_name = KINDS[kind].hook
    load_plugins()
    found: dict[str, Any] = {}

    def register(*args):
        name = _name_of(hook_name, args)
        if name in found:
            raise _duplicate(hook_name, name)
        found[name] = args[-1]

    getattr(pm.hook, hook_name)(register=register)
    return found


def get(kind: str, name: str) -> Any:
    """The ``kind`` registered as ``name``; :class:`UnknownPluginError` (listing what is registered) if none is."""
    found = registered(kind)
    if name not in found:
        raise UnknownPluginError(KINDS[kind].one, name, found)
    return found[name]


def describe_plugins() -> list[dict[str, Any]]:
    """Every registered plugin with what it provides, hook by hook (for `taosr1 plugins`)."""
    load_plugins()
    rows: dict[str, dict[str, Any]] = {}
    for plugin_name, plugin in pm.list_name_plugin():
        dist = next((d for p, d in pm.list_plugin_distinfo() if p is plugin), None)
        rows[plugin_name] = {
            "name": plugin_name,
            "module": getattr(plugin, "__name__", repr(plugin)),
            "distribution": f"{dist.project_name} {dist.version}" if dist else _own_distribution(plugin_name),
            "provides": {},
        }
    for hook_name, what in HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            names: list[str] = []

            def register(*args, _names=names, _hook=hook_name):
                _names.append(_name_of(_hook, args))

            impl.function(register=register)
            rows[impl.plugin_name]["provides"].setdefault(what, []).extend(names)
    return list(rows.values())


def _own_distribution(plugin_name: str) -> str | None:
    """The built-ins come with this package: name its distribution, as an entry point's plugin is named."""
    if plugin_name not in DEFAULT_PLUGINS:
        return None
    from importlib import metadata

    try:
        return f"taosr1-plugins {metadata.version('taosr1-plugins')}"
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "taosr1-plugins (source tree)"
