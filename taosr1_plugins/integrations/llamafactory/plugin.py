"""Entry point of group ``llamafactory.plugins``: registers taosr1's dataset converters with LLaMA-Factory.

LLaMA-Factory 0.9.5 has no plugin loading of its own; patches/llamafactory-0.9.5-plugins.patch (applied
by ``taosr1 patch llamafactory``) makes ``llamafactory-cli`` call every entry point of this group, and
``python -m taosr1_plugins.integrations.llamafactory.train`` calls ``register()`` itself.

No chat template is registered: LLaMA-Factory's own ``smollm2``/``qwen`` templates render our system,
user and assistant turns as they are.
"""

from __future__ import annotations


def register() -> None:
    """Register the converters; calling it again (plugin loader + our train module) is a no-op."""
    from llamafactory.data.converter import DATASET_CONVERTERS, register_dataset_converter

    from taosr1_plugins.integrations.llamafactory.converter import CONVERTERS

    for name, converter in CONVERTERS.items():
        existing = DATASET_CONVERTERS.get(name)
        if existing is converter:
            continue
        if existing is not None:
            raise RuntimeError(
                f"LLaMA-Factory dataset converter {name!r} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}; taosr1 cannot register its own"
            )
        register_dataset_converter(name, converter)
