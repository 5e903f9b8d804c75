"""Action scoring: decisions per second of single-prompt enumeration vs per-action scoring, naive and KV-cached.

Usage:
    python benchmarks/action_scoring.py [--output docs/action_scoring.md] [--batch 16] [--min-runs 3]

One model (the embedded tiny GPT-2, 4 layers x 128 hidden, with a tokenizer trained on the environments' own prompts
and teacher reflections), the same decisions, a batch of 16 decisions per call, three ways to get the policy:

* enumeration: :class:`~lightning_modules.action_head.ActionHead` on the prompt with the labelled action list;
* naive: :func:`~lightning_modules.action_scoring.naive_action_scores`, one ``context + action`` sequence per action;
* cached: :func:`~lightning_modules.action_scoring.cached_action_scores`, the context encoded once, its KV cache
  copied to each action;

and, for a like-for-like view, ``ActionHead`` on slices of the batch under the baselines' token budget per pass.

Token ids are prepared before timing (rollouts keep ids). Each call is timed whole: forward passes and the scores.
The machine is shared and its speed jumps, so the methods are timed in interleaved rounds (rotating order), a small
matmul before and after each call gauges the machine's speed, and only calls made at full speed count; the table
gives medians. The whole run takes about 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import transformers

import environments  # noqa: F401  (registers ReflectRL/...)
from datamodules.behaviour import teacher_action
from datamodules.prompt import ACTION_LABELS, ACTION_MARKER, ACTIONS_MARKER, format_policy_prompt
from environments.auto_explore import generate_tasks, package_root
from lightning_modules.action_head import ActionHead
from lightning_modules.action_scoring import (
    PerActionBatch,
    action_continuation,
    cached_action_scores,
    collate_per_action,
    naive_action_scores,
    per_action_context,
)
from lightning_modules.backbone import BackboneSpec, TinyGPT2Spec, load_backbone

COMMAND = "python benchmarks/action_scoring.py --output docs/action_scoring.md"
MODEL = TinyGPT2Spec(n_layer=4, n_embd=128, n_head=4, n_positions=1024)
METHODS = ("enumeration", "naive", "cached", "enumeration in passes")


@dataclass
class Decision:
    """One turn as the players see it."""

    observation: str
    reflection: str
    actions: list[str]


@dataclass
class Row:
    """One benchmark row: a batch of decisions, tokenised for every method."""

    name: str
    input_ids: torch.Tensor  # enumeration prompts, left-padded
    attention_mask: torch.Tensor
    num_actions: torch.Tensor
    per_action: PerActionBatch
    context_tokens: float
    prompt_tokens: float
    action_tokens: float

    @property
    def naive_token_ratio(self) -> float:
        """Tokens the naive baseline reads per token enumeration reads (K x (context + action) over the prompt)."""
        batch = self.per_action
        naive = int(batch.context_mask[batch.decision].sum() + batch.action_mask.sum())
        return naive / int(self.attention_mask.sum())


def play(env: gym.Env, episodes: list[dict], mistake_prob: float) -> list[Decision]:
    """Play the teacher's behaviour policy on each ``reset`` keyword set of ``episodes``; return every turn."""
    decisions = []
    for number, reset in enumerate(episodes):
        rng = np.random.default_rng(number)
        observation, info = env.reset(**reset)
        done = False
        while not done:
            decisions.append(Decision(observation, env.unwrapped.teacher_reflection(), list(info["actions"])))
            action, _ = teacher_action(info, rng, mistake_prob)
            observation, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    return decisions


def collect() -> tuple[dict[str, list[Decision]], int]:
    """Play every environment with its teacher; return the decisions by source and AutoExplore's largest K.

    The largest K is the most admissible actions the oracle meets on the gymnasium package's tasks.
    """
    sources = {}
    for fmt in ("compact", "grid"):
        env = gym.make("ReflectRL/DangerousTaxi-v0", observation_format=fmt)
        sources[f"taxi-{fmt}"] = play(env, [{"seed": s, "options": {"stage": "full"}} for s in range(40)], 0.25)
    tasks = generate_tasks(package_root("gymnasium"), seed=0)
    for max_actions in (64, 40):
        env = gym.make("ReflectRL/AutoExplore-v0", tasks=tasks, max_actions=max_actions, skip_unreachable=True)
        episodes = [{"seed": 0, "options": {"task_id": t.task_id}} for t in env.unwrapped.tasks]
        oracle = play(env, episodes, 0.0)
        sources[f"explore-{max_actions}"] = oracle + play(env, episodes, 0.25)
        if max_actions == 64:
            largest = max(len(d.actions) for d in oracle)
    return sources, largest


