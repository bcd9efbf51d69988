# Regenerates the notebooks (without outputs): python3 notebooks/make_notebooks.py
import nbformat as nbf

def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}, "language_info": {"name": "python"}}
    n.cells = [nbf.v4.new_markdown_cell(c[1]) if c[0] == "md" else nbf.v4.new_code_cell(c[1]) for c in cells]
    for i, c in enumerate(n.cells):
        c.id = f"cell-{i:02d}"  # stable ids: regenerating does not churn the files
    return n

setup = '''import pathlib, tempfile
import matplotlib.pyplot as plt
import pandas as pd
import pyarrow as pa
import tessera

work = pathlib.Path(tempfile.mkdtemp(prefix="tessera-nb-"))'''

driver = nb([
("md", """# A driver's week

One driver's traces through the whole tessera pipeline: what was read, what was rejected and why,
which H3 cells the drive covered, and how the reward came about. Everything runs on the sample
fleet the demo uses (`tessera.simulate()` with default arguments reproduces `data/sample` byte for
byte), so this notebook needs nothing but the `tessera` package."""),
("code", setup + '''
fleet, lake = work / "fleet", work / "lake"
tessera.simulate(fleet)
for device in sorted(p for p in fleet.iterdir() if p.is_dir()):
    tessera.ingest(lake, device.name, sorted(device.iterdir()))
for epoch in ["2026-W46", "2026-W47"]:
    summary = tessera.run_epoch(lake, epoch, 10**12, registry=fleet / "registry.csv")
    print(epoch, "recipients", summary["recipients"], "allocated", summary["allocated"], "of", summary["pool"])'''),
("md", """## The trace

`car-008` is one of the sample's dishonest drivers: a BlackVue dashcam whose position jumps 3 km in
the middle of each trip. Reading the file gives the normalized fixes and the line accounting."""),
("code", '''driver, epoch = "car-008", "2026-W47"
files = sorted((fleet / driver).glob(f"{epoch}-*"))
fixes, ingest_rejections, lines, imu = tessera.read_trace(files[0], device=driver)
print(lines)
fixes.to_pandas().head()'''),
("md", "## What the quality gates and trace checks rejected"),
("code", '''accepted, rejected = tessera.clean(fixes)
reasons = rejected.to_pandas()["reason"].value_counts()
ax = reasons.plot.barh(title=f"{driver}: rejected fixes by reason ({rejected.num_rows} of {fixes.num_rows})")
ax.set_xlabel("fixes")
plt.tight_layout(); plt.show()
rejected.to_pandas()[["line", "time", "reason", "detail"]].head(8)'''),
("md", "## Where the drive went, and the cells it covered"),
("code", '''a, r = accepted.to_pandas(), rejected.to_pandas()
visits = tessera.cover(accepted).to_pandas()
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for seg, part in a.groupby("segment"):
    axes[0].plot(part["lon"], part["lat"], lw=1, label=f"segment {seg}")
axes[0].scatter(r["lon"], r["lat"], c="red", marker="x", s=25, label="rejected")
axes[0].set_title("accepted fixes by segment; rejected in red"); axes[0].legend(fontsize=7)
sc = axes[1].scatter(visits["cell_lng"], visits["cell_lat"], c=visits["fixes"], s=6, cmap="viridis")
fig.colorbar(sc, ax=axes[1], label="fixes in cell (0 = path cell)")
axes[1].set_title(f"{len(visits)} H3 res-12 cells covered")
for ax in axes: ax.set_aspect(1 / 0.61); ax.set_xlabel("lon"); ax.set_ylabel("lat")
plt.tight_layout(); plt.show()'''),
("md", "## The reward, explained"),
("code", '''registry = pd.read_csv(fleet / "registry.csv")
wallet = registry.set_index("device_id").loc[driver, "wallet"]
story = tessera.explain(lake, epoch, wallet)
print(f"{wallet}: {story['amount']} base units = {story['share_percent']}% of the pool for {story['points']} points")
pd.DataFrame(story["devices"])[["device", "points", "visits", "cells", "discoveries", "ranks", "rejected"]]'''),
("code", '''explain = tessera.epoch_table(lake, epoch, "explain").to_pandas()
mine = explain[explain["recipient"] == wallet]
fig, ax = plt.subplots(figsize=(6, 3.5))
mine["points"].astype(float).plot.hist(bins=20, ax=ax, title="points per visit (rank × freshness × quality × region)")
ax.set_xlabel("points"); plt.tight_layout(); plt.show()
claim = tessera.proof(lake, epoch, wallet)
print("merkle root", claim["root"], "proof length", len(claim["proof"]))
assert tessera.verify_epoch(lake, epoch)["ok"]'''),
])

