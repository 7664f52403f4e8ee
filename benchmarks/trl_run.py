"""Real TRL ``GRPOTrainer`` runs, on a tiny randomly initialised GPT-2, for ``rlhf-mech import`` (issue 21).

Not a test and not part of CI: it needs torch (several GB), trl and transformers, which the
project does not depend on. It builds everything locally (no hub access): a word-level
tokenizer trained from a small vocabulary, a GPT-2 with one layer of width 16, datasets made
with ``datasets.Dataset.from_dict``, and three reward functions passed in the order
``length, vowel, cat`` with ``reward_weights=[1, 0.5, 2]`` (so that their alphabetical order,
the order of ``trainer_state.json``, differs from the trainer's). Each run writes what the
trainer writes: ``completions/completions_{step:05d}.parquet`` (``log_completions=True``) and,
where the run says so, ``trainer_state.json`` (``trainer.save_state()``) and
``training_args.json`` (``json.dump(trainer.args.to_dict())``). Model weights are not saved.

Runs (each in its own folder under OUT):

============  ========================================================================
``plain``     plain-text prompts, 3 steps, ``save_state()``, ``training_args.json``
``chat-eval`` conversational prompts (``list<struct<role, content>>``), an eval set,
              ``eval_strategy="steps"``, ``eval_steps=2``, ``eval_on_start=True``;
              ``save_state()``, no config dump
``no-state``  plain prompts, a ``log_extra`` column (``vowels``), neither
              ``save_state()`` nor checkpoints nor config (the common case)
``eval-only`` plain prompts with the eval set of ``chat-eval``; no state, no config
============  ========================================================================

Usage (in an environment with the versions below; see tests/data/logs/README.md)::

    python -m venv /tmp/trl-venv
    /tmp/trl-venv/bin/pip install torch==2.13.0 trl==1.16.0 transformers==5.25.0 pandas==3.1.1 datasets
    /tmp/trl-venv/bin/python benchmarks/trl_run.py tests/data/logs/trl

Versions this was run with: torch 2.13.0 (CPU), trl 1.16.0, transformers 5.25.0,
accelerate 1.16.0, datasets 5.2.0, pandas 3.1.1, pyarrow 26.0.1, tokenizers 0.23.3. It takes
about a minute on two CPU cores and writes about 60 KB.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")

_WORDS_TEXT = (
    "the a cat dog sat on mat sun is hot cold red blue tree sky sea fish bird eats runs sleeps and or "
    "not yes no big small good bad happy sad one two three four five why how what tell me about write "
    "say hello story poem joke"
)
WORDS = tuple(_WORDS_TEXT.split())
SPECIALS = ("<unk>", "<pad>", "<eos>", "user", "assistant", "system", ":")

TRAIN_PROMPTS = (
    "tell me about the cat",
    "write a poem about the sea",
    "say hello to the dog",
    "why is the sky blue",
)
EVAL_PROMPTS = (
    "what is a fish",
    "tell me a joke",
    "how big is the sun",
    "write a story about one bird",
)
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }} : {{ message['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def _text(completion: object) -> str:
    """The completion's text: a string, or the content of a conversational completion."""
    if isinstance(completion, list):
        return " ".join(str(m["content"]) for m in completion)
    return str(completion)


# The reward functions, in the order the trainer is given them (not alphabetical).
def length(completions, **kwargs):
    return [float(len(_text(c).split())) / 8.0 for c in completions]


def vowel(completions, log_extra=None, **kwargs):
    texts = [_text(c) for c in completions]
    counts = [sum(ch in "aeiou" for ch in t) for t in texts]
    if log_extra is not None and kwargs.get("trainer_state") is not None and LOG_EXTRA:
        log_extra("vowels", [float(n) for n in counts])
    return [n / max(len(t), 1) for n, t in zip(counts, texts, strict=True)]


def cat(completions, **kwargs):
    return [1.0 if "cat" in _text(c).split() else 0.0 for c in completions]


LOG_EXTRA = False


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate((*SPECIALS, *WORDS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def model(vocab_size: int, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab_size, n_positions=64, n_embd=16, n_layer=1, n_head=2, bos_token_id=2, eos_token_id=2
    )
    return GPT2LMHeadModel(config)


def dataset(prompts, chat: bool):
    from datasets import Dataset

    if chat:
        return Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in prompts]})
    return Dataset.from_dict({"prompt": list(prompts)})


def run(out: Path, *, chat: bool, evaluate: bool, save_state: bool, dump_config: bool, extra: bool) -> None:
    """One GRPO run into ``out`` (emptied first)."""
    global LOG_EXTRA
    from transformers import set_seed
    from trl import GRPOConfig, GRPOTrainer

    LOG_EXTRA = extra
    shutil.rmtree(out, ignore_errors=True)
    set_seed(0)
    tok = tokenizer()
    eval_args = (
        {"eval_strategy": "steps", "eval_steps": 2, "eval_on_start": True, "per_device_eval_batch_size": 8}
        if evaluate
        else {}
    )
    args = GRPOConfig(
        output_dir=str(out),
        max_steps=3,
        learning_rate=1e-2,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=6,
        logging_steps=1,
        log_completions=True,
        num_completions_to_print=0,
        reward_weights=[1.0, 0.5, 2.0],
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
        data_seed=0,
        disable_tqdm=True,
        **eval_args,
    )
    trainer = GRPOTrainer(
        model=model(tok.vocab_size, seed=0),
        reward_funcs=[length, vowel, cat],
        args=args,
        train_dataset=dataset(TRAIN_PROMPTS, chat),
        eval_dataset=dataset(EVAL_PROMPTS, chat) if evaluate else None,
        processing_class=tok,
    )
    trainer.train()
    if save_state:
        trainer.save_state()
    if dump_config:
        with open(out / "training_args.json", "w", encoding="utf-8") as handle:
            json.dump(trainer.args.to_dict(), handle, indent=2, default=str)
    for leftover in ("README.md",):
        (out / leftover).unlink(missing_ok=True)


RUNS = {
    "plain": {"chat": False, "evaluate": False, "save_state": True, "dump_config": True, "extra": False},
    "chat-eval": {"chat": True, "evaluate": True, "save_state": True, "dump_config": False, "extra": False},
    "no-state": {"chat": False, "evaluate": False, "save_state": False, "dump_config": False, "extra": True},
    "eval-only": {"chat": False, "evaluate": True, "save_state": False, "dump_config": False, "extra": False},
}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python {sys.argv[0]} OUT", file=sys.stderr)
        return 2
    root = Path(argv[0])
    for name, options in RUNS.items():
        run(root / name, **options)
    import datasets
    import pandas
    import pyarrow
    import tokenizers
    import torch
    import transformers
    import trl

    versions = {
        m.__name__: m.__version__ for m in (torch, trl, transformers, datasets, pandas, pyarrow, tokenizers)
    }
    (root / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    print("RESULT " + " ".join(f"{k}={v}" for k, v in versions.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
