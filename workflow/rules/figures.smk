rule table2:
    input:
        metrics=expand("results/eval/{run}/metrics.json", run=ALL_RUNS),
        baselines=expand("results/eval/{baseline}/metrics.json", baseline=BASELINES),
    output:
        csv=report(
            "results/tables/table2.csv",
            caption="../report/table2.rst",
            category="Tables",
        ),
        md="results/tables/table2.md",
        html=report(
            "results/tables/table2.html",
            caption="../report/table2.rst",
            category="Tables",
        ),
    log:
        "results/logs/table2.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("table2.py"),
        runs=RUNS,
        baselines=BASELINES,
        source=DATA_SOURCE,
        config_hash=CONFIG_HASH,
    script:
        "../scripts/table2.py"


rule fig1:
    input:
        predictions=expand("results/eval/{model}/predictions.npz", model=CLASSIFIERS),
        constant="results/eval/constant_prediction/predictions.npz",
    output:
        png=report(
            "results/figures/fig1.png",
            caption="../report/fig1.rst",
            category="Figures",
        ),
        pdf="results/figures/fig1.pdf",
        csv="results/figures/fig1.csv",
    log:
        "results/logs/fig1.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("fig1.py"),
        models=CLASSIFIERS,
        bins=config["evaluate"]["fig1_bins"],
        subgroups=config["evaluate"]["fig1_subgroups"],
        source=DATA_SOURCE,
    script:
        "../scripts/fig1.py"


rule fig3:
    input:
        **PACKED,
        **{m: f"results/eval/{m}/examples.npz" for m in FIG3_MODELS},
    output:
        png=report(
            "results/figures/fig3.png",
            caption="../report/fig3.rst",
            category="Figures",
        ),
    log:
        "results/logs/fig3.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("fig3.py"),
        source=DATA_SOURCE,
    script:
        "../scripts/fig3.py"


# Not in the paper: loss and selection metric per epoch of every training run, from its metrics.csv
rule curves:
    input:
        metrics=expand("results/models/{run}/metrics.csv", run=CURVE_RUNS),
    output:
        png=report(
            "results/figures/curves.png",
            caption="../report/curves.rst",
            category="Figures",
        ),
        pdf="results/figures/curves.pdf",
    log:
        "results/logs/curves.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("curves.py"),
        runs=CURVE_RUNS,
        source=DATA_SOURCE,
    script:
        "../scripts/curves.py"


rule figures:
    input:
        "results/tables/table2.csv",
        "results/figures/fig1.png",
        "results/figures/fig3.png",
        "results/figures/fig4.png",
        "results/figures/curves.png",
