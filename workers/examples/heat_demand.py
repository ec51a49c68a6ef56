"""Heat demand of N buildings over one year of hourly steps, from a degree-day model.

A small but real computation of the domain. The outdoor temperature is synthetic, for a Dutch
climate: an annual sinusoid (mean 10.5 °C, coldest mid-January), a daily one (warmest at 15:00)
and seeded AR(1) weather noise. Each building has a floor area and a specific heat-loss
coefficient (UA per m²) drawn from a seeded RNG; its space-heating load is
``UA · max(T_base − T_out, 0)`` times an occupancy schedule, and domestic hot water adds a
fixed share of the annual total on a daily tapping profile. Buildings are processed in numpy
chunks, with progress and a cancellation check per chunk.

Output series (``write_series``, on by default): ``heat_demand`` (field ``Q`` in kW, tag
``building=b<i>``) for the first 1,000 buildings, ``district`` (``Q``, the coincident total of all
buildings) and ``outdoor`` (``T`` in °C), hourly; the job result lists them as SeriesRefs.

Serve with ``workmesh worker workmesh.workers.examples.heat_demand:worker``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import TypedDict

import numpy as np

from workmesh.workers import Context, Param, Worker, workflow

MAX_CHUNK = 500  # buildings per vectorised step: ~35 MB of float64 for a leap year
STEPS = 20  # aim for this many progress steps, so small runs report progress too
MAX_BUILDING_SERIES = 1000  # per-building series beyond this would dwarf the job: totals only


class Profile(TypedDict):
    """A building profile: median floor area (m²), specific UA range (W/K per m²), DHW share of the total."""

    area: float
    ua: tuple[float, float]
    dhw: float


PROFILES: dict[str, Profile] = {
    "residential": {"area": 110.0, "ua": (0.9, 2.0), "dhw": 0.20},
    "office": {"area": 1400.0, "ua": (0.6, 1.4), "dhw": 0.05},
}
# Hourly DHW tapping shape (morning and evening peaks for homes; office hours for offices).
_DHW_HOME = np.array([1, 1, 1, 1, 1, 2, 6, 9, 7, 4, 3, 3, 3, 3, 3, 3, 4, 6, 8, 8, 6, 4, 2, 1], dtype=float)
_DHW_OFFICE = np.array([0, 0, 0, 0, 0, 0, 1, 3, 4, 4, 4, 5, 6, 5, 4, 4, 3, 2, 1, 0, 0, 0, 0, 0], dtype=float)


def outdoor_temperature(year: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hourly timestamps (datetime64[h]) and outdoor temperatures (°C) of `year`."""
    start = np.datetime64(f"{year:04d}-01-01T00", "h")
    hours = np.arange(start, np.datetime64(f"{year + 1:04d}-01-01T00", "h"))
    t = np.arange(hours.size, dtype=float)
    annual = 10.5 - 7.0 * np.cos(2 * np.pi * (t / 24.0 - 15.0) / 365.25)
    daily = -3.0 * np.cos(2 * np.pi * (t % 24 - 3.0) / 24.0)  # minimum at 03:00, maximum at 15:00
    # Weather noise: AR(1) on hourly steps (persistent warm and cold spells of a few days).
    shocks = rng.normal(0.0, 0.35, t.size)
    noise = np.empty_like(t)
    level = 0.0
    for i, shock in enumerate(shocks.tolist()):
        level = 0.985 * level + shock
        noise[i] = level
    return hours, annual + daily + noise


