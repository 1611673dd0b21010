"""What notebooks 02, 04 and 06 say in prose, computed from their own runs (so no figure in the text is typed by
hand; notebook 09's notes are ``model_notes``; the code and models a notebook shows are ``view``'s)."""

from __future__ import annotations

import numpy as np

from ..base.labels import AGE_SCALE, BAND_LABELS, BANDS
from ..base.stats import ALPHA, holm, mean_std, n_seeds, one_run_against, p_text, welch
from ..train.runs import Run, current, history_key, resolve, select, values
from .tables import age_band_errors, metric_label
from .units import welch_in_units

# ----------------------------------------------------------------------------------------- notebook 02


def age_shape_note(run: Run, child: tuple[int, int] = BANDS[1]) -> str:
    """The per-age reading of one run in words: where the error is lowest and highest, children's bias,
    negative ages."""
    t = age_band_errors(run)
    best, worst = t.loc[t.mae.idxmin()], t.loc[t.mae.idxmax()]
    true = np.asarray(run.predictions["age_true"], float)
    pred = np.asarray(run.predictions["age_pred"], float)
    m = (true >= child[0]) & (true <= child[1])
    err = pred[m] - true[m]
    neg = int((pred < 0).sum())
    ends_high = t.mae.iloc[0] > best.mae and t.mae.iloc[-1] > best.mae
    shape = "U-shaped: high at both ends, lowest in the middle" if ends_high else "not U-shaped"
    if not m.any() or len(t) < 2:  # a small or synthetic test set: no such child, or a single band
        return (
            f"{run.variant or 'run'}, seed {run.seed}: no test faces aged {child[0]}–{child[1]}, or a single age band: "
            "no per-age reading."
        )
    older = "older" if err.mean() > 0 else "younger"
    band = t.index[t.ages == BAND_LABELS[BANDS.index(child)]] if child in BANDS else [0]
    slope = band[0] if len(band) else 0
    bias = t.bias.iloc[slope:]
    if bias.iloc[-1] >= bias.iloc[0]:
        falls = "does not fall overall"
    else:
        falls = "falls " + (
            "band after band" if bias.is_monotonic_decreasing else "overall, though not band after band"
        )
    crowded = t.nlargest(2, "faces")
    signs = {True: "both over-estimated", False: "both under-estimated"}
    same = (crowded.bias > 0).nunique() == 1
    verdict = signs[bool(crowded.bias.iloc[0] > 0)] if same else "one over-, one under-estimated"
    return (
        f"{run.variant or 'run'}, seed {run.seed} (test MAE {run.metrics['age_mae_years']:.2f} y): "
        f"the error by age is {shape} "
        f"(lowest {best.mae:.1f} y at ages {best.ages}, "
        f"highest {worst.mae:.1f} y at ages {worst.ages}).\n"
        f"Ages {child[0]}–{child[1]} ({int(m.sum())} test faces): MAE {np.abs(err).mean():.1f} y, "
        f"bias {err.mean():+.1f} y "
        f"(the network makes these children {older}).\n"
        f"From that band to the oldest the bias {falls}, from {bias.iloc[0]:+.1f} y to {bias.iloc[-1]:+.1f} y.\n"
        f"The two most crowded bands, {crowded.ages.iloc[0]} and {crowded.ages.iloc[1]} "
        f"({crowded.faces.iloc[0]} and {crowded.faces.iloc[1]} test faces): bias "
        f"{crowded.bias.iloc[0]:+.1f} and {crowded.bias.iloc[1]:+.1f} y ({verdict}).\n"
        f"Negative predicted ages: {neg} of {len(pred)} test faces (a linear output has no floor; the lowest is "
        f"{pred.min():.1f} y)."
    )


def shown_seed_note(runs: list[Run], seed: int) -> str:
    """Which seed the per-face plots show, against the table's mean over seeds."""
    shown = pick(runs, seed)  # the run the plots show: the first stored one when this seed is not stored
    mae = values(runs, "age_mae_years")
    acc = values(runs, "gender_accuracy")
    return (
        f"The plots below show one run: {shown.variant}, seed {shown.seed} ({shown.profile.get('name', '?')}, "
        f"{shown.profile.get('image_size', '?')} px, {shown.data.get('kind', '?')} data), "
        f"test age MAE {shown.metrics['age_mae_years']:.2f} y, "
        f"gender accuracy {shown.metrics['gender_accuracy']:.3f}. "
        f"The table above is the mean over {n_seeds(len(mae))}: "
        f"{np.mean(mae):.2f} y and {np.mean(acc):.3f} (seeds range {min(mae):.2f}–{max(mae):.2f} y)."
    )


