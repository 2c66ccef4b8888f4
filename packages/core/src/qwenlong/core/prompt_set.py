"""`prompts:` in an experiment config: which template file each prompt is read from.

A config's `prompts:` maps a prompt name to a template file; a name left out uses the template
the project ships. Names and their placeholders are declared by the packages that send the
prompts (`PROMPTS`, filled in when those packages are imported): evals registers single_pass,
single_pass_choice and judge, memagent registers memagent_update, memagent_final,
memagent_final_choice and memagent_query_split.

    prompts:
      single_pass: prompts/reading.txt      # relative to the working directory, like every
      judge: /abs/path/judge.txt            # other path in a config

Every file is read and checked when the config is loaded, so a typo in a placeholder fails
before any model is loaded, in one line:

    config error: exp.yaml:14: prompts: prompts/judge.txt:9: unknown placeholder $golden ...
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, Field, RootModel, model_validator
from pydantic_core import PydanticCustomError

from qwenlong.core.errors import ConfigError
from qwenlong.core.prompt_templates import (
    PromptSpec,
    PromptTemplate,
    default_template,
    load_template,
)
from qwenlong.core.registry import Registry

PROMPTS: Registry[PromptSpec] = Registry("prompt")
"""Every prompt the installed packages send, by name. Each package adds lazy entries
("module:SPEC") in its `__init__`, so its names are known as soon as any of its modules is
imported, and the module that renders the prompt loads only when a template is asked for."""


class PromptSet(RootModel[dict[str, Path]]):
    """Prompt name -> template file; names not given use the shipped template.

    Checked on construction: every name must be a registered prompt and every file must exist
    and use only that prompt's placeholders, all of its required ones included.
    """

    model_config = ConfigDict(frozen=True)

    root: dict[str, Path] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_files(self) -> PromptSet:
        for name, path in self.root.items():
            try:
                spec = PROMPTS.get(name)
                load_template(path, spec)
            except ConfigError as err:
                message = str(err.args[0])
                raise PydanticCustomError(
                    "prompt_template", "{message}", {"message": message}
                ) from None
        return self

    def template(self, name: str) -> PromptTemplate:
        """The checked template of prompt `name`: the configured file, else the shipped one."""
        spec = PROMPTS.get(name)
        path = self.root.get(name)
        return default_template(spec) if path is None else load_template(path, spec)

    def render(self, name: str, **values: str) -> str:
        """Prompt `name` with its placeholders filled in."""
        return self.template(name).render(values)


DEFAULT_PROMPTS = PromptSet()
"""The project's own wording for every prompt."""
