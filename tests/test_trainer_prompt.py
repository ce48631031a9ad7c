"""Prompts: the tokenizer's chat template, with the system prompt where the template takes it."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from trainer.prompt import encode_prompt, render_prompt
from trainer.tiny import build_tokenizer

SYSTEM = "Answer in <answer> </answer>."
QUESTION = "What is 2 + 3?"
NO_SYSTEM_ROLE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>"
)


def tokenizer(template: str | None = None) -> object:
    built = build_tokenizer([SYSTEM, QUESTION])
    if template is not None:
        built.chat_template = template
    return built


def test_the_system_prompt_goes_in_its_own_message_when_the_template_has_one() -> None:
    text = render_prompt(tokenizer(), QUESTION, SYSTEM)
    assert text.index(SYSTEM) < text.index(QUESTION)
    assert encode_prompt(tokenizer(), text)  # the engines' encoding of the same text


def test_a_template_without_a_system_role_gets_it_at_the_start_of_the_user_message() -> None:
    text = render_prompt(tokenizer(NO_SYSTEM_ROLE), QUESTION, SYSTEM)
    assert text == f"<|user|>{SYSTEM}\n\n{QUESTION}<|assistant|>"
    assert (
        render_prompt(tokenizer(NO_SYSTEM_ROLE), QUESTION, "") == f"<|user|>{QUESTION}<|assistant|>"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{{ raise_exception('Conversation roles must alternate') }}",
            "the tokenizer's chat template raised: Conversation roles must alternate \\(given a"
            ' system and a user message\\); fix the template .*, or set system_prompt=""',
        ),
        ("{% for m in messages %}{{ m['content'] }", r"is not valid jinja \(line 1 of the"),
    ],
)
def test_a_template_that_fails_is_a_prompt_error_with_its_message(
    template: str, message: str
) -> None:
    # jinja2's own exception, with its traceback, stopped the run.
    from trainer.config import ConfigError
    from trainer.prompt import PromptError

    with pytest.raises(PromptError, match=message) as caught:
        render_prompt(tokenizer(template), QUESTION, SYSTEM)
    assert isinstance(caught.value, ConfigError)  # the CLI's bad-input exit