def encode_row(name: str, decisions: list[Decision], tokenizer) -> Row:
    """Tokenise real decisions for the three methods."""
    prompts = [format_policy_prompt(d.observation, d.actions, d.reflection) for d in decisions]
    encoded = tokenizer(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    contexts = [
        tokenizer(per_action_context(d.observation, d.reflection), add_special_tokens=False)["input_ids"]
        for d in decisions
    ]
    actions = [
        [tokenizer(action_continuation(a), add_special_tokens=False)["input_ids"] for a in d.actions] for d in decisions
    ]
    return Row(
        name=name,
        input_ids=encoded["input_ids"],
        attention_mask=encoded["attention_mask"],
        num_actions=torch.tensor([len(d.actions) for d in decisions]),
        per_action=collate_per_action(contexts, actions, tokenizer.pad_token_id),
        context_tokens=float(np.mean([len(c) for c in contexts])),
        prompt_tokens=float(encoded["attention_mask"].sum(-1).float().mean()),
        action_tokens=float(np.mean([len(a) for per in actions for a in per])),
    )


def synthetic_row(num_actions: int, context_tokens: int, batch: int, tokenizer, action_tokens: int = 4) -> Row:
    """A reference point: random ordinary tokens, a context of exactly ``context_tokens`` ending with ``# Action:``.

    The enumeration prompt is the same body followed by ``# Actions:``, the labelled list of the same action token
    sequences (``\\nA.`` + the action's tokens per line) and ``# Action:``.
    """
    generator = torch.Generator().manual_seed(context_tokens * 1000 + num_actions)
    special = set(tokenizer.all_special_ids) | set(tokenizer.convert_tokens_to_ids(list(tokenizer.get_added_vocab())))
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in special])

    def sample(n: int) -> list[int]:
        return ordinary[torch.randint(len(ordinary), (n,), generator=generator)].tolist()

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    marker = ids("\n" + ACTION_MARKER)
    prompts, contexts, actions = [], [], []
    for _ in range(batch):
        body = sample(context_tokens - len(marker))
        choices = [sample(action_tokens) for _ in range(num_actions)]
        listing = [t for label, a in zip(ACTION_LABELS, choices, strict=False) for t in ids(f"\n{label}.") + a]
        prompts.append(body + ids("\n" + ACTIONS_MARKER) + listing + marker)
        contexts.append(body + marker)
        actions.append(choices)
    length = max(len(p) for p in prompts)
    input_ids = torch.full((batch, length), tokenizer.pad_token_id)
    attention_mask = torch.zeros((batch, length), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, length - len(prompt) :] = torch.tensor(prompt)
        attention_mask[row, length - len(prompt) :] = 1
    return Row(
        name=f"synthetic, K={num_actions}, {context_tokens}-token context",
        input_ids=input_ids,
        attention_mask=attention_mask,
        num_actions=torch.full((batch,), num_actions),
        per_action=collate_per_action(contexts, actions, tokenizer.pad_token_id),
        context_tokens=float(context_tokens),
        prompt_tokens=float(np.mean([len(p) for p in prompts])),
        action_tokens=float(action_tokens),
    )


def cpu_name() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_speed(size: int = 512, repeats: int = 8) -> float:
    """GFLOP/s of a float32 matmul right now (the machine is shared; this shows how fast it is at the moment)."""
    a = torch.randn(size, size)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