def diagnosis_note(diag: list[Run], baseline: str = "article network", kind: str = "remedy") -> str:
    """Each one-seed run's test metrics against where one more baseline seed would land (95 % prediction interval),
    with the epoch early stopping kept and what its test loss adds up (its own weights); ``kind`` names such a run in
    the closing line (a remedy in A1, a change in solutions 03)."""
    base = select(diag, variant=baseline)
    acc, mae = values(base, "gender_accuracy"), values(base, "age_mae_years")
    kept = "/".join(str(r.best_epoch or "?") for r in sorted(base, key=lambda r: r.seed))
    lines = [
        f"{baseline} ({n_seeds(len(base))}): test age MAE {np.mean(mae):.2f} y (seeds {min(mae):.2f}–{max(mae):.2f}), "
        f"gender accuracy {np.mean(acc):.3f} (seeds {min(acc):.3f}–{max(acc):.3f}); kept epochs {kept}."
    ]

    def read(value: float, seeds: list[float], digits: int) -> str:
        if len(seeds) < 2:
            return "no interval (fewer than 2 baseline seeds)"
        pi = one_run_against(value, seeds)
        return f"{'inside' if pi.inside else 'outside'} the baseline's interval {pi.lo:.{digits}f}–{pi.hi:.{digits}f}"

    for label in dict.fromkeys(r.variant for r in diag if r.variant != baseline):
        for r in sorted(select(diag, variant=label), key=lambda r: r.seed):  # each seed read on its own
            a, m = r.metrics["gender_accuracy"], r.metrics["age_mae_years"]
            loss = metric_label("loss", r.config).removeprefix("test loss (").removesuffix(")")
            lines.append(
                f"{label} (seed {r.seed}, kept epoch {r.best_epoch}): test loss {r.metrics['loss']:.4f} = {loss}; "
                f"age MAE {m:.2f} y, {read(m, mae, 2)}; gender accuracy {a:.3f}, {read(a, acc, 3)}."
                + _same_epoch(r, base)
            )
    lines.append(
        f"One seed per {kind}, each read against where one more baseline seed would land (95 % prediction "
        f"interval). A {kind} also moves the epoch early stopping keeps (with other loss weights it watches another "
        f"loss), so set a difference beside its kept epoch before crediting the {kind}."
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- notebook 04


def _same_epoch(run: Run, base: list[Run]) -> str:
    """The run's validation gender accuracy at its kept epoch beside the baseline seeds' at that same epoch."""
    key, epoch = "val_gender_accuracy", run.best_epoch
    if not epoch or len(run.history.get(key, [])) < epoch:
        return ""
    seeds = [b.history[key][epoch - 1] for b in base if len(b.history.get(key, [])) >= epoch]
    if not seeds:
        return ""
    return (
        f" At that epoch, validation gender accuracy {run.history[key][epoch - 1]:.3f} against the baseline seeds' "
        f"{min(seeds):.3f}–{max(seeds):.3f} at their epoch {epoch}."
    )


def epochs_note(runs: list[Run]) -> str:
    """Epochs run and kept per variant: did early stopping cut one variant shorter than the other?"""
    out = []
    for label in dict.fromkeys(r.variant for r in runs):
        rs = sorted(select(runs, variant=label), key=lambda r: r.seed)
        out.append(
            f"{label}: epochs run {'/'.join(str(r.epochs_run) for r in rs)} "
            f"(mean {np.mean([r.epochs_run for r in rs]):.1f}), "
            f"best epoch {'/'.join(str(r.best_epoch) for r in rs)} (seeds {', '.join(str(r.seed) for r in rs)})"
        )
    return "\n".join(out)


def val_turn_note(runs: list[Run], key: str = "loss") -> str:
    """Does the validation curve turn back up, or only wobble? For each run: the best epoch, the mean rise of the epochs
    after it (early stopping's patience), and the curve's noise: the median epoch-to-epoch change over the later half
    of the epochs up to the best one (the plateau, not the steep first descent). A rise of more than twice the noise
    counts as a turn upward: the course's rule of thumb, not a test."""
    out = []
    for r in sorted(runs, key=lambda r: (r.variant, r.seed)):
        val = np.asarray(r.history[f"val_{key}"], float)
        best = int(val.argmin())
        head = f"{r.variant}, seed {r.seed}: best val {key} {val[best]:.4f} at epoch {best + 1} of {len(val)}"
        steps = np.abs(np.diff(val[: best + 1]))
        if best + 1 == len(val) or not len(steps):  # nothing after the best, or nothing before it to gauge noise
            why = "no epoch after it" if best + 1 == len(val) else "no epoch before it to measure the noise"
            out.append(f"{head}; {why}, so no turn can be read")
            continue
        rise = float(val[best + 1 :].mean() - val[best])
        jump = float(np.median(steps[len(steps) // 2 :]))
        verdict = "more than twice the noise: a turn upward" if rise > 2 * jump else "no clear turn upward"
        out.append(
            f"{head}; the epochs after it average {rise:+.4f} above it; its noise (median change per epoch over the "
            f"later half before it) {jump:.4f}: {verdict}"
        )
    return "\n".join(out)


def length_and_fit_note(runs: list[Run]) -> str:
    """How long the runs lasted, all variants together, and each variant's training age MAE at its kept epoch (seed by
    seed and mean). The training error is measured on the images as trained, i.e. augmented where there is
    augmentation."""
    ran = [r.epochs_run for r in runs]
    lines = [f"epochs run, all {len(runs)} runs: {min(ran)}–{max(ran)}"]
    for label in dict.fromkeys(r.variant for r in runs):
        rs = sorted(select(runs, variant=label), key=lambda r: r.seed)
        keys = [(r, history_key(r, "mae_years")) for r in rs]
        fit = [float(r.history[k][r.best_epoch - 1]) for r, k in keys if k and r.best_epoch >= 1]
        if not fit:  # a gender-only network, or runs without a kept epoch
            continue
        lines.append(
            f"{label}: training age MAE at the kept epoch {'/'.join(f'{v:.2f}' for v in fit)} y "
            f"(mean {np.mean(fit):.1f} y; seeds {', '.join(str(r.seed) for r in rs)})"
        )
    return "\n".join(lines)


def welch_note(
    runs: list[Run], a: str, b: str, metrics: tuple[str, ...] = ("loss", "age_mae", "gender_accuracy")
) -> str:
    """Welch's test of variant a against b for each metric (age MAE shown in years)."""
    a, b = resolve(runs, a), resolve(runs, b)
    lines = []
    for metric in metrics:
        if min(len(values(runs, metric, a)), len(values(runs, metric, b))) < 2:
            lines.append(f"{metric}: fewer than 2 seeds on a side, no test possible (set SEEDS to at least two seeds)")
            continue
        what = "age MAE" if metric == "age_mae" else metric.replace("_", " ")
        lines.append(welch_in_units(a, b, values(runs, metric, a), values(runs, metric, b), metric, what))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- notebook 06


def ordinal_note(runs: list[Run], reference: str = "MSE regression") -> str:
    """The best head, each head against the reference by Welch's test,
    and each head's share of rank-consistent faces."""
    runs = current(runs)
    reference = resolve(runs, reference)
    labels = list(dict.fromkeys(r.variant for r in runs))
    mean = {lab: float(np.mean(values(runs, "age_mae_years", lab))) for lab in labels}
    order = sorted(labels, key=mean.get)
    lines = [
        "Ours, best first (test age MAE, mean over seeds): "
        + " < ".join(f"{lab} {mean[lab]:.2f} y" for lab in order)
        + "."
    ]
    testable = reference in labels and min(len(values(runs, "age_mae", lab)) for lab in labels) >= 2
    if not testable:
        none = "" if reference in labels else f" ({reference}, the reference, has no stored run in this profile)"
        lines.append(f"fewer than 2 seeds for some head{none}: no test possible (TRAIN = True with two seeds or more)")
    tests = []
    for lab in order if testable else []:
        if lab == reference:
            continue
        tests.append(
            (
                lab,
                welch(
                    np.asarray(values(runs, "age_mae", lab)) * AGE_SCALE,
                    np.asarray(values(runs, "age_mae", reference)) * AGE_SCALE,
                ),
            )
        )
    adjusted = holm([w.p for _, w in tests])
    for (lab, w), p_holm in zip(tests, adjusted):
        lines.append(
            f"{lab} vs {reference}: {w.diff:+.2f} y (95 % CI {w.low:+.2f} to {w.high:+.2f}), Welch t = {w.t:.2f}, "
            f"df = {w.df:.1f}, {p_text(w.p)}, Holm-adjusted {p_text(p_holm)}: "
            f"{'significant' if p_holm < ALPHA else 'not significant'} after the correction"
        )
    if tests:
        lines.append(
            f"(Holm's correction over the {len(tests)} comparisons with {reference}: each p is multiplied by the "
            "number of comparisons not yet ruled out, smallest first, so that the chance of any false "
            f"'significant' among them stays at or below {ALPHA:.0%}.)"
        )
    if testable and len(order) > 2 and reference not in order[:2]:  # else the line above already tests that pair
        a, b = order[0], order[1]
        w = welch(
            np.asarray(values(runs, "age_mae", a)) * AGE_SCALE, np.asarray(values(runs, "age_mae", b)) * AGE_SCALE
        )
        lines.append(
            f"best vs runner-up, {a} vs {b}: {w.diff:+.2f} y (95 % CI {w.low:+.2f} to {w.high:+.2f}), {p_text(w.p)}: "
            f"{'significant' if w.significant else 'not significant'}; the pair was chosen after ranking the "
            "heads, so this p does not have its usual meaning (post-selection; its bias has no fixed direction)"
        )
    cons = {lab: values(runs, "rank_consistency", lab) for lab in labels}
    lines.append(
        "Rank-consistent test faces: "
        + "; ".join(f"{lab} {100 * np.mean(v):.0f} %" for lab, v in cons.items() if v)
        + "."
    )
    return "\n".join(lines)


def best_epoch_note(runs: list[Run]) -> str:
    """Per variant, the epochs early stopping kept (best epoch) and ran: did one head get fewer epochs than another?
    Runs stopped by their profile's cap before the patience ran out are named: more epochs might still have helped."""
    out, capped = [], []
    for label in dict.fromkeys(r.variant for r in runs):
        rs = select(runs, variant=label)
        best, ran = [r.best_epoch for r in rs], [r.epochs_run for r in rs]
        out.append(
            f"{label}: best epoch {min(best)}–{max(best)}, epochs run {min(ran)}–{max(ran)} ({n_seeds(len(rs))})"
        )
        for r in rs:
            cap, patience = r.profile.get("epochs"), r.profile.get("patience", 0)
            if cap and r.epochs_run >= cap and r.epochs_run - r.best_epoch < patience:
                capped.append(f"{label} seed {r.seed} (best epoch {r.best_epoch} of {cap})")
    note = "; ".join(out) + "."
    if capped:
        which = "every run" if len(capped) == len(runs) else ", ".join(capped)
        note += f" Stopped by the epoch cap before the patience ran out (more epochs might still have helped): {which}."
    return note


def rmse_note(runs: list[Run]) -> str:
    """Each variant's test RMSE in years, rounded as a reader wants it."""
    return (
        "; ".join(
            f"{lab} {mean_std(values(runs, 'age_rmse_years', lab), 1, unit=' y')}"
            for lab in dict.fromkeys(r.variant for r in runs)
        )
        + " (test RMSE, mean ± std over seeds)."
    )


# ----------------------------------------------------------------------------------------- every notebook


def time_note(runs: list[Run]) -> str:
    """What the stored runs of a notebook cost: epochs, seconds per epoch and minutes per run, by profile and device."""
    if not runs:
        return "no stored runs"
    groups: dict[tuple, list[Run]] = {}
    unique = {
        (r.config.digest(), r.seed, bool(r.probes)): r for r in runs
    }  # one config shared by two tables counts once
    for r in unique.values():
        groups.setdefault((r.profile.get("name", "?"), r.hardware), []).append(r)
    lines = []
    for (profile, hardware), rs in groups.items():
        per_epoch = np.concatenate([np.asarray(r.epoch_seconds[1:] or r.epoch_seconds, float) for r in rs])
        wall = np.asarray([r.wall_seconds for r in rs]) / 60
        per_run = (
            f"{wall[0]:.1f} min"
            if len(rs) == 1
            else f"{wall.min():.1f}–{wall.max():.1f} min per run, {wall.sum() / 60:.1f} h in all"
        )
        lines.append(
            f"profile {profile} ({hardware}): {len(rs)} stored run{'s' if len(rs) != 1 else ''}, "
            f"{int(sum(r.epochs_run for r in rs))} epochs; "
            f"median {np.median(per_epoch):.0f} s per epoch after the first; {per_run}"
        )
    return "\n".join(lines)


def pick(runs: list[Run], seed: int) -> Run:
    """The run of ``seed`` (the first run when no run has that seed)."""
    return next((r for r in runs if r.seed == seed), runs[0])


def consistency_note(runs: list[Run]) -> str:
    """Each head's share of rank-consistent test faces, per seed, as numbers (a bar at 0 % is invisible)."""
    out = []
    for lab in dict.fromkeys(r.variant for r in runs):
        v = [
            (r.seed, r.metrics["rank_consistency"])
            for r in select(runs, variant=lab)
            if "rank_consistency" in r.metrics
        ]
        if v:
            out.append(f"{lab}: " + ", ".join(f"seed {s} {100 * x:.0f} %" for s, x in v))
    return "rank-consistent test faces: " + "; ".join(out)
