"""The foundation chapter (00): one registered model trained end to end on the configured data,
through the same run layer as every paper's runs; the model registry beside Pham et al.'s
parameter counts."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import Config, load_config
from ..data import FERData
from ..explain.attention import scores
from ..models import count_parameters, create_model
from ..paths import bench_file, params_file
from ..runs.records import RunRecord
from ..runs.runner import run
from ..schedule.plans import default_profile, hashed_run, notebook_settings
from ..train.build import load_data
from ..verdicts.claims import claims_of
from . import attention_views, plots


@dataclass
class Foundation:
    """The foundation chapter: one registered model trained end to end on the configured data
    (the synthetic set when none is), through the same run layer as every paper's runs."""

    cfg: Config
    data: FERData
    record: RunRecord | None = None

    @classmethod
    def open(cls, *, profile: str | None = None, overrides: list[str] = (), data_dir: str | None = None,
             device: str = "auto", model: str = "simple_cnn", seed: int = 0, epochs: int | None = None,
             results_dir: str | None = None, progress: bool = True) -> "Foundation":
        profile = profile or default_profile(data_dir)
        settings = [*notebook_settings(overrides, device=device, progress=progress, epochs=epochs,
                                       results_dir=results_dir), f"model.name={model}", f"seed={seed}",
                    "tags.paper=foundation", f"tags.profile={profile}"]
        if data_dir:
            settings.append(f"data.dir={data_dir}")
        cfg = hashed_run(load_config(params_file(profile), settings, experiment="00_foundation"))
        return cls(cfg, load_data(cfg))

    def run(self, reuse: bool = True) -> RunRecord:
        """Train the model (or read back the finished run with the same config and data)."""
        self.record = run(self.cfg, reuse=reuse, data=self.data)
        print(f"run record: {self.record.path}")
        return self.record

    def selection(self) -> pd.DataFrame:
        """Which epoch was selected and why, then the test scores with their intervals."""
        m = self.record.metrics
        print(f"model selected at epoch {m['selected_epoch']} of {m['epochs_run']} by validation accuracy "
              f"{m['best_val_acc']:.4f}" + (f"   [{self.data.note}]" if self.data.note else ""))
        return plots.evaluation_summary(m)

    def attention(self) -> None:
        """The run's attention record, and on the synthetic set how much of the best method's map
        falls on the expression regions."""
        title = f"{self.cfg.model.name}: where the model looks"
        att = attention_views.show(self.record, title, self.data.note)
        if att is None:
            return
        table = scores(att)
        if "share in regions" in table:
            best = table["share in regions"].idxmax()
            share, area = table.loc[best, "share in regions"], table.loc[best, "regions' share of the face"]
            print(f"test accuracy {self.record.metrics['accuracy']:.1%} (chance {1 / self.data.num_classes:.1%}); "
                  f"{best} puts {share:.0%} of its mass on the expression regions, which cover {area:.0%} of the face")

    def provenance(self) -> pd.DataFrame:
        p = self.record.provenance
        return pd.Series({"run record": str(self.record.path), "git commit": p["commit"],
                          "uncommitted changes": p["dirty"],
                          "data": f"{p['data']['source']} ({p['data']['location'] or 'generated'})",
                          "data fingerprint": p["data"]["fingerprint"], "device": p.get("gpu", p["device"]),
                          "wall time (s)": p["wall_time_s"], "torch": p["packages"]["torch"],
                          "note": p["note"] or "-"}).to_frame("value")


BENCH_MODELS = bench_file("models")


def model_overview(bench_csv: str | Path = BENCH_MODELS) -> pd.DataFrame:
    """Every registered model with its parameters, and the benchmark's FLOPs and throughput (and
    the machine it measured) when ``python -m fer_core.schedule.bench models`` has been run."""
    if Path(bench_csv).is_file():
        bench = pd.read_csv(bench_csv)
        print(f"benchmark measured on: {bench['device'].iloc[0]}, torch {bench['torch'].iloc[0]}")
    else:
        print("no benchmark yet: run `python -m fer_core.schedule.bench models` to add FLOPs and throughput")
    return plots.model_table(bench_csv)


def parameter_comparison(bench_csv: str | Path = BENCH_MODELS) -> pd.DataFrame:
    """Pham et al.'s Table III parameter counts beside ours (and our GMACs), with ResMaskingNet's
    count once more with its masking blocks' shortcut convolutions counted twice."""
    sizes = claims_of("pham").query("metric == 'model:parameters_m'").drop_duplicates("row")
    gmacs = pd.read_csv(bench_csv).set_index("model")["gmacs_per_image"] if Path(bench_csv).is_file() else {}
    rows = [{"model": r["row"], "params Table III (M)": r["value"],
             "params ours (M)": round(count_parameters(create_model(r["row"])) / 1e6, 2),
             "GMACs ours": gmacs.get(r["row"]) if len(gmacs) else None, "source": r["source"]}
            for _, r in sizes.iterrows()]
    rmn = create_model("resmaskingnet")
    shortcuts = sum(p.numel() for n, p in rmn.masks.named_parameters() if ".downsample." in n)
    rows.append({"model": "resmaskingnet, shortcuts counted twice",
                 "params Table III (M)": sizes.set_index("row").loc["resmaskingnet", "value"],
                 "params ours (M)": round((count_parameters(rmn) + shortcuts) / 1e6, 2)})
    return pd.DataFrame(rows).set_index("model")
