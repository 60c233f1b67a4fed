"""Files logged with each run: plots, misclassified examples and a model card."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_curve

from training.evaluation import Scored


def plot_confusion_matrices(scored: Scored, path: Path) -> Path:
    """One 2x2 confusion matrix per label, side by side, as a PNG."""
    labels = scored.evaluation.labels
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3.6), squeeze=False)
    for j, label in enumerate(labels):
        ax = axes[0][j]
        cm = confusion_matrix(scored.y_true[:, j], scored.y_pred[:, j], labels=[0, 1])
        ax.imshow(cm, cmap="Blues")
        for (r, c), value in np.ndenumerate(cm):
            ax.text(c, r, str(value), ha="center", va="center", fontsize=12)
        ax.set_xticks([0, 1], ["no", "yes"])
        ax.set_yticks([0, 1], ["no", "yes"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_pr_curves(scored: Scored, thresholds: Mapping[str, float], path: Path) -> Path:
    """Precision-recall curve per label, with the operating point of its threshold."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for j, label in enumerate(scored.evaluation.labels):
        if scored.y_true[:, j].sum() == 0:
            continue
        precision, recall, _ = precision_recall_curve(scored.y_true[:, j], scored.scores[:, j])
        (line,) = ax.plot(recall, precision, label=label)
        s = scored.evaluation.per_label[label]
        ax.scatter([s.recall], [s.precision], color=line.get_color(), zorder=3)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall on held-out passages (dot: chosen threshold)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_f1(scored: Scored, path: Path) -> Path:
    """Bar chart of per-label F1 with the macro average as a line."""
    ev = scored.evaluation
    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = [ev.per_label[label].f1 for label in ev.labels]
    ax.bar(ev.labels, values, color="#3b7dd8")
    ax.axhline(ev.macro_f1, color="#d8553b", linestyle="--", label=f"macro F1 {ev.macro_f1:.3f}")
    for x, v in enumerate(values):
        ax.text(x, v + 0.02, f"{v:.2f}", ha="center")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("F1")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_misclassified(
    scored: Scored, ids: Sequence[str], texts: Sequence[str], path: Path
) -> int:
    """Write every held-out passage whose predicted label set is wrong to CSV.

    Returns:
        How many rows were written.
    """
    labels = scored.evaluation.labels
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["id", "true", "predicted", *[f"score_{label}" for label in labels], "text"]
        )
        for i, (true, pred) in enumerate(zip(scored.y_true, scored.y_pred, strict=True)):
            if (true == pred).all():
                continue
            writer.writerow(
                [
                    ids[i],
                    "|".join(lb for lb, t in zip(labels, true, strict=True) if t),
                    "|".join(lb for lb, p in zip(labels, pred, strict=True) if p),
                    *[f"{s:.4f}" for s in scored.scores[i]],
                    texts[i],
                ]
            )
            rows += 1
    return rows


def write_model_card(path: Path, facts: Mapping[str, Any], scored: Scored) -> Path:
    """A short Markdown model card: what the model is, what it was trained on, how good it is."""
    ev = scored.evaluation
    lines = [
        f"# Model card: {facts.get('model_name', 'narrative-classifier')}",
        "",
        "Labels Arabic news passages by narrative type (multi-label; a passage may have none).",
        "",
        "## Training",
        "",
        *[f"- {key}: {value}" for key, value in facts.items()],
        "",
        f"## Held-out evaluation ({ev.size} passages)",
        "",
        f"Macro-F1 **{ev.macro_f1:.3f}**, micro-F1 {ev.micro_f1:.3f}, false-positive rate on"
        f" passages without a label {ev.none_false_positive_rate:.3f}.",
        "",
        "| label | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {label} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.support} |"
            for label, s in ev.per_label.items()
        ],
        "",
        "## Limits",
        "",
        "- Trained on modern standard Arabic news-style prose; dialect and very short posts are"
        " thinner in the data. Text that is mostly not Arabic gets a `mostly_non_arabic` warning.",
        "- Scores are logistic-regression probabilities; each label has its own threshold chosen"
        " by cross-validation to maximise F1.",
        "- The held-out split comes from the same corpus as the training data, so it overstates"
        " quality on text from other sources: evaluate on your own labelled data with"
        " `narratives evaluate`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
