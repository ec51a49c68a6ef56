"""``district-design``: a workflow of steps (issue 13) — three design variations of one district.

A planner compares ways to heat a district: as it is, with insulation, with a deep retrofit.
Each variation lowers the heating base temperature of the degree-day model (better envelopes
need heating only on colder hours) at a retrofit cost per building. The workflow

1. simulates the heat demand of the three variations **in parallel**, each a step of the
   ``heat-demand`` type (its own worker, :mod:`workmesh.workers.examples.heat_demand`);
2. computes the KPIs and yearly cost of each with a ``heat-kpi`` step (served by this
   module's :data:`worker`), fed with the demand step's outputs (total, peak, hours);
3. returns the comparison, cheapest first; its series are those of the three simulations.

Run it with ``workmesh demo district-design``, or ``workmesh submit district-design --follow``
against ``workmesh dev`` (which serves both workers).
"""

from __future__ import annotations

import asyncio

from workmesh.workers import Context, Param, Worker, workflow

# (name, heating base temperature °C, retrofit investment € per building)
VARIATIONS = (("as-is", 18.0, 0.0), ("insulated", 16.5, 6_000.0), ("deep-retrofit", 15.0, 18_000.0))
YEARS = 30  # the retrofit investment is spread over this many years


@workflow(
    name="heat-kpi",
    version="1.0.0",
    description="KPIs and yearly cost of a heat demand: load factor, full-load hours, energy, "
    "capacity and annualised investment cost.",
    params=[
        Param.float("total_demand_mwh", min=0.0, required=True, unit="MWh", description="yearly heat demand"),
        Param.float("peak_demand_kw", min=0.001, required=True, unit="kW", description="coincident peak"),
        Param.int("hours", default=8760, min=1, max=8784, description="hours simulated"),
        Param.float("investment_eur", default=0.0, min=0.0, unit="€", description="one-off investment"),
        Param.float("heat_price", default=85.0, min=0.0, unit="€/MWh", description="price of heat delivered"),
        Param.float("capacity_price", default=110.0, min=0.0, unit="€/kW", description="yearly cost of peak capacity"),
    ],
)
def heat_kpi(
    ctx: Context,
    total_demand_mwh: float,
    peak_demand_kw: float,
    hours: int,
    investment_eur: float,
    heat_price: float,
    capacity_price: float,
) -> dict:
    average_kw = total_demand_mwh * 1000.0 / hours
    energy = total_demand_mwh * heat_price
    capacity = peak_demand_kw * capacity_price
    annualised = investment_eur / YEARS
    ctx.progress(1.0, "KPIs computed")
    return {
        "load_factor": round(average_kw / peak_demand_kw, 4),
        "full_load_hours": round(total_demand_mwh * 1000.0 / peak_demand_kw, 1),
        "energy_cost_eur": round(energy, 2),
        "capacity_cost_eur": round(capacity, 2),
        "investment_eur_per_year": round(annualised, 2),
        "yearly_cost_eur": round(energy + capacity + annualised, 2),
    }


@workflow(
    name="district-design",
    version="1.0.0",
    description="Compares three heating designs of a district (as-is, insulated, deep retrofit): "
    "heat-demand simulations in parallel, then KPIs and cost of each.",
    params=[
        Param.int("buildings", default=200, min=1, max=10_000, description="buildings in the district"),
        Param.int("year", default=2025, min=1900, max=2100, description="calendar year simulated"),
        Param.enum("profile", ["residential", "office", "mixed"], default="residential", description="building stock"),
        Param.int("seed", default=42, min=0, max=2**31 - 1, description="seed of the synthetic data"),
        Param.float("heat_price", default=85.0, min=0.0, unit="€/MWh", description="price of heat delivered"),
    ],
)
async def district_design(ctx: Context, buildings: int, year: int, profile: str, seed: int, heat_price: float) -> dict:
    common = {"buildings": buildings, "year": year, "profile": profile, "seed": seed}
    # Step names carry the variation: each is one durable step (a retry reuses the finished ones).
    demands = await asyncio.gather(
        *(
            ctx.step(f"simulate-{name}", "heat-demand", {**common, "base_temperature": base}, weight=10)
            for name, base, _ in VARIATIONS
        )
    )
    kpis = await asyncio.gather(
        *(
            ctx.step(
                f"kpi-{name}",
                "heat-kpi",
                {
                    "total_demand_mwh": demand.outputs["total_demand_mwh"],
                    "peak_demand_kw": demand.outputs["peak_demand_kw"],
                    "hours": demand.outputs["hours"],
                    "investment_eur": invest * buildings,
                    "heat_price": heat_price,
                },
            )
            for (name, _, invest), demand in zip(VARIATIONS, demands, strict=True)
        )
    )
    rows = [
        {
            "variation": name,
            "base_temperature": base,
            "total_demand_mwh": demand.outputs["total_demand_mwh"],
            "peak_demand_kw": demand.outputs["peak_demand_kw"],
            **kpi.outputs,
        }
        for (name, base, _), demand, kpi in zip(VARIATIONS, demands, kpis, strict=True)
    ]
    rows.sort(key=lambda row: row["yearly_cost_eur"])
    # The job's own last word on its progress (reported after its last step, it stays; without
    # it the gateway's roll-up of the steps would say "steps: 6 of 6 done").
    ctx.progress(1.0, f"compared {len(rows)} variations")
    ctx.log("info", "cheapest design", variation=rows[0]["variation"], yearly_cost_eur=rows[0]["yearly_cost_eur"])
    return {"buildings": buildings, "cheapest": rows[0]["variation"], "variations": rows}


# One process serves the workflow and its KPI step; the simulations run on the heat-demand
# worker: the steps of one workflow cross workers (and machines) through the gateway.
worker = Worker([district_design, heat_kpi], capacity=8)
