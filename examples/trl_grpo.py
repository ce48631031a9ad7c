"""Train with TRL's GRPOTrainer on rewardkit's rewards: a tiny model, offline, in seconds.

    python examples/trl_grpo.py                  # 5 steps, lenient scheme
    python examples/trl_grpo.py --scheme strict --steps 10

The model is a 2-layer Llama of hidden size 64 with a character-level tokenizer, built here
from nothing, so the script needs neither the Hugging Face Hub nor a GPU; it learns nothing
useful, but every step runs the real trainer on the real rewards, and TRL logs one curve
per reward: ``rewards/correctness/mean``, ``rewards/digit/mean``, ``rewards/format/mean``,
``rewards/mark/mean``, and ``reward``, the scheme's total.

For a real run, replace `build_tiny_model` with a model name (``"Qwen/Qwen2.5-0.5B-Instruct"``)
and the data set with GSM8K (``load_dataset("openai/gsm8k", "main")``, whose ``answer``
column is what the rewards read), and drop ``use_cpu``. Needs ``pip install 'trl>=1.16'``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

THINK_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
CHARACTERS = "0123456789 \n+-*/=?.,$#:abcdefghijklmnopqrstuvwxyzQA"
QUESTIONS = [
    ("Q: 3+4=? A:", "#### 7"),
    ("Q: 9-5=? A:", "#### 4"),
    ("Q: 2*3=? A:", "#### 6"),
    ("Q: 8/2=? A:", "#### 4"),
]


def build_tiny_model(folder: Path, chat_template: str | None = None) -> Path:
    """Save a random 2-layer Llama and a character-level tokenizer under `folder`.

    The four tags are ordinary added tokens, not special ones: TRL decodes completions with
    ``skip_special_tokens=True``, which would delete special tokens and zero every format
    reward.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<eos>": 0} | {c: i + 1 for i, c in enumerate(CHARACTERS)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.decoder = decoders.Fuse()  # characters back to text, no spaces in between
    tokenizer.add_special_tokens([AddedToken("<eos>", special=True)])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TAGS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<eos>",
        pad_token="<eos>",
        clean_up_tokenization_spaces=False,
    )
    if chat_template is not None:  # for conversational prompts
        fast.chat_template = chat_template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
        # Keeps AutoTokenizer on the saved fast tokenizer instead of building another one.
        tokenizer_class="PreTrainedTokenizerFast",
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def checkpointing_key(config_class: type) -> str:
    """transformers 5.23 renamed `gradient_checkpointing` to `activation_checkpointing`; the
    old name warns (FutureWarning) until v6, and older versions lack the new one."""
    new = "activation_checkpointing" in getattr(config_class, "__dataclass_fields__", {})
    return "activation_checkpointing" if new else "gradient_checkpointing"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheme", default="lenient", help="strict, lenient, or a scheme file")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.integrations.trl import reward_funcs, reward_weights

    with tempfile.TemporaryDirectory() as scratch:
        output_dir = args.output_dir or Path(scratch)
        model_dir = build_tiny_model(output_dir / "tiny-model")
        dataset = Dataset.from_list([{"prompt": q, "answer": a} for q, a in QUESTIONS])
        config = GRPOConfig(
            output_dir=str(output_dir / "run"),
            max_steps=args.steps,
            per_device_train_batch_size=8,  # 2 prompts x 4 completions per step
            num_generations=4,
            max_completion_length=32,
            learning_rate=1e-3,
            logging_steps=1,
            reward_weights=reward_weights(args.scheme),  # TRL's `reward` = the scheme's total
            bf16=False,  # TRL's defaults (bf16, gradient checkpointing) are slow on a CPU
            **{checkpointing_key(GRPOConfig): False},
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        trainer = GRPOTrainer(
            model=str(model_dir),
            reward_funcs=reward_funcs(args.scheme),
            args=config,
            train_dataset=dataset,
        )
        trainer.train()

    names = [f.__name__ for f in reward_funcs(args.scheme)]
    print("step  " + "  ".join(f"{n:>11}" for n in [*names, "reward"]))
    for entry in trainer.state.log_history:
        if "reward" in entry:
            values = [entry[f"rewards/{n}/mean"] for n in names] + [entry["reward"]]
            print(f"{entry['step']:>4}  " + "  ".join(f"{v:>11.4f}" for v in values))


if __name__ == "__main__":
    main()