class Gauge:
    """The machine's speed around each timed call: a call counts only if the machine ran at full speed around it.

    Args:
        threshold: A call is kept when the matmul speed before and after it is at least this share of the best seen.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.samples: list[float] = []

    def measure(self) -> float:
        """Measure the speed now and remember it."""
        self.samples.append(machine_speed())
        return self.samples[-1]

    def quiet(self, before: float, after: float) -> bool:
        """Whether the machine was at full speed before and after a call."""
        return min(before, after) >= self.threshold * max(self.samples)


def time_row(calls: dict[str, Callable[[], torch.Tensor]], gauge: Gauge, args) -> dict:
    """Time the calls in interleaved rounds (rotating order) and keep the calls made while the machine was quiet.

    A method takes part in a round while it has fewer than ``args.min_runs`` kept calls or less than
    ``args.min_seconds`` of kept time. After ``args.max_seconds`` (or ``args.max_rounds``) the row stops, and a method
    short of kept calls uses all its calls.
    """
    kept: dict[str, list[float]] = {name: [] for name in calls}
    every: dict[str, list[float]] = {name: [] for name in calls}
    faults: dict[str, list[int]] = {name: [] for name in calls}
    names = list(calls)
    start = time.perf_counter()
    for round_index in range(args.max_rounds):
        wanted = [n for n in names if len(kept[n]) < args.min_runs or sum(kept[n]) < args.min_seconds]
        if not wanted or (time.perf_counter() - start >= args.max_seconds and round_index >= 1):
            break
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if name not in wanted:
                continue
            before = gauge.measure()
            first_fault = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            tic = time.perf_counter()
            calls[name]()
            seconds = time.perf_counter() - tic
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - first_fault)
            every[name].append(seconds)
            if gauge.quiet(before, gauge.measure()):
                kept[name].append(seconds)
    used = {name: kept[name] if len(kept[name]) >= args.min_runs else every[name] for name in names}
    return {
        "seconds": used,
        "kept": min(len(kept[name]) for name in names),
        "discarded": sum(len(every[name]) - len(kept[name]) for name in names),
        "faults": {name: statistics.median(faults[name]) for name in names},
    }


def enumeration_in_passes(head: ActionHead, model, row: Row, max_tokens: int | None) -> torch.Tensor:
    """``ActionHead`` over slices of the batch of at most ``max_tokens`` tokens each (padding columns trimmed)."""
    length = row.input_ids.shape[1]
    size = row.input_ids.shape[0] if max_tokens is None else max(1, max_tokens // length)
    outputs = []
    for start in range(0, row.input_ids.shape[0], size):
        rows = slice(start, start + size)
        mask = row.attention_mask[rows]
        first = int(mask.any(0).long().argmax())  # the first column that is not padding in every row of the slice
        outputs.append(head(model, row.input_ids[rows, first:], mask[:, first:], row.num_actions[rows]))
    return torch.cat(outputs)


def benchmark_row(row: Row, model, head: ActionHead, gauge: Gauge, args) -> dict:
    """Check that naive and cached agree, warm every method up, and time them."""
    batch = row.per_action
    calls = {
        "enumeration": lambda: head(model, row.input_ids, row.attention_mask, row.num_actions),
        "naive": lambda: naive_action_scores(model, batch, max_tokens=args.max_tokens),
        "cached": lambda: cached_action_scores(model, batch, max_tokens=args.max_tokens),
        "enumeration in passes": lambda: enumeration_in_passes(head, model, row, args.max_tokens),
    }
    outputs = {name: call() for name, call in calls.items()}  # the warm-up run
    torch.testing.assert_close(outputs["enumeration in passes"], outputs["enumeration"], atol=1e-4, rtol=1e-4)
    naive, cached = outputs["naive"].log_softmax(-1), outputs["cached"].log_softmax(-1)
    finite = torch.isfinite(naive)
    gap = float((naive - cached)[finite].abs().max())
    if not torch.equal(finite, torch.isfinite(cached)) or gap > 1e-3:
        raise AssertionError(f"{row.name}: naive and cached scoring disagree (max gap {gap:.2e}).")
    timing = time_row(calls, gauge, args)
    median = {name: statistics.median(timing["seconds"][name]) for name in METHODS}
    result = {name: row.input_ids.shape[0] / median[name] for name in METHODS}
    result["vs naive"] = median["naive"] / median["enumeration"]
    result["vs cached"] = median["cached"] / median["enumeration"]
    result.update(kept=timing["kept"], discarded=timing["discarded"], faults=timing["faults"], gap=gap)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=None, help="write the markdown page here")
    parser.add_argument("--batch", type=int, default=16, help="decisions per call")
    parser.add_argument("--min-runs", type=int, default=3, help="timed calls per method and row at least")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="kept time per method and row at least")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time per row at most (then stop rounds)")
    parser.add_argument("--max-rounds", type=int, default=40, help="timed rounds per row at most")
    parser.add_argument(
        "--max-tokens", type=int, default=4096, help="tokens per forward pass of the baselines (0: one pass)"
    )
    args = parser.parse_args()
    args.max_tokens = args.max_tokens or None
    started = time.perf_counter()
    torch.manual_seed(0)

    sources, largest = collect()
    texts = [format_policy_prompt(d.observation, d.actions, d.reflection) for ds in sources.values() for d in ds]
    model, tokenizer = load_backbone(BackboneSpec(tiny=MODEL), lambda: texts)
    model.eval()
    head = ActionHead(tokenizer, max_actions=max(largest, 40))
    rng = np.random.default_rng(0)

    def sample(decisions: list[Decision]) -> list[Decision]:
        picks = rng.choice(len(decisions), size=args.batch, replace=len(decisions) < args.batch)
        return [decisions[i] for i in picks]

    explore = sources["explore-64"]
    widest = [d for d in explore if len(d.actions) == largest]
    forty = [d for d in sources["explore-40"] if len(d.actions) == 40]
    rows = [
        encode_row("DangerousTaxi, compact observation", sample(sources["taxi-compact"]), tokenizer),
        encode_row("DangerousTaxi, grid observation", sample(sources["taxi-grid"]), tokenizer),
        encode_row(f"AutoExplore (gymnasium), largest K ({len(widest)} distinct turns)", sample(widest), tokenizer),
        encode_row(f"AutoExplore (gymnasium), max_actions=40 ({len(forty)} distinct turns)", sample(forty), tokenizer),
        synthetic_row(6, 64, args.batch, tokenizer),
        synthetic_row(40, 300, args.batch, tokenizer),
    ]

    gauge = Gauge()
    for _ in range(5):
        gauge.measure()
    results = []
    with torch.inference_mode():
        for row in rows:
            result = benchmark_row(row, model, head, gauge, args)
            results.append((row, result))
            print(
                f"{row.name}: K={int(row.num_actions.max())} enumeration {result['enumeration']:.1f} "
                f"naive {result['naive']:.1f} cached {result['cached']:.1f} decisions/s "
                f"({result['kept']}+ calls kept, {result['discarded']} discarded, "
                f"{time.perf_counter() - started:.0f} s)",
                flush=True,
            )

    parameters = sum(p.numel() for p in model.parameters())
    table = [
        "| decisions | K | context tokens | enumeration prompt tokens | action tokens | enumeration /s | naive /s "
        "| cached /s | vs naive | vs cached | naive/enumeration tokens | enumeration in passes /s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, r in results:
        table.append(
            f"| {row.name} | {int(row.num_actions.max())} | {row.context_tokens:.0f} | {row.prompt_tokens:.0f} "
            f"| {row.action_tokens:.1f} | {r['enumeration']:.1f} | {r['naive']:.1f} | {r['cached']:.1f} "
            f"| {r['vs naive']:.1f}x | {r['vs cached']:.1f}x | {row.naive_token_ratio:.1f} "
            f"| {r['enumeration in passes']:.1f} |"
        )
    cpu = cpu_name()
    speeds = gauge.samples
    widest_faults = next(r["faults"] for row, r in results if row.name.startswith("AutoExplore (gymnasium), largest"))
    passes = f"at most {args.max_tokens} tokens" if args.max_tokens else "one pass each"
    page = [
        "# Action scoring: enumeration vs per-action scoring",
        "",
        "Three ways to get the policy's distribution over K admissible actions, with the same model and the same "
        "decisions. **Enumeration** (ours, `ActionHead`): the prompt lists the actions with labels `A.`, `B.`, ... "
        "and ends with `# Action:`; one forward pass per decision, and the logits of the label tokens at the last "
        "position, masked to the K admissible labels, are the policy. **Naive per-action scoring** (GLAM with "
        "lamorel, without its cache): the context is the prompt without the action list (observation, `# Analyze:` "
        "+ reflection, `# Action:`); each action is one sequence `context + action`, its score is the summed "
        "log-likelihood of its tokens, and the policy is the softmax of the K scores. **Cached per-action scoring** "
        "(lamorel's pre-encoded mode, the strongest alternative): each context is encoded once, its KV cache is "
        "copied to each of its K actions, and only the action tokens run on it. Naive and cached give the same "
        f"log-probabilities (largest gap in this run: {max(r['gap'] for _, r in results):.1e}); "
        "`tests/lightning_modules/test_action_scoring.py` checks all three against unbatched references.",
        "",
        f"Command: `{COMMAND}` ({time.perf_counter() - started:.0f} s in all).",
        "",
        f"Machine: {os.cpu_count()} CPU cores ({cpu}), no GPU, {torch.get_num_threads()} torch threads (the default), "
        f"torch {torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}.",
        "",
        *table,
        "",
        "Notes:",
        "",
        f"* Model: the embedded tiny GPT-2, {MODEL.n_layer} layers x {MODEL.n_embd} hidden, {MODEL.n_head} heads, "
        f"{parameters / 1e6:.2f}M parameters, vocabulary {len(tokenizer)} (byte-level BPE trained on {len(texts)} "
        "policy prompts with teacher reflections from both environments), float32, `torch.inference_mode`, "
        f"{args.batch} decisions per call.",
        f"* Decisions: real rows sample {args.batch} turns of the teacher's behaviour policy (25% deliberate "
        "mistakes; for AutoExplore also the oracle's turns on every gymnasium task); a turn repeats when fewer "
        f"have that K. The largest K the oracle meets on the gymnasium tasks is {largest} (default "
        "`max_actions=64`); the K=40 row plays the same tasks with `max_actions=40`. Synthetic rows use random "
        "ordinary tokens: a context of exactly that many tokens ending with `# Action:`, 4-token actions, and the "
        "same body followed by the labelled list for enumeration. Token counts are means over the batch without "
        "padding; context tokens are what per-action scoring reads, enumeration prompt tokens what `ActionHead` "
        "reads (context + the list).",
        f"* Passes: the enumeration columns and speed-ups are `ActionHead` as shipped, one forward pass over the "
        f"{args.batch} prompts. The per-action baselines run in forward passes of {passes} (`--max-tokens`, "
        "lamorel's minibatches), which on this 2-core CPU is about twice as fast for them as one pass at K >= 40 "
        "(the activations of one pass outgrow the caches). *enumeration in passes* is `ActionHead` called on "
        "slices of the batch under the same token budget, for a like-for-like view. Token ids are prepared before "
        "timing (rollouts keep ids); a timed call is the forward passes plus the scores.",
        "* Memory: a single pass over long prompts allocates activation buffers larger than glibc's mmap "
        "threshold; glibc returns them to the OS after each call and the next call touches fresh pages (median "
        f"{widest_faults['enumeration']:,.0f} minor page faults per single-pass `ActionHead` call on the largest-K "
        f"row, {widest_faults['enumeration in passes']:,.0f} in passes). Passes keep the buffers small and in cache, "
        "which is most of the gap between the two enumeration columns; so does a non-returning allocator "
        "(`MALLOC_TRIM_THRESHOLD_`/`MALLOC_MMAP_THRESHOLD_`, jemalloc, tcmalloc).",
        "* Reading the table: the speed-up over naive follows the *naive/enumeration tokens* column (K copies of "
        "context + action against one prompt with the list), not K itself. It is near K when the list is short "
        "next to the context (DangerousTaxi: six 3-token actions) and well under K when it is not (AutoExplore's "
        "list names every entry twice, `cat x` and `id x`, after the observation has listed them once, so the "
        "prompt is about three times the context). Cached scoring reads fewer tokens than enumeration (the context "
        "once plus the K actions) but needs two passes and copies each context's keys and values to every action "
        "(K x context x layers x 2 x hidden floats per decision), and its second pass attends from every action "
        "to the whole context; that is where enumeration's lead over it comes from, and it grows with K x "
        "context.",
        "* Timing: one warm-up call per method, then interleaved rounds (rotating order) until every method has "
        f"at least {args.min_runs} kept calls and {args.min_seconds:.0f} s of kept time in the row (at most "
        f"{args.max_seconds:.0f} s or {args.max_rounds} rounds per row). The machine is shared and its "
        "speed jumps (a 512x512 float32 matmul ran at "
        f"{min(speeds):.0f}-{max(speeds):.0f} GFLOP/s during this run, median {statistics.median(speeds):.0f}), so "
        "a call is kept only if the matmul before and after it ran at least half as fast as the best seen "
        f"({sum(r['discarded'] for _, r in results)} calls discarded in all). Decisions/s is the batch size over the "
        "median kept call; a speed-up is the baseline's median time over enumeration's.",
        "",
    ]
    text = "\n".join(page)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)


if __name__ == "__main__":
    main()
