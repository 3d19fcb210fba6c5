"""``python -m fer_core``: train, evaluate, inspect data, list models."""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from .config import ConfigError
from .data import SOURCES

EPILOG = "Real data: --data-dir or FER_DATA_DIR; with neither, the embedded synthetic set is used."


def _cmd_train(args) -> int:
    from .config import load_config
    from .engine import train

    cfg = load_config(args.params, args.set)
    record = train(cfg, resume=args.resume)
    m = record.metrics
    line = f"{record.path}: test accuracy {m['accuracy']:.4f} (epoch {m['selected_epoch']} by val accuracy " \
           f"{m['best_val_acc']:.4f})"
    if "tta" in m:
        line += f", with TTA {m['tta']['accuracy']:.4f}"
    print(line + (f"  [{m['note']}]" if m.get("note") else ""))
    return 0


def _cmd_evaluate(args) -> int:
    from .engine import evaluate_run

    out = evaluate_run(args.run_dir, tta=args.tta, split=args.split)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{out['run']} [{out['split']}{', TTA' if args.tta else ''}]: accuracy {out['accuracy']:.4f}, "
              f"macro F1 {out['macro']['f1']:.4f}, weighted F1 {out['weighted']['f1']:.4f}, "
              f"macro AUC {out['auc_macro']:.4f}" + (f"  [{out['note']}]" if out.get("note") else ""))
    return 0


def _cmd_data(args) -> int:
    from .data import load

    data = load(args.source, args.data_dir, n_folds=args.folds)
    summary = data.summary()
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{summary['source']} ({summary['location'] or 'generated'}), fingerprint {summary['fingerprint']}")
        for s, v in summary["splits"].items():
            print(f"  {s:5s} {v['total']:6d}  " + ", ".join(f"{k} {n}" for k, n in v["per_class"].items()))
        if summary.get("note"):
            print(f"  note: {summary['note']}")
    return 0


def _cmd_models(args) -> int:
    from .models import REGISTRY, count_parameters, create_model

    rows = []
    for name, spec in sorted(REGISTRY.items()):
        rows.append({"name": name, "parameters": count_parameters(create_model(name, num_classes=args.classes)),
                     "input_size": spec.input_size, "in_channels": spec.in_channels, "paper": spec.paper,
                     "summary": spec.summary})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['name']:20s} {r['parameters'] / 1e6:8.2f}M  {r['in_channels']}x{r['input_size']}x{r['input_size']}"
                  f"  {r['paper']:18s} {r['summary']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_core", description=__doc__, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one run from a params file")
    t.add_argument("--params", required=True, help="params/<profile>.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a field (repeatable)")
    t.add_argument("--resume", action="store_true", help="continue an unfinished run from its last checkpoint")
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("evaluate", help="re-evaluate a finished run from its best checkpoint")
    e.add_argument("run_dir")
    e.add_argument("--tta", action="store_true", help="ten-crop + flip test-time augmentation")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=_cmd_evaluate)

    d = sub.add_parser("data", help="split sizes and per-class counts of a source", epilog=EPILOG)
    d.add_argument("--source", default="auto", choices=list(SOURCES))
    d.add_argument("--data-dir", default=None)
    d.add_argument("--folds", type=int, default=10, help="CK+ cross-validation folds")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=_cmd_data)

    m = sub.add_parser("models", help="every registered model with its parameter count and input size")
    m.add_argument("--classes", type=int, default=7)
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=_cmd_models)

    args = p.parse_args(argv)
    from .data import DataError
    from .records import RunExistsError

    try:
        return args.fn(args)
    except (ConfigError, DataError, RunExistsError, FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(main())
