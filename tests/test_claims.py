"""Every claim and every recipe setting is traceable to a line of the papers' texts."""
import re
from pathlib import Path

import pytest

from fer_core.runs import ledger
from fer_core.schedule.plans import PAPERS_DIR, leaf_keys, read_plan
from fer_core.verdicts.claims import CLAIMS_FILE, claims_of, read_claims, row_ref

PAPERS_TEXT = Path(__file__).resolve().parent.parent.parent / "shared" / "papers"
SHORT = {"pham": "pham_2020_residual_masking_network.txt",
         "shen_li": "shen_li_2023_residual_masking_reconstruction.txt", "du": "du_improved_resnet50.txt",
         "yu": "yu_xception_separable.txt", "qin": "qin_2021_stn_sr.txt"}
PLANS = sorted(p.stem for p in PAPERS_DIR.glob("*.yaml"))


def _lines(file: str) -> list[str]:
    path = PAPERS_TEXT / file
    if not path.is_file():
        pytest.skip(f"the papers' texts are not at {PAPERS_TEXT} (../shared/papers)")
    return path.read_text().split("\n")


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def test_the_claims_file_is_valid():
    df = read_claims()
    assert len(df) > 100 and df["value"].dtype == float
    assert set(df["relation"]) <= {"=", ">", "<"} and (df["quote"].str.len() > 0).all()


def test_every_quote_is_on_the_line_its_source_names():
    checked = 0
    for _, c in read_claims().iterrows():
        m = re.fullmatch(r"([\w.+-]+\.txt):(\d+)", c["source"])
        if not m:
            assert "phamquiluan/ResidualMaskingNetwork@" in c["source"], c["source"]  # the authors' repository
            continue
        line = _lines(m.group(1))[int(m.group(2)) - 1]
        assert c["quote"] in line, f"{c['source']}: {c['quote']!r} not in {line!r}"
        checked += 1
    assert checked > 80


def test_the_numbers_the_issue_lists_are_there():
    shen = claims_of("shen_li")
    table2 = shen[shen["table"] == "Table 2"]
    assert len(table2) == 26 and set(table2["metric"]) == {"accuracy_tta_random_views", "macro_f1_tta_random_views"}
    res18 = table2[table2["row"] == "rmrn18"].set_index("metric")["value"]
    assert res18.to_dict() == {"accuracy_tta_random_views": 75.67, "macro_f1_tta_random_views": 72.55}
    assert ((shen["metric"] == "auc_min") & (shen["row"] == "rmrn34") & (shen["value"] == 99.95)).any()
    assert ((shen["metric"] == "metrics:per_class.happy.recall") & (shen["value"] == 90)).any()
    du = claims_of("du").query("versus == ''").set_index(["row", "metric"])["value"]
    assert du[("resnet50", "last:val_loss")] == 1.47082 and du[("improved_resnet50", "last:val_loss")] == 1.15563
    assert du[("improved_resnet50", "last:val_acc")] == 57.31 and du[("resnet50", "last:val_acc")] == 44.00
    yu = claims_of("yu").query("relation == '='").set_index("row")["value"].to_dict()
    assert yu == {"xception": 87.24, "inception_v4": 89.92, "xception_separable": 95.1}
    qin = claims_of("qin").query("table == 'Table 2'")
    assert sorted(qin["value"]) == sorted([87.2, 94.4, 95.1, 97.8, 66.5, 71.4, 72.7, 73.4])
    mnist = claims_of("qin").query("dataset == 'mnist'").set_index("metric")["value"]
    assert mnist["accuracy"] == 98.81 and mnist["cross_entropy"] == 0.0395
    pham = claims_of("pham")
    assert ((pham["row"] == "resnet18") & (pham["value"] == 72.90)).any()
    vemo = pham[pham["dataset"] == "vemo"]
    assert len(vemo) == 9 and vemo["note"].str.contains("data not available").all() and (vemo["row"] == "").all()


def test_claims_name_rows_of_the_plans_and_measurable_metrics():
    plans = {p: read_plan(p) for p in PLANS}
    for _, c in read_claims().iterrows():
        for ref in [c["row"], *c["versus"].split(";")]:
            if ref:
                paper, variant = row_ref(c["paper"], ref)
                assert variant in plans[paper].variants(), f"{c['paper']} claim {c['label']!r}: no row {ref!r}"
        kind = c["metric"].split(":")[0] if ":" in c["metric"] else None
        assert kind in ("last", "first", "selected", "metrics") or c["metric"] in ledger.COLUMNS \
            or c["metric"] in ("images", "model:parameters_m"), \
            c["metric"]


def test_a_bad_claims_file_names_the_line(tmp_path):
    bad = tmp_path / "claims.csv"
    text = CLAIMS_FILE.read_text().splitlines()
    bad.write_text("\n".join(text[:3] + [text[3].replace(",=,71.97,", ",=,about 72,")]) + "\n")
    with pytest.raises(ValueError, match=r"line 4: value 'about 72' is not a number"):
        read_claims(bad)
    bad.write_text("\n".join(text[:2] + [text[2].replace(",=,70.80,", ",~,70.80,")]) + "\n")
    with pytest.raises(ValueError, match=r"line 3: relation '~' is not one of"):
        read_claims(bad)


@pytest.mark.parametrize("paper", PLANS)
def test_every_recipe_setting_is_sourced_or_a_named_choice(paper):
    plan = read_plan(paper)
    assert set(leaf_keys(plan.recipe)) == set(plan.settings), "settings must name exactly the recipe's settings"
    for key, entry in plan.settings.items():
        text = entry.get("source") or entry.get("choice")
        assert len(text) > 8, f"{paper}: settings.{key} says too little"


@pytest.mark.parametrize("paper", PLANS)
def test_quotes_in_a_plan_are_verbatim_on_the_lines_it_cites(paper):
    plan = read_plan(paper)
    texts = [e.get("source") or e.get("choice") for e in plan.settings.values()] + plan.deviations + plan.protocol
    for text in texts:
        cited = ""
        for m in re.finditer(r"(pham|shen_li|du|yu|qin)\.txt:(\d+)(?:-(\d+))?", text):
            lines = _lines(SHORT[m.group(1)])
            a, b = int(m.group(2)), int(m.group(3) or m.group(2))
            assert 1 <= a <= b <= len(lines), f"{paper}: {m.group(0)} is past the end of the text"
            cited += _norm(" ".join(lines[a - 1:b])) + " | "
        for quote in re.findall(r"“([^”]+)”", text):
            if cited:
                assert _norm(quote) in cited, f"{paper}: “{quote}” is not on the lines cited in: {text}"
