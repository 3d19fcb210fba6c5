"""Plotly figures of the book, and ``show`` that works in JupyterLab and in the static book.

``show(fig)`` emits two representations: Plotly's own mimetype (JupyterLab renders it
natively) and an HTML ``<div>`` without plotly.js, which the book renders with the copy of
plotly.js it ships (``book/_static/plotly.min.js``, copied from the installed plotly at build
time) - no CDN needed. Figures of synthetic data carry the synthetic-data note in their title.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data import SYNTHETIC_NOTE, duplicates
from ..explain.attention import class_means
from ..explain.attribution import METHODS
from ..models import REGISTRY, count_parameters, create_model
from ..train.stats import accuracy_interval


def show(fig: go.Figure) -> None:
    from IPython.display import display

    bundle = {"application/vnd.plotly.v1+json": fig.to_plotly_json(),
              "text/html": fig.to_html(full_html=False, include_plotlyjs=False),
              "text/plain": f"<plotly figure: {fig.layout.title.text or ''}>"}
    display(bundle, raw=True)


def _title(text: str, note: str | None) -> str:
    return f"{text}<br><sup>{note}</sup>" if note else text


def sample_grid(data, per_class: int = 6, seed: int = 0, note: str | None = None) -> go.Figure:
    """A few images of every class, one row per class."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, name in zip(data.classes, data.class_names):
        idx = np.flatnonzero(data.labels == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        tiles = [data.images[i] for i in pick] + [np.zeros((48, 48), np.uint8)] * (per_class - len(pick))
        rows.append(np.concatenate(tiles, 1))
    grid = np.concatenate(rows, 0)
    fig = px.imshow(grid, color_continuous_scale="gray", zmin=0, zmax=255)
    fig.update_layout(coloraxis_showscale=False, title=_title(f"{data.source}: samples per class", note or data.note),
                      height=70 * len(rows) + 90, margin=dict(l=90, r=10, t=60, b=10))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(tickvals=[24 + 48 * i for i in range(len(rows))], ticktext=data.class_names)
    return fig


def class_counts(data) -> go.Figure:
    summary = data.summary()
    df = pd.DataFrame([{"split": s, "class": c, "images": n} for s, v in summary["splits"].items()
                       for c, n in v["per_class"].items()])
    fig = px.bar(df, x="class", y="images", color="split", barmode="group",
                 title=_title(f"{data.source}: images per class and split", data.note))
    return fig


def history_curves(history: pd.DataFrame, title: str = "Training curves", note: str | None = None) -> go.Figure:
    """Loss terms (every ``train_*`` loss column and ``val_loss``) and accuracies per epoch."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for col in [c for c in history.columns if c.startswith("train_") and c != "train_acc"] + ["val_loss"]:
        fig.add_trace(go.Scatter(x=history["epoch"], y=history[col], name=col, mode="lines+markers"), 1, 1)
    for col in ("train_acc", "val_acc"):
        fig.add_trace(go.Scatter(x=history["epoch"], y=history[col], name=col, mode="lines+markers"), 1, 2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=_title(title, note), height=420)
    return fig


def run_curves(histories: dict[str, pd.DataFrame], title: str, note: str | None = None,
               paper: dict[str, list[tuple[int, float]]] | None = None) -> go.Figure:
    """Validation loss and accuracy (%) per epoch, one line per run (a fold or a seed), with the
    values the paper states at given epochs (``paper``: ``{"val_loss": [(epoch, value)], ...}``)
    as stars."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("validation loss", "validation accuracy (%)"))
    for label, h in histories.items():
        for col, (column, scale) in enumerate((("val_loss", 1.0), ("val_acc", 100.0)), 1):
            fig.add_trace(go.Scatter(x=h["epoch"], y=h[column] * scale, name=label, legendgroup=label,
                                     showlegend=col == 1, mode="lines", line=dict(width=1.5)), 1, col)
    for col, column in enumerate(("val_loss", "val_acc"), 1):
        points = (paper or {}).get(column, [])
        if points:
            fig.add_trace(go.Scatter(x=[e for e, _ in points], y=[v for _, v in points], name=f"paper: {column}",
                                     mode="markers", marker=dict(symbol="star", size=14, color="black")), 1, col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=_title(title, note), height=420)
    return fig


def confusion(metrics: dict, class_names: list[str], title: str = "Confusion matrix",
              note: str | None = None, normalize: bool = True) -> go.Figure:
    cm = np.array(metrics["confusion_matrix"], dtype=float)
    z = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    fig = px.imshow(z, x=class_names, y=class_names, text_auto=".2f" if normalize else True,
                    color_continuous_scale="Blues", labels=dict(x="predicted", y="true", color="share"))
    fig.update_layout(title=_title(title + (" (rows sum to 1)" if normalize else ""), note), height=480)
    return fig


def roc(curves: dict, title: str = "One-vs-rest ROC", note: str | None = None) -> go.Figure:
    fig = go.Figure()
    for name, c in curves.items():
        if c["auc"] is not None:
            fig.add_trace(go.Scatter(x=c["fpr"], y=c["tpr"], mode="lines", name=f"{name} (AUC {c['auc']:.3f})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="grey"), name="chance"))
    fig.update_layout(title=_title(title, note), xaxis_title="false positive rate", yaxis_title="true positive rate",
                      height=460)
    return fig


def per_class_table(metrics: dict) -> pd.DataFrame:
    df = pd.DataFrame(metrics["per_class"]).T
    df.loc["macro avg"] = {**metrics["macro"], "support": metrics["n"]}
    df.loc["weighted avg"] = {**metrics["weighted"], "support": metrics["n"]}
    df["support"] = df["support"].astype(int)
    return df


def banner(data) -> None:
    """The line that opens every chapter's results: which data, and the synthetic warning.
    ``data``: a FERData, or the name of the source the chapter's runs used."""
    from IPython.display import Markdown, display

    source = data if isinstance(data, str) else data.source
    if source == "synthetic":
        display(Markdown(f"> **⚠ {SYNTHETIC_NOTE}.** No data directory was configured (`FER_DATA_DIR` or "
                         f"`data_dir`), so this chapter ran on the book's embedded synthetic faces. "
                         f"Its numbers show that the code runs, not what the paper's model achieves."))
    elif isinstance(data, str):
        display(Markdown(f"> Data: **{source}** (each run's provenance names its location and fingerprint)."))
    else:
        display(Markdown(f"> Data: **{data.source}** from `{data.location}`, fingerprint `{data.fingerprint}`, "
                         f"{len(data)} images in the splits used here."))


def model_table(bench_csv=None) -> pd.DataFrame:
    """Every registered model with its parameters and input, joined with the benchmark's
    measured FLOPs and CPU/GPU throughput when ``bench_csv`` exists."""
    from pathlib import Path

    rows = [{"model": n, "paper": s.paper, "input": f"{s.in_channels}x{s.input_size}x{s.input_size}",
             "parameters (M)": round(count_parameters(create_model(n)) / 1e6, 2), "what it is": s.summary}
            for n, s in sorted(REGISTRY.items())]
    df = pd.DataFrame(rows).set_index("model")
    if bench_csv is not None and Path(bench_csv).is_file():
        bench = pd.read_csv(bench_csv).set_index("model")
        keep = [c for c in bench.columns if c.startswith(("gmacs", "train_images"))]
        df = df.join(bench[keep])
    return df


def paper_vs_ours(table: pd.DataFrame, title: str, note: str | None = None, unit: str = "%") -> go.Figure:
    """The paper's values beside ours (bars, ours with its 95% interval), from
    :meth:`fer_core.book.chapter.Chapter.paper_vs_ours`; rows without a run show the paper's bar alone."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=table["row"], y=table["paper"], name="paper"))
    fig.add_trace(go.Bar(x=table["row"], y=table["ours"], name="ours",
                         error_y=dict(type="data", array=table["ours_ci95"].fillna(0), visible=True)))
    fig.update_layout(barmode="group", title=_title(title, note), yaxis_title=unit, height=420)
    return fig


def accuracy_vs_time(curves: pd.DataFrame, tests: pd.DataFrame, targets: dict[int, float], title: str,
                     note: str | None = None) -> go.Figure:
    """Validation accuracy per epoch on the wall clock, one line per run (colour: model, dash:
    budget), the selected test accuracy of each run as a star at its wall time, and each budget's
    target as a dotted line ending at the budget (``fer_core.verdicts.budgets``)."""
    fig = go.Figure()
    colours = dict(zip(dict.fromkeys(curves["model"]), px.colors.qualitative.Plotly))
    for (model, budget), c in curves.groupby(["model", "budget (min)"], sort=False):
        fig.add_trace(go.Scatter(x=c["minutes"], y=c["val_acc (%)"], mode="lines+markers", marker_size=4,
                                 name=f"{model}, {budget:g} min (validation)", line=dict(
                                     color=colours[model], dash="solid" if budget > 10 else "dot")))
    for _, t in tests.iterrows():
        fig.add_trace(go.Scatter(x=[t["wall time (min)"]], y=[t["PrivateTest (%)"]], mode="markers",
                                 marker=dict(symbol="star", size=13, color=colours.get(t["model"])),
                                 name=f"{t['model']}, {t['budget (min)']:g} min (PrivateTest)"))
    for budget_s, target in targets.items():
        fig.add_trace(go.Scatter(x=[0, budget_s / 60], y=[target, target], mode="lines", showlegend=False,
                                 line=dict(color="grey", dash="dot", width=1),
                                 hovertext=f"target within {budget_s / 60:g} min: {target:g}%"))
    fig.update_layout(title=_title(title, note), xaxis_title="wall-clock minutes on 2 CPU cores",
                      yaxis_title="accuracy (%)", height=480)
    return fig


def term_curves(history: pd.DataFrame, terms: dict[str, str], title: str = "Loss terms per epoch",
                note: str | None = None) -> go.Figure:
    """One panel per loss term: ``terms`` maps a label (e.g. ``L_rec``) to a history column
    (``train_rec``); a term the run did not train with is left out."""
    present = {label: col for label, col in terms.items() if col in history.columns}
    fig = make_subplots(rows=1, cols=max(1, len(present)), subplot_titles=list(present) or ["(no terms)"])
    for i, (label, col) in enumerate(present.items(), 1):
        fig.add_trace(go.Scatter(x=history["epoch"], y=history[col], name=label, mode="lines+markers"), 1, i)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=_title(title, note), height=380, showlegend=False)
    return fig


def image_grid(rows: dict[str, list[np.ndarray]], titles: list[str] | None = None, title: str = "",
               note: str | None = None, colorscales: dict[str, str] | None = None) -> go.Figure:
    """Rows of images (any size, any range: each tile is shown on its own min-max scale);
    ``rows`` maps a row label to its images, ``titles`` names the columns, ``colorscales`` gives
    a row a colour scale other than grey."""
    n_cols = max(len(v) for v in rows.values())
    fig = make_subplots(rows=len(rows), cols=n_cols, horizontal_spacing=0.01, vertical_spacing=0.06,
                        subplot_titles=[(titles or [""] * n_cols)[j] if i == 0 else "" for i in range(len(rows))
                                        for j in range(n_cols)])
    for i, (label, images) in enumerate(rows.items(), 1):
        for j, img in enumerate(images, 1):
            img = np.asarray(img, dtype=float)
            scale = (colorscales or {}).get(label, "gray")
            fig.add_trace(go.Heatmap(z=img[::-1], colorscale=scale, showscale=False, zmin=img.min(),
                                     zmax=img.max(), hovertemplate=f"{label}<extra></extra>"), i, j)
        fig.update_yaxes(title_text=label, row=i, col=1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, scaleanchor="x", constrain="domain")
    fig.update_layout(title=_title(title, note), height=140 * len(rows) + 90, margin=dict(l=90, r=10, t=80, b=10))
    return fig


def sample_predictions(images: np.ndarray, predictions: pd.DataFrame, class_names: list[str], n: int = 12,
                       seed: int = 0, title: str = "Sample predictions", note: str | None = None) -> go.Figure:
    """Test images with the predicted class and its confidence, and the true class (the
    ``predictions`` table of a run record, row i = image i of the test split)."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))
    probs = predictions.filter(like="prob_").to_numpy()
    labels = []
    for i in pick:
        p, t = int(probs[i].argmax()), int(predictions["target"].iloc[i])
        labels.append(f"{'✓' if p == t else '✗'} {class_names[p]} {probs[i, p]:.0%}<br>true: {class_names[t]}")
    per_row = 6
    rows = {f"{k + 1}": [images[i] for i in pick[k * per_row:(k + 1) * per_row]]
            for k in range((len(pick) + per_row - 1) // per_row)}
    fig = make_subplots(rows=len(rows), cols=per_row, subplot_titles=labels, vertical_spacing=0.12,
                        horizontal_spacing=0.01)
    for k, i in enumerate(pick):
        fig.add_trace(go.Heatmap(z=images[i][::-1], colorscale="gray", showscale=False, zmin=0, zmax=255),
                      k // per_row + 1, k % per_row + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, scaleanchor="x", constrain="domain")
    fig.update_annotations(font_size=10)
    fig.update_layout(title=_title(title, note), height=190 * len(rows) + 80, margin=dict(l=10, r=10, t=90, b=10))
    return fig


def fold_scores(results: pd.DataFrame, column: str = "accuracy", title: str = "Accuracy per fold",
                note: str | None = None) -> go.Figure:
    """One point per fold (and seed) of each model of a cross-validation, in %."""
    df = results.assign(value=results[column].astype(float) * 100, fold=results["fold"].astype(str))
    fig = px.strip(df, x="variant", y="value", color="fold", hover_data=["seed"], labels={"value": f"{column} (%)"})
    fig.update_layout(title=_title(title, note), height=420)
    return fig


INTERNAL_LABELS = {"aligned": "aligned (STN)", "super_resolved": "x2 (SR or bicubic)",
                   "reconstruction": "p' (reconstruction)", "mask1": "mask P_S, stage 1", "mask2": "mask P_S, stage 2",
                   "mask3": "mask P_S, stage 3", "mask4": "mask P_S, stage 4"}


def attention_faces(att, per_class: int = 1, limit: int = 7) -> list[int]:
    """Positions in an attention record: the first ``per_class`` faces of each class, at most ``limit``."""
    targets = att.arrays["targets"]
    picked = [i for c in range(len(att.class_names)) for i in np.flatnonzero(targets == c)[:per_class]]
    return sorted(picked)[:limit]


def attention_grid(att, title: str, note: str | None = None, faces: list[int] | None = None,
                   internals: bool = True) -> go.Figure:
    """Faces of an attention record (``fer_core.explain.attention``) above each method's map and, with
    ``internals``, the model's own masks and images; columns titled with prediction and truth."""
    faces = faces if faces is not None else attention_faces(att)
    names, a = att.class_names, att.arrays
    titles = [f"{'✓' if a['preds'][i] == a['targets'][i] else '✗'} {names[a['preds'][i]]}<br>true: "
              f"{names[a['targets'][i]]}" for i in faces]
    rows = {"face": [att.faces[i] for i in faces]} if att.faces is not None else {}
    for method in att.methods:
        rows[METHODS[method].split(" (")[0]] = [att.maps(method)[i] for i in faces]
    if internals:
        for key, values in att.internals.items():
            rows[INTERNAL_LABELS.get(key, key)] = [values[i] for i in faces]
    scales = {label: ("gray" if label in ("face", "aligned (STN)", "x2 (SR or bicubic)", "p' (reconstruction)")
                      else "inferno") for label in rows}
    fig = image_grid(rows, titles, title, note, colorscales=scales)
    fig.update_annotations(font_size=10)
    return fig


#: one colour per verdict, none near another's (not comparable is not a shade of reproduced)
VERDICT_COLOURS = {"reproduced": "#2ca02c", "not reproduced": "#d62728", "not comparable": "#9467bd",
                   "not tested": "#b0b0b0"}


def verdict_counts(counts: pd.DataFrame, title: str = "Verdicts per paper") -> go.Figure:
    """Stacked bars: how many claims of each paper got each verdict (``chapter.overview``)."""
    fig = go.Figure()
    for col in [c for c in counts.columns if c != "claims"]:
        name = col.split(" ", 1)[1]
        fig.add_trace(go.Bar(y=counts.index, x=counts[col], name=name, orientation="h",
                             marker_color=VERDICT_COLOURS.get(name)))
    fig.update_layout(barmode="stack", title=title, xaxis_title="claims", height=320,
                      yaxis=dict(autorange="reversed"))
    return fig


def _pool(img: np.ndarray, factor: int) -> np.ndarray:
    """Mean-pool a map by ``factor`` (a lighter figure for the many-panel overviews)."""
    h, w = img.shape
    return img[:h - h % factor, :w - w % factor].reshape(h // factor, factor, w // factor, factor).mean((1, 3))


def class_average_maps(atts: dict, method: str, title: str, note: str | None = None) -> go.Figure:
    """One row per model, one column per class: ``method``'s map averaged over the faces of the class."""
    names = next(iter(atts.values())).class_names
    rows = {key: list(class_means(att, method)) for key, att in atts.items()}
    return image_grid(rows, names, title, note, colorscales={k: "inferno" for k in rows})


def per_class_faces(atts: dict, title: str, note: str | None = None, pool: int = 2) -> go.Figure:
    """For a class chosen in the menu: per model, a correctly and a wrongly classified face of that
    class above every method's map (maps pooled by ``pool`` to keep the page light)."""
    models = list(atts)
    names = atts[models[0]].class_names
    methods = [m for m in METHODS if all(m in a.methods for a in atts.values())]
    labels = ["face"] + [METHODS[m].split(" (")[0] for m in methods]
    cols = [(k, kind) for k in models for kind in ("right", "wrong")]
    fig = make_subplots(rows=len(labels), cols=len(cols), horizontal_spacing=0.005, vertical_spacing=0.01,
                        subplot_titles=[f"{k}<br>{kind}" for k, kind in cols] + [""] * (len(cols) * (len(labels) - 1)))
    per_class = []
    for c in range(len(names)):
        start = len(fig.data)
        for j, (key, kind) in enumerate(cols, 1):
            a = atts[key].arrays
            hit = (a["targets"] == c) & ((a["preds"] == c) if kind == "right" else (a["preds"] != c))
            idx = np.flatnonzero(hit)
            for i, label in enumerate(labels, 1):
                if not len(idx):
                    img = np.full((24, 24), np.nan)
                elif label == "face":
                    faces = atts[key].faces
                    img = faces[idx[0]].astype(float) if faces is not None else np.full((48, 48), np.nan)
                else:
                    img = _pool(atts[key].maps(methods[i - 2])[idx[0]], pool)
                pred = names[a["preds"][idx[0]]] if len(idx) else "none in the sample"
                fig.add_trace(go.Heatmap(z=np.round(img[::-1], 2), colorscale="gray" if label == "face" else "inferno",
                                         showscale=False, visible=c == 0, hovertemplate=f"{key}, {kind}: predicted "
                                         f"{pred}<br>{label}<extra></extra>"), i, j)
        per_class.append(range(start, len(fig.data)))
    total = len(fig.data)
    buttons = [dict(label=name, method="update",
                    args=[{"visible": [t in per_class[c] for t in range(total)]},
                          {"title": _title(f"{title}: {name}", note)}]) for c, name in enumerate(names)]
    fig.update_layout(updatemenus=[dict(buttons=buttons, direction="down", x=0, y=1.12, xanchor="left")],
                      title=_title(f"{title}: {names[0]}", note), height=110 * len(labels) + 160,
                      margin=dict(l=110, r=10, t=140, b=10))
    for i, label in enumerate(labels, 1):
        fig.update_yaxes(title_text=label, row=i, col=1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, scaleanchor="x", constrain="domain")
    fig.update_annotations(font_size=9)
    return fig


def training_twins(data, n: int = 6) -> None:
    """FER2013's validation and test faces that are training faces: counts per split and class
    (``fer_core.data.duplicates``) and ``n`` test faces beside their twin; one line for other data."""
    from IPython.display import display

    if not duplicates.applies(data):
        print(f"{data.source}: not FER2013 with its training split; no twins to look for")
        return
    twins = duplicates.training_twins(data)
    counts = twins.counts(data.class_names)["twins"].unstack("class", fill_value=0)
    counts["all"] = counts.sum(1)
    counts["of"] = [int((data.split == s).sum()) for s in counts.index]
    print(f"method: {duplicates.METHOD}")
    display(counts)
    pairs = twins.table[twins.table["split"] == "test"].head(n)
    if len(pairs):
        names = data.class_names
        show(image_grid({"test face": [data.images[i] for i in pairs["row"]],
                         "training twin": [data.images[j] for j in pairs["twin_row"]]},
                        [f"{names[a]} / {names[b]}" for a, b in zip(pairs["target"], pairs["twin_target"])],
                        "PrivateTest faces and their training twins (labels: test / training)", data.note))


def evaluation_summary(metrics: dict) -> pd.DataFrame:
    """A run's test scores, plain and per TTA mode, with the 95% Wilson interval of each accuracy
    (one run on ``n`` faces: its test set's own uncertainty, :func:`fer_core.train.stats.wilson`)."""
    n = metrics["n"]
    rows = []
    for label, m in [("single crop", metrics), *((f"test-time augmentation: {k}", t)
                                                 for k, t in metrics.get("tta", {}).items())]:
        low, high = accuracy_interval(m["accuracy"], n)
        rows.append({"evaluation": label, "accuracy": round(m["accuracy"], 4),
                     "95% interval (Wilson)": f"{low:.4f}–{high:.4f}", "macro F1": round(m["macro"]["f1"], 4),
                     "weighted F1": round(m["weighted"]["f1"], 4), "macro AUC": round(m["auc_macro"], 4)})
    return pd.DataFrame(rows).set_index("evaluation")
