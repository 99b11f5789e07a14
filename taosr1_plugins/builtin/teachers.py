"""Built-in CoT teachers: `template` (offline bootstrap), `openai` (any compatible endpoint), `hf` (local LM).

Implemented in cot/teacher_backends/; each class declares its ``options_model`` and imports its framework only
when created, so listing plugins or checking options never imports openai or torch.
"""

from taosr1_plugins.hookspecs import hookimpl


@hookimpl
def register_teachers(register):
    from taosr1_plugins.cot.teacher_backends.hf import HFTeacher
    from taosr1_plugins.cot.teacher_backends.openai import OpenAITeacher
    from taosr1_plugins.cot.teacher_backends.template import TemplateTeacher

    register("template", TemplateTeacher)
    register("openai", OpenAITeacher)
    register("hf", HFTeacher)
