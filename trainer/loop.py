"""The GRPO training loop, top to bottom.

Every step: take the next `prompts_per_step` problems of the epoch's order; sample
`num_generations` completions of each; score them with the rewardkit scheme through
`rewardkit.score.score_records` (the code `rewardkit score` runs, so a reward means the same
thing here as in a scored file); turn the totals into group-normalised advantages; run
`policy_updates` AdamW steps of the clipped surrogate plus k3 KL to a frozen reference;
hand the new weights to the engine; log and write the step. After every epoch the test
split is evaluated (greedy pass@1, sampled pass@k); an evaluation before the first step
gives the baseline.

Departures from the paper worth knowing (DeepSeekMath, section 4.1): one reference model
for the whole run (no periodic reset); the KL term is added to the loss, not to the reward;
`pi_old` is the policy that sampled the batch, as in the paper's Algorithm 1.

Determinism: the order of an epoch is a function of (seed, epoch) and the sampling seed of
a step a function of (seed, step), so a run resumed from a checkpoint sees the same data in
the same order and, on the same machine, produces the same numbers as one never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from rewardkit.extract import TAGS
from rewardkit.schemes import RewardError, Scheme, get_scheme
from rewardkit.score import score_records
from trainer.checkpoint import (
    CHECKPOINT,
    Position,
    load_checkpoint,
    recorded_engine,
    save_checkpoint,
    scheme_fingerprints,
)
from trainer.config import COMPUTE_ONLY, ConfigError, TrainConfig, dump_config, load_config
from trainer.console import Display
from trainer.data import Data, Problem, Skipped, fit_prompts, load_problems
from trainer.engine import Engine, EngineError, Generation, make_engine
from trainer.evaluate import evaluate, stop_cost
from trainer.lock import FolderLock, holds_files
from trainer.model import (
    ModelError,
    Policy,
    config_as_loaded,
    enable_checkpointing,
    load_policy,
    no_progress_bars,
    tag_problems,
    unembedded_prompt,
)
from trainer.prompt import PromptError, encode_prompt, render_prompt, reply_start
from trainer.runfiles import RunFiles, atomic_write_bytes
from trainer.tracking import Tracker
from trainer.update import UpdateStats
from trainer.watch import SignalWatch

__all__ = ["Run", "epoch_order", "moved_files", "step_seed", "train"]

CONFIG_FILE = "config.yaml"
SKIPPED_FILE = "skipped_rows.jsonl"  # the data rows `on_error: skip` left out
# What a resume may change: epochs (not below the epochs done), and what changes memory or
# checking but not the result.
RESUME_MAY_CHANGE = ("epochs", *COMPUTE_ONLY)


@dataclass
class Run:
    """Everything a run holds while it trains."""

    config: TrainConfig
    root: Path
    scheme: Scheme
    data: Data
    policy: Policy
    reference: Any  # the frozen model, or None when beta is 0
    engine: Engine
    optimizer: Any
    files: RunFiles
    display: Display
    tracker: Tracker
    lock: FolderLock
    watch: SignalWatch = field(default_factory=SignalWatch)
    # the rewards as the run loaded them: a file edited while it trains is not what it runs
    scheme_prints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.scheme_prints:
            self.scheme_prints = scheme_fingerprints(self.scheme)

    @property
    def train_set(self) -> list[Problem]:
        return self.data.train

    @property
    def test_set(self) -> list[Problem]:
        return self.data.test

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_set) // self.config.prompts_per_step


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The order in which epoch `epoch` visits the training problems.

    >>> epoch_order(5, seed=0, epoch=0) == epoch_order(5, seed=0, epoch=0)
    True
    """
    return random.Random(f"order-{seed}-{epoch}").sample(range(size), size)


def step_seed(seed: int, step: int) -> int:
    """The sampling seed of global step `step` (evaluations use negative steps)."""
    return (seed * 1_000_003 + step) % (2**63)


