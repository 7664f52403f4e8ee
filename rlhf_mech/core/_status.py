"""Solver status codes, shared by every result that carries one (scipy's ``flag_map`` idea).

A separate module so that the registries can name a status without loading the solver.
"""

#: ``status`` values of :class:`~rlhf_mech.core.SolveResult` and their meaning.
CONVERGED = 0
MAXITER = 1
STALLED = 2
STATUS_MESSAGES = {
    CONVERGED: "converged",
    MAXITER: "the multiplier iteration hit maxiter before |T - 1| <= tol",
    STALLED: "the multiplier stopped moving (rounding) with |T - 1| above what its digits resolve",
}
