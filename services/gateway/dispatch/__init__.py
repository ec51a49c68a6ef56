"""Dispatch: the dispatcher and its parts (attempts, outcomes, control, recovery, leases, policy)."""
