"""Dispatch: the dispatcher and its parts (attempts, outcomes, control, recovery, leases, policy),
the fair-share scheduler with its queue simulation, and the runtime model behind EstimateJob."""