def schedules(hours: np.ndarray, profile: str) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy factor for space heating and the normalised DHW shape, per hour."""
    hour_of_day = (hours - hours.astype("datetime64[D]")).astype(int)
    weekday = (hours.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    if profile == "office":
        working = (weekday < 5) & (hour_of_day >= 7) & (hour_of_day < 19)
        heating = np.where(working, 1.0, 0.45)
        dhw = _DHW_OFFICE[hour_of_day] * (weekday < 5)
    else:
        heating = np.where((hour_of_day >= 23) | (hour_of_day < 6), 0.75, 1.0)  # night setback
        dhw = _DHW_HOME[hour_of_day]
    return heating, dhw / dhw.sum()


def simulate(
    buildings: int = 100,
    year: int = 2025,
    base_temperature: float = 18.0,
    profile: str = "residential",
    seed: int = 42,
    progress: Callable[[float, str], None] | None = None,
    *,
    on_load: Callable[[int, np.ndarray], None] | None = None,
) -> dict:
    """Run the model; `progress(fraction, message)` is called after each chunk of buildings.

    Every random draw depends only on the inputs (building properties are drawn up front), so
    the result does not depend on how the buildings are chunked.

    Args:
        on_load: called per chunk, before `progress`, with the index of the chunk's first
            building and its hourly loads in kW (buildings x hours, space heating plus DHW).
    """
    rng = np.random.default_rng(seed)
    hours, t_out = outdoor_temperature(year, rng)
    degree_hours = np.maximum(base_temperature - t_out, 0.0)
    office = (rng.random(buildings) < 0.3) if profile == "mixed" else np.full(buildings, profile == "office")
    area = np.empty(buildings)  # m²
    ua_kw = np.empty(buildings)  # kW/K
    for name, mask in (("office", office), ("residential", ~office)):
        spec, n = PROFILES[name], int(mask.sum())
        area[mask] = spec["area"] * rng.lognormal(0.0, 0.35, n)
        ua_kw[mask] = area[mask] * rng.uniform(*spec["ua"], n) / 1000.0
    shapes = {name: schedules(hours, name) for name in PROFILES}
    total = np.zeros(hours.size)  # coincident demand of all buildings, kW
    space_kwh = dhw_kwh = max_building_peak = 0.0
    chunk = max(1, min(MAX_CHUNK, -(-buildings // STEPS)))
    for start in range(0, buildings, chunk):
        stop = min(start + chunk, buildings)
        loads = np.empty((stop - start, hours.size)) if on_load is not None else None
        for name in PROFILES:
            mask = office[start:stop] if name == "office" else ~office[start:stop]
            if not mask.any():
                continue
            heating, dhw_shape = shapes[name]
            share = PROFILES[name]["dhw"]
            load = ua_kw[start:stop][mask][:, None] * (degree_hours * heating)[None, :]  # kW, buildings × hours
            annual = load.sum(axis=1)  # kWh per building
            dhw_annual = annual * share / (1.0 - share)
            # dhw_shape sums to 1 over the year, so each building's DHW adds up to dhw_annual.
            load += dhw_annual[:, None] * dhw_shape[None, :]
            if loads is not None:
                loads[mask] = load
            total += load.sum(axis=0)
            space_kwh += float(annual.sum())
            dhw_kwh += float(dhw_annual.sum())
            max_building_peak = max(max_building_peak, float(load.max()))
        if on_load is not None and loads is not None:  # loads exist exactly when on_load is given
            on_load(start, loads)
        if progress is not None:
            progress(stop / buildings, f"buildings {stop}/{buildings}")
    months = hours.astype("datetime64[M]").astype(int) % 12
    monthly = np.bincount(months, weights=total, minlength=12) / 1000.0  # MWh
    peak_index = int(total.argmax())
    return {
        "buildings": buildings,
        "year": year,
        "profile": profile,
        "hours": int(hours.size),
        "total_demand_mwh": round((space_kwh + dhw_kwh) / 1000.0, 3),
        "space_heating_mwh": round(space_kwh / 1000.0, 3),
        "dhw_mwh": round(dhw_kwh / 1000.0, 3),
        "peak_demand_kw": round(float(total[peak_index]), 3),
        "peak_time": str(hours[peak_index]),
        "max_building_peak_kw": round(max_building_peak, 3),
        "degree_days": round(float(degree_hours.sum()) / 24.0, 1),
        "mean_outdoor_temperature_c": round(float(t_out.mean()), 2),
        "monthly_mwh": [round(float(m), 3) for m in monthly],
    }


@workflow(
    name="heat-demand",
    version="1.1.0",
    description="Hourly heat demand of N buildings over a year from a degree-day model (Dutch climate); "
    "writes the hourly series to the results service.",
    params=[
        Param.int("buildings", default=100, min=1, max=100_000, description="number of buildings"),
        Param.int("year", default=2025, min=1900, max=2100, description="calendar year simulated"),
        Param.float(
            "base_temperature",
            default=18.0,
            min=10.0,
            max=24.0,
            unit="°C",
            description="heating base temperature of the degree-day model",
        ),
        Param.enum(
            "profile",
            ["residential", "office", "mixed"],
            default="residential",
            description="building stock; mixed is 70% residential, 30% office",
        ),
        Param.int("seed", default=42, min=0, max=2**31 - 1, description="seed of the synthetic data"),
        Param.bool(
            "write_series",
            default=True,
            description=f"write hourly series: district total and outdoor temperature, and per "
            f"building for the first {MAX_BUILDING_SERIES} buildings",
        ),
    ],
    timeout=_dt.timedelta(hours=1),
)
def heat_demand(
    ctx: Context, buildings: int, year: int, base_temperature: float, profile: str, seed: int, write_series: bool = True
) -> dict:
    # A plain `def`: the numpy work runs in a worker thread and leaves the event loop free; the
    # series writes block this thread (not the loop) while the results service is busy.
    ctx.log("info", "simulating", buildings=buildings, year=year)
    on_load = None
    if write_series:
        # outdoor_temperature draws first from the seeded RNG, as simulate() does: same series.
        hours, t_out = outdoor_temperature(year, np.random.default_rng(seed))
        ctx.series("outdoor", units={"T": "°C"}).write(hours, T=t_out)
        district = np.zeros(hours.size)

        def on_load(start: int, loads: np.ndarray) -> None:
            district[:] += loads.sum(axis=0)
            for i in range(start, min(start + len(loads), MAX_BUILDING_SERIES)):
                ctx.series("heat_demand", building=f"b{i}", units={"Q": "kW"}).write(hours, Q=loads[i - start])

    def progress(fraction: float, message: str) -> None:
        ctx.progress(fraction, message)
        ctx.check_cancelled()  # between chunks: a cancelled job stops within one chunk

    outputs = simulate(buildings, year, base_temperature, profile, seed, progress, on_load=on_load)
    if write_series:
        ctx.series("district", units={"Q": "kW"}).write(hours, Q=district)
    return outputs


worker = Worker([heat_demand], capacity=2)
