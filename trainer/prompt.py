"""Question to prompt text: the tokenizer's chat template when it has one, else plain text.

The prompt is complete text, special tokens included (a chat template writes its own BOS),
and engines encode it with ``add_special_tokens=False``; `encode_prompt` is that encoding,
used again when the loss re-reads the prompt, so the two always agree.
"""

from __future__ import annotations

from typing import Any

from trainer.config import ConfigError

__all__ = ["PromptError", "encode_prompt", "render_prompt"]


class PromptError(ConfigError):
    """The tokenizer's chat template failed: it raised, or it is not valid jinja.
    `reason` is the template's own message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def render_prompt(tokenizer: Any, question: str, system_prompt: str) -> str:
    """The text the model continues, ending where the completion starts.

    >>> class Plain:
    ...     chat_template = None
    ...     bos_token = None
    >>> render_prompt(Plain(), "What is 2 + 3?", "Answer in <answer> </answer>.")
    'Answer in <answer> </answer>.\\n\\nQuestion: What is 2 + 3?\\nAnswer: '
    """
    if getattr(tokenizer, "chat_template", None):
        user = {"role": "user", "content": question}
        if not system_prompt:
            return _chat(tokenizer, [user])
        try:
            return _chat(tokenizer, [{"role": "system", "content": system_prompt}, user])
        except PromptError as error:
            if "system" not in error.reason.lower():
                raise
            # Templates without a system role (Gemma's, Mistral's older ones) refuse one;
            # the system prompt then opens the user's message, as TRL's examples do.
            return _chat(tokenizer, [{"role": "user", "content": f"{system_prompt}\n\n{question}"}])
    head = f"{system_prompt}\n\n" if system_prompt else ""
    bos = getattr(tokenizer, "bos_token", None) or ""
    return f"{bos}{head}Question: {question}\nAnswer: "


def reply_start(prompt: str) -> str:
    """The start of the reply that a chat template already wrote into `prompt`.

    The templates of DeepSeek-R1-Distill and Qwen3's thinking models end the generation
    prompt with ``<think>\\n``: the model never writes it, and a completion scored alone
    misses its opening tag (strict format 0, ``no_think_tag``). The rewards score the whole
    reply, this and the completion, as TRL's ``reward_funcs(..., completion_prefix=...)``
    does; samples.jsonl stores it so, for ``rewardkit score`` to read.

    >>> reply_start("<|im_start|>assistant\\n<think>\\n"), reply_start("Answer: ")
    ('<think>\\n', '')
    """
    for opened in ("<think>\n", "<think>"):
        if prompt.endswith(opened):
            return opened
    return ""


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a rendered prompt, adding nothing (the text already holds any BOS)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The template applied to `messages`; `PromptError` with the template's own words when
    it raises (``raise_exception(...)``) or does not parse, instead of jinja's traceback."""
    import jinja2

    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except jinja2.TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line} of the template)" if isinstance(line, int) else ""
        kind = "is not valid jinja" if isinstance(error, jinja2.TemplateSyntaxError) else "raised"
        roles = " and ".join(f"a {m['role']}" for m in messages)
        alone = (
            ', or set system_prompt="" to give it the question alone' if len(messages) > 1 else ""
        )
        raise PromptError(
            f"the tokenizer's chat template {kind}{where}: {error} (given {roles} message);"
            " fix the template (chat_template in the model folder's tokenizer_config.json or"
            f" chat_template.jinja){alone}",
            str(error),
        ) from None
    return str(text)
