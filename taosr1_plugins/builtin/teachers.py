"""Built-in CoT teachers: `template` (offline bootstrap), `openai` (any compatible endpoint), `hf` (local LM).

Factories import their implementation on first use, so listing plugins never imports openai or torch.
"""

from taosr1_plugins.hookspecs import hookimpl


def template_teacher(**options):
    from taosr1_plugins.builtin.template_teacher import TemplateTeacher

    return TemplateTeacher(**options)


def openai_teacher(**options):
    from taosr1_plugins.builtin.openai_teacher import OpenAITeacher

    return OpenAITeacher(**options)


def hf_teacher(**options):
    from taosr1_plugins.builtin.hf_teacher import HFTeacher

    return HFTeacher(**options)


@hookimpl
def register_teachers(register):
    register("template", template_teacher)
    register("openai", openai_teacher)
    register("hf", hf_teacher)
