"""Trainer logs in exactly the layouts the trainers write, for tests/test_logs.py and docs/import.md.

Each writer produces the files one trainer's own code writes, with the same names, columns
and types (read from the projects' code; see :mod:`rlhf_mech.files._logs`), and returns the
values it wrote, so a test can check what a reader makes of them. The numbers come from a
seeded generator, so every run writes the same bytes.

``python tests/trainer_logs.py {trl,mod,ric,openrlhf} FOLDER`` writes one example run into
FOLDER (the worked examples of docs/import.md).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: HH-RLHF-style prompts: newlines, a comma and quotes, as the real ones have.
PROMPTS = (
    "\n\nHuman: How do I bake bread?\n\nAssistant:",
    '\n\nHuman: Tell me a joke about "cats", please.\n\nAssistant:',
    "\n\nHuman: What is 17 * 23?\n\nAssistant:",
    "\n\nHuman: Summarise the plot of Hamlet.\n\nAssistant:",
)
#: Two TRL reward functions, named as TRL names them (the function's ``__name__``), in the
#: order the trainer is given them: not alphabetical, as ``trainer_state.json`` lists them.
TRL_REWARDS = ("format_reward", "accuracy_reward")


@dataclass(frozen=True)
class Written:
    """What a writer wrote.

    Attributes
    ----------
    files : the files, in the order a reader reads them.
    prompts, responses : (N,) per row, in that order.
    rewards : (N, K) the reward columns, in that order.
    steps : (N,) the step of each row (TRL), else ``None``.
    """

    files: tuple[Path, ...]
    prompts: tuple[str, ...]
    responses: tuple[str, ...]
    rewards: np.ndarray
    steps: np.ndarray | None = None


def _grpo_advantages(rewards: np.ndarray, weights: np.ndarray, generations: int) -> np.ndarray:
    """GRPO's advantage (sum_then_normalize, scale_rewards="group"), in float32 as TRL computes
    it: the weighted sum minus its group mean, over its unbiased group std + 1e-4
    (``GRPOTrainer._generate_and_score_completions``)."""
    r = rewards.astype(np.float32)
    total = (r * weights.astype(np.float32)).sum(axis=1, dtype=np.float32).reshape(-1, generations)
    mean = total.mean(axis=1, keepdims=True, dtype=np.float32)
    std = total.std(axis=1, ddof=1, keepdims=True, dtype=np.float32)
    return ((total - mean) / (std + np.float32(1e-4))).ravel().astype(np.float64)


def write_trl_run(
    output_dir: Path,
    *,
    steps: tuple[int, ...] = (0, 1, 2),
    generations: int = 3,
    reward_weights: tuple[float, ...] | None = (1.0, 0.5),
    aggregation: str | None = "sum_then_normalize",
    trainer_state: bool = True,
    eval_steps: tuple[int, ...] = (),
    extra: dict[str, list[float]] | None = None,
    seed: int = 0,
) -> Written:
    """A GRPO run with ``log_completions=True``: ``output_dir/completions/completions_{step:05d}.parquet``.

    Each file holds the prompts in order, each repeated ``generations`` times in a row (TRL's
    ``RepeatSampler``), with columns ``step`` (int64), ``prompt`` and ``completion``
    (``large_string``, as pandas writes Python strings), one float64 column per reward
    function in ``TRL_REWARDS`` order, the ``extra`` columns (``log_extra``) and
    ``advantage`` (float64, computed in float32). Step 0 is what ``eval_on_start=True`` logs.

    ``trainer_state`` writes ``checkpoint-{last step}/trainer_state.json`` as transformers
    does (``sort_keys=True``): a training entry with the ``rewards/{name}/mean`` metrics at
    every step but 0, and an ``eval_*`` entry at step 0 and at each of ``eval_steps``. A
    ``reward_weights`` or ``aggregation`` that is not ``None`` goes to ``training_args.json``
    (``GRPOConfig.to_dict()``, a few fields). The real thing: tests/data/logs/trl
    (benchmarks/trl_run.py).
    """
    rng = np.random.default_rng(seed)
    folder = output_dir / "completions"
    folder.mkdir(parents=True, exist_ok=True)
    weights = np.ones(len(TRL_REWARDS)) if reward_weights is None else np.array(reward_weights)
    files, prompts, responses, rewards, all_steps = [], [], [], [], []
    for step in steps:
        n = len(PROMPTS) * generations
        step_prompts = [p for p in PROMPTS for _ in range(generations)]
        step_responses = [f" Answer {j % generations} at step {step}." for j in range(n)]
        values = np.column_stack([rng.integers(0, 2, n).astype(float), rng.uniform(0.0, 1.0, n)])
        table: dict[str, pa.Array] = {
            "step": pa.array([step] * n, pa.int64()),
            "prompt": pa.array(step_prompts, pa.large_string()),
            "completion": pa.array(step_responses, pa.large_string()),
        }
        for k, name in enumerate(TRL_REWARDS):
            table[name] = pa.array(values[:, k], pa.float64())
        for name, column in (extra or {}).items():
            table[name] = pa.array(column[:n], pa.float64())
        table["advantage"] = pa.array(_grpo_advantages(values, weights, generations), pa.float64())
        path = folder / f"completions_{step:05d}.parquet"
        pq.write_table(pa.table(table), path)
        files.append(path)
        prompts += step_prompts
        responses += step_responses
        rewards.append(values)
        all_steps.append(np.full(n, step))
    if trainer_state:
        history: list[dict[str, object]] = []
        for s in steps:
            if s:
                history.append({"step": s, "loss": 0.1, **{f"rewards/{m}/mean": 0.5 for m in TRL_REWARDS}})
            if s == 0 or s in eval_steps:
                history.append({"step": s, **{f"eval_rewards/{m}/mean": 0.5 for m in TRL_REWARDS}})
        checkpoint = output_dir / f"checkpoint-{steps[-1]}"
        checkpoint.mkdir(exist_ok=True)
        state = {"global_step": steps[-1], "logging_steps": 1, "log_history": history}
        (checkpoint / "trainer_state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    config: dict[str, object] = {"output_dir": str(output_dir), "num_generations": generations}
    if reward_weights is not None:
        config["reward_weights"] = list(reward_weights)
    if aggregation is not None:
        config["multi_objective_aggregation"] = aggregation
    if len(config) > 2:
        (output_dir / "training_args.json").write_text(json.dumps(config, indent=2))
    return Written(
        tuple(files), tuple(prompts), tuple(responses), np.concatenate(rewards), np.concatenate(all_steps)
    )


def pandas_csv(columns: dict[str, list[object]]) -> str:
    """What ``pd.DataFrame(columns).to_csv(path)`` writes: a leading index column with an empty
    header, floats as ``repr``, fields quoted only when they must be (csv.QUOTE_MINIMAL), "\\n"
    line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", *columns])
    rows = len(next(iter(columns.values())))
    for r in range(rows):
        writer.writerow(
            [r, *(repr(v) if isinstance(v, float) else v for v in (c[r] for c in columns.values()))]
        )
    return out.getvalue()


