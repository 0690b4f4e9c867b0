"""The prompt clause MLflow 3's client adds to every registry search.

MLflow keeps prompts as registered models (and versions) tagged
``mlflow.prompt.is_prompt = 'true'``, and its client adds
``tag.`mlflow.prompt.is_prompt` != 'true'`` to ``search_registered_models`` and
``search_model_versions``. MLflow's stores read that clause as "normal models, not
prompts", models without the tag included, where a plain ``!=`` on a missing tag
matches nothing. :func:`split_prompt_filter` takes the clause out of a filter, so the
search runs on the rest and :func:`is_prompt` drops prompts from the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from evtrack.query import search_grammar as grammar
from evtrack.query.nodes import Comparison

PROMPT_TAG = "mlflow.prompt.is_prompt"


def is_prompt(tags: Mapping[str, str]) -> bool:
    """Whether a registered model's (or version's) tags mark it as a prompt."""
    return str(tags.get(PROMPT_TAG, "")).lower() == "true"


def split_prompt_filter(filter_string: str | None, parse: Callable[[str], list[Comparison]]) -> tuple[str | None, bool]:
    """(the filter without its prompt-tag clauses, whether it asks for prompts); ``parse`` is the
    grammar of the entity searched (registered models or model versions)."""
    if not filter_string or PROMPT_TAG not in filter_string:
        return filter_string or None, False
    clauses = parse(filter_string)
    rest = [c for c in clauses if not (c.entity == "tag" and c.key == PROMPT_TAG)]
    wants = any((c.op, str(c.value).lower()) in (("=", "true"), ("!=", "false")) for c in clauses if c not in rest)
    if wants:
        rest.append(Comparison("tag", PROMPT_TAG, "=", "true"))
    return grammar.format_filter(rest) or None, wants