def train(
    config: TrainConfig,
    root: Path,
    *,
    resume: bool = False,
    display: Display | None = None,
    after_step: Callable[[int], None] | None = None,
) -> Path:
    """Train, writing the run folder `root`; with `resume`, continue from its checkpoint.

    `after_step(step)` is called after each step is written (tests use it to stop a run).
    """
    lock = FolderLock.take(root) if resume else None  # a new run's: once its folder exists
    try:
        run = _start(config, root, resume, display or Display(), lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    # Setup leaves some 400K tracked objects (modules, model, tokenizer, data). Collect its
    # garbage now rather than in the 0.2 s full collection Python would otherwise run a
    # few steps in, and freeze the survivors, which live all run, so that later full
    # collections skip them. Unfrozen at the end.
    try:
        with _signals_held():
            gc.collect()
        gc.freeze()
        _train(run, resume, after_step)
    finally:
        gc.unfreeze()
        try:
            run.files.flush()  # a run stopped by an error keeps every step it finished
        finally:
            run.lock.release()
            run.display.close()
    return root


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block ends, then act on them as their
    handlers would have. A KeyboardInterrupt raised while a garbage collection runs a
    finaliser (`__del__`) is printed and dropped by Python: a Ctrl-C in the 0.2 s of
    setup's collection was lost 6 times in 7, and the run trained on to its end."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread gets signals' handlers, or may set them
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, _: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if caught:
        handler = previous[signal.Signals(caught[0])]
        if callable(handler):
            handler(caught[0], None)  # Ctrl-C: KeyboardInterrupt
        elif handler == signal.SIG_DFL:
            signal.raise_signal(caught[0])  # what it would have done: end the process


def _train(run: Run, resume: bool, after_step: Callable[[int], None] | None) -> None:
    config, root = run.config, run.root
    position = Position()
    if resume and (root / CHECKPOINT).exists():
        position = load_checkpoint(root, run.policy.model, run.optimizer, data=run.data.fingerprint)
        _check_scheme(run, position)
        reached = position.epoch + (position.index > 0)  # a checkpoint mid-epoch is in it
        if config.epochs < reached:
            raise ConfigError(
                f"{root}: the run has reached epoch {reached}, and epochs={config.epochs} would"
                f" leave that epoch's rows in its tables; set epochs to {reached} or more"
            )
        if gaps := run.files.gaps(position.step, position.epoch, position.sizes):
            raise ConfigError(
                f"{root}: the checkpoint is at step {position.step}, but {'; '.join(gaps)}:"
                " a resume would write reports with a hole in them. Put the run's files back"
                " as they were, or start a new run"
            )
        run.files.rollback(position.step, position.epoch, position.sizes)
        run.engine.sync_weights(run.policy.model)  # it was built from the initial weights
        total = config.epochs * run.steps_per_epoch
        run.display.message(
            f"resumed from the checkpoint at step {position.step} of {total}"
            + ("" if position.step < total else " (the run had finished: its report is redone)")
        )
    elif resume:  # stopped before its first checkpoint: the start is the last safe point
        run.display.warning(
            f"{root} has no checkpoint yet (the run stopped before its first one): it starts"
            " again from the beginning, with the same data order and seeds"
        )
        run.files.rollback(0, -1, {})  # every step, evaluation and sample written so far
    if resume:  # only now: a resume refused above leaves the run's config as it was
        atomic_write_bytes(root / CONFIG_FILE, dump_config(config).encode())
    total = config.epochs * run.steps_per_epoch
    run.display.start(total, position.step)
    if not run.files.has_eval(0):
        _evaluate(run, epoch=0, step=0)
    step = position.step
    for epoch in range(position.epoch, config.epochs):
        order = epoch_order(len(run.train_set), config.seed, epoch)
        first = position.index if epoch == position.epoch else 0
        for index in range(first, run.steps_per_epoch):
            step += 1
            chosen = order[index * config.prompts_per_step : (index + 1) * config.prompts_per_step]
            row, samples = _step(run, [run.train_set[i] for i in chosen], step, epoch + 1)
            run.files.add_step(row, samples)
            run.display.step(row)
            if (warning := run.watch.step(row, samples)) is not None:
                run.display.warning(warning)
            run.tracker.log(row, step)
            if (
                config.save_every
                and step % config.save_every == 0
                and index + 1 < run.steps_per_epoch
            ):
                _save(run, Position(epoch, index + 1, step))
            if after_step is not None:
                after_step(step)
        _evaluate(run, epoch=epoch + 1, step=step)
        run.files.add_epoch(_epoch_row(run, epoch + 1))
        run.display.epoch(
            run.files.epochs[-1], [r for r in run.files.evals if r["epoch"] == epoch + 1]
        )
        _save(run, Position(epoch + 1, 0, step))
    _finish(run)


def moved_files(root: Path) -> list[str]:
    """The keys of the run's config.yaml (scheme, dataset, model) that name a local file or
    folder no longer there.

    A resume may give such a key the file's new place (``--set scheme=PATH``): the
    checkpoint then checks that it is the same data (its fingerprint), the same rewards
    (`_check_scheme`) and the same model (its weights must fit). A model is a local folder
    only when config.yaml names it by an absolute path (else it is a hub id).
    """
    import yaml

    from rewardkit.schemes import SCHEMES
    from trainer.config import DATASETS

    try:
        saved = yaml.safe_load((root / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []  # load_config says what is wrong with it
    if not isinstance(saved, dict):
        return []
    gone = [
        key
        for key, named in (("scheme", SCHEMES), ("dataset", DATASETS))
        if isinstance(saved.get(key), str)
        and saved[key] not in named
        and not Path(saved[key]).exists()
    ]
    model = saved.get("model")
    if isinstance(model, str) and Path(model).is_absolute() and not Path(model).exists():
        gone.append("model")
    return gone


def _check_scheme(run: Run, position: Position) -> None:
    """The resumed run's scheme against the checkpoint's: other rewards are refused (the
    step table has a column per reward); a reward whose code, weight or max changed is
    allowed (fixing a reward and resuming is the way on from a reward that raised), and
    said, since the run's steps then come from two definitions of it."""
    before, now = position.scheme, run.scheme_prints
    if not before:  # an older checkpoint
        return
    if list(before) != list(now):
        raise ConfigError(
            f"{run.root}: the scheme {run.config.scheme} has the rewards {', '.join(now)}, and"
            f" the run was trained with {', '.join(before)}; resume with the scheme the run"
            " began with (--set scheme=PATH where its file moved)"
        )
    if changed := [name for name in now if now[name] != before[name]]:
        run.display.warning(
            f"{', '.join(changed)} changed since the checkpoint at step {position.step} (the"
            " reward's code, weight or max): its steps up to there were scored by the old"
            " definition, the steps from here by the new one"
        )


# --- setup ---------------------------------------------------------------------------------


def _start(
    config: TrainConfig, root: Path, resume: bool, display: Display, lock: FolderLock | None
) -> Run:
    import torch

    if resume:
        values = config.to_dict()
        moved = [f"{key}={values[key]}" for key in moved_files(root)]  # checked on restore
        # as the resumed config is: a config.yaml written with relative paths (older runs,
        # or edited by hand) names the same files
        saved = load_config(root / CONFIG_FILE, moved).with_absolute_paths().to_dict()
        changed = [k for k in values if k not in RESUME_MAY_CHANGE and saved[k] != values[k]]
        if changed:
            raise ConfigError(
                f"{root}: --resume continues the run with its own config.yaml; only"
                f" {', '.join(RESUME_MAY_CHANGE)} may change (and scheme, dataset or model"
                " only to give a moved file its new place), and this changes"
                f" {', '.join(changed)} (drop those --set values)"
            )
    else:
        _refuse_taken(root)
    # Everything that can fail on bad input (scheme, data, model, engine) runs before the
    # run folder is made, so a run that cannot start leaves no folder behind.
    torch.manual_seed(config.seed)
    if config.cpu_threads is not None:
        # Tiny matrices: more threads only add synchronisation (1 thread was 1.4x faster
        # than 2 on the default run, and far faster on a busy machine).
        torch.set_num_threads(config.cpu_threads)
    scheme, cost = load_scheme(config)
    data = load_problems(config)
    texts = [p.question for p in data.train + data.test]
    policy = load_policy(config, texts)
    if config.gradient_checkpointing:
        enable_checkpointing(policy.model)
    data, longest = _fit_context(data, policy, config)
    train_set, test_set = data.train, data.test
    reference = None
    if config.beta > 0:
        reference = load_policy(config, texts).model.eval().requires_grad_(False)
    engine, why = _make_engine(policy, config, longest, root if resume else None)
    tracker, lock = _open_folder(config, root, lock)
    try:
        parameters = sum(p.numel() for p in policy.model.parameters())
        display.message(
            f"run [bold]{escape(str(root))}[/]: "
            + escape(
                f"model {config.model}, scheme {scheme.name}, engine {why}, {len(train_set)} train"
                f" / {len(test_set)} test problems from {config.dataset}, {parameters:,} parameters"
                f" in {policy.precision.describe()}"
            )
        )
        if any(r.builtin for r in scheme.rewards) and (bad := tag_problems(policy.tokenizer, TAGS)):
            display.warning(
                f"the model cannot write {', '.join(bad)}: completions are decoded with special"
                " tokens skipped, so the format and mark rewards (and strict correctness) read"
                " them as missing; add the tags as ordinary tokens (tokenizer.add_tokens(...),"
                " then model.resize_token_embeddings(len(tokenizer))) and save both again"
            )
        if left := len(train_set) % config.prompts_per_step:
            full = len(train_set) // config.prompts_per_step
            display.warning(
                f"{len(train_set)} training problems fill {full} step{'' if full == 1 else 's'} of"
                f" {config.prompts_per_step} prompts: each epoch leaves {left} out (other ones"
                " each epoch, in its shuffled order); to train on the same problems every epoch,"
                f" set train_samples={full * config.prompts_per_step}"
            )
        for note in data.notes:
            display.warning(note)
        if data.skipped:
            _report_skipped(root, data.skipped, display)
        if cost is not None:
            display.warning(cost)
        # Fused: one kernel per parameter instead of torch's per-op lists of temporaries. On a
        # Qwen2-0.5B-sized model on this CPU an AdamW step took 0.56 s instead of 2.9-3.2 s, a
        # training step 12.4 s instead of 15.7 (bench/RESULTS.md). TRL fuses too (transformers'
        # `adamw_torch_fused`). It rounds differently, so the example run changed with it.
        device = next(policy.model.parameters()).device
        optimizer = torch.optim.AdamW(
            policy.model.parameters(),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            fused=True if device.type in ("cpu", "cuda") else None,  # None: torch's choice
        )
        return Run(
            config,
            root,
            scheme,
            data,
            policy,
            reference,
            engine,
            optimizer,
            RunFiles(root),
            display,
            tracker,
            lock,
        )
    except BaseException:
        lock.release()
        raise


def load_scheme(config: TrainConfig) -> tuple[Scheme, str | None]:
    """The run's scheme, and why a perfect completion cut at the stop string loses reward
    (`trainer.evaluate.stop_cost`) or None. Scoring that completion runs every reward once:
    one that raises stops the run here, before its folder exists (`--schemes` checks every
    scheme so before the first run)."""
    scheme = get_scheme(config.scheme)
    try:
        return scheme, stop_cost(scheme, config.stop)
    except RewardError as error:
        raise ConfigError(
            f"scheme {config.scheme}: {error} (it failed on a well-formed completion, scored"
            " before the run starts)"
        ) from None


def _make_engine(
    policy: Policy, config: TrainConfig, longest: int, resumed: Path | None
) -> tuple[Engine, str]:
    """`make_engine`; a resumed run with engine=auto generates with the engine it began with.

    auto picks vLLM where it imports, so a run begun without it and resumed beside it (or
    the other way) would change engines mid-run, and its numbers would part from an
    uninterrupted run's without a word.
    """
    began = recorded_engine(resumed) if resumed is not None else ""
    if config.engine != "auto" or began not in ("torch", "vllm"):
        return make_engine(policy, config, longest)
    try:
        engine, _ = make_engine(policy, config.replace(engine=began), longest)
    except EngineError as error:
        raise EngineError(
            f"{resumed} generated with {began} (engine=auto chose it when the run began), and"
            f" the resume keeps it so as to continue the same run: {error}"
        ) from None
    return engine, f"{began} (engine=auto: the engine the run began with)"


def _fit_context(data: Data, policy: Policy, config: TrainConfig) -> tuple[Data, int]:
    """`data` without the problems whose prompt and `max_new_tokens` pass the model's
    context (`trainer.data.fit_prompts`), and the longest prompt left, in tokens."""
    tokenizer = policy.tokenizer
    lengths: dict[str, int] = {}  # by question: the prompt depends on nothing else

    def tokens(problem: Problem) -> int:
        if problem.question not in lengths:
            try:  # every prompt of the run is rendered here first: a template fails at setup
                text = render_prompt(tokenizer, problem.question, config.system_prompt)
            except PromptError as error:
                raise ModelError(
                    f"model={config.model}, prompt of {problem.place}: {error}"
                ) from None
            ids = encode_prompt(tokenizer, text)
            if (past := unembedded_prompt(policy.model, ids)) is not None:
                raise ModelError(
                    f"{problem.place}: the prompt holds token id {past}, which the model's"
                    f" embedding ({config.model}) does not reach; resize it (model."
                    "resize_token_embeddings(len(tokenizer))) and save both again"
                )
            lengths[problem.question] = len(ids)
        return lengths[problem.question]

    context = getattr(policy.model.config, "max_position_embeddings", None)
    if isinstance(context, int):
        data = fit_prompts(data, tokens, context, config)
    return data, max(tokens(p) for p in data.train + data.test)


def _open_folder(
    config: TrainConfig, root: Path, lock: FolderLock | None
) -> tuple[Tracker, FolderLock]:
    """Make the run folder, lock it (a resume comes with its folder locked), start W&B in
    it (when asked) and write the config (a resume writes it once its checkpoint is
    restored). A folder made here is removed again if W&B cannot start.

    A new run checks again, under the lock, that the folder holds no run: two runs given
    one name at once both passed the first check, before either had made the folder.
    """
    made = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    resume = lock is not None
    if lock is None:
        lock = FolderLock.take(root)
        try:
            _refuse_taken(root)
        except FileExistsError:
            lock.release()
            raise
    try:
        tracker = Tracker(config, root)  # W&B keeps its files in the run folder
    except BaseException:
        lock.release()
        if made:
            shutil.rmtree(root, ignore_errors=True)
        raise
    if not resume:
        try:
            atomic_write_bytes(root / CONFIG_FILE, dump_config(config).encode())
        except BaseException:
            lock.release()
            tracker.finish()
            raise
    return tracker, lock


def _refuse_taken(root: Path) -> None:
    """A new run's folder must not hold another run's files."""
    if holds_files(root):
        raise FileExistsError(f"{root} already holds a run; pick another name or --resume it")


def _report_skipped(root: Path, skipped: list[Skipped], display: Display) -> None:
    """List every row `on_error: skip` left out in ``skipped_rows.jsonl``; warn with a count."""
    lines = [json.dumps(dataclasses.asdict(s), ensure_ascii=False) + "\n" for s in skipped]
    atomic_write_bytes(root / SKIPPED_FILE, "".join(lines).encode())
    first = skipped[0]
    display.warning(
        f"on_error=skip: {len(skipped)} data row(s) skipped, listed in"
        f" {root / SKIPPED_FILE}; the first: {first.source}, {first.where}: {first.reason}"
    )


# --- one step ------------------------------------------------------------------------------


def _step(
    run: Run, problems: list[Problem], step: int, epoch: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import torch

    from trainer.advantage import group_advantages
    from trainer.rollout import make_rollout
    from trainer.update import policy_update, reference_logprobs

    config, tokenizer, n = run.config, run.policy.tokenizer, run.config.num_generations
    started = time.perf_counter()
    # 1. sample: n completions of every prompt
    prompts = [render_prompt(tokenizer, p.question, config.system_prompt) for p in problems]
    groups = run.engine.generate(
        prompts,
        n,
        config.temperature,
        config.max_new_tokens,
        config.stop,
        step_seed(config.seed, step),
    )
    generated = time.perf_counter()
    completions = [g for group in groups for g in group]  # B = prompts * n, group after group
    # 2. score with the scheme, through the same code as `rewardkit score`
    records = [
        {
            "completion": reply_start(prompts[i // n]) + c.text,  # the whole reply
            "answer": problems[i // n].answer,
            "prompt_id": f"step{step}/{problems[i // n].id}",
            "prompt": prompts[i // n],
            "id": f"step{step}/{i}",
        }
        for i, c in enumerate(completions)
    ]
    frame = score_records(records, [run.scheme], source=f"the completions of step {step}")
    scores = {k: frame[k].to_numpy(dtype=float) for k in [*run.scheme.reward_names, "total"]}
    rewards = torch.tensor(scores["total"], dtype=torch.float32)  # (B,)
    # 3. advantages within each group
    advantages = group_advantages(rewards, n)  # (B,)
    # 4. tensors for the loss, and the frozen reference's log-probs
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    prompt_ids = [ids for ids in encoded for _ in range(n)]  # (B,) rows, group after group
    device = next(run.policy.model.parameters()).device
    rollout = make_rollout(
        prompt_ids, [c.token_ids for c in completions], advantages, tokenizer.pad_token_id, device
    )
    precision = run.policy.precision
    ref_logp = reference_logprobs(run.reference, rollout, config, precision)  # (B, C) or None
    # 5. policy updates (pi_old is the first pass's log-probs), AdamW, grad clipping
    stats = policy_update(run.policy.model, run.optimizer, rollout, ref_logp, config, precision)
    # 6. the engine generates with the new weights from now on
    run.engine.sync_weights(run.policy.model)
    # 7. what the step did
    timing = {"gen_seconds": generated - started, "seconds": time.perf_counter() - started}
    row = _step_row(run, step, epoch, scores, rewards, completions, stats, timing)
    samples = _sample_records(
        run, problems, records, frame, scores, advantages, completions, step, epoch
    )
    return row, samples


def _step_row(
    run: Run,
    step: int,
    epoch: int,
    scores: dict[str, Any],
    rewards: Any,
    completions: list[Generation],
    stats: UpdateStats,
    timing: dict[str, float],
) -> dict[str, Any]:
    """One row of steps.parquet: reward statistics, zero spread, loss and speed.

    `scores` maps each reward (and "total") to its (B,) float array."""
    import torch

    from trainer.advantage import zero_spread

    n = run.config.num_generations
    lengths = [len(c.token_ids) for c in completions]
    row: dict[str, Any] = {
        "step": step,
        "epoch": epoch,
        "prompts": len(completions) // n,
        "completions": len(completions),
    }
    for name in [*run.scheme.reward_names, "total"]:
        values = scores[name]
        row |= {
            f"{name}_mean": values.mean(),
            f"{name}_std": values.std(),
            f"{name}_min": values.min(),
            f"{name}_max": values.max(),
        }
    for name in run.scheme.reward_names:  # which rewards give no signal, group by group
        values = torch.tensor(scores[name])  # (B,)
        row[f"{name}_tied"] = float(zero_spread(values, n).float().mean())
    return row | {
        "zero_spread": float(zero_spread(rewards, n).float().mean()),
        "all_zero": float((rewards.view(-1, n).amax(1) == 0).float().mean()),
        "loss": stats.loss,
        "kl": stats.kl,
        "clip_fraction": stats.clip_fraction,
        "ratio": stats.ratio,
        "grad_norm": stats.grad_norm,
        "completion_len": sum(lengths) / len(lengths),
        "finished": sum(c.finished for c in completions) / len(completions),
        "gen_seconds": timing["gen_seconds"],
        "gen_tokens_per_s": sum(lengths) / max(timing["gen_seconds"], 1e-9),
        "update_seconds": stats.seconds,
        "update_tokens_per_s": stats.tokens / max(stats.seconds, 1e-9),
        "seconds": timing["seconds"],
    }


def _sample_records(
    run: Run,
    problems: list[Problem],
    records: list[dict[str, Any]],
    frame: Any,
    scores: dict[str, Any],
    advantages: Any,
    completions: list[Generation],
    step: int,
    epoch: int,
) -> list[dict[str, Any]]:
    """The lines of samples.jsonl: what `rewardkit score` reads, plus scores and advantage."""
    n, names = run.config.num_generations, run.scheme.reward_names
    values = {k: v.tolist() for k, v in scores.items()}
    # str() of each category, as .astype(str) gave, without converting the whole column.
    reasons = {k: [str(r) for r in frame[k + "_reason"].tolist()] for k in names}
    adv = advantages.tolist()
    return [
        {
            **record,
            "problem_id": problems[i // n].id,
            "gold": problems[i // n].gold,
            "step": step,
            "epoch": epoch,
            "rewards": {k: values[k][i] for k in values},
            "reasons": {k: reasons[k][i] for k in reasons},
            "advantage": adv[i],
            "tokens": len(completions[i].token_ids),
            "finished": completions[i].finished,
        }
        for i, record in enumerate(records)
    ]


# --- evaluation, epochs, checkpoints, the end -----------------------------------------------


def _evaluate(run: Run, epoch: int, step: int) -> None:
    config = run.config
    prompts = [
        render_prompt(run.policy.tokenizer, p.question, config.system_prompt) for p in run.test_set
    ]
    result = evaluate(
        run.engine, run.test_set, prompts, run.scheme, config, step_seed(config.seed, -1 - epoch)
    )
    rows = [{"epoch": epoch, "step": step, **r} for r in result.rows]
    # One evaluation's groups apart from another's: `rewardkit score eval_samples.jsonl`
    # then finds each evaluation's pass@k in its own groups.
    samples = [
        {**s, "prompt_id": f"epoch{epoch}/{s['prompt_id']}", "epoch": epoch, "step": step}
        for s in result.samples
    ]
    run.files.add_eval(rows, samples)
    run.display.evaluation(epoch, rows)
    run.tracker.log({f"eval/{r['metric']}": r["value"] for r in rows}, step)
    for warning in result.warnings:
        run.display.warning(warning)


def _epoch_row(run: Run, epoch: int) -> dict[str, Any]:
    """The epoch's summary, from the step rows (so a resumed epoch counts its first half)."""
    rows = [r for r in run.files.steps if r["epoch"] == epoch]
    completions = sum(r["completions"] for r in rows)
    accumulated = sum(r["total_mean"] * r["completions"] for r in rows)
    row: dict[str, Any] = {
        "epoch": epoch,
        "steps": len(rows),
        "last_step": rows[-1]["step"] if rows else 0,
        "samples_seen": sum(r["completions"] for r in run.files.steps),
        "prompts_seen": sum(r["prompts"] for r in run.files.steps),
        "accumulated_reward": accumulated,
        "mean_reward": accumulated / max(completions, 1),
    }
    for name in run.scheme.reward_names:
        row[f"{name}_mean"] = sum(r[f"{name}_mean"] * r["completions"] for r in rows) / max(
            completions, 1
        )
    row["zero_spread"] = sum(r["zero_spread"] for r in rows) / max(len(rows), 1)
    row["seconds"] = sum(r["seconds"] for r in rows)
    return row


def _save(run: Run, position: Position) -> None:
    run.files.flush()  # first: a resume from this checkpoint needs every step up to it
    sized = Position(
        position.epoch,
        position.index,
        position.step,
        run.files.sizes(),
        run.data.fingerprint,
        run.engine.name,
        run.scheme_prints,
    )
    save_checkpoint(run.root, run.policy.model, run.optimizer, sized)


def _finish(run: Run) -> None:
    from trainer.report import write_report

    run.files.flush()
    # Saved beside, then swapped in: a kill inside save_pretrained left a weights-sized
    # temporary file in model/ that no later save removed.
    final, partial = run.root / "model", run.root / ".model.partial"
    shutil.rmtree(partial, ignore_errors=True)
    with no_progress_bars(), config_as_loaded(run.policy.model):  # no bar in the live view
        run.policy.model.save_pretrained(partial)
    run.policy.tokenizer.save_pretrained(partial)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    written = write_report(run.root)
    run.tracker.finish()
    run.display.finish(run.root, plotted=any(p.suffix == ".png" for p in written))