network = nb([
("md", """# A network week

The network team's view over four epochs of a simulated fleet: how coverage grows and how fresh it
is, how rewards are distributed (Lorenz curve, top-k share), and what a policy change would do —
computed with `tessera.diff_policy`, which writes nothing."""),
("code", setup + '''
fleet, lake = work / "fleet", work / "lake"
tessera.simulate(fleet, drivers=12, epochs=4, trips=2, minutes=6)
for device in sorted(p for p in fleet.iterdir() if p.is_dir()):
    tessera.ingest(lake, device.name, sorted(device.iterdir()))
epochs = ["2026-W46", "2026-W47", "2026-W48", "2026-W49"]
summaries = pd.DataFrame([tessera.run_epoch(lake, e, 10**12, registry=fleet / "registry.csv") for e in epochs]).set_index("epoch")
summaries[["fixes_in", "fixes_accepted", "cells", "new_cells", "visits", "recipients"]]'''),
("md", "## Coverage growth and freshness"),
("code", '''fig, axes = plt.subplots(1, 2, figsize=(12, 4))
total = [tessera.epoch_table(lake, e, "coverage").num_rows for e in epochs]
axes[0].bar(epochs, summaries["new_cells"], label="new cells this epoch")
axes[0].plot(epochs, total, "k-o", label="cells ever covered")
axes[0].set_title("coverage growth"); axes[0].legend()
ages = []
for e in epochs:
    x = tessera.epoch_table(lake, e, "explain").to_pandas()
    age = x["age_epochs"].map(lambda a: "never covered" if pd.isna(a) else ("1 epoch" if a == 1 else ("2 epochs" if a == 2 else "3+ epochs")))
    ages.append(age.value_counts().rename(e))
pd.DataFrame(ages).fillna(0).plot.bar(stacked=True, ax=axes[1], title="visits by age of the cell's last coverage")
plt.tight_layout(); plt.show()'''),
("md", "The last epoch on a map (`tessera.render`, the same PNG as `tessera render --color freshness`): which streets were mapped this epoch and which are going stale."),
("code", '''from IPython.display import Image
png, legend = tessera.render(lake, "2026-W49", color_by="freshness")
print({e["label"]: e["cells"] for e in legend["legend"]})
Image(png)'''),
("md", "## Distribution of rewards"),
("code", '''import numpy as np
rewards = tessera.epoch_table(lake, "2026-W49", "rewards").to_pandas()
amounts = np.sort(rewards["amount"].astype(float).to_numpy())
assert int(rewards["amount"].sum()) == 10**12
cum = np.concatenate([[0], np.cumsum(amounts) / amounts.sum()])
x = np.linspace(0, 1, len(cum))
gini = 1 - 2 * np.trapezoid(cum, x) if hasattr(np, "trapezoid") else 1 - 2 * np.trapz(cum, x)
top3 = amounts[-3:].sum() / amounts.sum()
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot(x, cum, "o-", label=f"Lorenz curve (Gini {gini:.2f})")
ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="equal shares")
ax.set_xlabel("share of recipients"); ax.set_ylabel("share of the pool")
ax.set_title(f"2026-W49: top-3 recipients hold {top3:.0%}"); ax.legend()
plt.tight_layout(); plt.show()'''),
("md", """## What if?

A policy that rewards only the first device in a cell and doubles the discovery bonus. The
recomputation uses the epoch's own registry and pool and its previous coverage state."""),
("code", '''what_if = work / "first-only.toml"
what_if.write_text("[novelty]\\nrank_weights = [1.0]\\ndiscovery_weight = 4.0\\n")
d = pd.DataFrame(tessera.diff_policy(lake, "2026-W49", what_if))
d["delta"] = d["after"].astype(int) - d["before"].astype(int)
assert d["after"].astype(int).sum() == d["before"].astype(int).sum() == 10**12
ax = (d.set_index(d["recipient"].str[:10])["delta"] / 1e9).plot.bar(figsize=(8, 3.5), title="change per recipient (×10⁹ base units)")
plt.tight_layout(); plt.show()
d.sort_values("delta")'''),
])

nbf.write(driver, "notebooks/01_driver_week.ipynb")
nbf.write(network, "notebooks/02_network_week.ipynb")
