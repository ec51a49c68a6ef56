"""Example workers: heat-demand (a degree-day model), basic (echo, sleep, fail), kpi, loadgen.

Run one with `workmesh worker workmesh.workers.examples.heat_demand:worker`.
"""
