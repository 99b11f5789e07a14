"""The one plugin manager: built-ins and third-party plugins both arrive through entry points."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pluggy

from taosr1_plugins import hookspecs

ENTRY_POINT_GROUP = "taosr1_plugins"

# Also registered as entry points in pyproject.toml; listed here so a source tree that was never
# pip-installed (no entry-point metadata) still has its built-ins.
DEFAULT_PLUGINS = (
    "taosr1_plugins.builtin.schemes",
    "taosr1_plugins.builtin.importers",
    "taosr1_plugins.builtin.teachers",
    "taosr1_plugins.builtin.generation_backends",
    "taosr1_plugins.builtin.rewards",
    "taosr1_plugins.builtin.prompt_samplers",
    "taosr1_plugins.builtin.deployment",
)

# hook name -> what it provides, in words for `taosr1 plugins`
HOOKS = {
    "register_label_schemes": "label schemes",
    "register_importers": "dataset importers",
    "register_teachers": "teachers",
    "register_generation_backends": "generation backends",
    "register_reward_functions": "reward functions",
    "register_prompt_samplers": "prompt samplers",
    "register_deployment_adapters": "deployment adapters",
}

pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
pm.add_hookspecs(hookspecs)
_loaded = False


class PluginError(Exception):
    pass


def load_plugins() -> pluggy.PluginManager:
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        if not pm.is_registered(module):
            pm.register(module, name=module_name)
    return pm


def _collect(hook_name: str, *, key: Callable[[tuple], str] | None = None) -> dict[str, Any]:
    """Call one hook on every plugin and gather what they register, refusing duplicate names."""
    load_plugins()
    found: dict[str, Any] = {}

    for impl in getattr(pm.hook, hook_name).get_hookimpls():

        def register(*args, _plugin=impl.plugin_name):
            name = key(args) if key else args[0]
            if name in found:
                raise PluginError(f"{HOOKS[hook_name]}: {name!r} is registered twice (again by plugin {_plugin!r})")
            found[name] = args[-1]

        impl.function(register=register)
    return found


def label_schemes() -> dict[str, Any]:
    return _collect("register_label_schemes", key=lambda args: args[0].name)


def importers() -> dict[str, Any]:
    return _collect("register_importers")


def teachers() -> dict[str, Any]:
    return _collect("register_teachers")


def generation_backends() -> dict[str, Any]:
    return _collect("register_generation_backends")


def reward_functions() -> dict[str, Any]:
    return _collect("register_reward_functions")


def prompt_samplers() -> dict[str, Any]:
    return _collect("register_prompt_samplers")


def deployment_adapters() -> dict[str, Any]:
    return _collect("register_deployment_adapters")


def describe_plugins() -> list[dict[str, Any]]:
    """Every registered plugin with what it provides, hook by hook (for `taosr1 plugins`)."""
    load_plugins()
    rows: dict[str, dict[str, Any]] = {}
    for plugin_name, plugin in pm.list_name_plugin():
        dist = next((d for p, d in pm.list_plugin_distinfo() if p is plugin), None)
        rows[plugin_name] = {
            "name": plugin_name,
            "module": getattr(plugin, "__name__", repr(plugin)),
            "distribution": f"{dist.project_name} {dist.version}" if dist else None,
            "provides": {},
        }
    for hook_name, what in HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            names: list[str] = []

            def register(*args, _names=names, _hook=hook_name):
                _names.append(args[0].name if _hook == "register_label_schemes" else args[0])

            impl.function(register=register)
            rows[impl.plugin_name]["provides"].setdefault(what, []).extend(names)
    return list(rows.values())