def eval_file_name(preference: tuple[float, ...]) -> str:
    """``'eval_data_pref{}_{}.csv'.format(*preference)`` with numpy floats, as MOD/RiC name files."""
    return "eval_data_pref" + "_".join(format(np.float64(w)) for w in preference) + ".csv"


#: The 3-reward preference weightings of MOD's ``eval_ours.py`` (a subset).
MOD_PREFERENCES = ((0.0, 0.0, 1.0), (0.33, 0.33, 0.33), (0.6, 0.2, 0.2))


def write_eval_run(
    folder: Path,
    preferences: tuple[tuple[float, ...], ...] = MOD_PREFERENCES,
    *,
    ric: bool = False,
    rows: int = 4,
    seed: int = 1,
) -> Written:
    """MOD (or, with ``ric``, RiC) evaluation output: one ``eval_data_pref...csv`` per preference.

    Columns ``prompt, response, obtained_score1..K`` after pandas' index; RiC interleaves
    ``desired_score{i}`` after each ``obtained_score{i}`` (the order of its result dict).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files, prompts, responses, rewards = [], [], [], []
    for preference in preferences:
        k = len(preference)
        scores = rng.normal(0.0, 2.0, (rows, k))
        columns: dict[str, list[object]] = {
            "prompt": [PROMPTS[r % len(PROMPTS)] for r in range(rows)],
            "response": [f" Response {r} for {preference}, with a comma." for r in range(rows)],
        }
        for i in range(k):
            columns[f"obtained_score{i + 1}"] = [float(v) for v in scores[:, i]]
            if ric:
                columns[f"desired_score{i + 1}"] = [float(round(v, 2)) for v in rng.normal(0.0, 1.0, rows)]
        path = folder / eval_file_name(preference)
        path.write_text(pandas_csv(columns))
        files.append(path)
        prompts += columns["prompt"]  # type: ignore[arg-type]
        responses += columns["response"]  # type: ignore[arg-type]
        rewards.append(scores)
    return Written(tuple(files), tuple(prompts), tuple(responses), np.concatenate(rewards))


def write_openrlhf(folder: Path, names: tuple[str, ...] = ("helpful", "harmless"), seed: int = 2) -> Written:
    """One ``{name}.jsonl`` per reward model, lines ``{"input", "output", "reward"}`` as
    ``jsonlines`` writes them; every file lists the same pairs in its own (shuffled) order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(p, f" Reply {j}.") for p in PROMPTS for j in range(2)]
    rewards = rng.normal(0.0, 1.0, (len(pairs), len(names)))
    files = []
    for k, name in enumerate(names):
        order = rng.permutation(len(pairs)) if k else np.arange(len(pairs))
        lines = [
            json.dumps({"input": pairs[r][0], "output": pairs[r][1], "reward": float(rewards[r, k])})
            for r in order
        ]
        path = folder / f"{name}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return Written(tuple(files), tuple(p for p, _ in pairs), tuple(o for _, o in pairs), rewards)


