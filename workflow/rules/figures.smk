rule table2:
    input:
        metrics=expand("results/eval/{run}/metrics.json", run=ALL_RUNS),
        baselines=expand("results/eval/{baseline}/metrics.json", baseline=BASELINES),
        # the per-patch predictions: the bootstrap intervals (src/hcrlc/bootstrap.py)
        predictions=expand(
            "results/eval/{run}/predictions.npz", run=ALL_RUNS + BASELINES
        ),
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
        n_resamples=config["evaluate"]["bootstrap"],
        bootstrap_seed=config["evaluate"]["bootstrap_seed"],
    script:
        "../scripts/table2.py"


# Not a table of the paper: each of its claims tested on this run, with paired bootstrap intervals
# (src/hcrlc/claims.py)
rule claims:
    input:
        predictions=expand(
            "results/eval/{run}/predictions.npz", run=ALL_RUNS + SSL_RUNS
        ),
    output:
        csv=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Tables",
        ),
        md="results/tables/claims.md",
        html=report(
            "results/tables/claims.html",
            caption="../report/claims.rst",
            category="Tables",
        ),
    log:
        "results/logs/claims.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("claims.py"),
        runs=RUNS,
        ssl_runs=SSL_RUNS,
        fractions=config["ssl"]["label_fractions"],
        bins=config["evaluate"]["fig1_bins"],
        n_resamples=config["evaluate"]["bootstrap"],
        bootstrap_seed=config["evaluate"]["bootstrap_seed"],
        source=DATA_SOURCE,
        config_hash=CONFIG_HASH,
    script:
        "../scripts/claims.py"


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
        geometry=GEOMETRY,
        models=CLASSIFIERS,
        bins=config["evaluate"]["fig1_bins"],
        subgroups=config["evaluate"]["fig1_subgroups"],
        error_bars=config["evaluate"]["fig1_error_bars"],
        n_resamples=config["evaluate"]["bootstrap"],
        bootstrap_seed=config["evaluate"]["bootstrap_seed"],
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
        geometry=GEOMETRY,
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
        geometry=GEOMETRY,
        runs=CURVE_RUNS,
        source=DATA_SOURCE,
    script:
        "../scripts/curves.py"


rule figures:
    input:
        "results/tables/table2.csv",
        "results/tables/claims.csv",
        "results/figures/fig1.png",
        "results/figures/fig3.png",
        "results/figures/fig4.png",
        "results/figures/curves.png",
