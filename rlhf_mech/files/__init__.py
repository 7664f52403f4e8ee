"""The files layer: game files (spec and writer), importers, counterexample files.

Everything that reads or writes a file lives here, on top of :mod:`rlhf_mech.core` and
:mod:`rlhf_mech.analysis`. Implementations live in private modules; this namespace is the
layer's public surface.
"""

from rlhf_mech.files._counterexamples import counterexample_game, save_counterexamples, write_counterexample
from rlhf_mech.files._importer import (
    CandidateSummary,
    ColumnStats,
    EvalTable,
    FileSummary,
    GroupOption,
    ImportResult,
    import_candidates,
    import_files,
    import_responses,
    normalise_rewards,
    parse_group_option,
    parse_reward_columns,
    read_table,
    resolve_kind,
)
from rlhf_mech.files._reports import read_reward
from rlhf_mech.files._writer import (
    INLINE_LIMIT,
    GameDocument,
    candidate_document,
    core_document,
    dump_yaml,
    game_document,
    write_game,
)
from rlhf_mech.files.spec import candidate_game_schema, game_schema, load_game
from rlhf_mech.files.spec._schemas import LAMBDA_MAX, LAMBDA_MIN, MAX_OUTCOMES, SIZE_LIMIT

__all__ = [
    "INLINE_LIMIT",
    "LAMBDA_MAX",
    "LAMBDA_MIN",
    "MAX_OUTCOMES",
    "SIZE_LIMIT",
    "CandidateSummary",
    "ColumnStats",
    "EvalTable",
    "FileSummary",
    "GameDocument",
    "GroupOption",
    "ImportResult",
    "candidate_document",
    "candidate_game_schema",
    "core_document",
    "counterexample_game",
    "dump_yaml",
    "game_document",
    "game_schema",
    "import_candidates",
    "import_files",
    "import_responses",
    "load_game",
    "normalise_rewards",
    "parse_group_option",
    "parse_reward_columns",
    "read_reward",
    "read_table",
    "resolve_kind",
    "save_counterexamples",
    "write_counterexample",
    "write_game",
]