def openrlhf_line(row: dict[str, object]) -> str:
    """One line as ``jsonlines`` writes it (``json.dumps(obj, ensure_ascii=False)``)."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_openrlhf_ranks(
    folder: Path,
    pairs: list[tuple[str, str]],
    rewards: np.ndarray,
    names: tuple[str, ...] = ("helpful", "harmless"),
    world_size: int = 3,
) -> Written:
    """What ``batch_rm_inference`` writes on ``world_size`` processes, one run per reward model
    (``openrlhf/cli/batch_inference.py``, OpenRLHF 0.6-0.9).

    The loader is ``setup_dataloader(dataset, micro_batch_size, True, False, ...,
    drop_last=False)``: OpenRLHF's ``DistributedSampler`` with ``shuffle=False`` pads the
    dataset to a multiple of ``world_size`` with its first items and gives rank ``r`` the items
    ``r, r + W, ...``. Each rank writes ``{name}.jsonl{rank}``; rank 0 concatenates them in
    rank order into ``{name}.jsonl`` and leaves them there (``os.remove`` is commented out).
    ``rewards`` is (len(pairs), len(names)); the returned ``Written`` holds the dataset's rows
    (padding excluded), in dataset order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n = len(pairs)
    per_rank = -(-n // world_size)
    total = per_rank * world_size
    indices = list(range(n))
    indices += indices[: total - n]  # the sampler's padding: copies of the first items
    files = []
    for k, name in enumerate(names):
        merged = []
        for rank in range(world_size):
            lines = [
                openrlhf_line({"input": pairs[i][0], "output": pairs[i][1], "reward": float(rewards[i, k])})
                for i in indices[rank:total:world_size]
            ]
            (folder / f"{name}.jsonl{rank}").write_text("".join(lines), encoding="utf-8")
            merged += lines
        path = folder / f"{name}.jsonl"
        path.write_text("".join(merged), encoding="utf-8")
        files.append(path)
    return Written(tuple(files), tuple(p for p, _ in pairs), tuple(o for _, o in pairs), rewards)


WRITERS = {
    "trl": lambda folder: write_trl_run(folder),
    "mod": lambda folder: write_eval_run(folder),
    "ric": lambda folder: write_eval_run(folder, ((0.0, 1.0), (0.5, 0.5), (1.0, 0.0)), ric=True),
    "openrlhf": lambda folder: write_openrlhf(folder),
    "openrlhf-ranks": lambda folder: write_openrlhf_ranks(
        folder,
        [(p, f" Reply {j}.") for p in PROMPTS for j in range(2)][:7],
        np.round(np.random.default_rng(3).normal(0.0, 1.0, (7, 2)), 4),
    ),
}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in WRITERS:
        sys.exit(f"usage: python tests/trainer_logs.py {{{','.join(WRITERS)}}} FOLDER")
    for path in WRITERS[sys.argv[1]](Path(sys.argv[2])).files:
        print(path)
